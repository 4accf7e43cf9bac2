"""The only exceptions a provider raises: the engine acts on their class, not on the platform.

| error | what the engine does |
|---|---|
| ``RateLimited(retry_after)`` | retries after that many seconds; the account is ``rate_limited`` meanwhile |
| ``TransientError`` | retries with exponential backoff and jitter (5xx, timeouts, network trouble) |
| ``AuthExpired`` | refreshes the token once and retries; otherwise the account becomes ``token_expired`` |
| ``Rejected(code, message)`` | fails the target for good and keeps the message for the user |
| ``Unconfirmed`` | the platform may have published: the engine reconciles, never re-publishes blindly |

Any other exception escaping a provider is treated as a bug in the provider: the target fails
with an internal error and the traceback is logged.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """Base class of the typed errors. ``code`` is a stable UPPER_SNAKE word; ``message`` is for people."""

    default_code = "PROVIDER_ERROR"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        http_status: int | None = None,
        raw: Any = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.http_status = http_status
        self.raw = raw  # the platform's response body, kept for the attempt log
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, http_status={self.http_status!r})"


class RateLimited(ProviderError):
    """The platform refused for now. ``retry_after`` is in seconds, or None when it did not say."""

    default_code = "RATE_LIMITED"

    def __init__(self, retry_after: float | None = None, message: str = "", **kwargs: Any) -> None:
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self.retry_after = retry_after
        super().__init__(message or "rate limited by the platform", **kwargs)


class TransientError(ProviderError):
    """A failure that may pass: 5xx, a timeout before anything was sent, a dropped connection."""

    default_code = "TRANSIENT"


class AuthExpired(ProviderError):
    """The platform no longer accepts the account's credentials (expired or revoked token)."""

    default_code = "AUTH_EXPIRED"


class Rejected(ProviderError):
    """The platform refused this content or call for good (4xx content or policy); never retried."""

    default_code = "REJECTED"

    def __init__(self, code: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)


class NotSupported(Rejected):
    """The operation is not one this provider offers (its capabilities say so)."""

    def __init__(self, provider_id: str, operation: str) -> None:
        super().__init__("NOT_SUPPORTED", f"{provider_id} does not support {operation}")


class Unconfirmed(ProviderError):
    """The request may have reached the platform and no answer came back: it may have published."""

    default_code = "UNCONFIRMED"


# Outcome words recorded on an Attempt, by error class (most specific first).
OUTCOMES: tuple[tuple[type[ProviderError], str], ...] = (
    (RateLimited, "rate_limited"),
    (TransientError, "transient"),
    (AuthExpired, "auth_expired"),
    (Rejected, "rejected"),
    (Unconfirmed, "unconfirmed"),
)


def outcome_of(error: ProviderError) -> str:
    """The attempt outcome word for a typed error (``rate_limited``, ``transient``, …)."""
    for kind, word in OUTCOMES:
        if isinstance(error, kind):
            return word
    return "error"
