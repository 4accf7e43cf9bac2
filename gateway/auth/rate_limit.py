"""Per-key rate limiting by query cost: a token bucket per API key, in memory.

Each key's bucket holds up to ``capacity`` points (never more: a cost below zero is treated as
zero, so no query can pay points back) and refills at ``restore_rate`` points a
second; a query takes its cost from the bucket or is refused with the time until it would fit.
One process keeps its own buckets; several processes behind a load balancer each allow the full
rate, which is the documented trade-off of the in-memory default.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


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
