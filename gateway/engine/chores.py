"""The scheduler's chores beside publishing: OAuth tokens refreshed before they expire, and
OAuth handshakes long over forgotten.

Each runs at its own interval in the scheduler's chores task; either failing is logged and tried
again next time, and publishing goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounts import purge_connections, refresh_expiring
from gateway.runtime import Runtime

log = logging.getLogger("socialgate.scheduler")

TOKEN_SWEEP_INTERVAL = 60.0  # seconds between two looks for OAuth tokens about to expire
CONNECTION_PURGE_INTERVAL = 3600.0  # seconds between two purges of OAuth handshakes long over


@dataclass(frozen=True)
class Chore:
    """A duty of the scheduler's chores task that a wing outside the engine brings (recurring
    posts, say): the roof adds it to ``Runtime.chores``, because the engine may not import the
    wings that build on its command door."""

    name: str
    interval: float  # seconds
    run: Callable[[Runtime], Awaitable[Any]]


class Chores:
    """Runs each chore when its interval has passed since it last ran (first call: all of them)."""

    def __init__(self, runtime: Runtime, extra: Sequence[Chore] = ()) -> None:
        self.runtime = runtime
        self.extra = tuple(extra)
        self._last_run: dict[str, float] = {}

    async def run_due(self) -> None:
        if self._due("tokens", TOKEN_SWEEP_INTERVAL):
            try:
                await refresh_expiring(self.runtime)
            except Exception:
                log.exception("token refresh sweep failed")
        if self._due("connections", CONNECTION_PURGE_INTERVAL):
            try:
                async with self.runtime.database.write() as session:
                    purged = await purge_connections(session)
                if purged:
                    log.info("forgot finished OAuth handshakes", extra={"count": purged})
            except Exception:
                log.exception("OAuth handshake purge failed")
        for chore in self.extra:
            if self._due(chore.name, chore.interval):
                try:
                    await chore.run(self.runtime)
                except Exception:
                    log.exception("the %s chore failed", chore.name)

    def _due(self, chore: str, interval: float) -> bool:
        """Whether ``chore`` last ran ``interval`` seconds ago or more (then it counts as run now)."""
        now = asyncio.get_running_loop().time()
        if now - self._last_run.get(chore, float("-inf")) < interval:
            return False
        self._last_run[chore] = now
        return True
