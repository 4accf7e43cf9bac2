"""The publishing engine: claims due targets, calls providers, records outcomes.

At most once, never lost (docs/architecture.md, "One publish, through the house"):

- A target is claimed by a conditional UPDATE (status and due time in the WHERE; ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL) that sets a lease whose token is the id its call's Attempt will
  have. Two schedulers can never both claim it. A claim is only as large as this worker's free
  call slots (in all, per provider, per account), so every claimed call can start at once.
- A call's Attempt row is written, and its lease starts, in the transaction that lets the call
  go out. The scheduler's own rounds claim and start in one transaction (the claim's UPDATE is
  the lease's start), and the slots an outcome batch frees are claimed and started in the very
  transaction that records those outcomes: one engine write between one call's end and the
  next call's start. A claim made apart from its start (``claim_due``, then ``start_calls``)
  has its lease re-checked and extended, keyed on its token, when it starts; one whose lease
  was lost meanwhile is not called. So an open Attempt means "a call went out"; a claim
  without one never reached the platform.
- The outcome, the target's new status, the job's progress and the job events are written in one
  transaction, and only while the attempt still holds the target's lease.
- A worker that stops hands its never-started claims back to the queue. One that dies leaves its
  targets ``publishing`` with a lease that runs out. Recovery, a task of its own off the claim
  path, then hands never-started claims back and asks the provider whether each started call's
  post appeared (``reconcile``); if it cannot tell, the target becomes ``unconfirmed`` for a
  human. Nothing is published a second time blindly, and ``unconfirmed`` always means that a call
  went out and its answer was lost.

Calls run concurrently, bounded per provider and per account, so one slow platform or one busy
account never holds up the others.

This module is the loop, the claims and the group commit; its stages live beside it:
``calls`` (one provider call and what its answer means), ``outcomes`` (the retry policy and the
write of a batch of outcomes), ``recovery`` (expired leases) and ``chores`` (token refresh,
handshake purge). The scheduler alone reads the clock and hands ``now`` to its stages, so a test
that moves the scheduler's clock moves all of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import Counter
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, insert, select, update

from gateway.approvals.gate import cleared_for_publishing
from gateway.campaigns.holds import claimable
from gateway.core import BackgroundTasks, new_id, utcnow
from gateway.engine.call_slots import CallSlots
from gateway.engine.calls import Loaded, Outcome, ProviderCalls, load_many
from gateway.engine.chores import Chore, Chores
from gateway.engine.jobs import mark_running
from gateway.engine.outcomes import OUTCOME_BATCH, PendingOutcome, RetryPolicy, lock_outcome_targets, write_outcomes
from gateway.engine.quotas import Deferral, QuotaGate, write_deferrals
from gateway.engine.recovery import Recovery
from gateway.engine.rows import (
    ACCOUNTS,
    ATTEMPTS,
    POSTS,
    STARTED_ATTEMPT_COUNT,
    TARGET_COLUMNS,
    TARGETS,
    JobRow,
    TargetRow,
    lock_job_rows,
    read_started_targets,
    read_targets,
    release_claims,
    save_jobs,
)
from gateway.events import BusEvent, record_job_event
from gateway.observability import count_publish_attempt, provider_call_span
from gateway.runtime import Runtime

log = logging.getLogger("socialgate.scheduler")

# "processing": a publish the platform still works on, due when its next check is (``engine.processing``).
DUE_STATUSES = ("scheduled", "retry_pending", "processing")
# A claim reads due targets in order and skips those whose account or provider has no free slot;
# it reads again past them at most this many times, then leaves the rest to the next claim.
CLAIM_PASSES = 4
# What the approval gate and the campaign holds let the engine claim: conditions over the
# targets table alone, built once rather than in every claim's statements.
ALLOWED = (cleared_for_publishing(TARGETS, POSTS), claimable(TARGETS))


@dataclass(frozen=True)
class Limits:
    batch: int = 50  # provider calls at once, all providers
    per_provider: int = 16
    per_account: int = 2
    # Seconds an outcome waits at most for the outcomes of calls still in flight, to share their
    # transaction; the wait ends as soon as every call in flight has ended. A few milliseconds on
    # a call that took tens buys fewer commits, which is what bounds a busy engine: 400 posts to
    # a 50 ms platform cost 4.4–5.0 ms of CPU each with 3 ms, 2.5–3.2 with 8 (bench/README.md).
    outcome_linger: float = 0.008
    # Calls whose lease ran out are reconciled this many at once, each given at most
    # reconcile_seconds (and never more than the lease recovery took): a hung platform holds
    # one recovery slot that long, and never a claim.
    reconciles: int = 8
    reconcile_seconds: float = 30.0


RECOVERY_INTERVAL = 1.0  # seconds between two looks for expired leases


@dataclass(frozen=True)
class Claim:
    """A target this worker claimed and holds a call slot for, with what its call reads.

    ``attempt_id`` is the lease's token (the target's ``lease_owner``) and, once the call
    starts, the id of its Attempt row.
    """

    target_id: str
    attempt_id: str
    loaded: Loaded

    @property
    def provider(self) -> str:
        return self.loaded.target.provider

    @property
    def account_id(self) -> str:
        return self.loaded.target.account_id


def _worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(3)}"


class Scheduler:
    def __init__(self, runtime: Runtime, *, worker_id: str | None = None, limits: Limits = Limits()) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.worker_id = worker_id or _worker_id()
        self.limits = limits
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._chores_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = CallSlots(limits.batch, limits.per_provider, limits.per_account)
        self._claims: dict[str, Claim] = {}  # attempt id → a claim whose call has not started
        self._claiming = asyncio.Lock()  # one claim at a time, each sized by the slots the last one left
        self._outcome_queue: list[PendingOutcome] = []
        self._recording = False
        # Set once every call in flight has its outcome queued (or a batch is full): the linger
        # ends then, not at its deadline (see _drain_outcomes).
        self._batch_complete = asyncio.Event()
        # A writer of outcomes cancelled mid-way hands the rest to a task of its own: held here
        # until done, its failure logged, awaited at stop.
        self._takeovers = BackgroundTasks("recording outcomes", log)
        self._backlog = False  # the last claim left due targets behind for want of slots
        settings = self.settings
        self.retry = RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds, settings.publish_max_attempts)
        self.calls = ProviderCalls(runtime, reconcile_seconds=limits.reconcile_seconds)
        self.recovery = Recovery(
            runtime.database, self.calls, self.record_outcome,
            worker_id=self.worker_id, lease=self.lease, batch=limits.batch, reconciles=limits.reconciles,
        )
        self.chores = Chores(runtime, runtime.chores)
        self.quotas = QuotaGate(runtime.plugins, postgres=not runtime.database.is_sqlite)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"scheduler {self.worker_id}")
        self._chores_task = asyncio.create_task(self._run_chores(), name=f"scheduler chores {self.worker_id}")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; give calls in flight ``grace`` seconds to record their outcome.

        Claims whose call has not started go back to the queue as they were: no attempt is
        consumed and nothing is left for recovery to wonder about.
        """
        self._stopping = True
        self._wakeup.set()
        if self._chores_task is not None:  # a reconcile cut short is taken over again when its lease runs out
            self._chores_task.cancel()
            await asyncio.gather(self._chores_task, return_exceptions=True)
        if self._loop_task is not None:  # it ends after its tick, whose claims are then started or handed back
            done, _ = await asyncio.wait({self._loop_task}, timeout=grace)
            if not done:
                self._loop_task.cancel()
                await asyncio.gather(self._loop_task, return_exceptions=True)
        # An outcome transaction that began before the stop may have started calls in the slots
        # it freed: those join the calls awaited, within the same grace.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - loop.time()))
            if pending:
                for task in pending:  # their leases will run out and recovery will reconcile them
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
        if self._claims:
            await self._release(list(self._claims.values()))
        await self._takeovers.drain(grace)

    async def _run(self) -> None:
        while not self._stopping:
            await self.runtime.heartbeat.beat(self.worker_id)  # `serve` without a scheduler watches these
            try:
                await self.tick()
            except Exception:  # the loop must outlive any one bad tick; the error is logged
                log.exception("scheduler tick failed")
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.settings.scheduler_poll_seconds)
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def _run_chores(self) -> None:
        while not self._stopping:
            try:
                await self.sweep()
            except Exception:  # as the loop: logged, and tried again next time
                log.exception("scheduler chores failed")
            await asyncio.sleep(RECOVERY_INTERVAL)

    async def tick(self) -> int:
        """One round: claim what the free call slots can start now and start those calls, in one
        write transaction (``_write_round``). Returns how many calls started."""
        if self._stopping:
            return 0
        events: list[BusEvent] = []
        async with self._claiming:
            room = self._slots.free()
            if room <= 0:
                self._backlog = True
                return 0
            async with self.runtime.database.write() as session:
                _, claimed, loaded = await self._write_round(session, [], events, utcnow(), room)
            claims = self._hold(claimed, loaded)
        await self._publish_events(events)
        self._launch(claims)
        return len(claims)

    def _launch(self, claims: list[Claim]) -> None:
        """Make the calls of started claims, each a task of its own that stop() awaits."""
        for claim in claims:
            task = asyncio.create_task(self._publish_one(claim))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def sweep(self) -> None:
        """The duties beside claiming, run by a task of their own: tokens, old handshakes, expired leases."""
        await self.chores.run_due()
        await self.recover_expired()

    async def drain(self, timeout: float = 30.0, horizon: float = 1.0) -> None:
        """Run ticks until nothing is in flight or due within ``horizon`` seconds (tests, one-shot runs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.sweep()
        while loop.time() < deadline:
            claimed = await self.tick()
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - loop.time()))
                continue
            if claimed:
                continue
            wait = await self._seconds_until_next_due()
            if wait is None or wait > horizon:
                return
            await asyncio.sleep(max(0.0, wait))
        raise TimeoutError("the scheduler did not drain in time")

    async def _seconds_until_next_due(self) -> float | None:
        async with self.runtime.database.read() as session:
            earliest = (
                await session.execute(
                    select(func.min(TARGETS.c.next_attempt_at)).where(
                        TARGETS.c.status.in_(DUE_STATUSES), *ALLOWED
                    )
                )
            ).scalar()
        return None if earliest is None else (earliest - utcnow()).total_seconds()

    # -- claiming ---------------------------------------------------------------------------------

    async def claim_due(self, limit: int | None = None) -> list[Claim]:
        """Claim the due targets this worker can call now (at most ``limit``), without starting them.

        As many as the free call slots, and per provider and per account no more than theirs: a
        claim never waits for a slot while its lease runs, and an account or a provider whose
        slots are full is skipped rather than let its backlog hide other accounts' due posts.
        Each claim takes its slot now and holds it until its call ends. ``start_calls`` starts
        them; the scheduler's own rounds claim and start in one transaction instead (``tick``).
        """
        async with self._claiming:
            room = self._slots.free() if limit is None else min(limit, self._slots.free())
            if room <= 0:
                self._backlog = True
                return []
            now = utcnow()
            events: list[BusEvent] = []
            async with self.runtime.database.write() as session:
                targets, _, deferred = await self._claim_rows(session, now, room, start=False)
                if deferred:
                    await lock_job_rows(session, [d.row.job_id for d in deferred])
                    await write_deferrals(session, deferred, now, events)
                loaded = await load_many(session, targets) if targets else {}
            claims = self._hold(targets, loaded)
            self._claims.update((claim.attempt_id, claim) for claim in claims)
        await self._publish_events(events)
        return claims

    async def _claim_rows(
        self, session: Any, now: datetime, room: int, *, start: bool
    ) -> tuple[list[TargetRow], dict[str, int], list[Deferral]]:
        """Claim up to ``room`` due targets that fit the free slots: a conditional UPDATE setting each lease.

        The lease's token is the id the call's Attempt will have. With ``start``, the call starts
        in this same transaction (the caller writes its Attempt), so the claim counts the
        attempt too and its lease runs from now, the moment the call goes out; then the number
        each Attempt takes comes back with the claim. Due targets whose provider quota is spent
        come back as deferrals, for the caller to write (``quotas.write_deferrals``) once it
        holds their jobs.
        """
        chosen, self._backlog, deferred = await self._choose_due(session, now, room)
        if not chosen:
            return [], {}, deferred
        tokens = {target_id: new_id("att") for target_id in chosen}
        values: dict[str, Any] = {
            "status": "publishing", "lease_owner": case(tokens, value=TARGETS.c.id), "lease_expires_at": now + self.lease, "updated_at": now,
        }
        claim = (
            update(TARGETS)
            .where(TARGETS.c.id.in_(chosen), TARGETS.c.status.in_(DUE_STATUSES), TARGETS.c.next_attempt_at <= now,
                   *ALLOWED)
        )
        if start:
            # A poll of a processing target is no new attempt at publishing: it counts against no retry ladder.
            targets, numbers = await read_started_targets(session, claim.values({**values, "attempt_count": STARTED_ATTEMPT_COUNT}))
            return targets, numbers, deferred
        return await read_targets(session, claim.values(values).returning(*(TARGETS.c[name] for name in TARGET_COLUMNS))), {}, deferred

    def _hold(self, targets: list[TargetRow], loaded: dict[str, Loaded]) -> list[Claim]:
        """The claims of these just-committed targets, each holding its call slot from now."""
        claims = []
        for target in targets:
            assert target.lease_owner is not None  # the claim's token, set by the claim
            claim = Claim(target.id, target.lease_owner, loaded[target.id])
            self._slots.take(claim.provider, claim.account_id)
            claims.append(claim)
        return claims

    async def _choose_due(self, session: Any, now: datetime, room: int) -> tuple[list[str], bool, list[Deferral]]:
        """Up to ``room`` due targets, oldest first, that fit the free slots and their quotas; whether
        any was left behind; and the due targets whose quota is spent.

        Each read skips accounts and providers already full; a target read whose account or
        provider fills up within this claim is skipped, and the next read goes past it. A
        deferred target is skipped by the next read too, and moved out of the due set by the caller.
        """
        slots = self._slots.copy()
        chosen: list[str] = []
        deferred: list[Deferral] = []
        spent: Counter[tuple[str, str]] = Counter()
        left_behind = False
        for _ in range(CLAIM_PASSES):
            wanted = room - len(chosen)
            rows = (await session.execute(self._due_query(now, wanted, slots, [*chosen, *(d.row.id for d in deferred)]))).all()
            fitting = []
            for row in rows:
                if slots.fits(row.provider, row.account_id):
                    slots.take(row.provider, row.account_id)
                    fitting.append(row)
                else:
                    left_behind = True
            within, held_back = await self.quotas.check(session, now, fitting, spent)
            for row in held_back:
                slots.give_back(row.row.provider, row.row.account_id)
            chosen += [row.id for row in within]
            deferred += held_back
            if len(rows) < wanted:  # every due target was read
                return chosen, left_behind, deferred
            if len(chosen) == room:  # the slots are full; more may be due
                return chosen, True, deferred
        return chosen, True, deferred

    def _due_query(self, now: datetime, limit: int, slots: CallSlots, chosen: list[str]) -> Any:
        rate_limited = exists().where(
            ACCOUNTS.c.id == TARGETS.c.account_id, ACCOUNTS.c.rate_limited_until.is_not(None), ACCOUNTS.c.rate_limited_until > now
        )
        query = select(
            TARGETS.c.id, TARGETS.c.provider, TARGETS.c.account_id, TARGETS.c.post_id, TARGETS.c.job_id, TARGETS.c.organization_id,
            TARGETS.c.status,
        ).where(
            TARGETS.c.status.in_(DUE_STATUSES), TARGETS.c.next_attempt_at <= now, ~rate_limited, *ALLOWED,
        )
        if full := slots.full_accounts():
            query = query.where(TARGETS.c.account_id.not_in(full))
        if full := slots.full_providers():
            query = query.where(TARGETS.c.provider.not_in(full))
        if chosen:
            query = query.where(TARGETS.c.id.not_in(chosen))
        query = query.order_by(TARGETS.c.next_attempt_at).limit(limit)
        if not self.runtime.database.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        return query

    async def start_calls(self, claims: list[Claim]) -> list[Claim]:
        """Start the calls of these claims: re-check and extend each lease, write each Attempt.

        One conditional UPDATE keyed on the claims' tokens, in one transaction with the Attempt
        rows and the ``target.publishing`` events: a claim whose lease was lost meanwhile (it ran
        out and recovery handed the target back) is not called, and the Attempt tells recovery
        that a call went out. A stopping scheduler starts nothing and hands the claims back.
        Returns the claims whose call may go out now.
        """
        if self._stopping:
            await self._release(claims)
            return []
        now = utcnow()
        events: list[BusEvent] = []
        held = (TARGETS.c.lease_owner.in_([c.attempt_id for c in claims]), TARGETS.c.status == "publishing", TARGETS.c.lease_expires_at > now)
        try:
            async with self.runtime.database.write() as session:
                await self._lock_targets(session, *held)
                targets, numbers = await read_started_targets(
                    session,
                    update(TARGETS)
                    .where(*held)
                    .values(
                        lease_expires_at=now + self.lease, updated_at=now,
                        attempt_count=STARTED_ATTEMPT_COUNT,
                    ),
                )
                if targets:
                    jobs = await lock_job_rows(session, [t.job_id for t in targets])
                    await self._write_attempts(session, targets, numbers, jobs, now, events)
                    await save_jobs(session, jobs.values(), now)
        except Exception:  # nothing was called: recovery hands the claims back once their leases run out
            log.exception("starting %d calls failed", len(claims))
            targets = []
        finally:
            for claim in claims:
                self._claims.pop(claim.attempt_id, None)
        await self._publish_events(events)
        started_tokens = {t.lease_owner for t in targets}
        started = []
        for claim in claims:
            if claim.attempt_id in started_tokens:
                started.append(claim)
            else:
                log.warning("lease on %s lost before its call started: not calling", claim.target_id)
                self._give_back(claim)
        return started

    async def _write_attempts(
        self, session: Any, targets: list[TargetRow], numbers: dict[str, int], jobs: dict[str, JobRow], now: datetime, events: list[BusEvent]
    ) -> None:
        """The Attempt rows of calls starting now (ids: the lease tokens; ``numbers`` from their
        start, ``read_started_targets``), their events, their jobs running.

        ``jobs`` holds the targets' jobs, locked by the caller (``rows.lock_job_rows``); the caller saves them.
        """
        attempts = []
        for target in targets:
            number = numbers[target.id]
            kind = "poll" if target.processing_handle is not None else "publish"
            attempts.append(
                {"id": target.lease_owner, "target_id": target.id, "number": number, "worker_id": self.worker_id, "started_at": now, "kind": kind}
            )
            if target.job_id and target.processing_handle is None:  # a check on a processing target is no new publish to announce
                events.append(
                    await record_job_event(
                        session, target.organization_id, target.job_id, "target.publishing",
                        {"targetId": target.id, "postId": target.post_id, "provider": target.provider,
                         "status": "publishing", "attempt": number},
                    )
                )
        await session.execute(insert(ATTEMPTS), attempts)
        for job_id in dict.fromkeys(t.job_id for t in targets if t.job_id):
            await mark_running(session, jobs[job_id], events)

    async def _release(self, claims: list[Claim]) -> None:
        """Hand claims whose call never started back to the queue (``engine_rows.release_claims``).

        Only those still holding their lease with no Attempt written: a claim whose start did
        commit went out, and stays for its outcome or for recovery.
        """
        tokens = TARGETS.c.lease_owner.in_([c.attempt_id for c in claims])
        try:
            async with self.runtime.database.write() as session:
                await self._lock_targets(session, tokens)
                await session.execute(release_claims(utcnow(), tokens, ~exists().where(ATTEMPTS.c.id == TARGETS.c.lease_owner)))
        except Exception:  # recovery hands them back once their leases run out
            log.exception("handing back %d claims failed", len(claims))
        finally:
            for claim in claims:
                if self._claims.pop(claim.attempt_id, None) is not None:
                    self._give_back(claim)

    async def _lock_targets(self, session: Any, *where: Any) -> None:
        """On PostgreSQL, lock the targets ``where`` selects in id order, the engine's lock order, before writing them."""
        if not self.runtime.database.is_sqlite:
            await session.execute(select(TARGETS.c.id).where(*where).order_by(TARGETS.c.id).with_for_update())

    def _give_back(self, claim: Claim, *, wake: bool = True) -> None:
        """Free the claim's call slot; if the last claim left due targets behind, claim again now (or when told to)."""
        self._slots.give_back(claim.provider, claim.account_id)
        if wake and self._backlog:
            self.wake()

    # -- one call ---------------------------------------------------------------------------------

    async def _publish_one(self, claim: Claim) -> None:
        try:
            with provider_call_span(claim.loaded.target.job_id, claim.provider, claim.target_id) as span:
                outcome = await self.calls.publish(claim.target_id, claim.loaded)
                if span is not None:
                    span.set_attribute("socialgate.outcome", outcome.kind)
        except asyncio.CancelledError:
            raise  # the lease will run out and recovery will reconcile
        except Exception as exc:  # a bug below us: the call may have gone out, so never retry blindly
            log.exception("publishing %s failed unexpectedly", claim.target_id)
            outcome = Outcome("unconfirmed", code="ENGINE_ERROR", message=f"Unexpected {type(exc).__name__} while publishing.")
        finally:
            self._give_back(claim, wake=False)
        count_publish_attempt(claim.provider, outcome.kind)
        try:
            # The transaction that writes the outcome also refills the slots it freed (``_record_batch``).
            await self.record_outcome(claim.target_id, claim.attempt_id, outcome)
        except Exception:  # the target keeps its lease; when it runs out, recovery reconciles it
            log.exception("recording the outcome of %s failed", claim.target_id)

    # -- outcomes ---------------------------------------------------------------------------------

    async def record_outcome(self, target_id: str, attempt_id: str, outcome: Outcome) -> bool:
        """Write the outcome, if the attempt still holds the target's lease (its token is the attempt's id). False when it lost it.

        Outcomes are group-committed: while one transaction writes, the outcomes that arrive wait
        and the next transaction writes them all. Each call returns once its own outcome is
        committed (or its transaction failed, which it then raises).
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcome_queue.append(PendingOutcome(target_id, attempt_id, outcome, done))
        if len(self._outcome_queue) >= min(OUTCOME_BATCH, len(self._inflight)):
            self._batch_complete.set()
        if not self._recording:
            self._recording = True
            try:
                await self._drain_outcomes()
            finally:
                if self._outcome_queue:  # this writer was cancelled mid-way: another takes over
                    self._takeovers.spawn(self._drain_then_release(), "outcomes a cancelled writer left")
                else:
                    self._recording = False
        return await done

    async def _drain_outcomes(self) -> None:
        if self.limits.outcome_linger and len(self._outcome_queue) < OUTCOME_BATCH and len(self._inflight) > len(self._outcome_queue):
            # Calls still in flight: let their outcomes join this batch, for up to the linger, and
            # no longer once every one of them has ended. Calls that end together (a fast
            # platform) are written at once; calls that end apart (a 50 ms platform, sixteen at a
            # time) share a transaction instead of paying one each, which is what bounds the
            # engine when its loop is busy.
            self._batch_complete.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(self.limits.outcome_linger):
                    await self._batch_complete.wait()
        while self._outcome_queue:
            batch, self._outcome_queue = self._outcome_queue[:OUTCOME_BATCH], self._outcome_queue[OUTCOME_BATCH:]
            await self._record_batch(batch)

    async def _drain_then_release(self) -> None:
        try:
            await self._drain_outcomes()
        finally:
            self._recording = False

    async def _record_batch(self, batch: list[PendingOutcome]) -> None:
        """Write a batch of outcomes and, in the same transaction, claim and start calls for the slots they freed.

        The slots were given back as the calls ended; when the last claim left due targets
        behind, this transaction refills them (``_write_round``), so one engine write sits
        between one call's end and the next call's start. It refills only if no other claim
        is under way (it never waits for one while others wait for its outcomes); else, as when
        it fails, the loop is woken to claim.
        """
        now = utcnow()
        events: list[BusEvent] = []
        results: dict[str, bool] = {}
        refill = self._backlog and not self._stopping and not self._claiming.locked()
        claims: list[Claim] = []
        try:
            async with self._claiming if refill else nullcontext():
                room = self._slots.free() if refill else 0
                async with self.runtime.database.write() as session:
                    results, claimed, loaded = await self._write_round(session, batch, events, now, room)
                claims = self._hold(claimed, loaded)
        except Exception as error:  # each caller learns its outcome was not written; leases cover the rest
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(error)
            if self._backlog:
                self.wake()
            return
        except BaseException:  # cancelled while writing: the callers are cancelled with it
            for item in batch:
                item.done.cancel()
            raise
        await self._publish_events(events)
        for item in batch:
            item.done.set_result(results[item.attempt_id])
        self._launch(claims)
        if (self._backlog and not refill) or any(e.kind in ("target.retry_pending", "target.processing") for e in events):
            self.wake()

    async def _write_round(
        self, session: Any, batch: list[PendingOutcome], events: list[BusEvent], now: datetime, room: int
    ) -> tuple[dict[str, bool], list[TargetRow], dict[str, Loaded]]:
        """One engine write: a batch of outcomes, then up to ``room`` due targets claimed and their calls started.

        Returns, for each outcome's attempt, whether this worker still held its lease; the
        targets claimed; and what their calls read. The claim is the calls' start: the
        conditional UPDATE that takes each target sets the lease it starts with, and the
        Attempt rows and ``target.publishing`` events are written with it, so a claimed call
        can never be left waiting while its lease runs.

        Lock order on PostgreSQL, as everywhere in the engine: every target before any job. The
        outcomes' targets are locked first, in id order; the claim skips locked targets (``SKIP
        LOCKED``), so it never waits; then the jobs of both, in id order, in one statement.
        """
        attempts = await lock_outcome_targets(session, batch, lock=not self.runtime.database.is_sqlite) if batch else {}
        claimed, numbers, deferred = await self._claim_rows(session, now, room, start=True) if room > 0 else ([], {}, [])
        jobs = await lock_job_rows(
            session, [*(a.job_id for a in attempts.values()), *(t.job_id for t in claimed), *(d.row.job_id for d in deferred)]
        )
        results = await write_outcomes(session, batch, attempts, jobs, events, now, self.retry) if batch else {}
        await write_deferrals(session, deferred, now, events)
        loaded: dict[str, Loaded] = {}
        if claimed:
            loaded = await load_many(session, claimed)
            await self._write_attempts(session, claimed, numbers, jobs, now, events)
        await save_jobs(session, jobs.values(), now)
        return results, claimed, loaded

    # -- recovery ---------------------------------------------------------------------------------

    async def recover_expired(self) -> int:
        """Take over targets whose lease ran out (``engine.recovery``); returns how many."""
        return await self.recovery.recover_expired(utcnow())

    async def _publish_events(self, events: list[BusEvent]) -> None:
        for event in events:
            await self.runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))


__all__ = ["Chore", "Limits", "Outcome", "RetryPolicy", "Scheduler"]
