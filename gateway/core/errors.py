"""Errors the services raise, each with a stable code.

The GraphQL layer turns a ``UserError`` into an entry of a payload's ``userErrors`` and every
other ``ServiceError`` into a top-level error with ``extensions.code``. Anything else that escapes
a service is a bug and is masked as INTERNAL.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "The API key is missing or invalid.") -> None:
        super().__init__(message)


class Forbidden(ServiceError):
    code = "FORBIDDEN"


class NotFound(ServiceError):
    code = "NOT_FOUND"


class BadInput(ServiceError):
    """A query argument the caller got wrong (a malformed cursor, ``first`` over 100, …).

    Mutations report such problems as userErrors; queries have no payload, so they get this.
    """

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimited(ServiceError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UserError(ServiceError):
    """Something the caller can fix: reported in the payload's ``userErrors``, nothing changed."""

    def __init__(self, code: str, message: str, field: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class Conflict(UserError):
    """The request met a state it cannot act on now (a post already publishing, a post that kept
    changing while it was being checked). Reported like any user error, with code ``CONFLICT``:
    the caller looks again and decides, and nothing was changed."""

    def __init__(self, message: str, field: list[str] | None = None) -> None:
        super().__init__("CONFLICT", message, field)


class UserErrors(ServiceError):
    """Several user errors at once, e.g. every problem of a post's targets."""

    code = "USER_ERRORS"

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors
