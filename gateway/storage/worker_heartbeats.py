"""Schedulers say they are alive, so a `serve` that runs none can tell when nobody publishes.

Why: with ``SOCIALGATE_RUN_SCHEDULER=false`` due posts wait for `socialgate worker` processes. If
none runs, the posts stay ``scheduled`` with a time long past while ``/readyz`` says ready, and
nothing anywhere says why. Every running scheduler records a heartbeat row at most every
``heartbeat_seconds``; a `serve` without a scheduler of its own watches for due targets that have
waited longer than a few poll intervals while no heartbeat is recent, and warns in its log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from gateway.core import Periodic, utcnow
from gateway.storage.database import Database
from gateway.storage.models import Target, WorkerHeartbeat

log = logging.getLogger("socialgate.workers")

HEARTBEAT_SECONDS = 5.0  # at least; a scheduler that polls less often beats once per poll
MISSED_BEATS = 3  # a heartbeat older than this many intervals is not recent
OVERDUE_POLLS = 5  # a due target waiting longer than this many poll intervals is overdue
FORGET_AFTER = timedelta(days=1)  # rows of workers gone this long are deleted
WARN_AGAIN_SECONDS = 300.0  # while nothing changes, the warning is repeated this often, not each check
# The statuses a scheduler claims from (``gateway.engine.scheduler``).
DUE_STATUSES = ("scheduled", "retry_pending", "processing")  # "processing": due at its next check


def heartbeat_seconds(poll_seconds: float) -> float:
    """How often a scheduler polling every ``poll_seconds`` records its heartbeat."""
    return max(HEARTBEAT_SECONDS, poll_seconds)


class Heartbeat:
    """One process's heartbeat writer: ``beat`` is cheap to call every tick and writes when due."""

    def __init__(self, database: Database, *, poll_seconds: float) -> None:
        self.database = database
        self.interval = heartbeat_seconds(poll_seconds)
        self._last = float("-inf")

    async def beat(self, worker_id: str) -> None:
        """Record that ``worker_id`` is alive; a failure is logged and never stops the scheduler."""
        now_monotonic = asyncio.get_running_loop().time()
        if now_monotonic - self._last < self.interval:
            return
        self._last = now_monotonic
        now = utcnow()
        try:
            async with self.database.write() as session:
                updated = await session.execute(
                    update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id).values(beat_at=now)
                )
                if not updated.rowcount:  # worker ids are unique per process: no one else inserts this row
                    session.add(WorkerHeartbeat(worker_id=worker_id, started_at=now, beat_at=now))
                await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))
        except Exception:  # the heartbeat is advisory: publishing goes on without it
            log.warning("recording the heartbeat of %s failed", worker_id, exc_info=True)


@dataclass(frozen=True)
class Stall:
    """Due targets that wait with no live worker: how many, and since when the oldest is due."""

    waiting: int
    oldest_due: datetime
    last_beat: datetime | None


async def find_stall(database: Database, *, poll_seconds: float, now: datetime | None = None) -> Stall | None:
    """The overdue targets, if no scheduler has a recent heartbeat; None while one does, or none wait."""
    now = now or utcnow()
    overdue_before = now - timedelta(seconds=OVERDUE_POLLS * poll_seconds)
    recent_after = now - timedelta(seconds=MISSED_BEATS * heartbeat_seconds(poll_seconds))
    async with database.read() as session:
        last_beat = (await session.execute(select(func.max(WorkerHeartbeat.beat_at)))).scalar()
        if last_beat is not None and last_beat >= recent_after:
            return None
        waiting, oldest = (
            await session.execute(
                select(func.count(), func.min(Target.next_attempt_at))
                .where(Target.status.in_(DUE_STATUSES), Target.next_attempt_at < overdue_before)
            )
        ).one()
    return Stall(waiting, oldest, last_beat) if waiting else None


class WorkerWatch:
    """Warns in this process's log while due targets wait and no worker is alive (`serve` without a scheduler)."""

    def __init__(self, database: Database, *, poll_seconds: float) -> None:
        self.database = database
        self.poll_seconds = poll_seconds
        self.interval = heartbeat_seconds(poll_seconds)
        # a failed look is logged; the next one may succeed
        self._rounds = Periodic(
            "worker watch", self.interval, self.check_once, log, "looking for stalled targets failed", level=logging.WARNING
        )
        self._warned_at = float("-inf")

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def check_once(self, now: datetime | None = None) -> Stall | None:
        """Look once (as if at ``now``); warn when targets are stalled, again only every WARN_AGAIN_SECONDS."""
        stall = await find_stall(self.database, poll_seconds=self.poll_seconds, now=now)
        looked_at = asyncio.get_running_loop().time()
        if stall is None:
            self._warned_at = float("-inf")
        elif looked_at - self._warned_at >= WARN_AGAIN_SECONDS:
            self._warned_at = looked_at
            log.warning(
                "%d due post target(s) are waiting, the oldest since %s, and no worker is running "
                "(last heartbeat: %s). This process runs no scheduler (SOCIALGATE_RUN_SCHEDULER=false): "
                "start `socialgate worker`, or set SOCIALGATE_RUN_SCHEDULER=true.",
                stall.waiting, stall.oldest_due.isoformat(), stall.last_beat.isoformat() if stall.last_beat else "never",
                extra={"waiting_targets": stall.waiting},
            )
        return stall
