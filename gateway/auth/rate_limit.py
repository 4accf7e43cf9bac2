"""Per-key rate limiting by query cost: a token bucket per API key, in memory.

Each key's bucket holds up to ``capacity`` points (never more: a cost below zero is treated as
zero, so no query can pay points back) and refills at ``restore_rate`` points a
second; a query takes its cost from the bucket or is refused with the time until it would fit.
One process keeps its own buckets; several processes behind a load balancer each allow the full
rate, which is the documented trade-off of the in-memory default. With Redis configured
(``RedisCostRateLimiter``) every process draws from one bucket per key, so N processes allow what
one would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("socialgate.rate_limit")


@dataclass(frozen=True)
class Tier:
    name: str
    capacity: float
    restore_rate: float


STANDARD = Tier(name="standard", capacity=2_000.0, restore_rate=100.0)
# Buckets of idle keys are forgotten past this many, oldest first, so memory stays bounded.
MAX_TRACKED_KEYS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: float
    retry_after: float


class CostRateLimiter:
    def __init__(self, tier: Tier = STANDARD, clock: callable = time.monotonic) -> None:  # type: ignore[valid-type]
        self.tier = tier
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (level, at)
        self._lock = threading.Lock()

    def consume(self, key: str, cost: float) -> Decision:
        cost = max(0.0, cost)
        with self._lock:
            now = self._clock()
            level, at = self._buckets.pop(key, (self.tier.capacity, now))
            level = min(self.tier.capacity, level + (now - at) * self.tier.restore_rate)
            if cost <= level:
                level -= cost
                decision = Decision(True, level, 0.0)
            else:
                decision = Decision(False, level, (cost - level) / self.tier.restore_rate)
            self._buckets[key] = (level, now)
            while len(self._buckets) > MAX_TRACKED_KEYS:
                self._buckets.popitem(last=False)
            return decision

    async def acquire(self, key: str, cost: float) -> Decision:
        """``consume``, as every limiter offers it (the Redis one must await its answer)."""
        return self.consume(key, cost)


# One bucket's refill and draw as one atomic step in Redis. The clock is Redis's own (TIME), so
# processes whose clocks disagree still share one bucket consistently. Levels go back as strings:
# a Lua number in a reply is cut to an integer.
TOKEN_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
level = math.min(capacity, level + math.max(0, now - at) * rate)
local allowed = 0
if cost <= level then
  level = level - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(level)}
"""


class RedisCostRateLimiter(CostRateLimiter):
    """The same buckets, kept in Redis and drawn from atomically by every process.

    A bucket untouched for as long as it takes to refill expires (it would be full anyway). When
    Redis cannot answer, this process falls back to its own in-memory bucket for the key rather
    than refuse every query: the limit is then per process until Redis is back.
    """

    def __init__(self, redis: Redis, tier: Tier = STANDARD, prefix: str = "sg:ratelimit:") -> None:
        super().__init__(tier)
        self.prefix = prefix
        self._script = redis.register_script(TOKEN_BUCKET)

    async def acquire(self, key: str, cost: float) -> Decision:
        cost = max(0.0, cost)
        try:
            allowed, level = await self._script(
                keys=[self.prefix + key], args=[self.tier.capacity, self.tier.restore_rate, cost]
            )
        except RedisError:
            log.warning("Redis did not answer; rate limiting in this process only", exc_info=True)
            return self.consume(key, cost)
        remaining = float(level)
        if allowed:
            return Decision(True, remaining, 0.0)
        return Decision(False, remaining, (cost - remaining) / self.tier.restore_rate)
