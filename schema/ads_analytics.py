"""``analytics { ads }``: the window's ad delivery beside the posts' figures.

A separate module so ``schema.metrics`` names the field and ``gateway.ads.analytics`` holds the
rules: spend split by currency, CPM/CPC/CTR exact, null when nothing was reported. The ads need
``ads:read`` besides ``analytics:read``; the CAMPAIGN key groups by ad campaign, and a
``campaignId`` filter (a socialgate campaign, which ads do not belong to) leaves them empty.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from gateway.ads.analytics import AdsGroup, ads_rollup
from schema.ads import MoneyType
from schema.context import Info
from schema.scalars import Int64


@strawberry.type(description="What an ads group shares; only the keys asked for in groupBy are set.")
class AdsAnalyticsKeys:
    provider: str | None = None
    account_id: strawberry.ID | None = strawberry.field(default=None, description="The connected account the ad account was reached through.")
    ad_campaign_id: strawberry.ID | None = strawberry.field(default=None, description="groupBy CAMPAIGN: the ad campaign.")
    day: str | None = strawberry.field(default=None, description="YYYY-MM-DD, the platform's reporting day.")
    week: str | None = strawberry.field(default=None, description="YYYY-MM-DD of the week's Monday.")


@strawberry.type(description="Ad delivery of a group in one currency; null = no day of it reported the figure (not zero).")
class AdsAnalyticsGroup:
    keys: AdsAnalyticsKeys
    currency: str
    impressions: Int64 | None  # type: ignore[valid-type]
    clicks: Int64 | None  # type: ignore[valid-type]
    conversions: Int64 | None  # type: ignore[valid-type]
    spend: MoneyType | None
    reported_days: int = strawberry.field(description="Campaign-days of insights in the group.")
    cpm: Decimal | None = strawberry.field(description="Spend per 1,000 impressions, major units, 6 places half-even.")
    cpc: Decimal | None = strawberry.field(description="Spend per click, major units, 6 places half-even.")
    ctr: Decimal | None = strawberry.field(description="Clicks per impression (0.02 = 2 %), 6 places half-even.")

    @classmethod
    def of(cls, group: AdsGroup) -> AdsAnalyticsGroup:
        keys = AdsAnalyticsKeys(provider=group.keys.get("provider"), account_id=group.keys.get("account"),
                                ad_campaign_id=group.keys.get("campaign"), day=group.keys.get("day"), week=group.keys.get("week"))
        return cls(keys=keys, currency=group.currency, impressions=group.impressions, clicks=group.clicks,
                   conversions=group.conversions, spend=MoneyType.of(group.spend), reported_days=group.reported_days,
                   cpm=group.cpm, cpc=group.cpc, ctr=group.ctr)


@strawberry.type(description="Ad insights of the analytics window (days from `from` to `to`), per currency.")
class AdsAnalytics:
    totals: list[AdsAnalyticsGroup] = strawberry.field(description="One per currency.")
    groups: list[AdsAnalyticsGroup]


async def ads_analytics(
    info: Info, start: datetime, end: datetime, account_ids: tuple[str, ...], providers: tuple[str, ...],
    campaign_id: str | None, group_by: list[str],
) -> AdsAnalytics:
    organization_id = info.context.require("ads:read").organization_id
    if campaign_id is not None:
        return AdsAnalytics(totals=[], groups=[])
    async with info.context.runtime.database.read() as session:
        found = await ads_rollup(session, organization_id, start, end, account_ids=account_ids, providers=providers, group_by=group_by)
    return AdsAnalytics(totals=[AdsAnalyticsGroup.of(g) for g in found.totals], groups=[AdsAnalyticsGroup.of(g) for g in found.groups])
