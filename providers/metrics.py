"""Metrics in one vocabulary: what a provider declares it reads (``MetricsSpec``) and what it returns.

Why one vocabulary: a dashboard that compares a post on X with the same post on Bluesky needs
``likes`` to mean the same thing on both. Each platform's own names are mapped at the provider's
boundary, and a figure only one platform has goes in ``extra`` under the platform's name.

Why ``None`` is not ``0``: a platform that does not report a figure (Bluesky has no views, X
drops private figures after 30 days, an API omits a counter it hides) must not be summed as a
measured zero. Every figure is ``int | None`` and a provider leaves a figure ``None`` unless the
platform's answer carried it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

# A post's figures. ``views`` is what Meta calls views since its 2025 renames and what X calls
# impressions; ``reposts`` are native re-publications (retweets, reblogs, Bluesky reposts),
# ``quotes`` re-publications with a comment, ``shares`` sends and shares outside the feed.
POST_FIGURES: tuple[str, ...] = (
    "views", "reach", "likes", "comments", "shares", "reposts", "quotes", "saves", "clicks", "video_watch_seconds",
)
# An account's totals.
ACCOUNT_FIGURES: tuple[str, ...] = ("followers", "following", "posts")
# What counts as engagement when a rate is computed (views are the denominator).
ENGAGEMENT_FIGURES: tuple[str, ...] = ("likes", "comments", "shares", "reposts", "quotes", "saves", "clicks")


def _extra(value: Mapping[str, int | None] | None) -> Mapping[str, int | None]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class MetricsSpec:
    """What a provider reads, and how the gateway may ask for it.

    ``post`` and ``account`` name figures of the vocabulary the platform reports (the others stay
    None). ``batch_size`` is how many posts one ``fetch_metrics`` call takes (Bluesky's getPosts
    25, TikTok 20, X and Pinterest 100); the gateway never passes more. ``lookback_days`` is how
    long after publishing the platform still answers for a post (None: as long as it exists);
    ``min_interval_seconds`` is the least time between two reads of one post.
    """

    post: tuple[str, ...] = ()
    account: tuple[str, ...] = ()
    batch_size: int = 1
    lookback_days: int | None = None
    min_interval_seconds: int = 900

    def __post_init__(self) -> None:
        object.__setattr__(self, "post", tuple(self.post))
        object.__setattr__(self, "account", tuple(self.account))

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for every inconsistency; empty when the spec is sound."""
        found = []
        for name in self.post:
            if name not in POST_FIGURES:
                found.append(("post", f"{name!r} is not a post figure; one of {', '.join(POST_FIGURES)} (platform-only figures go in extra)"))
        for name in self.account:
            if name not in ACCOUNT_FIGURES:
                found.append(("account", f"{name!r} is not an account figure; one of {', '.join(ACCOUNT_FIGURES)}"))
        if not self.post and not self.account:
            found.append(("post", "a metrics spec names at least one post or account figure"))
        if self.batch_size < 1:
            found.append(("batch_size", "must be at least 1"))
        if self.lookback_days is not None and self.lookback_days < 1:
            found.append(("lookback_days", "must be at least 1 day, or None for no limit"))
        if self.min_interval_seconds < 60:
            found.append(("min_interval_seconds", "must be at least 60 seconds"))
        return found


@dataclass(frozen=True)
class MetricSnapshot:
    """A post's figures at one moment. None means the platform did not report it — not zero."""

    platform_post_id: str
    captured_at: datetime
    views: int | None = None
    reach: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    reposts: int | None = None
    quotes: int | None = None
    saves: int | None = None
    clicks: int | None = None
    video_watch_seconds: int | None = None
    extra: Mapping[str, int | None] = field(default_factory=dict)
    raw: Any = None

    FIGURES = POST_FIGURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _extra(self.extra))

    def figures(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in POST_FIGURES}


@dataclass(frozen=True)
class AccountMetricSnapshot:
    """An account's totals at one moment; None when the platform did not report the figure."""

    captured_at: datetime
    followers: int | None = None
    following: int | None = None
    posts: int | None = None
    extra: Mapping[str, int | None] = field(default_factory=dict)
    raw: Any = None

    FIGURES = ACCOUNT_FIGURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _extra(self.extra))

    def figures(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in ACCOUNT_FIGURES}


def reported(value: Any) -> int | None:
    """A counter from a platform's JSON as an int, or None when it is absent or not a number.

    Some APIs send counters as strings (YouTube); a missing or null counter stays None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
