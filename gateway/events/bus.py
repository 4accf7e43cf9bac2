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
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger("socialgate.events")

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
