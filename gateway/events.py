"""Live events: one bus interface, an in-process backend by default.

Job events are persisted first (``JobEvent`` rows, numbered per job) and published on the bus
after their transaction commits; the bus is only the fast path, so a subscriber that missed
something replays it from the rows. Organization events (an account's token expired, a post's
status changed) go on the bus and to the plugins' ``on_event`` observers.

Each subscription has a bounded queue. A subscriber that cannot keep up is closed with the
reason ``SLOW_CONSUMER`` rather than allowed to grow the server's memory; it reconnects and
resumes from the last sequence number it saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import utcnow
from gateway.storage.database import Database
from gateway.storage.models import JobEvent

log = logging.getLogger("socialgate.events")

DEFAULT_QUEUE_SIZE = 1_000
SLOW_CONSUMER = "SLOW_CONSUMER"


@dataclass(frozen=True)
class BusEvent:
    """What travels on the bus. ``job_id``/``seq`` are set for job events."""

    organization_id: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime
    job_id: str | None = None
    seq: int | None = None
    event_id: int | None = None  # the JobEvent row, for events that were stored


class SubscriptionClosed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded queue of events of one organization."""

    bus: MemoryEventBus
    organization_id: str
    queue: asyncio.Queue[BusEvent] = field(default_factory=lambda: asyncio.Queue(DEFAULT_QUEUE_SIZE))
    closed_reason: str | None = None
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: BusEvent) -> None:
        if self.closed_reason is not None:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("closing a subscriber that cannot keep up", extra={"organization_id": self.organization_id})
            self.close(SLOW_CONSUMER)
            return
        self._wakeup.set()

    def close(self, reason: str = "CLOSED") -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self.bus._remove(self)
            self._wakeup.set()

    async def next(self) -> BusEvent:
        """The next event, or SubscriptionClosed once the subscription ends (queued events first).

        Events are only ever taken from the queue synchronously, here: a caller that gives up
        waiting (``wait_for``, a cancelled task) loses nothing, and no helper task is left
        behind to take the next event for nobody.
        """
        while True:
            if not self.queue.empty():
                return self.queue.get_nowait()
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._wakeup.clear()
            await self._wakeup.wait()

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        try:
            while True:
                yield await self.next()
        except SubscriptionClosed:
            return
        finally:
            self.close()


class MemoryEventBus:
    """The in-process backend: fan-out to this process's subscribers.

    A Redis backend implements the same three methods, publishing to a channel per organization.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscriptions: dict[str, set[Subscription]] = {}

    async def publish(self, event: BusEvent) -> None:
        for subscription in list(self._subscriptions.get(event.organization_id, ())):
            subscription.offer(event)

    def subscribe(self, organization_id: str) -> Subscription:
        subscription = Subscription(self, organization_id, queue=asyncio.Queue(self.queue_size))
        self._subscriptions.setdefault(organization_id, set()).add(subscription)
        return subscription

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    def _remove(self, subscription: Subscription) -> None:
        group = self._subscriptions.get(subscription.organization_id)
        if group is not None:
            group.discard(subscription)
            if not group:
                del self._subscriptions[subscription.organization_id]

    async def close(self) -> None:
        for group in list(self._subscriptions.values()):
            for subscription in list(group):
                subscription.close("SERVER_SHUTDOWN")


async def record_job_event(
    session: AsyncSession, organization_id: str, job_id: str, kind: str, payload: dict[str, Any]
) -> BusEvent:
    """Store a job event with the job's next sequence number, in the caller's transaction.

    Returns the event to publish once that transaction has committed. Two writers cannot take
    the same number: (job_id, seq) is unique, and writes to one job are serialized by the
    transaction that changes the job.
    """
    last = (await session.execute(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id))).scalar()
    occurred_at = utcnow()
    row = JobEvent(
        job_id=job_id, organization_id=organization_id, seq=(last or 0) + 1, kind=kind, payload=payload, created_at=occurred_at
    )
    session.add(row)
    await session.flush()
    return BusEvent(organization_id, kind, payload, occurred_at, job_id=job_id, seq=row.seq, event_id=row.id)


async def stored_job_events(session: AsyncSession, job_id: str, after_seq: int = 0) -> list[BusEvent]:
    rows = (
        await session.execute(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq).order_by(JobEvent.seq))
    ).scalars()
    return [_from_row(r) for r in rows]


def _from_row(row: JobEvent) -> BusEvent:
    return BusEvent(row.organization_id, row.kind, dict(row.payload), row.created_at, job_id=row.job_id, seq=row.seq, event_id=row.id)


# -- following events: the bus for speed, the stored rows for completeness -------------------------
#
# The in-process bus only reaches subscribers in the process that published. A `socialgate
# worker` publishes in another process, so the streams below also read the stored rows whenever
# the bus has been quiet for ``poll_interval``: with the memory backend, several processes still
# deliver every stored event, a little later.

POLL_INTERVAL = 1.0


async def _next_or_timeout(subscription: Subscription, timeout: float) -> BusEvent | None:
    try:
        return await asyncio.wait_for(subscription.next(), timeout)
    except TimeoutError:
        return None


async def follow_job(
    database: Database, subscription: Subscription, job_id: str, after_seq: int, poll_interval: float = POLL_INTERVAL
) -> AsyncIterator[BusEvent]:
    """A job's stored events after ``after_seq``, then new ones as they come, in order, each once.

    The caller subscribed before calling, so nothing published between the read of the stored
    events and the first live one is missed. Raises SubscriptionClosed when the bus drops the
    subscriber.
    """
    last = after_seq
    while True:
        async with database.read() as session:
            for event in await stored_job_events(session, job_id, last):
                last = event.seq or last
                yield event
        event = await _next_or_timeout(subscription, poll_interval)
        while event is not None:
            if event.job_id == job_id and (event.seq or 0) == last + 1:
                last += 1
                yield event
            elif event.job_id == job_id and (event.seq or 0) > last + 1:
                break  # a gap: read the missing ones from storage first
            event = subscription.queue.get_nowait() if not subscription.queue.empty() else None


async def follow_organization(
    database: Database, subscription: Subscription, organization_id: str, poll_interval: float = POLL_INTERVAL
) -> AsyncIterator[BusEvent]:
    """New events of an organization: live ones at once, stored ones from other processes on a poll."""
    async with database.read() as session:
        cursor = (await session.execute(select(func.max(JobEvent.id)).where(JobEvent.organization_id == organization_id))).scalar() or 0
    seen: set[int] = set()
    while True:
        event = await _next_or_timeout(subscription, poll_interval)
        if event is not None:
            if event.event_id is not None:
                if event.event_id in seen or event.event_id <= cursor:
                    continue
                seen.add(event.event_id)
            yield event
            continue
        async with database.read() as session:
            rows = (
                await session.execute(
                    select(JobEvent).where(JobEvent.organization_id == organization_id, JobEvent.id > cursor).order_by(JobEvent.id)
                )
            ).scalars()
            stored = [_from_row(row) for row in rows]
        for event in stored:
            cursor = max(cursor, event.event_id or cursor)
            if event.event_id not in seen:
                yield event
        seen = {event_id for event_id in seen if event_id > cursor}
