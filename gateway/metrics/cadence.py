"""When a published post's figures are read next: often while they move, then less, then never.

Why age-based: a post gathers most of its reactions in its first hours, so reading every post
every few minutes wastes the platforms' rate limits on posts whose figures no longer move.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from providers import MetricsSpec

# (age below which, read every): every 15 min for 2 h, hourly to 48 h, daily to 30 days.
STEPS: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=2), timedelta(minutes=15)),
    (timedelta(hours=48), timedelta(hours=1)),
    (timedelta(days=30), timedelta(days=1)),
)
WEEKLY = timedelta(days=7)  # after 30 days, until the provider's lookback ends
# For a platform that answers for a post as long as it exists: stop reading after this.
DEFAULT_HORIZON = timedelta(days=90)


def interval_at(age: timedelta, spec: MetricsSpec) -> timedelta:
    """How long to wait after a read of a post this old (never under the provider's minimum)."""
    every = next((step for limit, step in STEPS if age < limit), WEEKLY)
    return max(every, timedelta(seconds=spec.min_interval_seconds))


def horizon(published_at: datetime, spec: MetricsSpec) -> datetime:
    """The last moment the platform answers for the post."""
    return published_at + (timedelta(days=spec.lookback_days) if spec.lookback_days else DEFAULT_HORIZON)


def next_refresh(published_at: datetime, now: datetime, spec: MetricsSpec) -> datetime | None:
    """The next read after one at ``now``; the horizon itself as the last read; None once past it."""
    end = horizon(published_at, spec)
    if now >= end:
        return None
    return min(now + interval_at(now - published_at, spec), end)
