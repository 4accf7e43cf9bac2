"""The Redis Streams backend: one stream per organization, shared by every process.

Why streams and not pub/sub: a pub/sub message reaches only who listens at that instant, so a
reader that reconnects, or a client that comes back on another process, loses what passed in
between. A stream keeps its entries under ids (``<ms>-<n>``): a reader resumes exactly after the
last id it saw, and ``orgEvents(after:)`` replays ``XRANGE (after +`` before following live.

Each event goes into ``sg:events:{org}`` (``XADD … MAXLEN ~``) once its transaction committed.
Each process runs ONE reader task: an ``XREAD BLOCK`` over the streams of the organizations it
has subscribers for, and fans what it reads out in-process (``MemoryEventBus.deliver``), so a
process's own events reach its subscribers in stream order too. A process's private wake stream
is read beside them: a first subscriber of another organization adds an entry there, and the
blocked read returns to take the new stream in.

Stored events stay the source of truth. When Redis cannot be reached, a publisher hands its
event to its own subscribers directly, the reader retries, and ``on_outage`` (the relay's round,
``gateway.events.relay``) brings the other processes' events from the database meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.events.bus import (
    DEFAULT_QUEUE_SIZE,
    RESUME_EXPIRED,
    BusEvent,
    MemoryEventBus,
    Subscription,
    SubscriptionClosed,
    stream_position,
)

log = logging.getLogger("socialgate.events")

STREAM_PREFIX = "sg:events:"
SENT_PREFIX = "sg:sent:"
SENT_SECONDS = 600  # how long a stored event's "in the stream" mark lasts: well past any relay's lookback
STREAM_MAXLEN = 10_000  # entries kept per organization (approximately: MAXLEN ~ trims whole nodes)
READ_BLOCK_MS = 5_000
READ_COUNT = 500
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0)  # the reader's backoff while Redis is unreachable
WAKE_KEY_SECONDS = 86_400  # a killed process's wake stream expires by itself


def stream_key(organization_id: str) -> str:
    # The braces make the organization id the Redis Cluster hash tag: the stream and its events'
    # marks live in one slot, as the script below needs.
    return STREAM_PREFIX + "{" + organization_id + "}"


def organization_of(key: str) -> str:
    return key[len(STREAM_PREFIX) + 1:-1]


def sent_key(event: BusEvent) -> str:
    job_or_kind, number = event.stored_key or ("unstored", 0)
    return f"{SENT_PREFIX}{{{event.organization_id}}}:{job_or_kind}:{number}"


# Append a stored event to its stream unless it is there already: the mark (SET NX) and the XADD
# are one atomic step, so the publisher and any relay that finds the row can both try, and the
# stream still holds each stored event once. An event that is not stored has no mark (KEYS[2]
# is empty) and is always appended.
ADD_ONCE = """
if KEYS[2] ~= '' and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return false
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
"""


def encode(event: BusEvent) -> dict[str, str]:
    return {"e": json.dumps({
        "o": event.organization_id, "k": event.kind, "p": event.payload, "t": event.occurred_at.isoformat(),
        "j": event.job_id, "s": event.seq, "i": event.event_id, "u": event.subject_id,
    }, separators=(",", ":"))}


def decode(stream_id: str, fields: dict[str, str]) -> BusEvent:
    data = json.loads(fields["e"])
    return BusEvent(
        data["o"], data["k"], data["p"], datetime.fromisoformat(data["t"]),
        job_id=data["j"], seq=data["s"], event_id=data["i"], subject_id=data["u"], stream_id=stream_id,
    )


class RedisEventBus(MemoryEventBus):
    def __init__(
        self,
        redis: Redis,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        maxlen: int = STREAM_MAXLEN,
        on_outage: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(queue_size)
        self.redis = redis
        self.maxlen = maxlen
        self.on_outage = on_outage  # called on each failed read: catch up from the database meanwhile
        self.connected = asyncio.Event()  # the reader's last read succeeded
        self._wake_key = f"sg:wake:{uuid.uuid4().hex}"
        self._wake_position = "0-0"
        self._positions: dict[str, str] = {}  # org -> the last stream id read (or fixed as the start)
        self._reader: asyncio.Task[None] | None = None
        self._wakes: set[asyncio.Task[None]] = set()  # held until done: the loop keeps only weak references
        self._add_once = redis.register_script(ADD_ONCE)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis event reader")

    async def publish(self, event: BusEvent) -> None:
        """Append the committed event to its organization's stream (once); the readers deliver it."""
        try:
            await self._add_once(
                keys=[stream_key(event.organization_id), sent_key(event) if event.stored_key else ""],
                args=[self.maxlen, encode(event)["e"], SENT_SECONDS],
            )
        except RedisError:
            # The row is committed: the relays of the other processes find it there, and add it
            # to the stream once Redis answers. This process's own subscribers get it now.
            log.warning("could not add an event to Redis; delivering it in this process only", exc_info=True)
            self.deliver(event)

    async def carry(self, event: BusEvent) -> None:
        """A stored event the relay found that this process's reader has not delivered.

        Usually it is in the stream already (its mark says so) and nothing happens. It is not
        when its publisher died between its commit and its XADD, or could not reach Redis: then
        it is added now, once, and every reader delivers it with an id. With Redis out of reach
        it goes to this process's subscribers directly.
        """
        await self.publish(event)

    def _follow(self, subscription: Subscription) -> None:
        if subscription.organization_id in self._positions:
            subscription.following.set()
        else:  # the reader takes the stream in, then sets ``following`` (see _take_in)
            self._wake()

    async def replay(self, organization_id: str, after: str) -> list[BusEvent]:
        """The stream's entries after ``after``; SubscriptionClosed(RESUME_EXPIRED) when some were trimmed."""
        start = stream_position(after)
        key = stream_key(organization_id)
        try:
            info = await self.redis.xinfo_stream(key)
        except RedisError:  # no such stream: nothing was ever published, or it expired entirely
            return []
        if info["entries-added"] > info["length"]:  # trimmed: whatever was dropped came before the first kept
            first = info.get("first-entry")
            oldest_kept = stream_position(first[0] if first else info["last-generated-id"])
            if start < oldest_kept:
                raise SubscriptionClosed(RESUME_EXPIRED)  # cautious when `after` was the last entry dropped
        entries = await self.redis.xrange(key, min="(%d-%d" % start, max="+")
        return [decode(stream_id, fields) for stream_id, fields in entries]

    def _wake(self) -> None:
        task = asyncio.ensure_future(self._send_wake())
        self._wakes.add(task)
        task.add_done_callback(self._woken)

    def _woken(self, task: asyncio.Task[None]) -> None:
        self._wakes.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the reader's own retries take the org in
            log.info("could not wake the Redis event reader: %s", task.exception())

    async def _send_wake(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=False)
            pipe.expire(self._wake_key, WAKE_KEY_SECONDS)
            await pipe.execute()

    async def _take_in(self) -> None:
        """Start following the organizations that got their first subscriber since the last read.

        Each starts at its stream's last entry as it stands now; its subscribers are told only
        then (``following``), so what they replay afterwards overlaps what is read live, and no
        event falls between the two.
        """
        for organization_id, group in list(self._subscriptions.items()):
            if organization_id in self._positions:
                continue
            last = await self.redis.xrevrange(stream_key(organization_id), max="+", min="-", count=1)
            self._positions[organization_id] = last[0][0] if last else "0-0"
            for subscription in group:
                subscription.following.set()
        for organization_id in [o for o in self._positions if o not in self._subscriptions]:
            del self._positions[organization_id]  # no subscriber left: stop reading its stream

    async def _read_once(self) -> None:
        await self._take_in()
        streams = {self._wake_key: self._wake_position, **{stream_key(o): p for o, p in self._positions.items()}}
        answer = await self.redis.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
        self.connected.set()
        for key, entries in answer or ():
            if key == self._wake_key:
                self._wake_position = entries[-1][0]
                continue
            organization_id = organization_of(key)
            for stream_id, fields in entries:
                self.deliver(decode(stream_id, fields))
            if organization_id in self._positions:
                self._positions[organization_id] = entries[-1][0]

    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._read_once()
                failures = 0
            except (RedisError, OSError):
                self.connected.clear()
                for group in self._subscriptions.values():  # the relay feeds them meanwhile
                    for subscription in group:
                        subscription.following.set()
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("the Redis event reader lost its connection; retrying in %.1f s", delay, exc_info=failures == 1)
                if self.on_outage is not None:
                    try:
                        await self.on_outage()
                    except Exception:
                        log.error("catching up from the database failed", exc_info=True)
                await asyncio.sleep(delay)  # backoff before the next connection attempt
            except Exception:  # a bug or a malformed entry must not end this process's event delivery
                log.error("the Redis event reader failed; reading again", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS[-1])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        try:
            await self.redis.delete(self._wake_key)
        except RedisError:
            log.info("the wake stream %s is left to expire", self._wake_key)
        await super().close()
