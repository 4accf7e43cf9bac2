"""Requests refused before GraphQL runs, answered in GraphQL's own error shape.

A body too large, not JSON, nested past reason, a broken multipart request, an upload without a
valid key: each is refused before any resolver sees it, and Starlette's and Strawberry's default
for that is a plain-text line without the request id. Clients parse one format instead: a JSON
``errors`` list whose entry carries a stable ``extensions.code`` and the ``requestId`` that
finds the log line.

The media type of a response follows the request's ``Accept`` header, as the GraphQL over HTTP
specification says: ``application/graphql-response+json`` for a client that asks for it, and
``application/json`` otherwise (no ``Accept``, ``*/*``, ``application/json``, or nothing we
serve). In ``application/graphql-response+json`` a request that never reached execution has no
``data`` entry; in ``application/json`` it keeps ``"data": null``, as it always did.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.core.request_context import HEADER, current_request_id

log = logging.getLogger("socialgate.http")

BAD_REQUEST = "BAD_REQUEST"
APPLICATION_JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# The Content-Type header of each: JSON is UTF-8 by definition; the newer type says so outright.
CONTENT_TYPES = {APPLICATION_JSON: APPLICATION_JSON, GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON + "; charset=utf-8"}
INTERNAL_MESSAGE = "Internal server error."
# Strawberry's and Starlette's HTTP refusals by status, for those that carry no code of their own.
CODE_BY_STATUS = {400: BAD_REQUEST, 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def response_media_type(accept: str | None) -> str:
    """The media type to answer a GraphQL request with, given its ``Accept`` header.

    ``application/graphql-response+json`` when the client names it with a quality above zero and
    it ranks first: by quality, then a type named outright over one reached by a wildcard, then
    the one listed first. Otherwise ``application/json``, which the specification lets a server
    fall back to and which every client of ours before it understood. Wildcards count for
    ``application/json`` only: a client that sends ``*/*`` has not said it knows the newer type.
    """
    ranks: dict[str, tuple[float, bool, int]] = {}
    for position, part in enumerate((accept or "").split(",")):
        media_range, *parameters = part.split(";")
        media_range = media_range.strip().lower()
        if media_range == GRAPHQL_RESPONSE_JSON:
            candidate = GRAPHQL_RESPONSE_JSON
        elif media_range in (APPLICATION_JSON, "application/*", "*/*"):
            candidate = APPLICATION_JSON
        else:
            continue
        named = media_range == candidate
        # The most specific range naming a type decides its quality (RFC 9110 §12.5.1).
        if candidate not in ranks or (named and not ranks[candidate][1]):
            ranks[candidate] = (_quality(parameters), named, -position)
    newer = ranks.get(GRAPHQL_RESPONSE_JSON)
    if newer is None or newer[0] <= 0:
        return APPLICATION_JSON
    older = ranks.get(APPLICATION_JSON)
    return GRAPHQL_RESPONSE_JSON if older is None or newer > older else APPLICATION_JSON


class RequestRefused(Exception):
    """Raised anywhere while a request is read; the view answers it with ``response()``."""

    def __init__(
        self, message: str, *, status: int = 400, code: str = BAD_REQUEST, unread_body: bool = False, **extensions: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        # A refusal sent before the body was read leaves that body on the wire: the connection
        # cannot carry another request, so the client is told to close it.
        self.headers = {"Connection": "close"} if unread_body else None
        self.extensions = extensions

    def response(self, media_type: str = APPLICATION_JSON) -> JSONResponse:
        return error_response(self.status, self.code, self.message, headers=self.headers, media_type=media_type, **self.extensions)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    media_type: str = APPLICATION_JSON,
    **extensions: Any,
) -> JSONResponse:
    """A refusal in GraphQL's error shape; without ``data`` in application/graphql-response+json,
    where a request error has none, with ``"data": null`` in application/json."""
    request_id = request_id or current_request_id.get()
    # A message may quote the request (an operation name, say); a lone surrogate there would make
    # the UTF-8 response itself fail to encode.
    message = message.encode("utf-8", "replace").decode("utf-8")
    error = {"message": message, "extensions": {"code": code, **extensions, "requestId": request_id}}
    body: dict[str, Any] = {"errors": [error]} if media_type == GRAPHQL_RESPONSE_JSON else {"data": None, "errors": [error]}
    response = JSONResponse(body, status_code=status, headers=headers, media_type=CONTENT_TYPES[media_type])
    response.headers.add_vary_header("Accept")
    return response


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's handler of last resort (its ServerErrorMiddleware, outside the request-id
    middleware): a bug anywhere is logged with the request id and answered in the same shape."""
    request_id = request.scope.get("state", {}).get("request_id")
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=error, extra={"request_id": request_id})
    headers = {HEADER: request_id} if request_id else None
    media_type = response_media_type(request.headers.get("accept"))
    return error_response(500, "INTERNAL", INTERNAL_MESSAGE, headers=headers, request_id=request_id, media_type=media_type)
