"""The scheduler's chores beside publishing: OAuth tokens refreshed before they expire, and
OAuth handshakes long over forgotten.

Each runs at its own interval in the scheduler's chores task; either failing is logged and tried
again next time, and publishing goes on.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.accounts import purge_connections, refresh_expiring
from gateway.runtime import Runtime

log = logging.getLogger("socialgate.scheduler")

TOKEN_SWEEP_INTERVAL = 60.0  # seconds between two looks for OAuth tokens about to expire
CONNECTION_PURGE_INTERVAL = 3600.0  # seconds between two purges of OAuth handshakes long over


class Chores:
    """Runs each chore when its interval has passed since it last ran (first call: all of them)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
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

    def _due(self, chore: str, interval: float) -> bool:
        """Whether ``chore`` last ran ``interval`` seconds ago or more (then it counts as run now)."""
        now = asyncio.get_running_loop().time()
        if now - self._last_run.get(chore, float("-inf")) < interval:
            return False
        self._last_run[chore] = now
        return True
