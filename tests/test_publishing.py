"""The publishing engine: claim, call, record; every outcome of the SDK's error taxonomy."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from gateway.core.clock import utcnow
from gateway.engine.scheduler import Limits, Scheduler
from gateway.storage.models import Account, Attempt, Job, JobEvent, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

JOB = """query($id: ID!) { job(id: $id) { status progress { done total } error { code } events { seq kind payload } } }"""
POST = """query($id: ID!) { post(id: $id) { status targets { status platformPostId platformUrl attemptCount error { code message } } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


def count_publishes(runtime):
    """Wrap the sandbox's publish so the test sees every call that reaches the platform."""
    provider = runtime.plugins.get("sandbox")
    calls = []
    original = provider.publish

    async def counted(ctx, request):
        calls.append(request.idempotency_key)
        return await original(ctx, request)

    provider.publish = counted
    return calls


async def test_publish_now_end_to_end(api):
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, handle) for handle in ("alice", "bob")]
    post_id = await new_post(api, org.secret, accounts, thread=["second", "third"])
    payload = await publish(api, org.secret, post_id)
    assert payload["userErrors"] == []
    job_id = payload["job"]["id"]
    await scheduler_for(api).drain()

    post = (await api.graphql(POST, {"id": post_id}, key=org.secret))["data"]["post"]
    assert post["status"] == "PUBLISHED"
    assert all(t["status"] == "PUBLISHED" and t["platformPostId"].startswith("sb_") for t in post["targets"])
    job = (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]
    assert job["status"] == "SUCCEEDED"
    assert job["progress"] == {"done": 2, "total": 2}
    seqs = [e["seq"] for e in job["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [e["kind"] for e in job["events"]]
    assert kinds[0] == "job.queued" and kinds[-1] == "job.succeeded"
    assert kinds.count("target.publishing") == 2 and kinds.count("target.published") == 2
    statuses = [e["payload"]["status"] for e in job["events"] if e["kind"] == "post.status_changed"]
    assert statuses[0] == "scheduled" and statuses[-1] == "published"
    async with api.runtime.database.read() as session:
        attempts = list((await session.execute(select(Attempt))).scalars())
    assert [(a.number, a.outcome) for a in attempts] == [(1, "success"), (1, "success")]
    assert all(a.finished_at >= a.started_at for a in attempts)


async def test_twenty_concurrent_publishes_make_one_job_and_one_call_per_target(api):
    org = await setup_org(api)
    calls = count_publishes(api.runtime)
    accounts = [await sandbox_account(api, org.secret, f"h{i}") for i in range(3)]
    post_id = await new_post(api, org.secret, accounts)
    payloads = await asyncio.gather(*(publish(api, org.secret, post_id) for _ in range(20)))
    assert {p["job"]["id"] for p in payloads} == {payloads[0]["job"]["id"]}
    await scheduler_for(api).drain()
    await asyncio.gather(*(publish(api, org.secret, post_id) for _ in range(5)))  # after the fact, too
    await scheduler_for(api).drain()
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 3
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar() == 1


async def test_two_schedulers_never_publish_a_target_twice(api):
    org = await setup_org(api)
    calls = count_publishes(api.runtime)
    accounts = [await sandbox_account(api, org.secret, f"h{i}") for i in range(5)]
    posts = [await new_post(api, org.secret, accounts, text=f"post {i}") for i in range(8)]
    for post_id in posts:
        await publish(api, org.secret, post_id)
    first, second = scheduler_for(api, worker_id="one"), scheduler_for(api, worker_id="two")
    await asyncio.gather(first.drain(), second.drain(), first.drain(), second.drain())
    assert len(calls) == 40 and len(set(calls)) == 40
    async with api.runtime.database.read() as session:
        statuses = (await session.execute(select(Target.status))).scalars().all()
        workers = set((await session.execute(select(Attempt.worker_id))).scalars())
    assert set(statuses) == {"published"}
    assert workers <= {"one", "two"}


async def _one_target(api, org, **credentials):
    account = await sandbox_account(api, org.secret, "me", **credentials)
    post_id = await new_post(api, org.secret, [account])
    job_id = (await publish(api, org.secret, post_id))["job"]["id"]
    return account, post_id, job_id


async def _target(api) -> Target:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(Target))).scalar_one()


async def _outcomes(api) -> list[str]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(Attempt.outcome).order_by(Attempt.number))).scalars())


async def test_transient_errors_retry_with_backoff_then_succeed(api):
    org = await setup_org(api)
    _, post_id, job_id = await _one_target(api, org, failure_mode="transient", failure_count="2")
    await scheduler_for(api).drain()
    assert await _outcomes(api) == ["transient", "transient", "success"]
    target = await _target(api)
    assert target.status == "published"


async def test_transient_errors_give_up_after_the_ladder(tmp_path):
    async with engine_app(tmp_path, publish_max_attempts=3) as api:
        org = await setup_org(api)
        _, post_id, job_id = await _one_target(api, org, failure_mode="transient", failure_count="0")
        await scheduler_for(api).drain()
        assert await _outcomes(api) == ["transient"] * 3
        target = await _target(api)
        assert target.status == "failed" and target.error_code == "SANDBOX_UNAVAILABLE"
        assert "3 attempts" in target.error_message
        job = (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]
        assert job["status"] == "FAILED" and job["error"]["code"] == "TARGETS_FAILED"


async def test_backoff_grows_exponentially():
    from gateway.engine.scheduler import RetryPolicy

    retry = RetryPolicy(base_seconds=2.0, max_seconds=60.0, max_attempts=8, jitter=lambda: 1.0)
    assert [retry.backoff(n).total_seconds() for n in range(1, 7)] == [2, 4, 8, 16, 32, 60]
    retry.jitter = lambda: 0.5
    assert retry.backoff(3).total_seconds() == 4


async def test_rate_limited_waits_its_retry_after(api):
    org = await setup_org(api)
    account_id, post_id, job_id = await _one_target(api, org, failure_mode="rate_limited", failure_count="1")
    scheduler = scheduler_for(api)
    await scheduler.drain()  # nothing more is due: the target waits
    target = await _target(api)
    assert target.status == "retry_pending" and target.error_code == "RATE_LIMITED"
    assert timedelta(seconds=28) < target.next_attempt_at - utcnow() <= timedelta(seconds=30)
    async with api.runtime.database.write() as session:
        account = await session.get(Account, account_id)
        assert account.status == "rate_limited"
        # Let the platform's 30 seconds pass.
        account.rate_limited_until = utcnow() - timedelta(seconds=1)
        await session.execute(update(Target).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    await scheduler.drain()
    assert (await _target(api)).status == "published"
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, account_id)).status == "active"
    assert await _outcomes(api) == ["rate_limited", "success"]


async def test_a_rate_limit_never_revives_an_account_disconnected_during_the_call(api):
    org = await setup_org(api)
    account_id, _, _ = await _one_target(api, org, failure_mode="rate_limited", failure_count="1")
    provider = api.runtime.plugins.get("sandbox")
    original = provider.publish

    async def disconnected_meanwhile(ctx, request):
        async with api.runtime.database.write() as session:
            await session.execute(update(Account).where(Account.id == account_id).values(status="disconnected"))
        return await original(ctx, request)

    provider.publish = disconnected_meanwhile
    await scheduler_for(api).drain()
    assert (await _target(api)).status == "retry_pending"
    async with api.runtime.database.read() as session:
        account = await session.get(Account, account_id)
    assert account.status == "disconnected" and account.rate_limited_until is None


async def test_rejected_fails_and_keeps_the_platforms_message(api):
    org = await setup_org(api)
    await _one_target(api, org, failure_mode="rejected", failure_count="0")
    await scheduler_for(api).drain()
    target = await _target(api)
    assert (target.status, target.error_code) == ("failed", "SANDBOX_REJECTED")
    assert "rejects this call" in target.error_message
    assert await _outcomes(api) == ["rejected"]


async def test_unconfirmed_is_reconciled_into_published(api):
    org = await setup_org(api)
    calls = count_publishes(api.runtime)
    await _one_target(api, org, failure_mode="unconfirmed", failure_count="0")
    await scheduler_for(api).drain()
    target = await _target(api)
    assert target.status == "published" and target.platform_post_id.startswith("sb_")
    assert len(calls) == 1  # reconciled, not published again


async def test_a_call_past_its_deadline_is_never_published_again(tmp_path):
    async with engine_app(tmp_path, lease_seconds=2) as api:  # calls get 1.6 s; the sandbox's slow mode takes 3
        org = await setup_org(api)
        calls = count_publishes(api.runtime)
        await _one_target(api, org, failure_mode="slow", failure_count="0")
        await scheduler_for(api).drain()
        target = await _target(api)
        assert (target.status, target.error_code) == ("unconfirmed", "TIMEOUT")
        assert len(calls) == 1


async def test_auth_expired_that_cannot_refresh_marks_the_account(api):
    org = await setup_org(api)
    account_id, post_id, job_id = await _one_target(api, org, failure_mode="auth_expired", failure_count="0")
    subscription = api.runtime.events.subscribe(org.organization_id)
    await scheduler_for(api).drain()
    target = await _target(api)
    assert (target.status, target.error_code) == ("failed", "AUTH_EXPIRED")
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, account_id)).status == "token_expired"
    kinds = []
    while not subscription.queue.empty():
        kinds.append(subscription.queue.get_nowait().kind)
    assert "account.token_expired" in kinds


async def test_a_dead_workers_target_is_reconciled_not_republished(api):
    org = await setup_org(api)
    calls = count_publishes(api.runtime)
    await _one_target(api, org)
    dead = scheduler_for(api, worker_id="dead")
    [claim] = await dead.start_calls(await dead.claim_due(10))  # its call started, then the worker "died"
    target_id, attempt_id = claim.target_id, claim.attempt_id
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    survivor = scheduler_for(api, worker_id="survivor")
    assert await survivor.recover_expired() == 1
    target = await _target(api)
    assert (target.status, target.error_code) == ("unconfirmed", "LEASE_EXPIRED")
    assert calls == []
    assert await _outcomes(api) == ["lease_expired", "unconfirmed"]
    # The dead worker coming back late cannot overwrite what recovery decided.
    from gateway.engine.scheduler import Outcome

    assert await dead.record_outcome(target_id, attempt_id, Outcome("success")) is False
    assert (await _target(api)).status == "unconfirmed"


async def test_a_dead_workers_published_target_is_found_by_reconcile(api):
    org = await setup_org(api)
    await _one_target(api, org)
    dead = scheduler_for(api, worker_id="dead")
    [claim] = await dead.start_calls(await dead.claim_due(10))
    # The call reached the platform before the worker died.
    outcome, _account = await dead.calls.call_provider(claim.target_id)
    assert outcome.kind == "success"
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    await scheduler_for(api, worker_id="survivor").recover_expired()
    target = await _target(api)
    assert target.status == "published" and target.platform_post_id == outcome.result.platform_post_id


SCHEDULE = """mutation($input: SchedulePostInput!) { schedulePost(input: $input) { job { id status } userErrors { field code } } }"""


async def test_schedule_later_with_a_timezone_and_cancel(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    later = (utcnow() + timedelta(days=1)).astimezone().replace(tzinfo=None)
    body = await api.graphql(SCHEDULE, {"input": {"postId": post_id, "publishAt": later.isoformat(), "timezone": "Asia/Tokyo"}}, key=org.secret)
    assert body["data"]["schedulePost"]["userErrors"] == []
    await scheduler_for(api).drain()
    target = await _target(api)
    assert target.status == "scheduled"
    from zoneinfo import ZoneInfo

    assert target.publish_at == later.replace(tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(ZoneInfo("UTC"))
    canceled = await api.graphql(
        "mutation($id: ID!) { cancelPost(input: {postId: $id}) { post { status } userErrors { code } } }", {"id": post_id}, key=org.secret
    )
    assert canceled["data"]["cancelPost"] == {"post": {"status": "CANCELED"}, "userErrors": []}
    job_id = body["data"]["schedulePost"]["job"]["id"]
    job = (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]
    assert job["status"] == "CANCELED"


@pytest.mark.parametrize(
    ("publish_at", "timezone", "code"),
    [
        ("2030-01-01T09:00:00", None, "TIMEZONE_REQUIRED"),
        ("2030-01-01T09:00:00", "Mars/Olympus", "INVALID_TIMEZONE"),
        ("2001-01-01T09:00:00+00:00", None, "PUBLISH_AT_IN_PAST"),
        ("2099-01-01T09:00:00+00:00", None, "PUBLISH_AT_TOO_FAR"),
    ],
)
async def test_bad_schedules_are_user_errors(api, publish_at, timezone, code):
    org = await setup_org(api)
    post_id = await new_post(api, org.secret, [await sandbox_account(api, org.secret)])
    body = await api.graphql(SCHEDULE, {"input": {"postId": post_id, "publishAt": publish_at, "timezone": timezone}}, key=org.secret)
    assert [e["code"] for e in body["data"]["schedulePost"]["userErrors"]] == [code]
    assert (await _target(api)).status == "draft"


async def test_retry_failed_targets_as_a_new_job(api):
    org = await setup_org(api)
    account_id, post_id, first_job = await _one_target(api, org, failure_mode="rejected", failure_count="1")
    await scheduler_for(api).drain()
    assert (await _target(api)).status == "failed"
    retried = await api.graphql(
        "mutation($id: ID!) { retryPost(input: {postId: $id}) { job { id } userErrors { code } } }", {"id": post_id}, key=org.secret
    )
    second_job = retried["data"]["retryPost"]["job"]["id"]
    assert second_job != first_job
    await scheduler_for(api).drain()
    assert (await _target(api)).status == "published"
    again = await api.graphql(
        "mutation($id: ID!) { retryPost(input: {postId: $id}) { job { id } userErrors { code } } }", {"id": post_id}, key=org.secret
    )
    assert again["data"]["retryPost"]["userErrors"] == [{"code": "NOTHING_TO_RETRY"}]


async def test_cancel_job_stops_targets_not_yet_started(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    later = (utcnow() + timedelta(hours=2)).isoformat()
    job_id = (await api.graphql(SCHEDULE, {"input": {"postId": post_id, "publishAt": later}}, key=org.secret))["data"]["schedulePost"]["job"]["id"]
    body = await api.graphql("mutation($id: ID!) { cancelJob(input: {id: $id}) { job { status } userErrors { code } } }", {"id": job_id}, key=org.secret)
    assert body["data"]["cancelJob"] == {"job": {"status": "CANCELED"}, "userErrors": []}
    again = await api.graphql("mutation($id: ID!) { cancelJob(input: {id: $id}) { userErrors { code } } }", {"id": job_id}, key=org.secret)
    assert again["data"]["cancelJob"]["userErrors"] == [{"code": "JOB_FINISHED"}]


async def test_jobs_are_isolated_and_filterable(api):
    org = await setup_org(api)
    _, post_id, job_id = await _one_target(api, org)
    from tests.conftest import make_org_with_key

    other = await make_org_with_key(api.runtime, name="Other")
    for query in ("query($id: ID!) { job(id: $id) { id } }", "query($id: ID!) { node(id: $id) { id } }"):
        body = await api.graphql(query, {"id": job_id}, key=other.secret)
        assert list(body["data"].values()) == [None]
    assert (await api.graphql("{ jobs { nodes { id } } }", key=other.secret))["data"]["jobs"]["nodes"] == []
    denied = await api.graphql("mutation($id: ID!) { publishPost(input: {postId: $id}) { userErrors { code } } }", {"id": post_id}, key=other.secret)
    assert denied["data"]["publishPost"]["userErrors"] == [{"code": "POST_NOT_FOUND"}]
    mine = await api.graphql("{ jobs(filter: {status: QUEUED, kind: \"publish\"}) { nodes { id } } }", key=org.secret)
    assert [n["id"] for n in mine["data"]["jobs"]["nodes"]] == [job_id]
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(JobEvent))).scalar() >= 1


async def _four_due_counting_batches(api, linger: float) -> tuple[Scheduler, list[int]]:
    """Four posts due on one account, and a scheduler that records the size of each outcome batch."""
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    for i in range(4):
        await publish(api, org.secret, await new_post(api, org.secret, [account], text=f"together {i}"))
    scheduler = scheduler_for(api, limits=Limits(batch=4, per_provider=4, per_account=4, outcome_linger=linger))
    batches: list[int] = []
    record_batch = scheduler._record_batch

    async def counting(batch):
        batches.append(len(batch))
        await record_batch(batch)

    scheduler._record_batch = counting
    return scheduler, batches


@pytest.mark.parametrize("linger, shared", [(0.0, False), (0.2, True)])
async def test_outcomes_of_calls_in_flight_wait_a_moment_to_share_one_transaction(api, linger, shared):
    """Without a linger the first outcome is written alone, the others after it; with one, all together."""
    scheduler, batches = await _four_due_counting_batches(api, linger)
    assert await scheduler.tick() == 4
    await asyncio.wait(set(scheduler._inflight), timeout=10)
    assert sum(batches) == 4 and batches[0] == (4 if shared else 1)
    async with api.runtime.database.read() as session:
        assert set((await session.execute(select(Target.status))).scalars()) == {"published"}


async def test_the_linger_ends_as_soon_as_every_call_in_flight_has_ended(api):
    """The linger is an upper bound: once the last call in flight has its outcome queued, the batch
    is written at once. Calls that end together (a fast platform) never sit out the linger."""
    scheduler, batches = await _four_due_counting_batches(api, 60.0)
    assert await scheduler.tick() == 4
    _done, pending = await asyncio.wait(set(scheduler._inflight), timeout=10)  # far less than the linger
    assert not pending and batches == [4]


async def test_a_job_over_several_posts_counts_the_outcomes_just_recorded(api):
    """A job whose targets are not all one post's reads their statuses back, after this batch's writes."""
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, handle) for handle in ("left", "right")]
    post_id = await new_post(api, org.secret, accounts)
    job_id = (await publish(api, org.secret, post_id))["job"]["id"]
    async with api.runtime.database.write() as session:  # as a job over many posts would have it
        await session.execute(update(Job).where(Job.id == job_id).values(subject_id=None))
    await scheduler_for(api).drain()
    job = (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]
    assert job["status"] == "SUCCEEDED" and job["progress"] == {"done": 2, "total": 2}
