"""The organization's daily spend cap, per currency: the daily budgets it runs may not add up past it.

What counts: the daily budgets of every campaign and ad set that can spend (``active`` or
``paused`` — a paused one can be switched on without a budget change), plus the budgets of ads
writes still in flight (started within ``IN_FLIGHT_WINDOW``), in the cap's currency. Checked in
the write transaction that creates the job, with the cap row locked on PostgreSQL, so two
concurrent writes cannot both fit in the same room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import utcnow
from gateway.storage import AdObject, AdSpendCap, Job
from providers import Money

SPENDING = ("active", "paused")
WRITE_JOB = "ads_write"
# A write still running after this long died with its process: its budget no longer counts.
IN_FLIGHT_WINDOW = timedelta(minutes=10)


@dataclass
class CapExceeded(Exception):
    cap: Money
    committed: int
    requested: int


async def set_cap(session: AsyncSession, organization_id: str, cap: Money) -> AdSpendCap:
    row = await session.get(AdSpendCap, (organization_id, cap.currency))
    if row is None:
        row = AdSpendCap(organization_id=organization_id, currency=cap.currency, daily_cap_minor=cap.amount_minor)
        session.add(row)
    row.daily_cap_minor = cap.amount_minor
    await session.flush()
    return row


async def remove_cap(session: AsyncSession, organization_id: str, currency: str) -> bool:
    row = await session.get(AdSpendCap, (organization_id, currency))
    if row is not None:
        await session.delete(row)
    return row is not None


async def list_caps(session: AsyncSession, organization_id: str) -> list[AdSpendCap]:
    query = select(AdSpendCap).where(AdSpendCap.organization_id == organization_id).order_by(AdSpendCap.currency)
    return list((await session.execute(query)).scalars())


async def lock_cap(session: AsyncSession, organization_id: str, currency: str) -> AdSpendCap | None:
    """The cap row, locked until the transaction ends on PostgreSQL.

    Taken by the check and by the transaction that ends a write carrying a budget: the check
    counts in two statements (objects, then writes in flight), and a write ending between them
    would move its budget from the second to the first unseen. (SQLite has one writer anyway.)
    """
    query = select(AdSpendCap).where(AdSpendCap.organization_id == organization_id, AdSpendCap.currency == currency)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def check_cap(session: AsyncSession, organization_id: str, requested: Money, excluding_object_id: str | None) -> None:
    """Raise ``CapExceeded`` when ``requested`` more a day would pass the cap in its currency."""
    cap = await lock_cap(session, organization_id, requested.currency)
    if cap is None:
        return
    running = select(func.coalesce(func.sum(AdObject.daily_budget_minor), 0)).where(
        AdObject.organization_id == organization_id, AdObject.currency == requested.currency,
        AdObject.status.in_(SPENDING), AdObject.level.in_(("campaign", "ad_set")),
    )
    if excluding_object_id is not None:
        running = running.where(AdObject.id != excluding_object_id)
    committed = int((await session.execute(running)).scalar_one())
    in_flight = select(Job.result).where(
        Job.organization_id == organization_id, Job.kind == WRITE_JOB, Job.status.in_(("queued", "running")),
        Job.created_at > utcnow() - IN_FLIGHT_WINDOW,
    )
    for result in (await session.execute(in_flight)).scalars():
        if result and result.get("currency") == requested.currency and result.get("budgetMinor"):
            committed += int(result["budgetMinor"])
    if committed + requested.amount_minor > cap.daily_cap_minor:
        raise CapExceeded(Money(cap.daily_cap_minor, cap.currency), committed, requested.amount_minor)
