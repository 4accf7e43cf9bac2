"""Processing as an engine state: a publish the platform accepted but still works on.

The sandbox's ``processing_polls`` makes a post take N checks before it exists and counts every
upload, so these tests show the slot is free while a target processes, that the checks go
through the same claims, that a restart (between checks or mid-check) resumes polling without
a second upload, and how failures, the deadline and the post commands treat such a target.
Time passing between checks is a target's check time moved to now, never a sleep.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.core.clock import utcnow
from gateway.engine.scheduler import Limits
from gateway.storage.models import Attempt, JobEvent, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

POST = """query($id: ID!) { post(id: $id) { status targets { id status stage nextCheckAt attemptCount error { code } } } }"""
UPDATE = """mutation($id: ID!) { updatePost(input: {id: $id, text: "edited"}) { userErrors { code field } } }"""
CANCEL = """mutation($id: ID!) { cancelPost(input: {postId: $id}) { post { status } userErrors { code } } }"""
DELETE = """mutation($id: ID!) { deletePost(input: {id: $id}) { post { id } userErrors { code } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def processing_account(api, key, polls="3", **extra):
    return await sandbox_account(api, key, "video", processing_polls=polls, processing_seconds="60", **extra)


async def target_of(api, post_id) -> Target:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(Target).where(Target.post_id == post_id))).scalar_one()


async def check_now(api, post_id) -> None:
    """Let the target's next check come: its check time moves to now."""
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).where(Target.post_id == post_id).values(next_attempt_at=utcnow()))


async def uploads(api, account_id, target_id) -> dict:
    ctx = api.runtime.provider_context("sandbox", account_id, {})
    return await ctx.store.get("uploads", target_id)


async def attempts_of(api, target_id) -> list[tuple[int, str | None]]:
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(Attempt).where(Attempt.target_id == target_id).order_by(Attempt.number))).scalars()
        return [(a.number, a.outcome) for a in rows]


async def published_post(api, key, account_id, text) -> str:
    post_id = await new_post(api, key, [account_id], text)
    assert (await publish(api, key, post_id))["userErrors"] == []
    return post_id


async def test_processing_takes_poll_rounds_while_other_posts_keep_publishing_on_the_same_worker(api):
    org = await setup_org(api)
    video = await processing_account(api, org.secret)
    text = await sandbox_account(api, org.secret, "text")
    # One call slot in the whole worker: others can publish only if a processing target holds none.
    scheduler = scheduler_for(api, limits=Limits(batch=1, per_account=1))
    slow = await published_post(api, org.secret, video, "a video that takes three checks")
    job_id = (await publish(api, org.secret, slow))["job"]["id"]
    others = [await published_post(api, org.secret, text, words) for words in ("first words", "second words")]
    await scheduler.drain(horizon=1)

    view = (await api.graphql(POST, {"id": slow}, key=org.secret))["data"]["post"]
    [target] = view["targets"]
    assert view["status"] == "PROCESSING" and target["status"] == "PROCESSING" and target["stage"] == "uploaded"
    assert target["nextCheckAt"] is not None and target["attemptCount"] == 1
    for other in others:
        assert (await api.graphql(POST, {"id": other}, key=org.secret))["data"]["post"]["status"] == "PUBLISHED"
    stored = await target_of(api, slow)
    assert stored.lease_owner is None and stored.processing_handle == {"upload": stored.id}
    assert stored.next_attempt_at - utcnow() > timedelta(seconds=50)  # the sandbox asked for 60 s

    for round_number in (1, 2, 3):
        other = await published_post(api, org.secret, text, f"between checks {round_number}")
        await check_now(api, slow)
        await scheduler.drain(horizon=1)
        assert (await api.graphql(POST, {"id": other}, key=org.secret))["data"]["post"]["status"] == "PUBLISHED"
        status = (await target_of(api, slow)).status
        assert status == ("published" if round_number == 3 else "processing"), round_number

    assert await uploads(api, video, stored.id) == {"uploads": 1, "polls": 3}
    assert await attempts_of(api, stored.id) == [(1, "processing"), (2, "processing"), (3, "processing"), (4, "success")]
    view = (await api.graphql(POST, {"id": slow}, key=org.secret))["data"]["post"]
    assert view["status"] == "PUBLISHED"
    assert view["targets"][0]["stage"] is None and view["targets"][0]["nextCheckAt"] is None and view["targets"][0]["attemptCount"] == 1
    published = await target_of(api, slow)
    assert published.processing_handle is None and published.processing_deadline is None
    async with api.runtime.database.read() as session:
        events = list((await session.execute(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))).scalars())
    # Said once per change: the upload, the stage moving on, the post; the checks that found nothing new say nothing.
    target_events = [(e.kind, e.payload.get("stage")) for e in events if e.kind.startswith("target.")]
    assert target_events == [
        ("target.publishing", None), ("target.processing", "uploaded"), ("target.processing", "transcoding"), ("target.published", None),
    ]
    assert all(e.payload["nextAttemptAt"] for e in events if e.kind == "target.processing")
    assert [e.payload["status"] for e in events if e.kind == "post.status_changed"] == ["scheduled", "processing", "published"]
    assert events[-1].kind == "job.succeeded"


async def processing_then_stopped(api, text):
    """A post uploaded by a worker that then stopped: (its account, the post) while it is processing."""
    org = await setup_org(api)
    video = await processing_account(api, org.secret, polls="2")
    post_id = await published_post(api, org.secret, video, text)
    first = scheduler_for(api)
    await first.drain(horizon=1)
    await first.stop()
    assert (await target_of(api, post_id)).status == "processing"
    return video, post_id


async def test_a_worker_restart_between_checks_resumes_polling_without_a_second_upload(api):
    video, post_id = await processing_then_stopped(api, "restart between checks")

    second = scheduler_for(api)  # another process: all it has is the database
    for _ in range(2):
        await check_now(api, post_id)
        await second.drain(horizon=1)
    target = await target_of(api, post_id)
    assert target.status == "published"
    assert await uploads(api, video, target.id) == {"uploads": 1, "polls": 2}


async def test_a_worker_that_dies_mid_check_leaves_a_poll_that_recovery_resumes_never_unconfirmed(api):
    org = await setup_org(api)
    video = await processing_account(api, org.secret, polls="2")
    post_id = await published_post(api, org.secret, video, "restart during a check")
    first = scheduler_for(api)
    await first.drain(horizon=1)
    provider = api.runtime.plugins.get("sandbox")
    original, entered, never = provider.poll, asyncio.Event(), asyncio.Event()

    async def hangs_once(ctx, request, handle):
        if not entered.is_set():
            entered.set()
            await never.wait()  # the worker dies here: its task is cancelled mid-call
        return await original(ctx, request, handle)

    provider.poll = hangs_once
    await check_now(api, post_id)
    assert await first.tick() == 1
    await asyncio.wait_for(entered.wait(), 10)
    await first.stop(grace=0)
    target = await target_of(api, post_id)
    assert target.status == "publishing" and target.lease_owner is not None  # a call went out and never answered
    async with api.runtime.database.write() as session:  # its lease runs out
        await session.execute(update(Target).where(Target.id == target.id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))

    second = scheduler_for(api)
    assert await second.recover_expired() == 1
    resumed = await target_of(api, post_id)
    assert resumed.status == "processing" and resumed.processing_handle == {"upload": target.id} and resumed.lease_owner is None
    await second.drain(horizon=1)  # due at once: the cut-short check is made again, then the last
    await check_now(api, post_id)
    await second.drain(horizon=1)
    assert (await target_of(api, post_id)).status == "published"
    assert await uploads(api, video, target.id) == {"uploads": 1, "polls": 2}
    outcomes = [outcome for _, outcome in await attempts_of(api, target.id)]
    assert outcomes == ["processing", "lease_expired", "processing", "success"]


async def test_a_container_that_fails_processing_fails_cleanly_not_unconfirmed(api):
    org = await setup_org(api)
    video = await processing_account(api, org.secret, polls="1", processing_outcome="error")
    post_id = await published_post(api, org.secret, video, "broken media")
    scheduler = scheduler_for(api)
    await scheduler.drain(horizon=1)
    await check_now(api, post_id)
    await scheduler.drain(horizon=1)
    target = await target_of(api, post_id)
    assert (target.status, target.error_code) == ("failed", "SANDBOX_PROCESSING_FAILED")
    assert target.processing_handle is None and target.processing_stage is None
    assert [o for _, o in await attempts_of(api, target.id)] == ["processing", "rejected"]


async def test_a_check_that_meets_a_passing_error_keeps_the_target_processing(api):
    org = await setup_org(api)
    # One failure per operation: the first publish, then the first check, each fail once.
    video = await processing_account(api, org.secret, polls="1", failure_mode="transient", failure_count="1")
    post_id = await published_post(api, org.secret, video, "flaky checks")
    scheduler = scheduler_for(api)
    scheduler.retry.base_seconds = scheduler.retry.max_seconds = 30.0  # each retry waits for the test to let it come
    await scheduler.drain(horizon=1)
    assert (await target_of(api, post_id)).status == "retry_pending"
    for expected in ("processing", "processing"):  # the publish again; then the check, which fails
        await check_now(api, post_id)
        await scheduler.drain(horizon=1)
        assert (await target_of(api, post_id)).status == expected
    target = await target_of(api, post_id)
    assert (target.status, target.error_code) == ("processing", "SANDBOX_UNAVAILABLE")
    assert target.next_attempt_at - utcnow() > timedelta(seconds=20)
    assert target.attempt_count == 2  # two publishes; a check is no attempt at publishing
    await check_now(api, post_id)
    await scheduler.drain(horizon=1)
    target = await target_of(api, post_id)
    assert (target.status, target.error_code, target.attempt_count) == ("published", None, 2)
    assert [o for _, o in await attempts_of(api, target.id)] == ["transient", "processing", "transient", "success"]


@pytest.mark.parametrize(("public", "status"), [(False, "failed"), (True, "unconfirmed")])
async def test_past_the_deadline_processing_times_out(api, public, status):
    org = await setup_org(api)
    video = await processing_account(api, org.secret, polls="5")
    post_id = await published_post(api, org.secret, video, "never finishes")
    scheduler = scheduler_for(api)
    await scheduler.drain(horizon=1)
    async with api.runtime.database.write() as session:
        await session.execute(
            update(Target).where(Target.post_id == post_id)
            .values(processing_deadline=utcnow() - timedelta(seconds=1), processing_published=public, next_attempt_at=utcnow())
        )
    await scheduler.drain(horizon=1)
    target = await target_of(api, post_id)
    assert (target.status, target.error_code) == (status, "PROCESSING_TIMEOUT")
    assert ("already public" in target.error_message) is public
    assert target.processing_handle is None and target.next_attempt_at is None


async def test_post_commands_on_a_processing_target(api):
    org = await setup_org(api)
    video = await processing_account(api, org.secret, polls="2")
    scheduler = scheduler_for(api)
    canceled = await published_post(api, org.secret, video, "cancel me")
    deleted = await published_post(api, org.secret, video, "delete me")
    await scheduler.drain(horizon=1)

    edit = (await api.graphql(UPDATE, {"id": canceled}, key=org.secret))["data"]["updatePost"]
    assert edit["userErrors"] == [{"code": "POST_PROCESSING", "field": ["id"]}]
    cancel = (await api.graphql(CANCEL, {"id": canceled}, key=org.secret))["data"]["cancelPost"]
    assert cancel["userErrors"] == [] and cancel["post"]["status"] == "CANCELED"
    removed = (await api.graphql(DELETE, {"id": deleted}, key=org.secret))["data"]["deletePost"]
    assert removed["userErrors"] == []
    for post_id in (canceled, deleted):
        await check_now(api, post_id)
    await scheduler.drain(horizon=1)
    for post_id in (canceled, deleted):
        target = await target_of(api, post_id)
        assert target.status == "canceled" and target.processing_handle is None
        assert (await uploads(api, video, target.id))["polls"] == 0  # never checked again


async def test_a_processing_target_whose_check_is_overdue_with_no_worker_is_reported(api):
    from gateway.storage.worker_heartbeats import find_stall

    _, post_id = await processing_then_stopped(api, "who checks on me?")
    check_at = (await target_of(api, post_id)).next_attempt_at
    # The worker beat while it ran; an hour after the check was due, nobody is alive to make it.
    stall = await find_stall(api.runtime.database, poll_seconds=1.0, now=check_at + timedelta(hours=1))
    assert stall is not None and stall.waiting == 1


def test_a_provider_asking_to_check_again_at_once_is_checked_a_second_later_and_the_deadline_counts_from_the_first_answer():
    from types import SimpleNamespace

    from gateway.engine import processing
    from gateway.engine.calls import Outcome
    from providers import Processing

    now = utcnow()
    target = SimpleNamespace(
        status="publishing", next_attempt_at=None, error_code=None, error_message=None,
        processing_handle=None, processing_stage=None, processing_published=False, processing_deadline=None,
    )
    answer = Processing(handle={"container": "c1"}, check_after=timedelta(0), deadline=timedelta(minutes=5))
    assert processing.wait(target, Outcome("processing", processing=answer), now, timedelta(0))
    assert (target.status, target.next_attempt_at, target.processing_deadline) == ("processing", now + timedelta(seconds=1), now + timedelta(minutes=5))
    later = now + timedelta(minutes=4, seconds=59, milliseconds=500)
    slow = Processing(handle={"container": "c1"}, check_after=timedelta(minutes=2), deadline=timedelta(minutes=5))
    assert processing.wait(target, Outcome("processing", processing=slow), later, timedelta(0))
    assert target.next_attempt_at == now + timedelta(minutes=5)  # never checked after the deadline: the last check is at it
    assert target.processing_deadline == now + timedelta(minutes=5)  # a later answer does not move it
