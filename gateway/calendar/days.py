"""The calendar: local days between two dates with the targets that publish (or published) on
them and the queue slots still ahead, free and taken. One query for the targets, one for the
queues and one for what fills their slots, whatever the range's length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.calendar.queues import SlotFill, queue_of, queue_rows, settings_of, taken_slots
from gateway.calendar.slots import instants, zone
from gateway.core import UserError, utcnow
from gateway.storage import Account, Post, Target

MAX_DAYS = 62  # two months: a month view with the days of its first and last weeks
YEARS = (1970, 2999)


@dataclass(frozen=True)
class CalendarFilter:
    account_ids: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CalendarEntry:
    target_id: str
    post_id: str
    account_id: str
    provider: str
    status: str
    at: datetime
    text: str


@dataclass(frozen=True)
class AccountSlot:
    account_id: str
    fill: SlotFill


@dataclass
class CalendarDay:
    day: date
    entries: list[CalendarEntry] = field(default_factory=list)
    slots: list[AccountSlot] = field(default_factory=list)


async def calendar(
    session: AsyncSession, organization_id: str, start: date, end: date, timezone: str, filters: CalendarFilter = CalendarFilter()
) -> list[CalendarDay]:
    """Every local day from ``start`` to ``end`` (inclusive) in ``timezone``."""
    tz = zone(timezone)
    if end < start or (end - start).days >= MAX_DAYS:
        raise UserError("INVALID_RANGE", f"`to` is on or after `from`, at most {MAX_DAYS} days later.", ["to"])
    if not (YEARS[0] <= start.year and end.year <= YEARS[1]):  # beyond them a local midnight may have no UTC instant
        raise UserError("INVALID_RANGE", f"The calendar covers the years {YEARS[0]} to {YEARS[1]}.", ["from"])
    since = datetime.combine(start, time(0), tzinfo=tz)
    until = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    days = {start + timedelta(days=n): CalendarDay(start + timedelta(days=n)) for n in range((end - start).days + 1)}

    when = func.coalesce(Target.published_at, Target.publish_at)
    query = (
        select(Target, Post.text, Post.content, when.label("at"))
        .join(Post, Post.id == Target.post_id)
        .where(Target.organization_id == organization_id, Post.deleted_at.is_(None), when >= since, when < until)
        .order_by(when, Target.id)
    )
    if filters.account_ids is not None:
        query = query.where(Target.account_id.in_(filters.account_ids))
    if filters.providers is not None:
        query = query.where(Target.provider.in_(filters.providers))
    if filters.statuses is not None:
        query = query.where(Target.status.in_(filters.statuses))
    for target, text, content, at in (await session.execute(query)).all():
        shown = (content or {}).get("overrides", {}).get(target.provider, text)
        entry = CalendarEntry(target.id, target.post_id, target.account_id, target.provider, target.status, at, shown)
        days[at.astimezone(tz).date()].entries.append(entry)

    if filters.statuses is None or "scheduled" in filters.statuses:
        for account_slot in await _slots(session, organization_id, filters, max(since, utcnow()), until):
            days[account_slot.fill.at.astimezone(tz).date()].slots.append(account_slot)
    return list(days.values())


async def _slots(session: AsyncSession, organization_id: str, filters: CalendarFilter, after: datetime, until: datetime) -> list[AccountSlot]:
    """The queue slots of the (filtered) accounts in the range, each with what fills it."""
    if after >= until:
        return []
    accounts: Sequence[Account] = (
        await session.execute(select(Account).where(Account.organization_id == organization_id, Account.disconnected_at.is_(None)))
    ).scalars().all()
    accounts = [a for a in accounts if (filters.account_ids is None or a.id in filters.account_ids)
                and (filters.providers is None or a.provider in filters.providers)]
    queues = await queue_rows(session, organization_id)
    taken = await taken_slots(session, [a.id for a in accounts], after)
    found = []
    for account in accounts:
        row = queue_of(queues, account.id)
        if row is None:
            continue
        queue = settings_of(row)
        for at in instants(queue.slots, zone(queue.timezone), after, until):
            ids = tuple(taken.get((account.id, at), ()))
            found.append(AccountSlot(account.id, SlotFill(at, ids, max(0, queue.max_per_slot - len(ids)))))
    return sorted(found, key=lambda s: (s.fill.at, s.account_id))
