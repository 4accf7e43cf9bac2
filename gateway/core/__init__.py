"""What every wing shares and nothing else: ids, the clock, errors and their HTTP shape, pagination, logs, locks, the request context and background tasks. It imports no other wing.

Outside this wing, code imports from ``gateway.core`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

# The clock as a module too: code that must follow a test moving time reads `clock.utcnow` per call.
from gateway.core import clock
from gateway.core.background import BackgroundTasks, Periodic, WakeableLoop
from gateway.core.clock import utcnow
from gateway.core.errors import BadInput, Conflict, Forbidden, NotFound, RateLimited, ServiceError, Unauthenticated, UserError, UserErrors
from gateway.core.http_errors import (
    APPLICATION_JSON,
    BAD_REQUEST,
    CODE_BY_STATUS,
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    INTERNAL_MESSAGE,
    RequestRefused,
    error_response,
    internal_error,
    response_media_type,
)
from gateway.core.ids import id_prefix, is_id_of, new_id
from gateway.core.locks import KeyedLocks, RedisKeyedLocks
from gateway.core.logs import configure_logging
from gateway.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest, count, paginate
from gateway.core.plain_rows import plain_rows
from gateway.core.request_context import RequestIdMiddleware, current_request_id, new_request_id

__all__ = [
    "APPLICATION_JSON",
    "BackgroundTasks",
    "BAD_REQUEST",
    "BadInput",
    "clock",
    "CODE_BY_STATUS",
    "configure_logging",
    "Conflict",
    "CONTENT_TYPES",
    "count",
    "current_request_id",
    "DEFAULT_PAGE_SIZE",
    "error_response",
    "Forbidden",
    "GRAPHQL_RESPONSE_JSON",
    "id_prefix",
    "internal_error",
    "INTERNAL_MESSAGE",
    "is_id_of",
    "KeyedLocks",
    "RedisKeyedLocks",
    "MAX_PAGE_SIZE",
    "new_id",
    "new_request_id",
    "NotFound",
    "Page",
    "PageRequest",
    "paginate",
    "plain_rows",
    "Periodic",
    "RateLimited",
    "RequestIdMiddleware",
    "RequestRefused",
    "response_media_type",
    "ServiceError",
    "Unauthenticated",
    "UserError",
    "UserErrors",
    "utcnow",
    "WakeableLoop",
]
