"""Daily insights as stored, and the ratios people read: spend, CPM, CPC and CTR, exact.

Ratios come from the stored integers with ``Decimal`` arithmetic (never a float) and are shown
to ``RATIO_PLACES`` decimal places, rounded half-even: CPM and CPC in the currency's major unit
(a CPC of 0.4500 USD), CTR as a fraction (0.0200 = 2 %). A ratio whose parts are not reported,
or whose divisor is zero, is None: no figure is better than a made-up one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import utcnow
from gateway.storage import AdInsightRow, AdObject
from providers import AdInsight, Money

RATIO_PLACES = 6
_QUANTUM = Decimal(1).scaleb(-RATIO_PLACES)


def ratio(numerator: Decimal | int | None, denominator: int | None, scale: int = 1) -> Decimal | None:
    """``numerator × scale ÷ denominator`` to RATIO_PLACES places, or None when it has no value."""
    if numerator is None or not denominator:
        return None
    with localcontext() as context:
        context.prec = 60
        return (Decimal(numerator) * scale / Decimal(denominator)).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


class Ratios:
    """CPM, CPC and CTR of anything with ``spend``, ``impressions`` and ``clicks``: a day, or a sum of days."""

    spend: Money | None
    impressions: int | None
    clicks: int | None

    @property
    def cpm(self) -> Decimal | None:
        """Spend per thousand impressions, in major units."""
        return ratio(self.spend.to_major() if self.spend else None, self.impressions, 1000)

    @property
    def cpc(self) -> Decimal | None:
        return ratio(self.spend.to_major() if self.spend else None, self.clicks)

    @property
    def ctr(self) -> Decimal | None:
        return ratio(self.clicks, self.impressions)


@dataclass(frozen=True)
class DailyFigures(Ratios):
    day: date
    impressions: int | None
    clicks: int | None
    spend: Money | None
    reach: int | None
    conversions: int | None


def figures_of(row: AdInsightRow) -> DailyFigures:
    spend = None if row.spend_minor is None else Money(row.spend_minor, row.currency)
    return DailyFigures(row.day, row.impressions, row.clicks, spend, row.reach, row.conversions)


async def store_insights(session: AsyncSession, row: AdObject, insights: Sequence[AdInsight]) -> int:
    """Upsert the days the platform reported (a later report of a day replaces the earlier one)."""
    days = {i.day: i for i in insights}
    if not days:
        return 0
    query = select(AdInsightRow).where(AdInsightRow.ad_object_id == row.id, AdInsightRow.day.in_(list(days)))
    stored = {r.day: r for r in (await session.execute(query)).scalars()}
    for day, insight in days.items():
        target = stored.get(day)
        if target is None:
            target = AdInsightRow(organization_id=row.organization_id, ad_object_id=row.id, day=day, currency=row.currency)
            session.add(target)
        target.impressions, target.clicks, target.reach, target.conversions = insight.impressions, insight.clicks, insight.reach, insight.conversions
        target.spend_minor = None if insight.spend is None else insight.spend.amount_minor
        target.currency = insight.spend.currency if insight.spend else row.currency
        target.fetched_at = utcnow()
    await session.flush()
    return len(days)


async def daily_figures(session: AsyncSession, object_id: str, start: date, end: date) -> list[DailyFigures]:
    query = (select(AdInsightRow).where(AdInsightRow.ad_object_id == object_id, AdInsightRow.day >= start, AdInsightRow.day <= end)
             .order_by(AdInsightRow.day))
    return [figures_of(r) for r in (await session.execute(query)).scalars()]
