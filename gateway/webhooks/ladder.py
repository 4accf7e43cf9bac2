"""When a failed delivery is tried again, and when an endpoint has failed for too long.

Svix's ladder, which Standard Webhooks cites: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h — eight attempts over about 27.5 hours. A receiver that answers 429 or 503 with
``Retry-After`` is not called again before that; 410 means "gone, stop"; an endpoint whose every
attempt failed for five days is disabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

LADDER: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
FAILING_DISABLES_AFTER = timedelta(days=5)
THROTTLING = (429, 503)
GONE = 410
MAX_RETRY_AFTER = 24 * 3600.0


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    value = header.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def next_delay(ladder: Sequence[float], step: int, status_code: int | None, retry_after: float | None) -> float | None:
    """Seconds before attempt ``step`` (0-based; the one after a failure), or None when the ladder is used up."""
    if step >= len(ladder):
        return None
    delay = float(ladder[step])
    if status_code in THROTTLING and retry_after is not None:
        delay = max(delay, retry_after)
    return delay
