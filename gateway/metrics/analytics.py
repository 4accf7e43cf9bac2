"""The organization's figures added up: rollups by provider, account, campaign, day or week; top
posts; and the best times to post, from the organization's own history.

All three read ``target_metrics`` (one row per published target, its latest figures) through
``ix_target_metrics_org_published``, never the snapshot history, so their cost follows the
number of posts in the window and not the number of readings. A post counts in the window it
was *published* in; its figures are its latest. Sums keep NULL apart from 0: a figure is None
when no target in the group reported it, and ``reported_by`` says how many did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import BadInput
from gateway.metrics.reads import check_window, engagement_rate
from gateway.storage import TargetMetrics
from providers import POST_FIGURES

GROUP_KEYS = ("provider", "account", "campaign", "day", "week")
MAX_WINDOW = timedelta(days=366)
MAX_TOP = 100
# Best times: a cell needs this many posts to get a score; a basis needs this many in all.
MIN_CELL_SAMPLES = 3
MIN_BASIS_SAMPLES = 20
BEST_TIMES_HISTORY = timedelta(days=180)
# The documented fallback when even the organization has too little history: weekday mornings
# (9-11) and early evenings (17-19) score 1, weekday working hours 0.6, weekend late mornings
# (10-12) 0.5, everything else 0.1 — a generic prior, marked basis=DEFAULT with no samples.
DEFAULT_PEAKS = {**{(d, h): 1.0 for d in range(5) for h in (9, 10, 11, 17, 18, 19)}}


@dataclass(frozen=True)
class AnalyticsFilter:
    start: datetime
    end: datetime
    account_ids: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    campaign_id: str | None = None


@dataclass
class Group:
    """One row of a rollup: the values of its keys, and its figures."""

    keys: dict[str, str | None]
    posts: int
    targets: int
    figures: dict[str, int | None]
    reported_by: dict[str, int]

    @property
    def engagement_rate(self) -> float | None:
        return engagement_rate(self.figures)


@dataclass
class Rollup:
    totals: Group
    groups: list[Group] = field(default_factory=list)


def _check(filters: AnalyticsFilter) -> None:
    check_window(filters.start, filters.end)
    if filters.end - filters.start > MAX_WINDOW:
        raise BadInput("A rollup covers at most 366 days.", "filter")


def _bucket(session: AsyncSession, unit: str) -> Any:
    """The UTC day (or the Monday of the week) a target was published, as a date on either backend."""
    column = TargetMetrics.published_at
    if session.bind.dialect.name == "postgresql":
        return cast(func.date_trunc(unit, func.timezone("UTC", column)), Date)
    if unit == "day":
        return func.date(column)
    return func.date(column, "weekday 0", "-6 days")


def _key_columns(session: AsyncSession, group_by: Sequence[str]) -> list[tuple[str, Any]]:
    columns = {
        "provider": lambda: TargetMetrics.provider,
        "account": lambda: TargetMetrics.account_id,
        "campaign": lambda: TargetMetrics.campaign_id,
        "day": lambda: _bucket(session, "day"),
        "week": lambda: _bucket(session, "week"),
    }
    unknown = [key for key in group_by if key not in columns]
    if unknown:
        raise BadInput(f"Cannot group by {unknown[0]!r}; one of {', '.join(GROUP_KEYS)}.", "groupBy")
    return [(key, columns[key]().label(f"k_{key}")) for key in dict.fromkeys(group_by)]


def _aggregates() -> list[Any]:
    figures = []
    for name in POST_FIGURES:
        column = getattr(TargetMetrics, name)
        figures += [func.sum(column).label(f"s_{name}"), func.count(column).label(f"c_{name}")]
    return [
        func.count(func.distinct(TargetMetrics.post_id)).label("posts"),
        func.count(TargetMetrics.refreshed_at).label("targets"),
        *figures,
    ]


def _where(query: Any, organization_id: str, filters: AnalyticsFilter) -> Any:
    query = query.where(
        TargetMetrics.organization_id == organization_id,
        TargetMetrics.published_at >= filters.start,
        TargetMetrics.published_at < filters.end,
    )
    if filters.account_ids:
        query = query.where(TargetMetrics.account_id.in_(filters.account_ids))
    if filters.providers:
        query = query.where(TargetMetrics.provider.in_(filters.providers))
    if filters.campaign_id:
        query = query.where(TargetMetrics.campaign_id == filters.campaign_id)
    return query


def _group(row: Any, keys: dict[str, str | None]) -> Group:
    figures = {name: _int(getattr(row, f"s_{name}")) for name in POST_FIGURES}
    reported = {name: int(getattr(row, f"c_{name}")) for name in POST_FIGURES}
    return Group(keys, int(row.posts), int(row.targets), {n: (v if reported[n] else None) for n, v in figures.items()}, reported)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _key_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)


async def rollup(session: AsyncSession, organization_id: str, filters: AnalyticsFilter, group_by: Sequence[str]) -> Rollup:
    """The window's totals and, per combination of ``group_by`` keys, its figures.

    One scan of the window's rows: the groups partition them, so the totals' sums and counts are
    the groups' added up; only the number of distinct posts (a post's targets may fall in several
    groups) is counted again, from ``ix_target_metrics_org_published`` alone.
    """
    _check(filters)
    keys = _key_columns(session, group_by)
    if not keys:
        return Rollup(totals=_group((await session.execute(_where(select(*_aggregates()), organization_id, filters))).one(), {}))
    labels = [column for _, column in keys]
    query = _where(select(*labels, *_aggregates()), organization_id, filters).group_by(*labels).order_by(*labels)
    groups = [_group(row, {name: _key_text(getattr(row, f"k_{name}")) for name, _ in keys}) for row in (await session.execute(query)).all()]
    posts = (await session.execute(_where(select(func.count(func.distinct(TargetMetrics.post_id))), organization_id, filters))).scalar()
    return Rollup(totals=_sum(groups, int(posts or 0)), groups=groups)


def _sum(groups: Sequence[Group], posts: int) -> Group:
    reported = {name: sum(g.reported_by[name] for g in groups) for name in POST_FIGURES}
    figures = {name: (sum(g.figures[name] or 0 for g in groups) if reported[name] else None) for name in POST_FIGURES}
    return Group({}, posts, sum(g.targets for g in groups), figures, reported)


def check_figure(metric: str) -> Any:
    if metric not in POST_FIGURES:
        raise BadInput(f"Unknown metric {metric[:40]!r}; one of {', '.join(POST_FIGURES)}.", "metric")
    return getattr(TargetMetrics, metric)


async def top_posts(
    session: AsyncSession, organization_id: str, metric: str, start: datetime, end: datetime, first: int
) -> list[tuple[str, int, int]]:
    """(post id, the metric summed over its targets, targets reporting it), highest first.

    Posts none of whose targets reported the metric are left out: unknown is not zero.
    """
    column = check_figure(metric)
    if not 1 <= first <= MAX_TOP:
        raise BadInput(f"`first` must be between 1 and {MAX_TOP}.", "first")
    _check(AnalyticsFilter(start, end))
    total = func.sum(column)
    query = (
        _where(select(TargetMetrics.post_id, total.label("value"), func.count(column).label("reporting")), organization_id,
               AnalyticsFilter(start, end))
        .group_by(TargetMetrics.post_id)
        .having(func.count(column) > 0)
        .order_by(total.desc(), TargetMetrics.post_id)
        .limit(first)
    )
    return [(row.post_id, int(row.value), int(row.reporting)) for row in (await session.execute(query)).all()]


@dataclass(frozen=True)
class Cell:
    weekday: int  # 0 = Monday, in the asked timezone
    hour: int
    score: float | None  # 0..1, relative to the best cell; None below the minimum sample
    samples: int
    average: float | None


@dataclass(frozen=True)
class BestTimes:
    basis: str  # ACCOUNT | PROVIDER | ORGANIZATION | DEFAULT
    timezone: str
    metric: str
    samples: int
    cells: list[Cell]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file path
        raise BadInput(f"Unknown timezone {name[:60]!r}: use an IANA name such as Europe/Paris.", "timezone") from None


async def best_times(
    session: AsyncSession, organization_id: str, metric: str, timezone: str, now: datetime, *,
    account_id: str | None = None, provider: str | None = None,
) -> BestTimes:
    """A 7×24 grid of when the organization's posts did best by ``metric``, in ``timezone``.

    A cell's score is its posts' average ``metric`` over the best cell's (1.0 for the best),
    given only with at least ``MIN_CELL_SAMPLES`` posts. The basis narrows to what was asked
    (an account, or a provider) when that has ``MIN_BASIS_SAMPLES`` posts with the metric in the
    last 180 days; otherwise it widens: the account's provider in the organization, then the
    whole organization, then the DEFAULT prior above.
    """
    column = check_figure(metric)
    tz = zone(timezone)
    base = select(TargetMetrics.published_at, column).where(
        TargetMetrics.organization_id == organization_id, column.is_not(None), TargetMetrics.published_at >= now - BEST_TIMES_HISTORY,
    )
    bases: list[tuple[str, Any]] = []
    if account_id:
        bases.append(("ACCOUNT", base.where(TargetMetrics.account_id == account_id)))
        provider = provider or (await session.execute(
            select(TargetMetrics.provider).where(TargetMetrics.account_id == account_id).limit(1))).scalar()
    if provider:
        bases.append(("PROVIDER", base.where(TargetMetrics.provider == provider)))
    bases.append(("ORGANIZATION", base))
    for basis, query in bases:
        rows = (await session.execute(query.limit(100_000))).all()
        if len(rows) >= MIN_BASIS_SAMPLES:
            return BestTimes(basis, timezone, metric, len(rows), _grid(rows, tz))
    return BestTimes("DEFAULT", timezone, metric, 0, _default_grid())


def _grid(rows: Sequence[Any], tz: ZoneInfo) -> list[Cell]:
    values: dict[tuple[int, int], list[int]] = defaultdict(list)
    for published_at, value in rows:
        local = published_at.astimezone(UTC).astimezone(tz)
        values[(local.weekday(), local.hour)].append(int(value))
    averages = {cell: sum(v) / len(v) for cell, v in values.items() if len(v) >= MIN_CELL_SAMPLES}
    best = max(averages.values(), default=0)
    return [
        Cell(d, h, (averages[(d, h)] / best if best else 0.0) if (d, h) in averages else None, len(values.get((d, h), [])),
             averages.get((d, h)))
        for d in range(7) for h in range(24)
    ]


def _default_grid() -> list[Cell]:
    def score(d: int, h: int) -> float:
        if (d, h) in DEFAULT_PEAKS:
            return DEFAULT_PEAKS[(d, h)]
        if d < 5 and 8 <= h <= 20:
            return 0.6
        if d >= 5 and 10 <= h <= 12:
            return 0.5
        return 0.1

    return [Cell(d, h, score(d, h), 0, None) for d in range(7) for h in range(24)]


def export_rows(rollup: Rollup, group_by: Sequence[str]) -> list[dict[str, Any]]:
    """The rollup as flat rows (keys, counts, figures, reported-by counts, engagement rate) for CSV or JSON."""
    rows = []
    for group in rollup.groups or [rollup.totals]:
        row: dict[str, Any] = {key: group.keys.get(key) for key in dict.fromkeys(group_by)}
        row.update(posts=group.posts, targets=group.targets)
        row.update(group.figures)
        row.update({f"{name}_reported_by": count for name, count in group.reported_by.items()})
        row["engagement_rate"] = group.engagement_rate
        rows.append(row)
    return rows


