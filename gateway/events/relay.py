"""Following stored events: the relay between processes, and what a subscriber reads.

The in-process bus only reaches subscribers in the process that published. A `socialgate
worker` publishes in another process, so each process runs ONE relay that reads the stored
events it has not seen and puts them on its bus; the bus drops the ones it already carried.
Subscribers only ever read the bus (and the rows once, to replay history), so the cost of
following is one query a second per table of stored events (job events, organization events)
per process, whatever the number of subscribers; only the events of organizations this process
has subscribers for are loaded. With the Redis bus the relay is a safety net, not the carrier:
it sweeps every few seconds for events its reader never delivered, which the bus adds to the
stream once (``RedisEventBus.carry``), and runs round after round while Redis is out of reach.

The relay reads each new event's key (id, and job and seq for a job event) first and loads only
the events this process's bus has not carried: a process publishing hundreds of events a second
would otherwise read every one of them back. On PostgreSQL an event's id is taken when it is
inserted, not when its transaction commits, so an event can become visible below the cursor; the
relay looks back over the ids it passed in the last RELAY_LOOKBACK seconds for those. SQLite has
one writer at a time, whose ids are handed out in commit order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from gateway.core import Periodic, utcnow
from gateway.events.bus import ORG_EVENT_KEY, BusEvent, MemoryEventBus, Subscription, stream_position
from gateway.events.store import JOB_EVENTS, ORG_EVENTS, job_event_of, org_event_of, stored_job_events
from gateway.observability import count_events_relayed
from gateway.storage import Database, JobEvent, OrganizationEvent

log = logging.getLogger("socialgate.events")

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
        self.key_columns = select(*(table.c[name] for name in ("id", "organization_id", "job_id", "seq") if name in table.c))
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
        _StoredFeed(JOB_EVENTS, JobEvent, lambda row: (row.job_id, row.seq), job_event_of),
        _StoredFeed(ORG_EVENTS, OrganizationEvent, lambda row: (ORG_EVENT_KEY, row.id), org_event_of),
    )


class StoredEventRelay:
    def __init__(
        self, database: Database, bus: MemoryEventBus, interval: float = RELAY_INTERVAL, lookback: float | None = None,
        settle: float = 0.0,
    ) -> None:
        self.database = database
        self.bus = bus
        self.interval = interval
        # Rounds leave events younger than this many seconds to their publisher: with Redis the
        # relay only repairs what the stream missed, and an event whose publisher is about to add
        # it needs no second try. A catch-up during an outage takes every event.
        self.settle = settle
        self.lookback = (0.0 if database.is_sqlite else RELAY_LOOKBACK) if lookback is None else lookback
        self._feeds = _feeds()
        # the relay must outlive a failed read; the next round catches up
        self._rounds = Periodic("stored event relay", interval, self.catch_up, log, "relaying stored events failed")

    async def start(self) -> None:
        async with self.database.read() as session:
            for feed in self._feeds:
                feed.cursor = (await session.execute(select(func.max(feed.table.c.id)))).scalar() or 0
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def relay_once(self) -> int:
        """Put stored events newer than the cursors on the bus; returns how many new ones were read.

        Events this process's bus already carried (its own, published after their commit) are
        counted but not loaded. Returns the largest count of one table, so that a caller reading
        until a batch comes back short drains every table.
        """
        return await self._relay_round(self.settle)

    async def _relay_round(self, settle: float) -> int:
        counts = [await self._relay_feed(feed, settle) for feed in self._feeds]
        return max(counts)

    async def _relay_feed(self, feed: _StoredFeed, settle: float) -> int:
        cursor = feed.cursor
        ids = feed.table.c.id
        settled = [feed.table.c.created_at <= utcnow() - timedelta(seconds=settle)] if settle else []
        async with self.database.read() as session:
            new = (await session.execute(feed.key_columns.where(ids > cursor, *settled).order_by(ids).limit(RELAY_BATCH))).all()
            late = []
            floor = feed.floor(self.lookback)
            if floor < cursor:
                late = (await session.execute(feed.key_columns.where(ids > floor, ids <= cursor, *settled))).all()
            followed = self.bus.followed_organizations()  # no subscriber here, nobody to carry an event to
            unseen = sorted(
                row.id for row in (*late, *new) if row.organization_id in followed and not self.bus.has_carried(feed.key(row))
            )
            events = [
                feed.convert(row)
                for chunk in range(0, len(unseen), RELAY_BATCH)
                for row in (await session.execute(
                    select(feed.model).where(feed.model.id.in_(unseen[chunk:chunk + RELAY_BATCH])).order_by(feed.model.id)
                )).scalars()
            ]
        for event in events:
            await self.bus.carry(event)
        count_events_relayed([event.kind for event in events])
        if new:
            if self.lookback:  # the ids just passed may still commit late: look again for a while
                feed.passed.append((asyncio.get_running_loop().time(), cursor))
            feed.cursor = new[-1].id
        return len(new)

    async def catch_up(self, *, settled_only: bool = True) -> None:
        """Relay every stored event this process has not carried yet (what each round does).

        ``settled_only=False``: the young ones too (the bus's fast path is down).
        """
        settle = self.settle if settled_only else 0.0
        while await self._relay_round(settle) == RELAY_BATCH:
            continue


async def follow_job(database: Database, subscription: Subscription, job_id: str, after_seq: int) -> AsyncIterator[BusEvent]:
    """A job's stored events after ``after_seq``, then new ones as they come, in order, each once.

    The caller subscribed before calling, so nothing published between the read of the stored
    events and the first live one is missed; a gap in the sequence (an event that reached the
    bus before this subscriber, or out of order) is filled from storage. Raises
    SubscriptionClosed when the bus drops the subscriber.
    """
    last = after_seq
    await subscription.following.wait()
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


async def follow_organization(subscription: Subscription, after: str | None = None) -> AsyncIterator[BusEvent]:
    """An organization's events after the stream position ``after`` (none: from now), each once, in order.

    The caller subscribed first; once the bus follows the organization, the events after
    ``after`` are replayed from the bus's stream, and live ones it already replayed are skipped
    by their position. Raises SubscriptionClosed(RESUME_EXPIRED) when the stream no longer holds
    every event after ``after``.
    """
    await subscription.following.wait()
    last = (0, 0)
    if after is not None:
        last = stream_position(after)
        for event in await subscription.bus.replay(subscription.organization_id, after):
            last = stream_position(event.stream_id or "0")
            yield event
    while True:
        event = await subscription.next()
        if event.stream_id is None or stream_position(event.stream_id) > last:
            yield event
