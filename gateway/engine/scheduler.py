"""The publishing engine: claims due targets, calls providers, records outcomes.

At most once, never lost (DESIGN.md §4):

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
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, case, exists, func, insert, select, update

from gateway.accounts.accounts import open_credentials
from gateway.accounts.oauth import purge_connections
from gateway.accounts.tokens import refresh_account_token, refresh_expiring
from gateway.campaigns.holds import claimable
from gateway.campaigns.recurrence import advance_recurrences
from gateway.content.media import file_path, public_url
from gateway.content.posts import derive_status
from gateway.core.background import BackgroundTasks
from gateway.core.clock import utcnow
from gateway.core.ids import new_id
from gateway.engine.call_slots import CallSlots
from gateway.engine.jobs import mark_running, post_status_change, refresh_job
from gateway.engine.rows import (
    ACCOUNTS,
    ATTEMPTS,
    MEDIA,
    POSTS,
    TARGET_COLUMNS,
    TARGETS,
    AccountChange,
    JobRow,
    TargetRow,
    finish_attempts,
    finished_attempt,
    lock_job_rows,
    read_targets,
    release_claims,
    save_accounts,
    save_jobs,
    save_targets,
    target_select,
    targets_of_posts,
)
from gateway.events import BusEvent, prime_job_event_seqs, record_job_event
from gateway.outbound.url_guard import UnsafeURL
from gateway.runtime import Runtime
from gateway.storage.models import Attempt, Target
from gateway.storage.vault import VaultError
from providers import (
    AuthExpired,
    FileSource,
    ProviderError,
    PublishMedia,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    ThreadPart,
    TransientError,
    Unconfirmed,
)
from providers.validation import publish_checked

log = logging.getLogger("socialgate.scheduler")

DUE_STATUSES = ("scheduled", "retry_pending")
DEFAULT_RATE_LIMIT_WAIT = 60.0
# A provider call must end well before its lease, so a live worker never loses a lease to recovery.
LEASE_MARGIN = 0.8
MAX_ERROR_MESSAGE = 2_000
# A claim reads due targets in order and skips those whose account or provider has no free slot;
# it reads again past them at most this many times, then leaves the rest to the next claim.
CLAIM_PASSES = 4


@dataclass(frozen=True)
class Limits:
    batch: int = 50  # provider calls at once, all providers
    per_provider: int = 16
    per_account: int = 2
    # Seconds an outcome waits for the outcomes of calls still in flight, to share their
    # transaction: a few milliseconds on a call that took tens, for about a quarter fewer
    # commits (400 posts to a 50 ms platform: 67 outcome transactions without, ~50 with).
    outcome_linger: float = 0.003
    # Calls whose lease ran out are reconciled this many at once, each given at most
    # reconcile_seconds (and never more than the lease recovery took): a hung platform holds
    # one recovery slot that long, and never a claim.
    reconciles: int = 8
    reconcile_seconds: float = 30.0


@dataclass
class Outcome:
    """What happened to one attempt, in the engine's words."""

    kind: str  # success|rate_limited|transient|auth_expired|rejected|unconfirmed|lease_expired|error
    result: PublishResult | None = None
    error: ProviderError | None = None
    code: str | None = None
    message: str | None = None


OUTCOME_BATCH = 64
RECOVERY_INTERVAL = 1.0  # seconds between two looks for expired leases
TOKEN_SWEEP_INTERVAL = 60.0  # seconds between two looks for OAuth tokens about to expire
CONNECTION_PURGE_INTERVAL = 3600.0  # seconds between two purges of OAuth handshakes long over
RECURRENCE_SWEEP_INTERVAL = 60.0  # seconds between two looks for recurring posts whose latest occurrence ended


class Loaded(NamedTuple):
    """What one provider call reads: rows of the target, its post, its account and live media."""

    target: TargetRow
    post: Row[Any]
    account: Row[Any]
    media: list[Row[Any]]


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


@dataclass
class _PendingOutcome:
    target_id: str
    attempt_id: str
    outcome: Outcome
    done: asyncio.Future[bool]


def _missing_media(post: Row[Any], media: list[Row[Any]]) -> list[str]:
    """The post's media ids that have no live asset (``_load_many`` reads only live ones)."""
    live = {m.id for m in media}
    return [m for m in (post.content or {}).get("media_ids", []) if m not in live]


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
        self._last_chores: dict[str, float] = {}
        self._outcome_queue: list[_PendingOutcome] = []
        self._recording = False
        # A writer of outcomes cancelled mid-way hands the rest to a task of its own: held here
        # until done, its failure logged, awaited at stop.
        self._takeovers = BackgroundTasks("recording outcomes", log)
        self._backlog = False  # the last claim left due targets behind for want of slots
        # Tests replace this to make backoff deterministic.
        self.jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0)

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
        await self._housekeeping()
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
                    select(func.min(Target.next_attempt_at)).where(Target.status.in_(DUE_STATUSES), claimable(Target.__table__))
                )
            ).scalar()
        return None if earliest is None else (earliest - utcnow()).total_seconds()

    async def _housekeeping(self) -> None:
        """Refresh OAuth tokens that expire soon (each minute); forget OAuth handshakes long over (each hour).

        Either failing is logged and tried again next time: publishing goes on.
        """
        if self._due("tokens", TOKEN_SWEEP_INTERVAL):
            try:
                await refresh_expiring(self.runtime)
            except Exception:
                log.exception("token refresh sweep failed")
        if self._due("recurrences", RECURRENCE_SWEEP_INTERVAL):
            try:
                await advance_recurrences(self.runtime)
            except Exception:
                log.exception("recurring posts sweep failed")
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
        if now - self._last_chores.get(chore, float("-inf")) < interval:
            return False
        self._last_chores[chore] = now
        return True

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
            async with self.runtime.database.write() as session:
                targets = await self._claim_rows(session, now, room, start=False)
                loaded = await self._load_many(session, targets) if targets else {}
            claims = self._hold(targets, loaded)
            self._claims.update((claim.attempt_id, claim) for claim in claims)
            return claims

    async def _claim_rows(self, session: Any, now: datetime, room: int, *, start: bool) -> list[TargetRow]:
        """Claim up to ``room`` due targets that fit the free slots: a conditional UPDATE setting each lease.

        The lease's token is the id the call's Attempt will have. With ``start``, the call starts
        in this same transaction (the caller writes its Attempt), so the claim counts the
        attempt too and its lease runs from now, the moment the call goes out.
        """
        chosen, self._backlog = await self._choose_due(session, now, room)
        if not chosen:
            return []
        tokens = {target_id: new_id("att") for target_id in chosen}
        values: dict[str, Any] = {
            "status": "publishing", "lease_owner": case(tokens, value=TARGETS.c.id), "lease_expires_at": now + self.lease, "updated_at": now,
        }
        if start:
            values["attempt_count"] = TARGETS.c.attempt_count + 1
        return await read_targets(
            session,
            update(TARGETS)
            .where(TARGETS.c.id.in_(chosen), TARGETS.c.status.in_(DUE_STATUSES), TARGETS.c.next_attempt_at <= now)
            .values(values)
            .returning(*(TARGETS.c[name] for name in TARGET_COLUMNS)),
        )

    def _hold(self, targets: list[TargetRow], loaded: dict[str, Loaded]) -> list[Claim]:
        """The claims of these just-committed targets, each holding its call slot from now."""
        claims = []
        for target in targets:
            assert target.lease_owner is not None  # the claim's token, set by the claim
            claim = Claim(target.id, target.lease_owner, loaded[target.id])
            self._slots.take(claim.provider, claim.account_id)
            claims.append(claim)
        return claims

    async def _choose_due(self, session: Any, now: datetime, room: int) -> tuple[list[str], bool]:
        """Up to ``room`` due targets, oldest first, that fit the free slots; and whether any was left behind.

        Each read skips accounts and providers already full; a target read whose account or
        provider fills up within this claim is skipped, and the next read goes past it.
        """
        slots = self._slots.copy()
        chosen: list[str] = []
        left_behind = False
        for _ in range(CLAIM_PASSES):
            wanted = room - len(chosen)
            rows = (await session.execute(self._due_query(now, wanted, slots, chosen))).all()
            for row in rows:
                if slots.fits(row.provider, row.account_id):
                    slots.take(row.provider, row.account_id)
                    chosen.append(row.id)
                else:
                    left_behind = True
            if len(rows) < wanted:  # every due target was read
                return chosen, left_behind
            if len(chosen) == room:  # the slots are full; more may be due
                return chosen, True
        return chosen, True

    def _due_query(self, now: datetime, limit: int, slots: CallSlots, chosen: list[str]) -> Any:
        rate_limited = exists().where(
            ACCOUNTS.c.id == TARGETS.c.account_id, ACCOUNTS.c.rate_limited_until.is_not(None), ACCOUNTS.c.rate_limited_until > now
        )
        query = select(TARGETS.c.id, TARGETS.c.provider, TARGETS.c.account_id).where(
            TARGETS.c.status.in_(DUE_STATUSES), TARGETS.c.next_attempt_at <= now, ~rate_limited, claimable(TARGETS)
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
                targets = await read_targets(
                    session,
                    update(TARGETS)
                    .where(*held)
                    .values(lease_expires_at=now + self.lease, attempt_count=TARGETS.c.attempt_count + 1, updated_at=now)
                    .returning(*(TARGETS.c[name] for name in TARGET_COLUMNS)),
                )
                if targets:
                    jobs = await self._lock_jobs(session, [t.job_id for t in targets])
                    await self._write_attempts(session, targets, jobs, now, events)
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

    async def _write_attempts(self, session: Any, targets: list[TargetRow], jobs: dict[str, JobRow], now: datetime, events: list[BusEvent]) -> None:
        """The Attempt rows of calls starting now (ids: the lease tokens), their events, their jobs running.

        ``jobs`` holds the targets' jobs, locked by the caller (``_lock_jobs``); the caller saves them.
        """
        target_ids = [t.id for t in targets]
        history = dict(
            (await session.execute(
                select(ATTEMPTS.c.target_id, func.count()).where(ATTEMPTS.c.target_id.in_(target_ids)).group_by(ATTEMPTS.c.target_id)
            )).all()
        )
        attempts = []
        for target in targets:
            number = history.get(target.id, 0) + 1
            attempts.append({"id": target.lease_owner, "target_id": target.id, "number": number, "worker_id": self.worker_id, "started_at": now})
            if target.job_id:
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

    async def _lock_jobs(self, session: Any, job_ids: Iterable[str | None]) -> dict[str, JobRow]:
        """Lock these jobs (in id order, after every target this transaction locks) and ready their event numbers."""
        jobs = await lock_job_rows(session, (job_id for job_id in job_ids if job_id))
        await prime_job_event_seqs(session, list(jobs))
        return jobs

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
            outcome = await self._call(claim)
        except asyncio.CancelledError:
            raise  # the lease will run out and recovery will reconcile
        except Exception as exc:  # a bug below us: the call may have gone out, so never retry blindly
            log.exception("publishing %s failed unexpectedly", claim.target_id)
            outcome = Outcome("unconfirmed", code="ENGINE_ERROR", message=f"Unexpected {type(exc).__name__} while publishing.")
        finally:
            self._give_back(claim, wake=False)
        try:
            # The transaction that writes the outcome also refills the slots it freed (``_record_batch``).
            await self.record_outcome(claim.target_id, claim.attempt_id, outcome)
        except Exception:  # the target keeps its lease; when it runs out, recovery reconciles it
            log.exception("recording the outcome of %s failed", claim.target_id)

    async def _call(self, claim: Claim) -> Outcome:
        """The provider call, and what follows at once: a token refresh, or a reconcile."""
        outcome, account_id = await self._call_provider(claim.target_id, claim.loaded)
        if outcome.kind == "auth_expired" and account_id is not None:
            outcome = await self._after_auth_expired(claim.target_id, account_id, outcome)
        if outcome.kind == "unconfirmed" and account_id is not None:
            # The platform may have the post: ask it before anyone decides anything.
            outcome = await self._reconcile(claim.target_id, unconfirmed=outcome)
        return outcome

    async def _load_many(self, session: Any, targets: list[TargetRow]) -> dict[str, Loaded]:
        """Each target's post, account and live media, in three queries whatever their number."""
        posts = {p.id: p for p in await session.execute(select(POSTS).where(POSTS.c.id.in_({t.post_id for t in targets})))}
        accounts = {a.id: a for a in await session.execute(select(ACCOUNTS).where(ACCOUNTS.c.id.in_({t.account_id for t in targets})))}
        media_ids = {m for p in posts.values() for m in (p.content or {}).get("media_ids", [])}
        media = {m.id: m for m in await session.execute(select(MEDIA).where(MEDIA.c.id.in_(media_ids)))} if media_ids else {}
        loaded = {}
        for target in targets:
            post = posts[target.post_id]
            wanted = (post.content or {}).get("media_ids", [])
            attached = [media[m] for m in wanted if m in media and media[m].deleted_at is None]
            loaded[target.id] = Loaded(target, post, accounts[target.account_id], attached)
        return loaded

    async def _load(self, target_id: str) -> Loaded:
        async with self.runtime.database.read() as session:
            [target] = await read_targets(session, target_select().where(TARGETS.c.id == target_id))
            return (await self._load_many(session, [target]))[target_id]

    def _request(self, target: TargetRow, post: Row[Any], media: list[Row[Any]]) -> PublishRequest:
        content = post.content or {}
        attachments = tuple(
            PublishMedia(
                kind=m.kind, mime_type=m.mime_type, size_bytes=m.size_bytes, url=public_url(self.settings, self.runtime.secret_key, m),
                source=FileSource(file_path(self.settings, m)), alt_text=m.alt_text, width=m.width, height=m.height,
                duration_ms=m.duration_ms, filename=m.filename,
            )
            for m in media
        )
        return PublishRequest(
            text=content.get("overrides", {}).get(target.provider, post.text),
            # Stable across every retry of this target: platforms that deduplicate use it, and
            # reconcile finds a post whose answer was lost by it.
            idempotency_key=target.id,
            media=attachments,
            settings=content.get("settings", {}).get(target.account_id, {}),
            thread=tuple(ThreadPart(text=part) for part in content.get("thread", [])),
        )

    async def _call_provider(self, target_id: str, loaded: Loaded | None = None) -> tuple[Outcome, str | None]:
        target, post, account, media = loaded or await self._load(target_id)
        provider = self.runtime.plugins.get(target.provider)
        if provider is None:
            return Outcome("rejected", code="PROVIDER_UNAVAILABLE", message=f"The {target.provider!r} provider is not installed."), None
        if missing := _missing_media(post, media):
            # Publishing without them would put out a different post than the one validated.
            message = f"Media {', '.join(missing)} of this post was deleted; attach media again and retry."
            return Outcome("rejected", code="MEDIA_MISSING", message=message), None
        if account.status == "disconnected" or account.credentials is None:
            return Outcome("rejected", code="ACCOUNT_DISCONNECTED", message="The account was disconnected."), None
        if account.status == "token_expired":
            return Outcome("rejected", code="TOKEN_EXPIRED", message="The account's authorization expired; reconnect it."), None
        try:
            credentials = open_credentials(self.runtime, account)
        except VaultError:  # this worker's key is wrong, not the post: another worker may open them
            return Outcome("transient", code="CREDENTIALS_UNREADABLE", message="The stored credentials cannot be opened with this secret key."), None
        request = self._request(target, post, media)
        context = self.runtime.provider_context(provider.id, account.id, credentials)
        timeout = self.settings.lease_seconds * LEASE_MARGIN
        try:
            async with asyncio.timeout(timeout):  # no task of its own per call, unlike wait_for
                result = await publish_checked(provider, context, request)
        except TimeoutError:
            if context.phase.interrupted_while_preparing:  # uploading or processing media: nothing was posted
                message = f"Still preparing the post (media upload or processing) after {timeout:.0f}s; nothing was published, so it is tried again."
                return Outcome("transient", code="TIMEOUT", message=message), account.id
            return Outcome("unconfirmed", code="TIMEOUT", message=f"No answer within {timeout:.0f}s; the post may exist."), account.id
        except ProviderError as error:
            return _classify(error), account.id
        except UnsafeURL as error:  # refused before connecting: nothing was sent
            return Outcome("rejected", code=error.code, message=error.message), account.id
        return Outcome("success", result=result), account.id

    async def _after_auth_expired(self, target_id: str, account_id: str, outcome: Outcome) -> Outcome:
        """Refresh the token once and retry; a second expiry in a row, or a failed refresh, fails."""
        async with self.runtime.database.read() as session:
            previous = (
                await session.execute(
                    select(Attempt.outcome).where(Attempt.target_id == target_id, Attempt.finished_at.is_not(None))
                    .order_by(Attempt.number.desc()).limit(1)
                )
            ).scalar()
        if previous == "auth_expired":
            return Outcome("rejected", error=outcome.error, code="AUTH_EXPIRED", message="Authorization expired again after a refresh.")
        try:
            refreshed = await refresh_account_token(self.runtime, account_id)
        except ProviderError as error:  # the platform's token endpoint is down: try again later
            return Outcome("transient", error=error, code=error.code, message=error.message)
        if refreshed:
            return Outcome("auth_expired", error=outcome.error, code=outcome.code, message="Token refreshed; retrying.")
        return Outcome("rejected", error=outcome.error, code="AUTH_EXPIRED", message="Authorization expired and could not be refreshed; reconnect the account.")

    # -- outcomes ---------------------------------------------------------------------------------

    def _backoff(self, failures: int) -> timedelta:
        seconds = min(self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2 ** max(0, failures - 1))
        return timedelta(seconds=seconds * self.jitter())

    async def record_outcome(self, target_id: str, attempt_id: str, outcome: Outcome) -> bool:
        """Write the outcome, if the attempt still holds the target's lease (its token is the attempt's id). False when it lost it.

        Outcomes are group-committed: while one transaction writes, the outcomes that arrive wait
        and the next transaction writes them all. Each call returns once its own outcome is
        committed (or its transaction failed, which it then raises).
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcome_queue.append(_PendingOutcome(target_id, attempt_id, outcome, done))
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
            await asyncio.sleep(self.limits.outcome_linger)  # calls still in flight: let their outcomes join this batch
        while self._outcome_queue:
            batch, self._outcome_queue = self._outcome_queue[:OUTCOME_BATCH], self._outcome_queue[OUTCOME_BATCH:]
            await self._record_batch(batch)

    async def _drain_then_release(self) -> None:
        try:
            await self._drain_outcomes()
        finally:
            self._recording = False

    async def _record_batch(self, batch: list[_PendingOutcome]) -> None:
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
        if (self._backlog and not refill) or any(e.kind == "target.retry_pending" for e in events):
            self.wake()

    async def _write_round(
        self, session: Any, batch: list[_PendingOutcome], events: list[BusEvent], now: datetime, room: int
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
        attempts = await self._lock_outcome_targets(session, batch) if batch else {}
        claimed = await self._claim_rows(session, now, room, start=True) if room > 0 else []
        jobs = await self._lock_jobs(session, [*(a.job_id for a in attempts.values()), *(t.job_id for t in claimed)])
        results = await self._write_outcomes(session, batch, attempts, jobs, events, now) if batch else {}
        loaded: dict[str, Loaded] = {}
        if claimed:
            loaded = await self._load_many(session, claimed)
            await self._write_attempts(session, claimed, jobs, now, events)
        await save_jobs(session, jobs.values(), now)
        return results, claimed, loaded

    async def _lock_outcome_targets(self, session: Any, batch: list[_PendingOutcome]) -> dict[str, Row[Any]]:
        """The batch's attempts with their targets' post, job and account status; on PostgreSQL the targets locked, in id order."""
        query = (
            select(ATTEMPTS.c.id, ATTEMPTS.c.target_id, ATTEMPTS.c.number, ATTEMPTS.c.finished_at,
                   TARGETS.c.post_id, TARGETS.c.job_id, ACCOUNTS.c.status.label("account_status"))
            .join_from(ATTEMPTS, TARGETS, TARGETS.c.id == ATTEMPTS.c.target_id)
            .join(ACCOUNTS, ACCOUNTS.c.id == TARGETS.c.account_id)
            .where(ATTEMPTS.c.id.in_([item.attempt_id for item in batch]))
            .order_by(TARGETS.c.id)
        )
        if not self.runtime.database.is_sqlite:
            query = query.with_for_update(of=TARGETS)
        return {row.id: row for row in await session.execute(query)}

    async def _write_outcomes(
        self, session: Any, batch: list[_PendingOutcome], attempts: dict[str, Row[Any]], jobs: dict[str, JobRow],
        events: list[BusEvent], now: datetime,
    ) -> dict[str, bool]:
        """One transaction's outcomes; for each attempt, whether this worker still held its lease.

        The batch's targets and their jobs are locked by the caller (``_write_round``): the lease
        each outcome is checked against cannot move meanwhile, and the job's progress is written
        by one transaction at a time. The posts' other targets are read unlocked, after the job
        lock: whatever changes them with effect on progress (another outcome, a cancel) holds
        that lock too.
        """
        siblings = await targets_of_posts(session, sorted({a.post_id for a in attempts.values()}))
        targets = {t.id: t for post_targets in siblings.values() for t in post_targets}
        finished: list[dict[str, Any]] = []
        accounts: dict[str, AccountChange] = {}
        results = {}
        for item in batch:
            attempt = attempts.get(item.attempt_id)
            target = targets.get(item.target_id) if attempt is not None and attempt.target_id == item.target_id else None
            if target is None or target.status != "publishing" or target.lease_owner != item.attempt_id:
                log.warning("lease on %s lost before its outcome (%s) was recorded", item.target_id, item.outcome.kind)
                if attempt is not None and attempt.finished_at is None:
                    finished.append(finished_attempt(attempt.id, now, "lease_lost"))
                results[item.attempt_id] = False
                continue
            outcome = item.outcome
            error = outcome.error
            post_targets = siblings[target.post_id]
            before = derive_status([t.status for t in post_targets])
            finished.append(finished_attempt(
                attempt.id, now, outcome.kind, outcome.code or (error.code if error else None),
                (outcome.message or (error.message if error else None) or "")[:MAX_ERROR_MESSAGE] or None,
                error.http_status if error else None,
            ))
            account = accounts.setdefault(target.account_id, AccountChange(target.account_id, attempt.account_status))
            self._apply(target, account, outcome, now)
            target.lease_owner = target.lease_expires_at = None
            job = jobs.get(target.job_id) if target.job_id else None
            if job is not None:
                payload = {
                    "targetId": target.id, "postId": target.post_id, "provider": target.provider, "status": target.status,
                    "attempt": attempt.number, "errorCode": target.error_code, "errorMessage": target.error_message,
                    "platformPostId": target.platform_post_id, "platformUrl": target.platform_url,
                    "nextAttemptAt": target.next_attempt_at.isoformat() if target.next_attempt_at else None,
                }
                events.append(await record_job_event(session, target.organization_id, job.id, f"target.{target.status}", payload))
                changed = await post_status_change(session, target.organization_id, target.post_id, job.id, before, post_targets)
                if changed is not None:
                    events.append(changed)
                if job.subject_id == target.post_id:  # a publish job: its targets are this post's
                    await refresh_job(session, job, events, post_targets)
                else:  # a job over other targets too: they are read back, so write ours first
                    await save_targets(session, targets.values(), now)
                    await refresh_job(session, job, events)
            results[item.attempt_id] = True
        await finish_attempts(session, finished)
        await save_targets(session, targets.values(), now)
        await save_accounts(session, accounts.values(), now)
        return results

    def _apply(self, target: TargetRow, account: AccountChange, outcome: Outcome, now: datetime) -> None:
        if outcome.kind == "success" and outcome.result is not None:
            target.status = "published"
            target.platform_post_id = outcome.result.platform_post_id
            target.platform_url = outcome.result.url
            target.published_at = now
            target.error_code = target.error_message = None
            target.next_attempt_at = None
            account.lift_rate_limit()
            return
        target.error_code = outcome.code or (outcome.error.code if outcome.error else "ERROR")
        target.error_message = (outcome.message or (outcome.error.message if outcome.error else ""))[:MAX_ERROR_MESSAGE]
        if outcome.kind == "rate_limited":
            wait = outcome.error.retry_after if isinstance(outcome.error, RateLimited) and outcome.error.retry_after else DEFAULT_RATE_LIMIT_WAIT
            target.status = "retry_pending"
            target.next_attempt_at = now + timedelta(seconds=wait)
            # Rate limits do not count against the retry ladder: the platform told us when.
            target.attempt_count = max(0, target.attempt_count - 1)
            account.rate_limit(now + timedelta(seconds=wait))
        elif outcome.kind == "transient":
            if target.attempt_count >= self.settings.publish_max_attempts:
                target.status = "failed"
                target.error_message = f"Gave up after {target.attempt_count} attempts: {target.error_message}"[:MAX_ERROR_MESSAGE]
                target.next_attempt_at = None
            else:
                target.status = "retry_pending"
                target.next_attempt_at = now + self._backoff(target.attempt_count)
        elif outcome.kind == "auth_expired":  # refreshed: try again at once
            target.status = "retry_pending"
            target.next_attempt_at = now
        elif outcome.kind == "unconfirmed":
            target.status = "unconfirmed"
            target.next_attempt_at = None
        else:  # rejected, or anything else final
            target.status = "failed"
            target.next_attempt_at = None

    # -- recovery ---------------------------------------------------------------------------------

    async def recover_expired(self) -> int:
        """Take over targets whose lease ran out; returns how many.

        A claim whose call never started (no open Attempt) goes back to the queue: nothing
        reached the platform. A started call is taken over with a new attempt and reconciled
        through its provider: up to ``limits.reconciles`` at once, concurrently, each within its
        own short timeout. This runs in the scheduler's chores task, never on the claim path,
        so a hung platform delays no other account's due posts.
        """
        now = utcnow()
        database = self.runtime.database
        expired = (
            select(TARGETS.c.id).where(TARGETS.c.status == "publishing", TARGETS.c.lease_expires_at < now)
            .order_by(TARGETS.c.lease_expires_at).limit(self.limits.batch)
        )
        if not database.is_sqlite:
            expired = expired.with_for_update(skip_locked=True)
        tokens: dict[str, str] = {}
        async with database.write() as session:
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
            taken = [t for t in target_ids if t in called][: self.limits.reconciles]
            if taken:
                tokens = await self._take_over(session, taken, [a for a in open_attempts if a.target_id in set(taken)], now)
        if unstarted:
            log.info("handed %d claims whose call never started back to the queue", len(unstarted))
        await asyncio.gather(*(self._reconcile_taken_over(target_id, attempt_id) for target_id, attempt_id in tokens.items()))
        return len(unstarted) + len(tokens)

    async def _take_over(self, session: Any, target_ids: list[str], open_attempts: list[Row[Any]], now: datetime) -> dict[str, str]:
        """Close the calls whose lease ran out; give each target a reconcile attempt holding a new lease."""
        await finish_attempts(session, [finished_attempt(a.id, now, "lease_expired") for a in open_attempts])
        history = dict(
            (await session.execute(
                select(ATTEMPTS.c.target_id, func.count()).where(ATTEMPTS.c.target_id.in_(target_ids)).group_by(ATTEMPTS.c.target_id)
            )).all()
        )
        tokens = {target_id: new_id("att") for target_id in target_ids}
        await session.execute(insert(ATTEMPTS), [
            {"id": tokens[t], "target_id": t, "number": history.get(t, 0) + 1, "worker_id": self.worker_id, "started_at": now}
            for t in target_ids
        ])
        await session.execute(
            update(TARGETS).where(TARGETS.c.id.in_(target_ids))
            .values(lease_owner=case(tokens, value=TARGETS.c.id), lease_expires_at=now + self.lease, updated_at=now)
        )
        return tokens

    async def _reconcile_taken_over(self, target_id: str, attempt_id: str) -> None:
        try:
            await self.record_outcome(target_id, attempt_id, await self._reconcile(target_id))
        except Exception:  # its lease runs out again and recovery tries once more
            log.exception("reconciling %s failed", target_id)

    async def _reconcile(self, target_id: str, unconfirmed: Outcome | None = None) -> Outcome:
        """Ask the provider whether the post exists; without an answer the target is unconfirmed."""
        target, post, account, media = await self._load(target_id)
        provider = self.runtime.plugins.get(target.provider)
        lost = (
            f"{unconfirmed.message} The post may or may not exist." if unconfirmed and unconfirmed.message
            else "The worker publishing this target stopped mid-call; the post may or may not exist."
        )
        code = unconfirmed.code if unconfirmed and unconfirmed.code else "LEASE_EXPIRED"
        if provider is None or not provider.implements("reconcile") or account.credentials is None:
            return Outcome("unconfirmed", error=unconfirmed.error if unconfirmed else None, code=code, message=lost)
        timeout = min(self.limits.reconcile_seconds, self.settings.lease_seconds * LEASE_MARGIN)
        try:
            credentials = open_credentials(self.runtime, account)
            context = self.runtime.provider_context(provider.id, account.id, credentials)
            async with asyncio.timeout(timeout):
                found = await provider.reconcile(context, self._request(target, post, media))
        except (ProviderError, VaultError, TimeoutError) as error:
            reason = str(error)[:200] or f"no answer within {timeout:g}s"
            return Outcome("unconfirmed", code="RECONCILE_FAILED", message=f"{lost} Checking failed: {reason}")
        if found is not None:
            return Outcome("success", result=found)
        return Outcome("unconfirmed", code=code, message=lost + " The platform shows no such post yet.")

    async def _publish_events(self, events: list[BusEvent]) -> None:
        for event in events:
            await self.runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))


def _classify(error: ProviderError) -> Outcome:
    kind = (
        "rate_limited" if isinstance(error, RateLimited)
        else "transient" if isinstance(error, TransientError)
        else "auth_expired" if isinstance(error, AuthExpired)
        else "unconfirmed" if isinstance(error, Unconfirmed)
        else "rejected" if isinstance(error, Rejected)
        else "rejected"
    )
    return Outcome(kind, error=error, code=error.code, message=error.message)


__all__ = ["Limits", "Outcome", "Scheduler"]
