"""In-process locks by key (an account id, say), kept only while someone holds or waits for them.

They serialize work inside one process; work that several processes may run at once is guarded
in the database as well (a conditional UPDATE), since these locks cannot see other processes
(``RedisKeyedLocks``, used when Redis is configured, can).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import LockError

log = logging.getLogger("socialgate.locks")


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    def __len__(self) -> int:
        """How many keys are held or waited for (the others take no memory)."""
        return len(self._locks)


class RedisKeyedLocks(KeyedLocks):
    """Locks by key that hold across processes too, through a Redis lock (used when Redis is configured).

    Why: an OAuth token refresh of one account must run once, whichever API or worker process
    sees the expiry first. The database lease (``accounts.tokens``) already guarantees it, but
    the processes that lose it poll the database until the winner is done; here they wait in
    Redis instead, one waiter per process (the in-process lock queues the rest). The Redis lock
    expires after ``timeout`` seconds, so a process killed while holding it blocks no one for long.
    """

    def __init__(self, redis: Redis, *, prefix: str = "sg:lock:", timeout: float = 60.0, poll: float = 0.05) -> None:
        super().__init__()
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout
        self.poll = poll

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with super().hold(key):
            lock = self.redis.lock(self.prefix + key, timeout=self.timeout, sleep=self.poll)
            await lock.acquire()
            try:
                yield
            finally:
                try:
                    await lock.release()
                except LockError:
                    log.warning("a Redis lock expired while held", extra={"lock": self.prefix + key})
