"""A post's lifecycle, finished (issue 17, point 6): attempts, reconcilePost, deletePost on the platforms."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.storage.models import Post, Target
from providers import Capabilities, Provider, PublishResult, TransientError, hookimpl
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org
from tests.waiting import until

POST = """query($id: ID!) { post(id: $id) { status targets { id status platformPostId error { code }
  attempts { number startedAt finishedAt outcome errorCode httpStatus durationMs } } } }"""
RECONCILE = """mutation($id: ID!) { reconcilePost(input: {postId: $id}) { post { status targets { status } } userErrors { field code } } }"""
DELETE = """mutation($id: ID!, $fromPlatforms: Boolean!) { deletePost(input: {id: $id, fromPlatforms: $fromPlatforms}) {
  post { id } job { id kind status } userErrors { field code message } } }"""
JOB = """query($id: ID!) { job(id: $id) { kind status progress { done total } error { code } result events { kind payload } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def _published_post(api, org, *handles: str, **credentials: str) -> tuple[str, list[str]]:
    accounts = [await sandbox_account(api, org.secret, handle, **credentials) for handle in handles or ("me",)]
    post_id = await new_post(api, org.secret, accounts)
    assert (await publish(api, org.secret, post_id))["userErrors"] == []
    await scheduler_for(api).drain()
    return post_id, accounts


async def _post(api, org, post_id):
    return (await api.graphql(POST, {"id": post_id}, key=org.secret))["data"]["post"]


async def _stored_sandbox_post(api, account_id: str, platform_post_id: str) -> dict | None:
    store = api.runtime.provider_context("sandbox", account_id, {}).store
    return await store.get("post", platform_post_id)


# -- attempts ------------------------------------------------------------------------------------


async def test_a_targets_attempts_come_from_the_attempt_rows(api):
    org = await setup_org(api)
    post_id, _ = await _published_post(api, org, "me", failure_mode="transient", failure_count="2")
    [target] = (await _post(api, org, post_id))["targets"]
    attempts = target["attempts"]
    assert [(a["number"], a["outcome"], a["errorCode"], a["httpStatus"]) for a in attempts] == [
        (1, "transient", "SANDBOX_UNAVAILABLE", 503), (2, "transient", "SANDBOX_UNAVAILABLE", 503), (3, "success", None, None),
    ]
    assert all(a["finishedAt"] >= a["startedAt"] and a["durationMs"] >= 0 for a in attempts)


async def test_attempts_of_a_page_of_posts_take_one_query(api):
    """A DataLoader: the statement count does not grow with the number of targets."""
    from sqlalchemy import event

    org = await setup_org(api)
    for _ in range(3):
        await _published_post(api, org, "me")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(api.runtime.database.engine.sync_engine, "before_cursor_execute", count)
    try:
        body = await api.graphql("{ posts(first: 10) { nodes { targets { attempts { number } } } } }", key=org.secret)
    finally:
        event.remove(api.runtime.database.engine.sync_engine, "before_cursor_execute", count)
    assert len(body["data"]["posts"]["nodes"]) == 3
    assert sum("FROM attempts" in s for s in statements) == 1


# -- reconcilePost -------------------------------------------------------------------------------


def _platform_visibility(runtime, visible: list[bool]):
    """The sandbox's reconcile sees the post only once ``visible[0]`` is set (a platform slow to list it)."""
    provider = runtime.plugins.get("sandbox")
    original = provider.reconcile

    async def reconcile(ctx, request):
        return await original(ctx, request) if visible[0] else None

    provider.reconcile = reconcile


async def test_reconcile_post_finds_an_unconfirmed_post_without_publishing_again(api):
    org = await setup_org(api)
    visible = [False]
    _platform_visibility(api.runtime, visible)
    publishes = []
    provider = api.runtime.plugins.get("sandbox")
    original_publish = provider.publish

    async def counted(ctx, request):
        publishes.append(request.idempotency_key)
        return await original_publish(ctx, request)

    provider.publish = counted
    post_id, _ = await _published_post(api, org, "me", failure_mode="unconfirmed", failure_count="0")
    assert (await _post(api, org, post_id))["targets"][0]["status"] == "UNCONFIRMED"

    still = (await api.graphql(RECONCILE, {"id": post_id}, key=org.secret))["data"]["reconcilePost"]
    assert still["userErrors"] == [] and still["post"]["targets"][0]["status"] == "UNCONFIRMED"
    visible[0] = True
    found = (await api.graphql(RECONCILE, {"id": post_id}, key=org.secret))["data"]["reconcilePost"]
    assert found["userErrors"] == []
    post = await _post(api, org, post_id)
    assert post["status"] == "PUBLISHED" and post["targets"][0]["platformPostId"].startswith("sb_")
    assert [a["outcome"] for a in post["targets"][0]["attempts"]] == ["unconfirmed", "unconfirmed", "success"]
    assert len(publishes) == 1  # reconciled, never published again


async def test_reconcile_post_with_nothing_unconfirmed_is_a_user_error(api):
    org = await setup_org(api)
    post_id, _ = await _published_post(api, org, "me")
    payload = (await api.graphql(RECONCILE, {"id": post_id}, key=org.secret))["data"]["reconcilePost"]
    assert payload["userErrors"] == [{"field": ["postId"], "code": "NOTHING_TO_RECONCILE"}]
    other = await setup_org(api)
    foreign = (await api.graphql(RECONCILE, {"id": post_id}, key=other.secret))["data"]["reconcilePost"]
    assert foreign["userErrors"][0]["code"] == "POST_NOT_FOUND"


async def test_a_reconcile_cut_short_is_finished_by_recovery(api, monkeypatch):
    """The target holds a lease like any taken-over call: if the process stops before the answer, recovery reconciles it."""
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.core.clock import utcnow
    from gateway.engine.recovery import Recovery

    org = await setup_org(api)
    visible = [False]
    _platform_visibility(api.runtime, visible)
    post_id, _ = await _published_post(api, org, "me", failure_mode="unconfirmed", failure_count="0")

    async def stopped(self, target_id, attempt_id):  # the process died before the platform answered
        return None

    monkeypatch.setattr(Recovery, "reconcile_taken_over", stopped)
    await api.graphql(RECONCILE, {"id": post_id}, key=org.secret)
    monkeypatch.undo()
    assert (await _post(api, org, post_id))["targets"][0]["status"] == "PUBLISHING"
    visible[0] = True
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert await scheduler_for(api).recover_expired() == 1
    assert (await _post(api, org, post_id))["targets"][0]["status"] == "PUBLISHED"


# -- deletePost(fromPlatforms) -------------------------------------------------------------------


async def _finished(api, org, job_id: str) -> dict:
    async def done() -> bool:
        job = (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]
        return job["status"] not in ("QUEUED", "RUNNING")

    await until(done)
    return (await api.graphql(JOB, {"id": job_id}, key=org.secret))["data"]["job"]


async def test_delete_post_from_platforms_deletes_each_target_there_as_a_job(api):
    org = await setup_org(api)
    post_id, accounts = await _published_post(api, org, "alice", "bob")
    before = await _post(api, org, post_id)
    platform_ids = {t["id"]: t["platformPostId"] for t in before["targets"]}

    payload = (await api.graphql(DELETE, {"id": post_id, "fromPlatforms": True}, key=org.secret))["data"]["deletePost"]
    assert payload["userErrors"] == [] and payload["job"]["kind"] == "delete"
    job = await _finished(api, org, payload["job"]["id"])
    assert job["status"] == "SUCCEEDED" and job["progress"] == {"done": 2, "total": 2}
    kinds = [e["kind"] for e in job["events"]]
    assert kinds[0] == "job.queued" and kinds.count("target.deleted") == 2 and kinds[-1] == "job.succeeded"
    async with api.runtime.database.read() as session:
        targets = list((await session.execute(select(Target).where(Target.post_id == post_id))).scalars())
    # Each target's post is looked up on its own account (the API lists targets in no promised order).
    assert sorted(t.account_id for t in targets) == sorted(accounts)
    for target in targets:
        stored = await _stored_sandbox_post(api, target.account_id, platform_ids[target.id])
        assert stored is not None and stored["deleted_at"] is not None  # gone on the platform
    async with api.runtime.database.read() as session:
        assert {t.status for t in targets} == {"deleted"}
        assert (await session.get(Post, post_id)).deleted_at is not None
    assert await _post(api, org, post_id) is None  # the post left the API


async def test_a_refused_delete_keeps_the_target_published_with_the_platforms_error(api):
    org = await setup_org(api)
    post_id, _ = await _published_post(api, org, "me")
    provider = api.runtime.plugins.get("sandbox")

    async def refused(ctx, platform_post_id):
        raise TransientError("sandbox unavailable", code="SANDBOX_UNAVAILABLE", http_status=503)

    provider.delete = refused
    payload = (await api.graphql(DELETE, {"id": post_id, "fromPlatforms": True}, key=org.secret))["data"]["deletePost"]
    job = await _finished(api, org, payload["job"]["id"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "TARGETS_FAILED"
    post = await _post(api, org, post_id)  # still in the API, so it can be asked again
    [target] = post["targets"]
    assert (target["status"], target["error"]["code"]) == ("PUBLISHED", "SANDBOX_UNAVAILABLE")
    assert [(a["outcome"], a["errorCode"], a["httpStatus"]) for a in target["attempts"]][-1] == (
        "delete_failed", "SANDBOX_UNAVAILABLE", 503,
    )


class CannotDelete(Provider):
    id = "nodelete"
    name = "No delete"
    capabilities = Capabilities()

    async def publish(self, ctx, request):
        return PublishResult(platform_post_id="nd_" + request.idempotency_key, url=None)

    async def connect(self, ctx, credentials):
        from providers import AccountProfile

        return AccountProfile(external_id="nodelete:me", handle="me", display_name="Me")


class CannotDeletePlugin:
    @hookimpl
    def register_providers(self):
        return [CannotDelete()]


async def test_a_provider_that_cannot_delete_answers_a_user_error_per_target_and_nothing_changes(api):
    assert api.runtime.plugins.add("nodelete", CannotDeletePlugin()).loaded
    org = await setup_org(api)
    sandbox = await sandbox_account(api, org.secret, "me")
    body = await api.graphql(
        """mutation { connectAccount(input: {provider: "nodelete", credentials: {}}) { account { id } userErrors { code } } }""",
        key=org.secret,
    )
    other = body["data"]["connectAccount"]["account"]["id"]
    post_id = await new_post(api, org.secret, [sandbox, other])
    await publish(api, org.secret, post_id)
    await scheduler_for(api).drain()

    payload = (await api.graphql(DELETE, {"id": post_id, "fromPlatforms": True}, key=org.secret))["data"]["deletePost"]
    assert [e["code"] for e in payload["userErrors"]] == ["DELETE_NOT_SUPPORTED"]
    assert payload["userErrors"][0]["field"] == ["fromPlatforms"] and "nodelete" in payload["userErrors"][0]["message"]
    assert payload["job"] is None
    post = await _post(api, org, post_id)
    assert {t["status"] for t in post["targets"]} == {"PUBLISHED"}


async def test_delete_post_without_from_platforms_leaves_the_platforms_alone(api):
    org = await setup_org(api)
    post_id, [account_id] = await _published_post(api, org, "me")
    platform_id = (await _post(api, org, post_id))["targets"][0]["platformPostId"]
    payload = (await api.graphql(DELETE, {"id": post_id, "fromPlatforms": False}, key=org.secret))["data"]["deletePost"]
    assert payload["userErrors"] == [] and payload["job"] is None
    assert (await _stored_sandbox_post(api, account_id, platform_id))["deleted_at"] is None
