"""Claims, leases and recovery: a claim is only as large as the free call slots, its lease is
re-checked when its call starts, claims never started go back to the queue, and reconciling
expired calls never holds up claiming. ``unconfirmed`` only ever means a call went out and
its answer was lost."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.core.clock import utcnow
from gateway.engine import scheduler as scheduler_module
from gateway.engine.scheduler import Limits
from gateway.storage.models import Attempt, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

WAIT = 20.0  # seconds; a bound on waiting for what must happen, never a timing assertion
FINISHED = ("job.succeeded", "job.failed", "job.partial", "job.canceled")


class HeldCalls:
    """The sandbox's publish (and, when asked, reconcile), each call held until the test lets it through."""

    def __init__(self, runtime, *, hold=lambda key: True) -> None:
        self.provider = runtime.plugins.get("sandbox")
        self.publish, self.reconcile = self.provider.publish, self.provider.reconcile
        self.hold = hold
        self.calls: list[str] = []  # the target ids (idempotency keys) of every publish call, in order
        self.reconciles: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.changed = asyncio.Condition()
        self.provider.publish = self._publish

    def hold_reconciles(self) -> None:
        """Hold reconcile calls too (the sandbox's own publish asks reconcile first: those are recorded as well)."""
        self.provider.reconcile = self._reconcile

    async def _enter(self, seen: list[str], key: str) -> None:
        async with self.changed:
            seen.append(key)
            self.changed.notify_all()
        if self.hold(key):
            await self.gates.setdefault(key, asyncio.Event()).wait()

    async def _publish(self, ctx, request):
        await self._enter(self.calls, request.idempotency_key)
        return await self.publish(ctx, request)

    async def _reconcile(self, ctx, request):
        await self._enter(self.reconciles, "reconcile " + request.idempotency_key)
        return await self.reconcile(ctx, request)

    async def wait_for(self, seen: list[str], count: int) -> list[str]:
        await self.wait_until(lambda: len(seen) >= count)
        return list(seen)

    async def wait_until(self, predicate) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), WAIT)

    def let_through(self, keys) -> None:
        for key in keys:
            self.gates.setdefault(key, asyncio.Event()).set()

    def let_all_through(self) -> None:
        self.let_through(list(self.calls) + list(self.reconciles))
        self.hold = lambda key: False


class FakeClock:
    """The scheduler's clock (leases, due times), moved by the test instead of waited for."""

    def __init__(self, monkeypatch) -> None:
        self.now = utcnow()
        monkeypatch.setattr(scheduler_module, "utcnow", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def finished_jobs(subscription, count: int) -> None:
    """Wait until ``count`` jobs ended, as their events tell."""
    ended = 0
    while ended < count:
        event = await asyncio.wait_for(subscription.next(), WAIT)
        ended += event.kind in FINISHED


async def targets(api) -> dict[str, Target]:
    async with api.runtime.database.read() as session:
        return {t.id: t for t in (await session.execute(select(Target))).scalars()}


async def attempts(api) -> list[Attempt]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(Attempt).order_by(Attempt.started_at))).scalars())


async def posts_on(api, org, account: str, count: int, text: str) -> None:
    for i in range(count):
        assert (await publish(api, org.secret, await new_post(api, org.secret, [account], text=f"{text} {i}")))["userErrors"] == []


async def test_claims_never_outlive_their_lease_while_waiting_for_a_slot(tmp_path, monkeypatch):
    """Lease 4 s, a platform that takes 3 s, 2 calls per account, 6 posts: all published once, none unconfirmed.

    Each call's lease runs from the moment the call starts, so a call queued behind two others
    never has a lease that ran out before it began; a peer worker looking for expired leases
    after every 3 seconds finds none.
    """
    async with engine_app(tmp_path, lease_seconds=4) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        await posts_on(api, org, account, 6, "lease")
        held = HeldCalls(api.runtime)
        clock = FakeClock(monkeypatch)
        subscription = api.runtime.events.subscribe(org.organization_id)
        scheduler = scheduler_for(api, limits=Limits(per_account=2))
        peer = scheduler_for(api, worker_id="peer")
        scheduler.start()
        try:
            for done in (2, 4, 6):
                calls = await held.wait_for(held.calls, done)
                assert len(calls) == done  # two at a time: the account's two slots
                clock.advance(3)  # the platform's three seconds
                assert await peer.recover_expired() == 0
                held.let_through(calls[-2:])
            await finished_jobs(subscription, 6)
        finally:
            await scheduler.stop()
            subscription.close()
        assert {t.status for t in (await targets(api)).values()} == {"published"}
        assert [a.outcome for a in await attempts(api)] == ["success"] * 6
        assert sorted(held.calls) == sorted(set(held.calls)) and len(held.calls) == 6


async def test_stop_with_a_backlog_leaves_the_backlog_scheduled(tmp_path):
    """Stopping while two calls run and four posts wait: the two finish, the four stay queued, none unconfirmed."""
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        await posts_on(api, org, account, 6, "backlog")
        held = HeldCalls(api.runtime)
        scheduler = scheduler_for(api, limits=Limits(per_account=2))
        scheduler.start()
        running = await held.wait_for(held.calls, 2)
        # stop() marks the scheduler stopping in its first step, which runs before the calls let
        # through here resume: they end, and nothing new is claimed.
        stopping = asyncio.create_task(scheduler.stop(grace=5))
        held.let_through(running)
        await stopping
        rows = await targets(api)
        assert sorted(t.status for t in rows.values()) == ["published"] * 2 + ["scheduled"] * 4
        assert {t.id for t in rows.values() if t.status == "published"} == set(running)
        assert all(t.attempt_count == 0 and t.lease_owner is None for t in rows.values() if t.status == "scheduled")
        assert sorted(a.target_id for a in await attempts(api)) == sorted(running)


async def test_stop_hands_claims_never_started_back_to_the_queue(api_with_posts):
    api, org, calls = api_with_posts
    scheduler = scheduler_for(api)
    assert len(await scheduler.claim_due(10)) == 2
    assert {t.status for t in (await targets(api)).values()} == {"publishing"}
    await scheduler.stop()
    rows = await targets(api)
    assert {(t.status, t.attempt_count, t.lease_owner) for t in rows.values()} == {("scheduled", 0, None)}
    assert await attempts(api) == [] and calls == []
    await scheduler_for(api).drain()  # and they publish normally afterwards, once each
    assert {t.status for t in (await targets(api)).values()} == {"published"}
    assert sorted(calls) == sorted(rows)


async def test_recovery_hands_a_dead_workers_unstarted_claims_back_not_unconfirmed(api_with_posts):
    api, org, calls = api_with_posts
    dead = scheduler_for(api, worker_id="dead")
    assert len(await dead.claim_due(10)) == 2  # claimed, then the worker died before any call started
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    survivor = scheduler_for(api, worker_id="survivor")
    assert await survivor.recover_expired() == 2
    assert {(t.status, t.attempt_count) for t in (await targets(api)).values()} == {("scheduled", 0)}
    assert await attempts(api) == []
    await survivor.drain()
    assert {t.status for t in (await targets(api)).values()} == {"published"}
    assert len(calls) == 2 and [a.outcome for a in await attempts(api)] == ["success", "success"]


async def test_a_claim_whose_lease_was_lost_before_its_call_started_is_not_called(api_with_posts):
    api, org, calls = api_with_posts
    slow = scheduler_for(api, worker_id="slow")
    claims = await slow.claim_due()
    # The worker stalled between claim and call; its leases ran out and a peer handed them back.
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert await scheduler_for(api, worker_id="peer").recover_expired() == 2
    assert await slow.start_calls(claims) == []
    assert slow._slots.held == 0
    assert calls == [] and await attempts(api) == []
    assert {t.status for t in (await targets(api)).values()} == {"scheduled"}


async def test_a_busy_account_does_not_delay_an_idle_accounts_due_post(tmp_path):
    """Eight posts on a busy account whose calls hang, then one on an idle account: it goes out at once."""
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        busy, idle = await sandbox_account(api, org.secret, "busy"), await sandbox_account(api, org.secret, "idle")
        await posts_on(api, org, busy, 8, "busy")
        idle_post = await new_post(api, org.secret, [idle], text="idle")
        await publish(api, org.secret, idle_post)
        idle_target = next(t.id for t in (await targets(api)).values() if t.account_id == idle)
        held = HeldCalls(api.runtime, hold=lambda key: key != idle_target)
        subscription = api.runtime.events.subscribe(org.organization_id)
        scheduler = scheduler_for(api, limits=Limits(batch=4, per_account=2))
        scheduler.start()
        try:
            await finished_jobs(subscription, 1)
            await held.wait_for(held.calls, 3)
            rows = await targets(api)
            assert rows[idle_target].status == "published"
            assert len(held.calls) == 3  # the idle post's call and the busy account's two, still hanging
            assert sum(t.status == "scheduled" for t in rows.values()) == 6  # the busy backlog was never claimed
        finally:
            held.let_all_through()
            await scheduler.stop()
            subscription.close()


async def test_slow_reconciles_do_not_delay_an_unrelated_due_post(tmp_path):
    """Three calls whose worker hung are reconciled through a platform that hangs too; a new post still goes out."""
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        stuck = [await sandbox_account(api, org.secret, f"stuck{i}") for i in range(3)]
        for account in stuck:
            await posts_on(api, org, account, 1, "stuck")
        held = HeldCalls(api.runtime)
        hung = scheduler_for(api, worker_id="hung")
        assert await hung.tick() == 3
        stuck_calls = await held.wait_for(held.calls, 3)
        async with api.runtime.database.write() as session:  # the hung worker's leases run out
            await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        held.hold_reconciles()
        survivor = scheduler_for(api, worker_id="survivor")
        subscription = api.runtime.events.subscribe(org.organization_id)
        reconciling = {"reconcile " + t for t in stuck_calls}
        held.hold = lambda key: key in reconciling
        survivor.start()
        try:
            await held.wait_for(held.reconciles, 1)
            idle = await sandbox_account(api, org.secret, "idle")
            await posts_on(api, org, idle, 1, "unrelated")
            while True:  # the unrelated post's job ends while the reconciles still hang
                event = await asyncio.wait_for(subscription.next(), WAIT)
                if event.kind in FINISHED:
                    break
            rows = await targets(api)
            assert [t.status for t in rows.values() if t.account_id == idle] == ["published"]
            # ... and the three reconciles run side by side, not one after another.
            await held.wait_until(lambda: reconciling <= set(held.reconciles))
            assert all(rows[t].status == "publishing" for t in stuck_calls)
        finally:
            held.let_all_through()
            await survivor.stop()
            await hung.stop(grace=0)
            subscription.close()


async def test_a_reconcile_that_hangs_is_cut_short_by_its_own_timeout(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        await posts_on(api, org, await sandbox_account(api, org.secret), 1, "lost")
        dead = scheduler_for(api, worker_id="dead")
        await dead.start_calls(await dead.claim_due())
        async with api.runtime.database.write() as session:
            await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        held = HeldCalls(api.runtime)
        held.hold_reconciles()
        survivor = scheduler_for(api, worker_id="survivor", limits=Limits(reconcile_seconds=0.05))
        assert await survivor.recover_expired() == 1
        [target] = (await targets(api)).values()
        assert (target.status, target.error_code) == ("unconfirmed", "RECONCILE_FAILED")
        assert [a.outcome for a in await attempts(api)] == ["lease_expired", "unconfirmed"]
        held.let_all_through()


@pytest.fixture
async def api_with_posts(tmp_path):
    """Two posts due on two accounts, and the list of publish calls that reach the sandbox."""
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        for handle in ("one", "two"):
            await posts_on(api, org, await sandbox_account(api, org.secret, handle), 1, handle)
        provider = api.runtime.plugins.get("sandbox")
        calls, original = [], provider.publish

        async def counted(ctx, request):
            calls.append(request.idempotency_key)
            return await original(ctx, request)

        provider.publish = counted
        yield api, org, calls
