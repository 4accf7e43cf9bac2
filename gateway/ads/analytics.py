"""Ads figures beside the posts' in ``analytics``: the window's daily insights added up, exactly.

Why per currency: spend is money, and 10 USD plus 1,000 JPY is no amount at all; every group
(and the totals) is split by currency, and CPM, CPC and CTR come from the group's own sums with
``insights.ratio`` (Decimal, never a float). Reach is left out: a day's reach counts people, and
the same person reached on two days would be counted twice by a sum.

Only campaign-level insights are read (the sync stores them there), so nothing counts twice.
A figure no day of the group reported is None, not 0, and ``reported_days`` says how many did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.ads.insights import Ratios
from gateway.storage import AdAccount, AdInsightRow, AdObject
from providers import Money

ADS_FIGURES = ("impressions", "clicks", "conversions", "spend_minor")
# analytics' group keys, as the ads read them: CAMPAIGN is the ad campaign.
KEY_COLUMNS = {
    "provider": AdAccount.provider,
    "account": AdAccount.account_id,
    "campaign": AdObject.id,
    "day": AdInsightRow.day,
}


@dataclass(frozen=True)
class AdsGroup(Ratios):
    keys: dict[str, str | None]
    currency: str
    impressions: int | None
    clicks: int | None
    conversions: int | None
    spend: Money | None
    reported_days: int


@dataclass(frozen=True)
class AdsRollup:
    totals: list[AdsGroup]  # one per currency
    groups: list[AdsGroup]


def window_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The days D with start <= D 00:00 UTC < end, as [first, after_last)."""
    return _first_day_from(start), _first_day_from(end)


def _first_day_from(moment: datetime) -> date:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = moment.date()
    return day if moment.time() == time(0) else day + timedelta(days=1)


async def ads_rollup(
    session: AsyncSession, organization_id: str, start: datetime, end: datetime, *,
    account_ids: Sequence[str] = (), providers: Sequence[str] = (), group_by: Sequence[str] = (),
) -> AdsRollup:
    """The window's ad delivery, in total per currency and per combination of ``group_by`` keys
    (the caller checked the window and the keys; WEEK is folded from days here)."""
    keys = list(dict.fromkeys(group_by))
    sql_keys = [key for key in keys if key in KEY_COLUMNS] + (["day"] if "week" in keys and "day" not in keys else [])
    columns = [KEY_COLUMNS[key].label(f"k_{key}") for key in sql_keys]
    first, after = window_days(start, end)
    sums = [part for name in ADS_FIGURES for part in (func.sum(getattr(AdInsightRow, name)).label(f"s_{name}"),
                                                      func.count(getattr(AdInsightRow, name)).label(f"c_{name}"))]
    query = (
        select(*columns, AdInsightRow.currency, *sums, func.count().label("days"))
        .join(AdObject, AdObject.id == AdInsightRow.ad_object_id)
        .join(AdAccount, AdAccount.id == AdObject.ad_account_id)
        .where(AdInsightRow.organization_id == organization_id, AdObject.level == "campaign",
               AdInsightRow.day >= first, AdInsightRow.day < after)
        .group_by(*columns, AdInsightRow.currency)
    )
    if account_ids:
        query = query.where(AdAccount.account_id.in_(account_ids))
    if providers:
        query = query.where(AdAccount.provider.in_(providers))
    rows = (await session.execute(query)).all()
    partials = [_Partial.of(row, {key: _key(key, getattr(row, f"k_{key}")) for key in sql_keys}) for row in rows]
    if "week" in keys:
        partials = [p.rekeyed({**{k: v for k, v in p.keys.items() if k != "day" or "day" in keys}, "week": _monday(p.keys["day"])})
                    for p in partials]
    groups = _merged(partials, key=lambda p: (tuple(p.keys.get(k) or "" for k in keys), p.currency))
    totals = _merged([p.rekeyed({}) for p in partials], key=lambda p: p.currency)
    return AdsRollup(totals=[g.group() for g in totals], groups=[g.group() for g in groups] if keys else [])


@dataclass
class _Partial:
    """Sums and counts of a group before WEEK folding: added up, then turned into an AdsGroup."""

    keys: dict[str, str | None]
    currency: str
    sums: dict[str, int]
    counts: dict[str, int]
    days: int

    @classmethod
    def of(cls, row: Any, keys: dict[str, str | None]) -> _Partial:
        return cls(keys, row.currency, {n: int(getattr(row, f"s_{n}") or 0) for n in ADS_FIGURES},
                   {n: int(getattr(row, f"c_{n}")) for n in ADS_FIGURES}, int(row.days))

    def rekeyed(self, keys: dict[str, str | None]) -> _Partial:
        return _Partial(keys, self.currency, dict(self.sums), dict(self.counts), self.days)

    def add(self, other: _Partial) -> None:
        for name in ADS_FIGURES:
            self.sums[name] += other.sums[name]
            self.counts[name] += other.counts[name]
        self.days += other.days

    def group(self) -> AdsGroup:
        value = {name: (self.sums[name] if self.counts[name] else None) for name in ADS_FIGURES}
        spend = None if value["spend_minor"] is None else Money(value["spend_minor"], self.currency)
        return AdsGroup(self.keys, self.currency, value["impressions"], value["clicks"], value["conversions"], spend, self.days)


def _merged(partials: list[_Partial], key: Any) -> list[_Partial]:
    merged: dict[Any, _Partial] = {}
    for partial in partials:
        found = merged.get(key(partial))
        if found is None:
            merged[key(partial)] = partial.rekeyed(partial.keys)
        else:
            found.add(partial)
    return [merged[k] for k in sorted(merged)]


def _key(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name == "day":
        return (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
    return str(value)


def _monday(day: str | None) -> str | None:
    if day is None:
        return None
    moment = date.fromisoformat(day)
    return (moment - timedelta(days=moment.weekday())).isoformat()
