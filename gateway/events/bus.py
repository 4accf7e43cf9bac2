"""The in-process event bus: what subscribers listen on.

Events are stored first (``gateway.events.store``) and published here after their transaction
commits; the bus is only the fast path, so a subscriber that missed something replays it from
the rows, and the relay (``gateway.events.relay``) brings other processes' events to this bus.

Each subscription has a bounded queue. A subscriber that cannot keep up is closed with the
reason ``SLOW_CONSUMER`` rather than allowed to grow the server's memory; it reconnects and
resumes from the last sequence number it saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.core import BadInput

log = logging.getLogger("socialgate.events")

DEFAULT_QUEUE_SIZE = 1_000
RECENT_EVENT_KEYS = 50_000
SLOW_CONSUMER = "SLOW_CONSUMER"
RESUME_EXPIRED = "RESUME_EXPIRED"  # the events after a resume point were trimmed from the stream
MEMORY_HISTORY = 1_000  # events of each organization the in-process bus keeps for `orgEvents(after:)`
MEMORY_HISTORY_ORGS = 1_000  # organizations whose history it keeps, the least recently active dropped


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
    # The event's position in its organization's stream (``<ms>-<n>``, as Redis numbers entries),
    # what a client passes back as ``orgEvents(after:)``. None for an event found in the database
    # by the relay, which never passed through the stream.
    stream_id: str | None = None

    @property
    def stored_key(self) -> tuple[str, int] | None:
        """What identifies a stored event: a job event's job and sequence number, an org event's row id."""
        if self.job_id is not None and self.seq is not None:
            return (self.job_id, self.seq)
        return (ORG_EVENT_KEY, self.event_id) if self.event_id is not None else None


def stream_position(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair; BadInput for anything not shaped ``<ms>-<n>``."""
    ms, dash, n = stream_id.partition("-")
    if not (ms.isdigit() and (not dash or n.isdigit())):
        raise BadInput(f"{stream_id!r} is not an event id: pass the `id` of an event this subscription sent.", "after")
    return int(ms), int(n or 0)


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
    # Set once the bus follows the organization: what is published from then on reaches this
    # queue, so a replay read after waiting for it misses nothing.
    following: asyncio.Event = field(default_factory=asyncio.Event)

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

    It numbers each organization's events as Redis numbers a stream's entries and keeps the last
    MEMORY_HISTORY of them, so ``orgEvents(after:)`` resumes the same way on both backends (here
    within one process: the relay's events are numbered by each process on arrival). The Redis
    backend (``gateway.events.redis_bus``) builds on this one for its in-process fan-out.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscriptions: dict[str, set[Subscription]] = {}
        # Stored events can reach the bus twice (published here after their commit, and found
        # again by the relay); each goes out once.
        self._recent: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._history: OrderedDict[str, deque[BusEvent]] = OrderedDict()
        self._trimmed: dict[str, tuple[int, int]] = {}  # org -> the last position dropped from its history
        self._last_position = (0, 0)

    async def publish(self, event: BusEvent) -> None:
        self.deliver(self._number(event))

    async def carry(self, event: BusEvent) -> None:
        """An event another process stored, found in the database by the relay: to this process's subscribers."""
        await self.publish(event)

    def followed_organizations(self) -> set[str]:
        """The organizations this process has subscribers for: the only ones whose events it reads."""
        return set(self._subscriptions)

    def deliver(self, event: BusEvent) -> None:
        """Hand an event to this process's subscribers of its organization, once per stored event."""
        key = event.stored_key
        if key is not None:
            if key in self._recent:
                return
            self._recent[key] = None
            while len(self._recent) > RECENT_EVENT_KEYS:
                self._recent.popitem(last=False)
        for subscription in list(self._subscriptions.get(event.organization_id, ())):
            subscription.offer(event)

    def _number(self, event: BusEvent) -> BusEvent:
        """Give the event the next position (Redis's scheme: milliseconds, then a counter) and keep it."""
        if event.stored_key is not None and event.stored_key in self._recent:
            return event  # delivered already: deliver() drops it
        ms = int(time.time() * 1000)
        last_ms, last_n = self._last_position
        self._last_position = (ms, 0) if ms > last_ms else (last_ms, last_n + 1)
        event = replace(event, stream_id="%d-%d" % self._last_position)
        history = self._history.pop(event.organization_id, None) or deque()
        self._history[event.organization_id] = history
        history.append(event)
        if len(history) > MEMORY_HISTORY:
            self._trimmed[event.organization_id] = stream_position(history.popleft().stream_id or "0")
        while len(self._history) > MEMORY_HISTORY_ORGS:
            dropped, old = self._history.popitem(last=False)
            self._trimmed[dropped] = stream_position(old[-1].stream_id or "0")
        return event

    async def replay(self, organization_id: str, after: str) -> list[BusEvent]:
        """The organization's events after the position ``after``, oldest first.

        Raises SubscriptionClosed(RESUME_EXPIRED) when some of them are no longer kept: the
        caller then reloads what it shows instead of trusting a stream with a hole in it.
        """
        start = stream_position(after)
        if self._trimmed.get(organization_id, (-1, -1)) > start:
            raise SubscriptionClosed(RESUME_EXPIRED)
        return [e for e in self._history.get(organization_id, ()) if stream_position(e.stream_id or "0") > start]

    def has_carried(self, key: tuple[str, int]) -> bool:
        """Whether the stored event with this (job, seq) went out already (recently enough to remember)."""
        return key in self._recent

    def subscribe(self, organization_id: str) -> Subscription:
        subscription = Subscription(self, organization_id, queue=asyncio.Queue(self.queue_size))
        self._subscriptions.setdefault(organization_id, set()).add(subscription)
        self._follow(subscription)
        return subscription

    def _follow(self, subscription: Subscription) -> None:
        subscription.following.set()  # everything published in this process reaches it from now

    async def start(self) -> None:
        """Nothing to connect to: the Redis backend starts its reader here."""

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
