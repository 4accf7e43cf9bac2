"""Helpers that turn HTTP outcomes into the SDK's typed errors, so every provider maps them alike."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import httpx

from providers.context import ProviderContext
from providers.errors import AuthExpired, RateLimited, Rejected, TransientError, Unconfirmed


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The Retry-After header as seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def send(ctx: ProviderContext, method: str, url: str, *, publishes: bool = False, **kwargs: Any) -> httpx.Response:
    """Send a request through ``ctx.http``, mapping network failures to typed errors.

    Failing to connect means nothing reached the platform: ``TransientError``. A timeout or a
    dropped connection *after* the request was sent is ``Unconfirmed`` when ``publishes`` (the
    platform may have created the post) and ``TransientError`` otherwise. A request that
    ``publishes`` is never sent inside ``ctx.preparing()``: that phase promises nothing is posted.
    """
    if publishes and ctx.phase.preparing:
        raise RuntimeError(f"a publishing request ({method} {url}) inside ctx.preparing(), which promises nothing is posted")
    try:
        return await ctx.http.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientError(f"could not reach the platform: {exc!r}", code="NETWORK") from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        if publishes:
            raise Unconfirmed(f"no answer after sending the post: {exc!r}") from exc
        raise TransientError(f"no answer from the platform: {exc!r}", code="TIMEOUT") from exc


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (an HTML error page, a list, nothing).

    Error answers are read with this so a proxy's non-JSON 502 never raises while being mapped.
    """
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def raise_for_response(
    response: httpx.Response, *, code: str | None = None, message: str | None = None, retry_after: float | None = None
) -> None:
    """Raise the typed error a non-2xx response stands for; return quietly on 2xx.

    429 → RateLimited (with Retry-After); 401 → AuthExpired; 408 and 5xx → TransientError; any
    other 4xx → Rejected. ``code`` and ``message`` are the platform's own words when the caller
    has parsed them from the body; ``retry_after`` is the wait the platform asked for in its own
    way (a JSON field, a reset timestamp), used on a 429 instead of the Retry-After header.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    body = response.text[:2000]
    word = code or f"HTTP_{status}"
    said = message or body or response.reason_phrase
    if status == 429:
        wait = max(0.0, retry_after) if retry_after is not None else retry_after_seconds(response)
        raise RateLimited(wait, said, code=code or "RATE_LIMITED", http_status=status, raw=body)
    if status == 401:
        raise AuthExpired(said, code=code or "AUTH_EXPIRED", http_status=status, raw=body)
    if status == 408 or status >= 500:
        raise TransientError(said, code=word, http_status=status, raw=body)
    raise Rejected(word, said, http_status=status, raw=body)


def bearer(ctx: ProviderContext, token: str | None = None) -> dict[str, str]:
    """``Authorization: Bearer …`` with ``token``, or the account's ``access_token`` credential."""
    return {"Authorization": f"Bearer {token if token is not None else ctx.credential('access_token') or ''}"}
