"""Metrics and analytics: Target/Post/Account ``metrics``, ``analytics``, ``topPosts``, ``bestTimes``
and ``refreshMetrics``.

A figure the platform did not report is null here, never 0: totals say how many targets
reported each figure (``reportedBy``). Everything needs the ``analytics:read`` scope; the
services in ``gateway.metrics`` hold the rules and the SQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.core import clock
from gateway.metrics import analytics as service
from gateway.metrics import reads
from gateway.metrics.refresh import request_refresh
from providers import ACCOUNT_FIGURES, POST_FIGURES
from schema.context import Info
from schema.payloads import UserErrorType, collect_user_errors
from schema.scalars import Count

if TYPE_CHECKING:
    from schema.ads_analytics import AdsAnalytics
    from schema.jobs import JobType
    from schema.posts import PostType

SCOPE = "analytics:read"


MetricInterval = strawberry.enum(Enum("MetricInterval", {"HOUR": "hour", "DAY": "day"}), description="A series' step (UTC).")  # type: ignore[misc]
MetricName = strawberry.enum(  # type: ignore[misc]
    Enum("MetricName", {name.upper(): name for name in POST_FIGURES}), description="A figure of a post."
)
AnalyticsGroupKey = strawberry.enum(  # type: ignore[misc]
    Enum("AnalyticsGroupKey", {key.upper(): key for key in service.GROUP_KEYS}),
    description="DAY and WEEK are the UTC day, and the week from Monday, the posts were published in.",
)
BestTimesBasis = strawberry.enum(  # type: ignore[misc]
    Enum("BestTimesBasis", {b: b for b in ("ACCOUNT", "PROVIDER", "ORGANIZATION", "DEFAULT")}),
    description="Whose history the grid was computed from; DEFAULT: too little history, a generic prior (docs/metrics.md).",
)


@strawberry.type(name="ProviderMetrics", description="What a provider reads (its MetricsSpec); the other figures stay null.")
class ProviderMetricsType:
    post: list[str] = strawberry.field(description="Post figures the platform reports.")
    account: list[str] = strawberry.field(description="Account figures the platform reports.")
    batch_size: int = strawberry.field(description="Posts read per platform call.")
    lookback_days: int | None = strawberry.field(description="How long after publishing the platform answers; null: no limit.")
    min_interval_seconds: int

    @classmethod
    def of(cls, spec: Any) -> ProviderMetricsType | None:
        if spec is None:
            return None
        return cls(post=list(spec.post), account=list(spec.account), batch_size=spec.batch_size, lookback_days=spec.lookback_days,
                   min_interval_seconds=spec.min_interval_seconds)


def _figures(source: Any) -> dict[str, Any]:
    return {name: getattr(source, name) for name in POST_FIGURES}


@strawberry.type(description="A post's figures, one field per figure; null = the platform did not report it (not 0).")
class MetricFigures:
    views: Count | None  # type: ignore[valid-type]
    reach: Count | None  # type: ignore[valid-type]
    likes: Count | None  # type: ignore[valid-type]
    comments: Count | None  # type: ignore[valid-type]
    shares: Count | None  # type: ignore[valid-type]
    reposts: Count | None  # type: ignore[valid-type]
    quotes: Count | None  # type: ignore[valid-type]
    saves: Count | None  # type: ignore[valid-type]
    clicks: Count | None  # type: ignore[valid-type]
    video_watch_seconds: Count | None  # type: ignore[valid-type]


@strawberry.type(description="How many targets reported each figure.")
class FigureCounts:
    views: int
    reach: int
    likes: int
    comments: int
    shares: int
    reposts: int
    quotes: int
    saves: int
    clicks: int
    video_watch_seconds: int


@strawberry.type(description="A target's figures as read at one moment.")
class MetricReading(MetricFigures):
    captured_at: datetime
    extra: JSON | None = strawberry.field(description="Platform-only figures under the platform's names.")


@strawberry.type(description="One step of a series: the last reading inside it (counters are cumulative).")
class MetricPoint(MetricFigures):
    at: datetime = strawberry.field(description="The step's start.")
    captured_at: datetime


@strawberry.type(description="Figures summed over targets; a figure is null when no target reported it.")
class MetricTotals(MetricFigures):
    targets: int = strawberry.field(description="Targets read at least once.")
    reported_by: FigureCounts
    engagement_rate: float | None = strawberry.field(description="Reported engagements (likes … clicks) per view; null without views.")
    captured_at: datetime | None = strawberry.field(description="The latest reading among them.")

    @classmethod
    def of(cls, totals: reads.Totals) -> MetricTotals:
        return cls(**totals.figures, targets=totals.targets, reported_by=FigureCounts(**totals.reported_by),
                   engagement_rate=totals.engagement_rate, captured_at=totals.captured_at)


def _interval(interval: Any) -> str:
    return str(interval.value)


@strawberry.type(name="TargetMetrics", description="A target's figures: the latest reading and a series.")
class TargetMetricsType:
    target_id: strawberry.Private[str]

    @strawberry.field
    async def latest(self, info: Info) -> MetricReading | None:
        row = await info.context.loaders.metrics.target_latest.load(self.target_id)
        if row is None or row.refreshed_at is None:
            return None
        return MetricReading(**_figures(row), captured_at=row.refreshed_at, extra=row.extra)

    @strawberry.field(description="The last reading of each step of [from, to).")
    async def series(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
        interval: MetricInterval = MetricInterval.DAY,  # type: ignore[valid-type, attr-defined]
    ) -> list[MetricPoint]:
        organization_id = info.context.principal.organization_id
        async with info.context.runtime.database.read() as session:
            points = await reads.target_series(session, organization_id, self.target_id, from_, to, _interval(interval))
        return [MetricPoint(**_figures(row), at=at, captured_at=row.captured_at) for at, row in points]


@strawberry.type(name="PostMetrics", description="A post's figures, summed over its targets.")
class PostMetricsType:
    post_id: strawberry.Private[str]

    @strawberry.field
    async def latest(self, info: Info) -> MetricTotals:
        return MetricTotals.of(reads.add_up(await info.context.loaders.metrics.post_latest.load(self.post_id)))


@strawberry.type(name="CampaignMetrics", description="A campaign's figures: its posts' latest, summed over their targets.")
class CampaignMetricsType:
    campaign_id: strawberry.Private[str]

    @strawberry.field(description="Each figure null when no target of the campaign's posts reported it (never 0 for unknown).")
    async def latest(self, info: Info) -> MetricTotals:
        return MetricTotals.of(await info.context.loaders.metrics.campaign_latest.load(self.campaign_id))


@strawberry.type(description="An account's totals at one moment; null = not reported.")
class AccountReading:
    followers: Count | None  # type: ignore[valid-type]
    following: Count | None  # type: ignore[valid-type]
    posts: Count | None  # type: ignore[valid-type]
    captured_at: datetime
    extra: JSON | None


@strawberry.type(description="One step of an account's series: its last reading.")
class AccountPoint(AccountReading):
    at: datetime


def _account_values(row: Any) -> dict[str, Any]:
    return {**{name: getattr(row, name) for name in ACCOUNT_FIGURES}, "captured_at": row.captured_at, "extra": row.extra}


@strawberry.type(name="AccountMetrics", description="An account's followers, following and posts over time.")
class AccountMetricsType:
    account_id: strawberry.Private[str]

    @strawberry.field
    async def latest(self, info: Info) -> AccountReading | None:
        row = await info.context.loaders.metrics.account_latest.load(self.account_id)
        return AccountReading(**_account_values(row)) if row is not None else None

    @strawberry.field(description="The last reading of each step of [from, to).")
    async def series(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
        interval: MetricInterval = MetricInterval.DAY,  # type: ignore[valid-type, attr-defined]
    ) -> list[AccountPoint]:
        organization_id = info.context.principal.organization_id
        async with info.context.runtime.database.read() as session:
            points = await reads.account_series(session, organization_id, self.account_id, from_, to, _interval(interval))
        return [AccountPoint(**_account_values(row), at=at) for at, row in points]


def target_metrics(info: Info, target_id: str) -> TargetMetricsType:
    info.context.require(SCOPE)
    return TargetMetricsType(target_id=target_id)


def post_metrics(info: Info, post_id: str) -> PostMetricsType:
    info.context.require(SCOPE)
    return PostMetricsType(post_id=post_id)


def campaign_metrics(info: Info, campaign_id: str) -> CampaignMetricsType:
    info.context.require(SCOPE)
    return CampaignMetricsType(campaign_id=campaign_id)


def account_metrics(info: Info, account_id: str) -> AccountMetricsType:
    info.context.require(SCOPE)
    return AccountMetricsType(account_id=account_id)


# -- analytics ---------------------------------------------------------------------------------


@strawberry.input
class AnalyticsFilter:
    from_: datetime = strawberry.field(name="from", description="Posts published from this instant…")
    to: datetime = strawberry.field(description="…up to (not including) this one; at most 366 days later.")
    account_ids: list[strawberry.ID] | None = None
    providers: list[str] | None = None
    campaign_id: strawberry.ID | None = None


@strawberry.type
class AnalyticsKeys:
    provider: str | None = None
    account_id: strawberry.ID | None = None
    campaign_id: strawberry.ID | None = None
    day: str | None = strawberry.field(default=None, description="YYYY-MM-DD (UTC).")
    week: str | None = strawberry.field(default=None, description="YYYY-MM-DD of the week's Monday (UTC).")


@strawberry.type
class AnalyticsGroup(MetricFigures):
    keys: AnalyticsKeys
    posts: int
    targets: int
    reported_by: FigureCounts
    engagement_rate: float | None

    @classmethod
    def of(cls, group: service.Group) -> AnalyticsGroup:
        keys = AnalyticsKeys(
            provider=group.keys.get("provider"), account_id=group.keys.get("account"), campaign_id=group.keys.get("campaign"),
            day=group.keys.get("day"), week=group.keys.get("week"),
        )
        return cls(**group.figures, keys=keys, posts=group.posts, targets=group.targets,
                   reported_by=FigureCounts(**group.reported_by), engagement_rate=group.engagement_rate)


@strawberry.type
class Analytics:
    totals: AnalyticsGroup
    groups: list[AnalyticsGroup]
    request: strawberry.Private[tuple[service.AnalyticsFilter, list[str]]]

    @strawberry.field(description="Ad delivery in the same window and filters (spend per currency, CPM, CPC, CTR); needs ads:read too.")
    async def ads(self, info: Info) -> Annotated[AdsAnalytics, strawberry.lazy("schema.ads_analytics")]:
        from schema.ads_analytics import ads_analytics

        filters, keys = self.request
        return await ads_analytics(info, filters.start, filters.end, filters.account_ids, filters.providers, filters.campaign_id, keys)


@strawberry.type
class TopPost:
    value: Count  # type: ignore[valid-type]
    targets_reporting: int
    post_id: strawberry.ID

    @strawberry.field
    async def post(self, info: Info) -> Annotated[PostType, strawberry.lazy("schema.posts")] | None:
        from schema.posts import load_post

        return await load_post(info, str(self.post_id))


@strawberry.type
class BestTimeCell:
    weekday: int = strawberry.field(description="0 = Monday … 6 = Sunday, in the asked timezone.")
    hour: int
    score: float | None = strawberry.field(description="0–1 against the best cell; null below the minimum sample.")
    samples: int
    average: float | None


@strawberry.type
class BestTimes:
    basis: BestTimesBasis  # type: ignore[valid-type]
    timezone: str
    metric: MetricName  # type: ignore[valid-type]
    samples: int
    min_samples_per_cell: int
    cells: list[BestTimeCell] = strawberry.field(description="7 × 24 cells, Monday 00:00 first.")


def _filter(value: AnalyticsFilter) -> service.AnalyticsFilter:
    return service.AnalyticsFilter(
        start=value.from_, end=value.to, account_ids=tuple(str(a) for a in value.account_ids or ()),
        providers=tuple(value.providers or ()), campaign_id=str(value.campaign_id) if value.campaign_id else None,
    )


@strawberry.type
class MetricsQuery:
    @strawberry.field(description="The organization's figures in a window, in total and grouped (needs analytics:read).")
    async def analytics(
        self, info: Info, filter: AnalyticsFilter,
        group_by: list[AnalyticsGroupKey] | None = None,  # type: ignore[valid-type]
    ) -> Analytics | None:
        organization_id = info.context.require(SCOPE).organization_id
        keys = [key.value for key in group_by or []]
        filters = _filter(filter)
        async with info.context.runtime.database.read() as session:
            rollup = await service.rollup(session, organization_id, filters, keys)
        return Analytics(totals=AnalyticsGroup.of(rollup.totals), groups=[AnalyticsGroup.of(g) for g in rollup.groups],
                         request=(filters, keys))

    @strawberry.field(description="Posts published in [from, to) with the highest figure; posts that never reported it are left out.")
    async def top_posts(
        self, info: Info, metric: MetricName,  # type: ignore[valid-type]
        from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime, first: int = 10,
    ) -> list[TopPost] | None:
        organization_id = info.context.require(SCOPE).organization_id
        async with info.context.runtime.database.read() as session:
            found = await service.top_posts(session, organization_id, metric.value, from_, to, first)
        return [TopPost(post_id=strawberry.ID(post_id), value=value, targets_reporting=n) for post_id, value, n in found]

    @strawberry.field(description="When the organization's posts did best, as a 7×24 grid in a timezone (docs/metrics.md).")
    async def best_times(
        self, info: Info, timezone: str, metric: MetricName = MetricName.LIKES,  # type: ignore[valid-type, attr-defined]
        account_id: strawberry.ID | None = None, provider: str | None = None,
    ) -> BestTimes | None:
        organization_id = info.context.require(SCOPE).organization_id
        async with info.context.runtime.database.read() as session:
            found = await service.best_times(
                session, organization_id, metric.value, timezone, clock.utcnow(),
                account_id=str(account_id) if account_id else None, provider=provider,
            )
        return BestTimes(
            basis=BestTimesBasis(found.basis), timezone=found.timezone, metric=MetricName(found.metric), samples=found.samples,
            min_samples_per_cell=service.MIN_CELL_SAMPLES,
            cells=[BestTimeCell(weekday=c.weekday, hour=c.hour, score=c.score, samples=c.samples, average=c.average) for c in found.cells],
        )


@strawberry.input(description="Exactly one of the four.")
class RefreshMetricsInput:
    target_ids: list[strawberry.ID] | None = None
    post_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    campaign_id: strawberry.ID | None = None


@strawberry.type
class RefreshMetricsPayload:
    job: Annotated[JobType, strawberry.lazy("schema.jobs")] | None
    user_errors: list[UserErrorType]


@strawberry.type
class MetricsMutation:
    @strawberry.mutation(description="Read figures now, as a job with progress (follow it with jobEvents). Needs analytics:read.")
    async def refresh_metrics(self, info: Info, input: RefreshMetricsInput) -> RefreshMetricsPayload:
        from schema.jobs import JobType

        organization_id = info.context.require(SCOPE).organization_id
        job, errors = await collect_user_errors(request_refresh(
            info.context.runtime, organization_id, target_ids=[str(t) for t in input.target_ids] if input.target_ids else None,
            post_id=str(input.post_id) if input.post_id else None, account_id=str(input.account_id) if input.account_id else None,
            campaign_id=str(input.campaign_id) if input.campaign_id else None,
        ))
        return RefreshMetricsPayload(job=JobType.from_row(job) if job else None, user_errors=errors)
