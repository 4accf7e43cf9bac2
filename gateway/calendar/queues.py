"""Posting queues (Buffer's model): weekly slots per account, or the organization's default, each
holding at most ``max_per_slot`` targets. ``add_to_queue`` puts each target of a post in its
account's next free slot; changing the slots moves what is queued, keeping its order, and says
how many targets moved.

A queued target is an ordinary scheduled target (queued through ``engine.queue``, so it has a job
and its events, and the approval gate holds it like any other); ``queued_targets`` remembers
which slot it holds, so a change of slots can move it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import require_owned
from gateway.calendar.slots import Slot, instants, parse_slots, zone
from gateway.content import PostValidator, lock_post, lock_targets, targets_of
from gateway.core import UserError, new_id, utcnow
from gateway.engine.queue import enqueue_post
from gateway.events import BusEvent
from gateway.runtime import Runtime
from gateway.storage import Account, PostingQueue, QueuedTarget, Target

ORG_DEFAULT = ""  # account_scope of the organization's default queue
MAX_PER_SLOT = 100
# How far ahead a queue looks for a free slot before it says it is full.
MAX_SLOTS_SEARCHED = 10_000


@dataclass(frozen=True)
class QueueSettings:
    timezone: str
    slots: tuple[Slot, ...]
    max_per_slot: int


@dataclass(frozen=True)
class SlotFill:
    at: datetime
    target_ids: tuple[str, ...]
    free: int


def settings_of(row: PostingQueue) -> QueueSettings:
    return QueueSettings(row.timezone, tuple(Slot(s["dayOfWeek"], s["time"]) for s in row.slots), row.max_per_slot)


async def _account(session: AsyncSession, organization_id: str, account_id: str) -> Account:
    return await require_owned(session, Account, "acct", organization_id, account_id, code="ACCOUNT_NOT_FOUND", noun="account")


async def queue_rows(session: AsyncSession, organization_id: str) -> dict[str, PostingQueue]:
    """The org's queues by account scope (``ORG_DEFAULT`` for its default)."""
    rows = (await session.execute(select(PostingQueue).where(PostingQueue.organization_id == organization_id))).scalars()
    return {row.account_scope: row for row in rows}


def queue_of(queues: dict[str, PostingQueue], account_id: str) -> PostingQueue | None:
    """An account's own queue, else the org's default."""
    return queues.get(account_id) or queues.get(ORG_DEFAULT)


async def taken_slots(session: AsyncSession, account_ids: Sequence[str], after: datetime) -> dict[tuple[str, datetime], list[str]]:
    """The queued targets still waiting, by (account, slot), oldest queued first."""
    rows = (
        await session.execute(
            select(QueuedTarget.account_id, QueuedTarget.slot_at, QueuedTarget.target_id)
            .join(Target, Target.id == QueuedTarget.target_id)
            .where(QueuedTarget.account_id.in_(account_ids), QueuedTarget.slot_at > after, Target.status == "scheduled")
            .order_by(QueuedTarget.slot_at, QueuedTarget.created_at, QueuedTarget.target_id)
        )
    ).all()
    taken: dict[tuple[str, datetime], list[str]] = {}
    for account_id, slot_at, target_id in rows:
        taken.setdefault((account_id, slot_at), []).append(target_id)
    return taken


def _slot_times(queue: QueueSettings, after: datetime) -> Iterator[datetime]:
    return islice(instants(queue.slots, zone(queue.timezone), after), MAX_SLOTS_SEARCHED)


async def set_queue(
    session: AsyncSession, organization_id: str, account_id: str | None, timezone: str, slots: Sequence[tuple[int, str]], max_per_slot: int
) -> tuple[PostingQueue, int]:
    """Create or replace a queue's slots, then move what is queued on it; returns the queue and how many targets moved."""
    zone(timezone)
    parsed = parse_slots(slots)
    if not 1 <= max_per_slot <= MAX_PER_SLOT:
        raise UserError("INVALID_MAX_PER_SLOT", f"maxPerSlot is between 1 and {MAX_PER_SLOT}.", ["maxPerSlot"])
    scope = ORG_DEFAULT
    if account_id is not None:
        scope = (await _account(session, organization_id, account_id)).id
    queues = await queue_rows(session, organization_id)
    row = queues.get(scope)
    if row is None:
        row = PostingQueue(id=new_id("pq"), organization_id=organization_id, account_scope=scope)
        session.add(row)
        queues[scope] = row
    row.timezone, row.max_per_slot = timezone, max_per_slot
    row.slots = [{"dayOfWeek": s.day_of_week, "time": s.time} for s in parsed]
    await session.flush()
    if scope == ORG_DEFAULT:  # every account without a queue of its own follows the default
        accounts = [a for a in (await session.execute(select(Account.id).where(Account.organization_id == organization_id))).scalars()
                    if a not in queues]
    else:
        accounts = [scope]
    return row, await _reshuffle(session, accounts, settings_of(row))


async def _reshuffle(session: AsyncSession, account_ids: Sequence[str], queue: QueueSettings) -> int:
    """Lay each account's waiting queued targets, in their order, into the new slots; count those that moved."""
    now = utcnow()
    taken = await taken_slots(session, account_ids, now)
    if not taken:
        return 0
    await lock_targets(session, Target.id.in_([t for ids in taken.values() for t in ids]))
    moved = 0
    for account_id in account_ids:
        order = [(slot_at, t) for (acct, slot_at), ids in sorted(taken.items()) if acct == account_id for t in ids]
        if not order:
            continue
        placed = _fill(queue, now, len(order))
        if len(placed) < len(order):
            raise UserError("QUEUE_FULL", "The new slots cannot hold what is queued; add slots or raise maxPerSlot.", ["slots"])
        for (old_at, target_id), new_at in zip(order, placed, strict=False):
            if new_at != old_at:
                moved += 1
                await _place(session, target_id, account_id, new_at)
    await session.flush()
    return moved


def _fill(queue: QueueSettings, after: datetime, count: int, taken: dict[datetime, int] | None = None) -> list[datetime]:
    """The next ``count`` free places (a slot repeated once per free seat), given what is ``taken`` already."""
    places: list[datetime] = []
    for at in _slot_times(queue, after):
        free = queue.max_per_slot - (taken or {}).get(at, 0)
        places.extend([at] * max(0, min(free, count - len(places))))
        if len(places) >= count:
            break
    return places


async def _place(session: AsyncSession, target_id: str, account_id: str, at: datetime) -> None:
    target = await session.get(Target, target_id)
    assert target is not None
    target.publish_at = target.next_attempt_at = at
    held = await session.get(QueuedTarget, target_id)
    if held is None:
        session.add(QueuedTarget(target_id=target_id, organization_id=target.organization_id, account_id=account_id, slot_at=at))
    else:
        held.slot_at = at


async def _add(session: AsyncSession, validator: PostValidator, organization_id: str, post_id: str) -> tuple[dict[str, datetime], list[BusEvent]]:
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    if any(t.status != "draft" for t in targets):
        raise UserError("POST_NOT_DRAFT", "Only a draft post can be added to a queue.", ["postId"])
    queues = await queue_rows(session, organization_id)
    now = utcnow()
    taken = await taken_slots(session, [t.account_id for t in targets], now)
    chosen: dict[str, datetime] = {}
    for target in targets:
        row = queue_of(queues, target.account_id)
        if row is None:
            raise UserError("NO_QUEUE", "The account has no queue and the organization no default queue.", ["postId"])
        counts = {at: len(ids) for (acct, at), ids in taken.items() if acct == target.account_id}
        places = _fill(settings_of(row), now, 1, counts)
        if not places:
            raise UserError("QUEUE_FULL", "The account's queue has no free slot ahead.", ["postId"])
        chosen[target.id] = places[0]
    queued = await enqueue_post(session, validator, organization_id, post_id, min(chosen.values()))
    for target in targets:
        await _place(session, target.id, target.account_id, chosen[target.id])
    await session.flush()
    return chosen, queued.events


async def add_to_queue(runtime: Runtime, organization_id: str, post_id: str) -> dict[str, datetime]:
    """Queue each target of a draft post in its account's next free slot; returns each target's slot."""
    validator = PostValidator(runtime.plugins)

    async def transaction() -> tuple[dict[str, datetime], list[BusEvent]]:
        async with runtime.database.write() as session:
            return await _add(session, validator, organization_id, post_id)

    chosen, events = await validator.run(transaction)
    for event in events:
        await runtime.publish(event, subject_id=post_id)
    runtime.wake_scheduler()
    return chosen


async def preview(session: AsyncSession, organization_id: str, account_id: str, first: int) -> tuple[PostingQueue | None, list[SlotFill]]:
    """The account's next ``first`` slots with the targets filling them."""
    await _account(session, organization_id, account_id)
    row = queue_of(await queue_rows(session, organization_id), account_id)
    if row is None:
        return None, []
    now = utcnow()
    taken = await taken_slots(session, [account_id], now)
    queue = settings_of(row)
    fills = []
    for at in islice(_slot_times(queue, now), first):
        ids = tuple(taken.get((account_id, at), ()))
        fills.append(SlotFill(at, ids, max(0, queue.max_per_slot - len(ids))))
    return row, fills

