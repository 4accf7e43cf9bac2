"""Every GraphQL error leaves with ``extensions.code`` and ``requestId``.

Service errors keep their message and code. Parse and validation errors get the GraphQL codes
clients already know. A value graphql-core could not coerce to its declared type (``publishAt:
"tomorrow"``, ``null`` for a ``JSON!``, an Int past 32 bits) arrives wrapping another GraphQL
error: the caller's mistake, so BAD_USER_INPUT with graphql-core's message, which names the
variable or argument and the path inside it. Anything else is a bug: it is logged with its
traceback and the request id, and the client sees only INTERNAL and the id that finds the log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from gateway.core import INTERNAL_MESSAGE, BadInput, RateLimited, ServiceError, current_request_id

log = logging.getLogger("socialgate.graphql")

BAD_USER_INPUT = BadInput.code


def shape_error(error: GraphQLError) -> GraphQLError:
    request_id = current_request_id.get()
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if isinstance(original, ServiceError):
        extensions["code"] = original.code
        message = original.message
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = round(original.retry_after, 3)
        if isinstance(original, BadInput) and original.field:
            extensions["field"] = original.field
    elif isinstance(original, GraphQLError):
        extensions["code"] = BAD_USER_INPUT
    elif original is None:
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    else:
        log.error(
            "unhandled error in resolver at %s",
            ".".join(str(p) for p in error.path or ()),
            exc_info=(type(original), original, original.__traceback__),
        )
        extensions = {"code": "INTERNAL"}
        message = INTERNAL_MESSAGE
    extensions["requestId"] = request_id
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorShaping(MaskErrors):
    """Strawberry's error-masking hook, used to shape every error rather than blank them all."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [shape_error(error) for error in errors]

    def _process_result(self, result: object) -> None:
        """The base class's, without its runtime Protocol check (``isinstance`` against a Protocol
        inspects the class every time): 2% of a createPost, for a result with no error."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each event of a subscription passes here; most carry no error, and the base class's
        runtime Protocol check costs more than the rest of this hook for a thousand subscribers."""
        self._stream_result_processed = True
        if getattr(result, "errors", None) or getattr(result, "incremental", None) or getattr(result, "completed", None):
            self._process_stream_result(result)
        yield None
