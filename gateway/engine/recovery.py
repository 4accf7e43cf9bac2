"""Recovery: targets whose lease ran out, because the worker calling them died or stalled.

A claim whose call never started (no open Attempt) goes back to the queue: nothing reached the
platform. A poll of a processing target that was cut short goes back to ``processing``, due at
once: its handle is stored, so it is polled again and never uploaded twice. A started call is taken over with an attempt of its own and reconciled through its
provider, a few at once, each within a short timeout. This runs in the scheduler's chores task,
never on the claim path, so a hung platform delays no other account's due posts; and nothing is
ever published again blindly: without the platform's word, the target becomes ``unconfirmed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, insert, select, update

from gateway.core import new_id
from gateway.engine.calls import Outcome, ProviderCalls
from gateway.engine.rows import ATTEMPTS, TARGETS, finish_attempts, finished_attempt, next_attempt_numbers, release_claims
from gateway.storage import Database

log = logging.getLogger("socialgate.scheduler")

RecordOutcome = Callable[[str, str, Outcome], Awaitable[bool]]


class Recovery:
    """Takes over expired leases for one worker (``worker_id``), at most ``batch`` a round.

    ``record_outcome`` is the scheduler's group commit: a reconciled call's outcome is written
    exactly as a live call's, checked against the lease this takeover holds.
    """

    def __init__(
        self, database: Database, calls: ProviderCalls, record_outcome: RecordOutcome, *,
        worker_id: str, lease: timedelta, batch: int, reconciles: int,
    ) -> None:
        self.database = database
        self.calls = calls
        self.record_outcome = record_outcome
        self.worker_id = worker_id
        self.lease = lease
        self.batch = batch
        self.reconciles = reconciles

    async def recover_expired(self, now: datetime) -> int:
        """Take over targets whose lease ran out before ``now``; returns how many."""
        expired = (
            select(TARGETS.c.id).where(TARGETS.c.status == "publishing", TARGETS.c.lease_expires_at < now)
            .order_by(TARGETS.c.lease_expires_at).limit(self.batch)
        )
        if not self.database.is_sqlite:
            expired = expired.with_for_update(skip_locked=True)
        tokens: dict[str, str] = {}
        async with self.database.write() as session:
            target_ids = list((await session.execute(expired)).scalars())
            if not target_ids:
                return 0
            open_attempts = (await session.execute(
                select(ATTEMPTS.c.id, ATTEMPTS.c.target_id).where(ATTEMPTS.c.target_id.in_(target_ids), ATTEMPTS.c.finished_at.is_(None))
            )).all()
            called = {a.target_id for a in open_attempts}
            unstarted = [t for t in target_ids if t not in called]
            if unstarted:
                await session.execute(release_claims(now, TARGETS.c.id.in_(unstarted)))
            polls = await self.resume_polls(session, [t for t in target_ids if t in called], open_attempts, now)
            taken = [t for t in target_ids if t in called and t not in polls][: self.reconciles]
            if taken:
                tokens = await self.take_over(session, taken, now, [a for a in open_attempts if a.target_id in set(taken)])
        if unstarted:
            log.info("handed %d claims whose call never started back to the queue", len(unstarted))
        if polls:
            log.info("%d polls of processing targets were cut short: they will be polled again", len(polls))
        await asyncio.gather(*(self.reconcile_taken_over(target_id, attempt_id) for target_id, attempt_id in tokens.items()))
        return len(unstarted) + len(polls) + len(tokens)

    async def resume_polls(self, session: Any, target_ids: list[str], open_attempts: Sequence[Row[Any]], now: datetime) -> set[str]:
        """Of these started calls, the polls of processing targets: each goes back to ``processing``, due now.

        A poll cut short is no lost publish: the handle is stored, so the next poll (on any
        worker) asks the platform where the work stands, and nothing is uploaded again. Its
        attempt closes as ``lease_expired``.
        """
        polling = set((await session.execute(
            select(TARGETS.c.id).where(TARGETS.c.id.in_(target_ids), TARGETS.c.processing_handle.is_not(None))
        )).scalars())
        if polling:
            await finish_attempts(session, [finished_attempt(a.id, now, "lease_expired") for a in open_attempts if a.target_id in polling])
            await session.execute(
                update(TARGETS).where(TARGETS.c.id.in_(polling), TARGETS.c.status == "publishing")
                .values(status="processing", next_attempt_at=now, lease_owner=None, lease_expires_at=None, updated_at=now)
            )
        return polling

    async def take_over(self, session: Any, target_ids: list[str], now: datetime, open_attempts: Sequence[Row[Any]] = ()) -> dict[str, str]:
        """Close the calls whose lease ran out; give each target a reconcile attempt holding a new lease.

        ``reconcilePost`` (``engine.queue.reconcile``) takes ``unconfirmed`` targets the same way,
        with no open attempt to close: each becomes ``publishing`` again under its new lease until
        the platform's answer is recorded, and if this process stops first, recovery finishes it.
        """
        await finish_attempts(session, [finished_attempt(a.id, now, "lease_expired") for a in open_attempts])
        numbers = await next_attempt_numbers(session, target_ids)
        tokens = {target_id: new_id("att") for target_id in target_ids}
        await session.execute(insert(ATTEMPTS), [
            {"id": tokens[t], "target_id": t, "number": numbers[t], "worker_id": self.worker_id, "started_at": now, "kind": "reconcile"}
            for t in target_ids
        ])
        await session.execute(
            update(TARGETS).where(TARGETS.c.id.in_(target_ids))
            .values(status="publishing", lease_owner=case(tokens, value=TARGETS.c.id), lease_expires_at=now + self.lease, updated_at=now)
        )
        return tokens

    async def reconcile_taken_over(self, target_id: str, attempt_id: str) -> None:
        """Ask the platform about a target taken over, and record what it says (or ``unconfirmed``)."""
        try:
            await self.record_outcome(target_id, attempt_id, await self.calls.reconcile(target_id))
        except Exception:  # its lease runs out again and recovery tries once more
            log.exception("reconciling %s failed", target_id)
