"""Requests refused before GraphQL runs, answered in GraphQL's own error shape.

A body too large, not JSON, nested past reason, a broken multipart request, an upload without a
valid key: each is refused before any resolver sees it, and Starlette's and Strawberry's default
for that is a plain-text line without the request id. Clients parse one format instead: a JSON
``errors`` list whose entry carries a stable ``extensions.code`` and the ``requestId`` that
finds the log line.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.core.request_context import HEADER, current_request_id

log = logging.getLogger("socialgate.http")

BAD_REQUEST = "BAD_REQUEST"
INTERNAL_MESSAGE = "Internal server error."
# Strawberry's and Starlette's HTTP refusals by status, for those that carry no code of their own.
CODE_BY_STATUS = {400: BAD_REQUEST, 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


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

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, headers=self.headers, **self.extensions)


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, request_id: str | None = None, **extensions: Any
) -> JSONResponse:
    request_id = request_id or current_request_id.get()
    # A message may quote the request (an operation name, say); a lone surrogate there would make
    # the UTF-8 response itself fail to encode.
    message = message.encode("utf-8", "replace").decode("utf-8")
    error = {"message": message, "extensions": {"code": code, **extensions, "requestId": request_id}}
    return JSONResponse({"data": None, "errors": [error]}, status_code=status, headers=headers)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's handler of last resort (its ServerErrorMiddleware, outside the request-id
    middleware): a bug anywhere is logged with the request id and answered in the same shape."""
    request_id = request.scope.get("state", {}).get("request_id")
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=error, extra={"request_id": request_id})
    headers = {HEADER: request_id} if request_id else None
    return error_response(500, "INTERNAL", INTERNAL_MESSAGE, headers=headers, request_id=request_id)
