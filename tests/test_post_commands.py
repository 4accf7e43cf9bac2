"""Commands that take a post back or change it: delete, update, and the media a post uses.

Every command that cancels targets goes through one path, so each leaves the same trail:
``target.canceled`` per target, the job's final ``job.*`` event, the post's new status. Policy
hooks run outside the write transaction, and an idempotency key's first request keeps its claim
while they run. Tests wait on events and conditions, never on time.
"""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.auth.keys import authenticate
from gateway.core.clock import utcnow
from gateway.storage.models import Job, JobEvent, Target
from providers import hookimpl
from schema.context import Context
from schema.root import build_schema
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

SCHEDULE = """mutation($input: SchedulePostInput!) { schedulePost(input: $input) { job { id } userErrors { code } } }"""
DELETE = """mutation($id: ID!) { deletePost(input: {id: $id}) { post { id } userErrors { code field } } }"""
JOB_EVENTS = "subscription($id: ID!) { jobEvents(jobId: $id) { seq kind payload } }"


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def _schedule_later(api, org, post_id) -> str:
    later = (utcnow() + timedelta(hours=2)).isoformat()
    body = await api.graphql(SCHEDULE, {"input": {"postId": post_id, "publishAt": later}}, key=org.secret)
    assert body["data"]["schedulePost"]["userErrors"] == [], body
    return body["data"]["schedulePost"]["job"]["id"]


async def _job_events(api, job_id) -> list[tuple[str, dict]]:
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))).scalars()
        return [(row.kind, row.payload) for row in rows]


async def test_deleting_a_scheduled_post_ends_its_job_and_its_subscribers(api):
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, handle) for handle in ("one", "two")]
    post_id = await new_post(api, org.secret, accounts)
    job_id = await _schedule_later(api, org, post_id)
    async with api.runtime.database.read() as session:
        principal = await authenticate(session, org.secret)
    context = Context(runtime=api.runtime, request=None, response=None, request_id="req_test", principal_or_error=principal)
    stream = await build_schema().subscribe(JOB_EVENTS, variable_values={"id": job_id}, context_value=context)
    first = await asyncio.wait_for(stream.__anext__(), 10)
    assert first.data["jobEvents"]["kind"] == "job.queued"  # the subscriber is following the job

    deleted = await api.graphql(DELETE, {"id": post_id}, key=org.secret)
    assert deleted["data"]["deletePost"]["userErrors"] == []

    async def rest() -> list[str]:
        return [result.data["jobEvents"]["kind"] async for result in stream]

    kinds = await asyncio.wait_for(rest(), 10)  # the stream ends: the job ended
    assert kinds.count("target.canceled") == 2 and kinds[-1] == "job.canceled", kinds
    async with api.runtime.database.read() as session:
        job = await session.get(Job, job_id)
        statuses = (await session.execute(select(Target.status).where(Target.post_id == post_id))).scalars().all()
    assert job.status == "canceled" and job.progress_done == 2 and job.finished_at is not None
    assert statuses == ["canceled", "canceled"]
    changed = [payload for kind, payload in await _job_events(api, job_id) if kind == "post.status_changed"]
    assert changed[-1] == {"postId": post_id, "status": "canceled", "previousStatus": "scheduled"}


async def test_deleting_a_partly_published_post_cancels_the_rest_and_finishes_the_job(api):
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, handle) for handle in ("done", "waiting")]
    post_id = await new_post(api, org.secret, accounts)
    job_id = await _schedule_later(api, org, post_id)
    async with api.runtime.database.write() as session:  # one target went out already
        target = (await session.execute(select(Target).where(Target.account_id == accounts[0]))).scalar_one()
        target.status, target.platform_post_id = "published", "sb_1"

    deleted = await api.graphql(DELETE, {"id": post_id}, key=org.secret)
    assert deleted["data"]["deletePost"]["userErrors"] == []
    async with api.runtime.database.read() as session:
        job = await session.get(Job, job_id)
        statuses = dict((await session.execute(select(Target.account_id, Target.status))).all())
    assert statuses == {accounts[0]: "published", accounts[1]: "canceled"}
    assert job.status == "partial" and job.progress_done == 2
    kinds = [kind for kind, _ in await _job_events(api, job_id)]
    assert kinds.count("target.canceled") == 1 and "job.partial" in kinds


async def test_deleting_a_post_being_published_is_a_conflict(api):
    org = await setup_org(api)
    post_id = await new_post(api, org.secret, [await sandbox_account(api, org.secret)])
    await publish(api, org.secret, post_id)
    async with api.runtime.database.write() as session:
        (await session.execute(select(Target).where(Target.post_id == post_id))).scalar_one().status = "publishing"
    body = await api.graphql(DELETE, {"id": post_id}, key=org.secret)
    assert body["data"]["deletePost"]["userErrors"] == [{"code": "CONFLICT", "field": ["id"]}]
    assert (await api.graphql("query($id: ID!) { post(id: $id) { id } }", {"id": post_id}, key=org.secret))["data"]["post"] == {"id": post_id}


# -- media a post uses ----------------------------------------------------------------------------

DELETE_MEDIA = """mutation($id: ID!) { deleteMedia(input: {id: $id}) { mediaAsset { id } userErrors { code field message } } }"""


class _Bytes:
    def __init__(self, content: bytes) -> None:
        self._content = content

    async def read(self, size: int) -> bytes:
        chunk, self._content = self._content[:size], self._content[size:]
        return chunk


async def _image(api, org) -> str:
    from gateway.content.media import upload_media
    from tests import media_samples

    asset = await upload_media(
        api.runtime.database,
        api.runtime.settings,
        org.organization_id,
        secret_key=api.runtime.secret_key,
        source=_Bytes(media_samples.png()),
        filename="a.png",
        mime_type="image/png",
    )
    return asset.id


async def test_media_a_post_still_to_publish_uses_cannot_be_deleted(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    media_id = await _image(api, org)
    draft = await new_post(api, org.secret, [account], mediaIds=[media_id])
    scheduled = await new_post(api, org.secret, [account], text="later", mediaIds=[media_id])
    await _schedule_later(api, org, scheduled)

    refused = (await api.graphql(DELETE_MEDIA, {"id": media_id}, key=org.secret))["data"]["deleteMedia"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("MEDIA_IN_USE", ["input", "id"])]
    assert draft in refused["userErrors"][0]["message"] and scheduled in refused["userErrors"][0]["message"]
    for post_id in (draft, scheduled):
        assert (await api.graphql(DELETE, {"id": post_id}, key=org.secret))["data"]["deletePost"]["userErrors"] == []
    deleted = (await api.graphql(DELETE_MEDIA, {"id": media_id}, key=org.secret))["data"]["deleteMedia"]
    assert deleted == {"mediaAsset": {"id": media_id}, "userErrors": []}


async def test_a_target_whose_media_is_gone_fails_instead_of_publishing_without_it(api):
    from gateway.storage.models import MediaAsset

    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    media_id = await _image(api, org)
    post_id = await new_post(api, org.secret, [account], mediaIds=[media_id])
    await publish(api, org.secret, post_id)
    provider = api.runtime.plugins.get("sandbox")
    calls = []
    original = provider.publish

    async def counted(ctx, request):
        calls.append(request)
        return await original(ctx, request)

    provider.publish = counted
    async with api.runtime.database.write() as session:  # gone by a way the API no longer offers
        (await session.get(MediaAsset, media_id)).deleted_at = utcnow()
    await scheduler_for(api).drain()
    async with api.runtime.database.read() as session:
        target = (await session.execute(select(Target).where(Target.post_id == post_id))).scalar_one()
    assert (target.status, target.error_code, target.platform_post_id) == ("failed", "MEDIA_MISSING", None)
    assert media_id in target.error_message
    assert calls == []


# -- policy hooks run outside the write transaction ----------------------------------------------

CREATE = """mutation($input: CreatePostInput!) { createPost(input: $input) { post { id text } userErrors { code field } } }"""
UPDATE = """mutation($id: ID!, $text: String!) { updatePost(input: {id: $id, text: $text}) { post { text } userErrors { code } } }"""
PUBLISH = """mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code field message } } }"""
CONNECT = """mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } userErrors { code } } }"""


class SlowPolicy:
    """A moderation check that waits, on its first call, until the test lets it answer."""

    def __init__(self, on_call=None) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.texts: list[str] = []
        self.on_call = on_call

    @hookimpl
    async def validate_post(self, draft):
        self.texts.append(draft.text)
        if len(self.texts) == 1:
            self.entered.set()
            await self.release.wait()
        if self.on_call is not None:
            await self.on_call(len(self.texts))
        return []


def _install(api, policy: SlowPolicy) -> SlowPolicy:
    assert api.runtime.plugins.add("slow-policy", policy).error is None
    return policy


async def _post_text(api, post_id) -> str:
    from gateway.storage.models import Post

    async with api.runtime.database.read() as session:
        return (await session.get(Post, post_id)).text


async def test_a_slow_policy_hook_does_not_hold_up_other_writes(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    policy = _install(api, SlowPolicy())
    create = asyncio.create_task(api.graphql(CREATE, {"input": {"text": "checked", "targets": [{"accountId": account}]}}, key=org.secret))
    await asyncio.wait_for(policy.entered.wait(), 10)
    # While the moderation call is out, another request writes and is done.
    other = await asyncio.wait_for(api.graphql(CONNECT, {"c": {"handle": "meanwhile"}}, key=org.secret), 10)
    assert other["data"]["connectAccount"]["userErrors"] == []
    assert not create.done()
    policy.release.set()
    created = (await asyncio.wait_for(create, 10))["data"]["createPost"]
    assert created["userErrors"] == [] and created["post"]["text"] == "checked"


async def test_a_post_edited_while_its_publish_is_checked_is_checked_again(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account], text="first words")
    policy = _install(api, SlowPolicy())
    publishing = asyncio.create_task(api.graphql(PUBLISH, {"id": post_id}, key=org.secret))
    await asyncio.wait_for(policy.entered.wait(), 10)
    edited = await asyncio.wait_for(api.graphql(UPDATE, {"id": post_id, "text": "second words"}, key=org.secret), 10)
    assert edited["data"]["updatePost"]["userErrors"] == []
    policy.release.set()
    published = (await asyncio.wait_for(publishing, 10))["data"]["publishPost"]
    assert published["userErrors"] == []
    # The publish checked the first text, saw it had changed, and checked what it queued.
    assert policy.texts == ["first words", "second words", "second words"]
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(Target.status).where(Target.post_id == post_id))).scalar_one() == "scheduled"


async def test_a_post_that_keeps_changing_under_its_check_is_a_conflict(api):
    from gateway.storage.models import Post

    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account], text="v0")

    async def edit_meanwhile(calls: int) -> None:  # another client edits the draft during every check
        async with api.runtime.database.write() as session:
            (await session.get(Post, post_id)).text = f"v{calls}"

    policy = _install(api, SlowPolicy(on_call=edit_meanwhile))
    policy.release.set()
    body = await asyncio.wait_for(api.graphql(PUBLISH, {"id": post_id}, key=org.secret), 60)
    assert [e["code"] for e in body["data"]["publishPost"]["userErrors"]] == ["CONFLICT"], body
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(Target.status).where(Target.post_id == post_id))).scalar_one() == "draft"
        assert (await session.execute(select(Job.id))).first() is None


# -- idempotency keys while the first request is still checking ---------------------------------


def _create_once(account: str, key: str) -> dict:
    return {"input": {"text": "once", "targets": [{"accountId": account}], "idempotencyKey": key}}


async def _posts_made(api) -> int:
    from sqlalchemy import func

    from gateway.storage.models import Post

    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Post))).scalar()


async def test_a_duplicate_waits_for_the_first_with_reads_not_write_transactions(api, monkeypatch):
    import sys

    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    policy = _install(api, SlowPolicy())
    first = asyncio.create_task(api.graphql(CREATE, _create_once(account, "dup-1"), key=org.secret))
    await asyncio.wait_for(policy.entered.wait(), 10)

    database = api.runtime.database
    claims = {"read": 0, "write": 0}  # sessions opened by idempotency's claim step (the duplicate's polls)
    polling = asyncio.Event()

    def counting(kind, original):
        def session():
            if sys._getframe(1).f_code.co_name == "_claim":
                claims[kind] += 1
                if claims["read"] >= 10:
                    polling.set()
            return original()

        return session

    monkeypatch.setattr(database, "read", counting("read", database.read))
    monkeypatch.setattr(database, "write", counting("write", database.write))
    duplicate = asyncio.create_task(api.graphql(CREATE, _create_once(account, "dup-1"), key=org.secret))
    await asyncio.wait_for(polling.wait(), 20)  # the duplicate has looked ten times
    assert claims["write"] == 0, "the waiting duplicate opened write transactions"
    assert not duplicate.done()
    policy.release.set()
    results = [(await asyncio.wait_for(task, 10))["data"]["createPost"] for task in (first, duplicate)]
    assert results[0] == results[1] and results[0]["userErrors"] == []
    assert await _posts_made(api) == 1


async def test_a_claim_stays_alive_while_its_request_is_still_checking(api, monkeypatch):
    import gateway.storage.idempotency as idempotency
    from gateway.storage.models import IdempotencyRecord

    ahead = timedelta(0)
    monkeypatch.setattr(idempotency, "utcnow", lambda: utcnow() + ahead)
    monkeypatch.setattr(idempotency, "HEARTBEAT_SECONDS", 0.01, raising=False)
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    policy = _install(api, SlowPolicy())
    first = asyncio.create_task(api.graphql(CREATE, _create_once(account, "alive-1"), key=org.secret))
    await asyncio.wait_for(policy.entered.wait(), 10)

    ahead = timedelta(minutes=5)  # the moderation call has been out for five minutes
    async with asyncio.timeout(10):  # the live holder has refreshed its claim since
        while True:
            async with api.runtime.database.read() as session:
                claim = (await session.execute(select(IdempotencyRecord))).scalar_one()
            if claim.created_at >= utcnow() + ahead - timedelta(seconds=30):
                break
            await asyncio.sleep(0.01)
    duplicate = asyncio.create_task(api.graphql(CREATE, _create_once(account, "alive-1"), key=org.secret))
    policy.release.set()
    results = [(await asyncio.wait_for(task, 20))["data"]["createPost"] for task in (first, duplicate)]
    assert results[0] == results[1] and results[0]["userErrors"] == []
    assert await _posts_made(api) == 1
    assert policy.texts == ["once"]  # the duplicate did not take the claim over and check again
