"""Every GraphQL error leaves with ``extensions.code`` and ``requestId``.

Service errors keep their message and code. Parse and validation errors get the GraphQL codes
clients already know. Anything else is a bug: it is logged with its traceback and the request
id, and the client sees only INTERNAL and the id that finds the log line.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from gateway.errors import RateLimited, ServiceError
from gateway.request_context import current_request_id

log = logging.getLogger("socialgate.graphql")

INTERNAL_MESSAGE = "Internal server error."


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
