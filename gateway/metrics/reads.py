"""What the API reads: latest figures per target, post and account, and a target's or account's series.

Every read is scoped by organization here, and batched: a page of posts asks for all its posts'
figures in one statement (the GraphQL loaders call these with the page's ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import BadInput
from gateway.storage import AccountMetricSnapshot, Post, TargetMetrics, TargetMetricSnapshot
from providers import ACCOUNT_FIGURES, ENGAGEMENT_FIGURES, POST_FIGURES

INTERVALS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_SERIES_POINTS = 24 * 93  # an hourly series of a quarter, or a daily one of six years


@dataclass(frozen=True)
class Totals:
    """Figures summed over targets: a figure is None when no target reported it.

    ``reported_by`` says how many targets reported each figure, ``targets`` how many were read
    at all: "12 likes from 2 of 3 targets" is not "12 likes".
    """

    figures: dict[str, int | None]
    reported_by: dict[str, int]
    targets: int
    captured_at: datetime | None

    @property
    def engagement_rate(self) -> float | None:
        return engagement_rate(self.figures)


def engagement_rate(figures: dict[str, int | None]) -> float | None:
    """Engagements (likes, comments, shares, reposts, quotes, saves, clicks reported) per view; None without views."""
    views = figures.get("views")
    engaged = [figures.get(name) for name in ENGAGEMENT_FIGURES if figures.get(name) is not None]
    if not views or not engaged:
        return None
    return sum(v for v in engaged if v is not None) / views


def add_up(rows: Iterable[Any]) -> Totals:
    """The totals of latest rows (``TargetMetrics``) that have been read at least once."""
    read = [row for row in rows if row.refreshed_at is not None]
    figures: dict[str, int | None] = {}
    reported: dict[str, int] = {}
    for name in POST_FIGURES:
        values = [getattr(row, name) for row in read if getattr(row, name) is not None]
        figures[name] = sum(values) if values else None
        reported[name] = len(values)
    captured = max((row.refreshed_at for row in read), default=None)
    return Totals(figures, reported, len(read), captured)


async def latest_of_targets(session: AsyncSession, organization_id: str, target_ids: Sequence[str]) -> dict[str, TargetMetrics]:
    query = select(TargetMetrics).where(TargetMetrics.organization_id == organization_id, TargetMetrics.target_id.in_(list(target_ids)))
    return {row.target_id: row for row in (await session.execute(query)).scalars()}


async def latest_of_posts(session: AsyncSession, organization_id: str, post_ids: Sequence[str]) -> dict[str, list[TargetMetrics]]:
    query = select(TargetMetrics).where(TargetMetrics.organization_id == organization_id, TargetMetrics.post_id.in_(list(post_ids)))
    grouped: dict[str, list[TargetMetrics]] = {post_id: [] for post_id in post_ids}
    for row in (await session.execute(query)).scalars():
        grouped[row.post_id].append(row)
    return grouped


async def latest_of_campaigns(session: AsyncSession, organization_id: str, campaign_ids: Sequence[str]) -> dict[str, Totals]:
    """Each campaign's posts' latest figures added up (as ``add_up`` does a post's), in one statement
    for any number of campaigns. The post's campaign now, not when it was published, and its
    deleted posts left out, so the figures are those of the posts ``Campaign.posts`` lists."""
    sums = [part for name in POST_FIGURES for part in (func.sum(getattr(TargetMetrics, name)).label(f"s_{name}"),
                                                      func.count(getattr(TargetMetrics, name)).label(f"c_{name}"))]
    query = (
        select(Post.campaign_id, *sums, func.count().label("targets"), func.max(TargetMetrics.refreshed_at).label("captured"))
        .join(Post, Post.id == TargetMetrics.post_id)
        .where(TargetMetrics.organization_id == organization_id, TargetMetrics.refreshed_at.is_not(None),
               Post.campaign_id.in_(list(campaign_ids)), Post.deleted_at.is_(None))
        .group_by(Post.campaign_id)
    )
    found = {}
    for row in (await session.execute(query)).all():
        reported = {name: int(getattr(row, f"c_{name}")) for name in POST_FIGURES}
        figures = {name: (int(getattr(row, f"s_{name}")) if reported[name] else None) for name in POST_FIGURES}
        captured = row.captured if row.captured is None or row.captured.tzinfo else row.captured.replace(tzinfo=UTC)
        found[row.campaign_id] = Totals(figures, reported, int(row.targets), captured)
    return found


async def latest_of_accounts(session: AsyncSession, organization_id: str, account_ids: Sequence[str]) -> dict[str, AccountMetricSnapshot]:
    newest = (
        select(func.max(AccountMetricSnapshot.id))
        .where(AccountMetricSnapshot.organization_id == organization_id, AccountMetricSnapshot.account_id.in_(list(account_ids)))
        .group_by(AccountMetricSnapshot.account_id)
    )
    rows = (await session.execute(select(AccountMetricSnapshot).where(AccountMetricSnapshot.id.in_(newest)))).scalars()
    return {row.account_id: row for row in rows}


def check_window(start: datetime, end: datetime, interval: str | None = None) -> None:
    """A series' or a rollup's window: two instants with their UTC offsets, ordered, and not more points than we serve."""
    for moment, argument in ((start, "from"), (end, "to")):
        if moment.tzinfo is None:
            raise BadInput(f"`{argument}` needs a UTC offset, e.g. 2026-05-01T00:00:00Z.", argument)
    if end <= start:
        raise BadInput("`to` must be after `from`.", "to")
    if interval is not None and (end - start) / INTERVALS[interval] > MAX_SERIES_POINTS:
        raise BadInput(f"At most {MAX_SERIES_POINTS} points per series: widen the interval or shorten the window.", "interval")


def _bucket(moment: datetime, interval: str) -> datetime:
    moment = moment.astimezone(UTC)
    if interval == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def series(
    session: AsyncSession, model: Any, owner: Any, owner_id: str, organization_id: str, start: datetime, end: datetime, interval: str
) -> list[tuple[datetime, Any]]:
    """(bucket start, the bucket's last reading) for each bucket of [start, end) holding one.

    Counters are cumulative: a bucket's figure is its last reading, never a sum of readings.
    Served from the (owner, captured_at) index; thinned history has one reading a day.
    """
    check_window(start, end, interval)
    query = (
        select(model)
        .where(owner == owner_id, model.organization_id == organization_id, model.captured_at >= start, model.captured_at < end)
        .order_by(model.captured_at, model.id)
    )
    points: dict[datetime, Any] = {}
    for row in (await session.execute(query)).scalars():
        points[_bucket(row.captured_at, interval)] = row
    return sorted(points.items())


async def target_series(
    session: AsyncSession, organization_id: str, target_id: str, start: datetime, end: datetime, interval: str
) -> list[tuple[datetime, TargetMetricSnapshot]]:
    return await series(session, TargetMetricSnapshot, TargetMetricSnapshot.target_id, target_id, organization_id, start, end, interval)


async def account_series(
    session: AsyncSession, organization_id: str, account_id: str, start: datetime, end: datetime, interval: str
) -> list[tuple[datetime, AccountMetricSnapshot]]:
    return await series(session, AccountMetricSnapshot, AccountMetricSnapshot.account_id, account_id, organization_id, start, end, interval)


def account_figures(row: AccountMetricSnapshot) -> dict[str, int | None]:
    return {name: getattr(row, name) for name in ACCOUNT_FIGURES}
