"""Live events: one bus interface, an in-process backend by default.

Job events are persisted first (``JobEvent`` rows, numbered per job) and published on the bus
after their transaction commits; the bus is only the fast path, so a subscriber that missed
something replays it from the rows. Organization events that belong to no job (an account
connected, its token expired) are stored too (``OrganizationEvent`` rows): the process that
noticed the change — a worker, the server that took an OAuth callback — is seldom the one a
dashboard is subscribed to, and the relay of every process carries stored rows to its own bus.
Events published by this process also go to the plugins' ``on_event`` observers.

Each subscription has a bounded queue. A subscriber that cannot keep up is closed with the
reason ``SLOW_CONSUMER`` rather than allowed to grow the server's memory; it reconnects and
resumes from the last sequence number it saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.core.clock import utcnow
from gateway.storage.database import Database
from gateway.storage.models import JobEvent, OrganizationEvent

log = logging.getLogger("socialgate.events")

JOB_EVENTS = JobEvent.__table__
ORG_EVENTS = OrganizationEvent.__table__

DEFAULT_QUEUE_SIZE = 1_000
RECENT_EVENT_KEYS = 50_000
SLOW_CONSUMER = "SLOW_CONSUMER"


ORG_EVENT_KEY = "org_events"  # the first half of a stored organization event's key; no job id looks like it


@dataclass(frozen=True)
class BusEvent:
    """What travels on the bus. ``job_id``/``seq`` are set for job events, ``event_id`` for stored org events."""

    organization_id: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime
    job_id: str | None = None
    seq: int | None = None
    event_id: int | None = None
    subject_id: str | None = None

    @property
    def stored_key(self) -> tuple[str, int] | None:
        """What identifies a stored event: a job event's job and sequence number, an org event's row id."""
        if self.job_id is not None and self.seq is not None:
            return (self.job_id, self.seq)
        return (ORG_EVENT_KEY, self.event_id) if self.event_id is not None else None


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


class MemoryEventBus:
    """The in-process backend: fan-out to this process's subscribers.

    A Redis backend implements the same three methods, publishing to a channel per organization.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscriptions: dict[str, set[Subscription]] = {}
        # Stored events can reach the bus twice (published here after their commit, and found
        # again by the relay); each goes out once.
        self._recent: OrderedDict[tuple[str, int], None] = OrderedDict()

    async def publish(self, event: BusEvent) -> None:
        key = event.stored_key
        if key is not None:
            if key in self._recent:
                return
            self._recent[key] = None
            while len(self._recent) > RECENT_EVENT_KEYS:
                self._recent.popitem(last=False)
        for subscription in list(self._subscriptions.get(event.organization_id, ())):
            subscription.offer(event)

    def has_carried(self, key: tuple[str, int]) -> bool:
        """Whether the stored event with this (job, seq) went out already (recently enough to remember)."""
        return key in self._recent

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
    # The next number per job, read once per transaction and counted on from there.
    next_seq: dict[str, int] = session.sync_session.info.setdefault("next_job_event_seq", {})
    if job_id not in next_seq:
        last = (await session.execute(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id))).scalar()
        next_seq[job_id] = (last or 0) + 1
    seq = next_seq[job_id]
    next_seq[job_id] = seq + 1
    occurred_at = utcnow()
    # Staged, and written by one multi-row INSERT when the transaction commits (see below):
    # a publish writes several events per target, and a round trip each is what costs.
    session.sync_session.info.setdefault(STAGED_EVENTS, []).append(
        {"job_id": job_id, "organization_id": organization_id, "seq": seq, "kind": kind, "payload": payload, "created_at": occurred_at}
    )
    return BusEvent(organization_id, kind, payload, occurred_at, job_id=job_id, seq=seq)


STAGED_EVENTS = "staged_job_events"


@sa_event.listens_for(Session, "before_commit")
def _write_staged_events(session: Session) -> None:
    rows = session.info.pop(STAGED_EVENTS, None)
    if rows:
        session.execute(insert(JOB_EVENTS), rows)  # Core: the ORM's bulk path costs more per row


@sa_event.listens_for(Session, "after_rollback")
def _drop_staged_events(session: Session) -> None:
    session.info.pop(STAGED_EVENTS, None)


async def prime_job_event_seqs(session: AsyncSession, job_ids: list[str]) -> None:
    """Read the last sequence number of many jobs in one query, for the events this transaction adds."""
    next_seq: dict[str, int] = session.sync_session.info.setdefault("next_job_event_seq", {})
    wanted = [job_id for job_id in job_ids if job_id not in next_seq]
    if not wanted:
        return
    last = dict((await session.execute(select(JobEvent.job_id, func.max(JobEvent.seq)).where(JobEvent.job_id.in_(wanted)).group_by(JobEvent.job_id))).all())
    for job_id in wanted:
        next_seq[job_id] = (last.get(job_id) or 0) + 1


async def stored_job_events(session: AsyncSession, job_id: str, after_seq: int = 0) -> list[BusEvent]:
    rows = (
        await session.execute(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq).order_by(JobEvent.seq))
    ).scalars()
    return [_from_row(r) for r in rows]


def _from_row(row: JobEvent) -> BusEvent:
    return BusEvent(row.organization_id, row.kind, dict(row.payload), row.created_at, job_id=row.job_id, seq=row.seq)


async def record_org_event(
    session: AsyncSession, organization_id: str, kind: str, payload: dict[str, Any], subject_id: str | None = None
) -> BusEvent:
    """Store an organization event that belongs to no job, in the caller's transaction.

    Returns the event to publish once that transaction has committed; the relay of every other
    process finds the row and carries it to its own subscribers.
    """
    row = OrganizationEvent(organization_id=organization_id, kind=kind, subject_id=subject_id, payload=payload, created_at=utcnow())
    session.add(row)
    await session.flush()
    return _from_org_row(row)


def _from_org_row(row: OrganizationEvent) -> BusEvent:
    return BusEvent(row.organization_id, row.kind, dict(row.payload), row.created_at, event_id=row.id, subject_id=row.subject_id)


# -- following events ------------------------------------------------------------------------------
#
# The in-process bus only reaches subscribers in the process that published. A `socialgate
# worker` publishes in another process, so each process runs ONE relay that reads the stored
# events it has not seen and puts them on its bus; the bus drops the ones it already carried.
# Subscribers only ever read the bus (and the rows once, to replay history), so the cost of
# following is one query a second per table of stored events (job events, organization events)
# per process, whatever the number of subscribers.
#
# The relay reads each new event's key (id, and job and seq for a job event) first and loads only the events this
# process's bus has not carried: a process publishing hundreds of events a second would otherwise
# read every one of them back. On PostgreSQL an event's id is taken when it is inserted, not when
# its transaction commits, so an event can become visible below the cursor; the relay looks back
# over the ids it passed in the last RELAY_LOOKBACK seconds for those. SQLite has one writer at a
# time, whose ids are handed out in commit order.

RELAY_INTERVAL = 1.0
RELAY_BATCH = 1_000
RELAY_LOOKBACK = 10.0  # seconds; a transaction that writes stored events commits well within it


class _StoredFeed:
    """One table of stored events the relay follows: its cursor, and the ids it passed lately."""

    def __init__(self, table: Any, model: Any, key: Callable[[Any], tuple[str, int]], convert: Callable[[Any], BusEvent]) -> None:
        self.table = table
        self.model = model
        self.key = key  # a key row (id and what identifies the event) -> the event's stored_key
        self.convert = convert
        self.key_columns = select(*(table.c[name] for name in ("id", "job_id", "seq") if name in table.c))
        self.cursor = 0
        self.passed: deque[tuple[float, int]] = deque()  # (when, cursor before): each advance in the lookback

    def floor(self, lookback: float) -> int:
        """The lowest id that may still commit late: where the cursor stood ``lookback`` seconds ago."""
        horizon = asyncio.get_running_loop().time() - lookback
        while self.passed and self.passed[0][0] < horizon:
            self.passed.popleft()
        return self.passed[0][1] if self.passed else self.cursor


def _feeds() -> tuple[_StoredFeed, ...]:
    return (
        _StoredFeed(JOB_EVENTS, JobEvent, lambda row: (row.job_id, row.seq), _from_row),
        _StoredFeed(ORG_EVENTS, OrganizationEvent, lambda row: (ORG_EVENT_KEY, row.id), _from_org_row),
    )


class StoredEventRelay:
    def __init__(
        self, database: Database, bus: MemoryEventBus, interval: float = RELAY_INTERVAL, lookback: float | None = None
    ) -> None:
        self.database = database
        self.bus = bus
        self.interval = interval
        self.lookback = (0.0 if database.is_sqlite else RELAY_LOOKBACK) if lookback is None else lookback
        self._feeds = _feeds()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.database.read() as session:
            for feed in self._feeds:
                feed.cursor = (await session.execute(select(func.max(feed.table.c.id)))).scalar() or 0
        self._task = asyncio.create_task(self._run(), name="stored event relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def relay_once(self) -> int:
        """Put stored events newer than the cursors on the bus; returns how many new ones were read.

        Events this process's bus already carried (its own, published after their commit) are
        counted but not loaded. Returns the largest count of one table, so that a caller reading
        until a batch comes back short drains every table.
        """
        counts = [await self._relay_feed(feed) for feed in self._feeds]
        return max(counts)

    async def _relay_feed(self, feed: _StoredFeed) -> int:
        cursor = feed.cursor
        ids = feed.table.c.id
        async with self.database.read() as session:
            new = (await session.execute(feed.key_columns.where(ids > cursor).order_by(ids).limit(RELAY_BATCH))).all()
            late = []
            floor = feed.floor(self.lookback)
            if floor < cursor:
                late = (await session.execute(feed.key_columns.where(ids > floor, ids <= cursor))).all()
            unseen = sorted(row.id for row in (*late, *new) if not self.bus.has_carried(feed.key(row)))
            events = [
                feed.convert(row)
                for chunk in range(0, len(unseen), RELAY_BATCH)
                for row in (await session.execute(
                    select(feed.model).where(feed.model.id.in_(unseen[chunk:chunk + RELAY_BATCH])).order_by(feed.model.id)
                )).scalars()
            ]
        for event in events:
            await self.bus.publish(event)
        if new:
            if self.lookback:  # the ids just passed may still commit late: look again for a while
                feed.passed.append((asyncio.get_running_loop().time(), cursor))
            feed.cursor = new[-1].id
        return len(new)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                while await self.relay_once() == RELAY_BATCH:
                    pass
            except Exception:  # the relay must outlive a failed read; the next one catches up
                log.exception("relaying stored events failed")


async def follow_job(database: Database, subscription: Subscription, job_id: str, after_seq: int) -> AsyncIterator[BusEvent]:
    """A job's stored events after ``after_seq``, then new ones as they come, in order, each once.

    The caller subscribed before calling, so nothing published between the read of the stored
    events and the first live one is missed; a gap in the sequence (an event that reached the
    bus before this subscriber, or out of order) is filled from storage. Raises
    SubscriptionClosed when the bus drops the subscriber.
    """
    last = after_seq
    while True:
        # Read, close the session, then yield: a subscriber may take its time over each event, and
        # a pooled connection held across its yields is one fewer for every request of the process.
        async with database.read() as session:
            stored = await stored_job_events(session, job_id, last)
        for event in stored:
            last = event.seq or last
            yield event
        while True:
            event = await subscription.next()
            if event.job_id != job_id or (event.seq or 0) <= last:
                continue
            if (event.seq or 0) > last + 1:
                break  # a gap: read the missing ones from storage
            last += 1
            yield event


async def follow_organization(subscription: Subscription) -> AsyncIterator[BusEvent]:
    """New events of an organization as the bus carries them (the relay brings other processes')."""
    while True:
        yield await subscription.next()
