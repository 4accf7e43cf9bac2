"""The grown-up backend: the same service on a real PostgreSQL (DESIGN.md §8: both run in CI).

Migrations, the models/migrations match, the refusal to start on an unmigrated database, and the
publishing engine's guarantees where PostgreSQL differs from SQLite: concurrent writers, the
FOR UPDATE SKIP LOCKED claim, and the job row locks that number events.
"""

import asyncio
import os

import pytest
from sqlalchemy import func, select

from gateway.settings import StartupError, load_settings
from gateway.storage.models import Attempt, Job, JobEvent, Target
from tests.lifespan import lifespan_of
from tests.peers.postgres_peer import PostgresUnavailable, running_postgres

pytestmark = pytest.mark.e2e

# On PostgreSQL the key is never generated: every process is given the same one.
SECRET_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@pytest.fixture(scope="module")
def postgres_url():
    try:
        with running_postgres() as url:
            yield url
    except PostgresUnavailable as reason:
        if os.environ.get("CI"):
            raise  # CI installs PostgreSQL: its absence there is a failure, not a skip
        pytest.skip(str(reason))


@pytest.fixture
def pg_settings(postgres_url, tmp_path):
    return load_settings(
        database_url=postgres_url, data_dir=str(tmp_path), secret_key=SECRET_KEY, run_scheduler=False,
        retry_base_seconds=0.01, retry_max_seconds=0.05,
    )


@pytest.fixture
async def migrated(pg_settings):
    from gateway.storage import Database
    from gateway.storage.migrate import upgrade

    database = Database(pg_settings.database_url)
    await upgrade(database)
    await database.dispose()
    return pg_settings


@pytest.fixture
async def pg_api(migrated):
    """The app on the migrated PostgreSQL database, with an in-process client."""
    import httpx
    
    from gateway.app import create_app
    from tests.conftest import ApiClient

    app = create_app(migrated)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            yield ApiClient(http=http, runtime=app.state.runtime)


async def test_migrations_on_postgres(pg_settings):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from gateway.runtime import Runtime
    from gateway.storage import Database
    from gateway.storage.migrate import current_revision, head_revision, upgrade
    from gateway.storage.models import Base

    runtime = Runtime(pg_settings)
    try:
        if await current_revision(runtime.database) != head_revision():
            with pytest.raises(StartupError, match="socialgate migrate"):
                await runtime.start()  # a shared database is migrated in a deploy step, never by serve
    finally:
        await runtime.stop()
    database = Database(pg_settings.database_url)
    try:
        await upgrade(database)
        await upgrade(database)  # again: nothing to do
        assert await current_revision(database) == head_revision()
        async with database.engine.connect() as connection:
            assert await connection.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)) == []
    finally:
        await database.dispose()


async def test_media_token_migration_on_postgres(postgres_url, tmp_path):
    """Revision 0004 converts a plaintext media token on PostgreSQL too, in its own database."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.test_private_files import assert_the_migration_hashes_existing_tokens

    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text("CREATE DATABASE legacy_media"))
    await admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/legacy_media"
    await assert_the_migration_hashes_existing_tokens(load_settings(database_url=url, data_dir=str(tmp_path), secret_key=SECRET_KEY, run_scheduler=False))


async def test_publishing_guarantees_on_postgres(pg_api):
    from tests.engine import new_post, publish, sandbox_account, scheduler_for, setup_org

    api = pg_api
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, f"pg{i}") for i in range(4)]
    flaky = await sandbox_account(api, org.secret, "pgflaky", failure_mode="transient", failure_count="2")
    posts = [await new_post(api, org.secret, accounts + [flaky], text=f"pg {i}") for i in range(6)]
    # Twenty concurrent publishes of one post: one job.
    jobs = await asyncio.gather(*(publish(api, org.secret, posts[0]) for _ in range(20)))
    assert len({j["job"]["id"] for j in jobs}) == 1
    for post_id in posts[1:]:
        await publish(api, org.secret, post_id)
    # Two schedulers on one PostgreSQL: SKIP LOCKED claims, no target published twice.
    first, second = scheduler_for(api, worker_id="pg-one"), scheduler_for(api, worker_id="pg-two")
    await asyncio.gather(first.drain(timeout=60), second.drain(timeout=60))
    async with api.runtime.database.read() as session:
        statuses = (await session.execute(select(Target.status))).scalars().all()
        successes = (await session.execute(
            select(Attempt.target_id, func.count()).where(Attempt.outcome == "success").group_by(Attempt.target_id)
        )).all()
        job_statuses = set((await session.execute(select(Job.status))).scalars())
        duplicate_seqs = (await session.execute(
            select(JobEvent.job_id, JobEvent.seq, func.count()).group_by(JobEvent.job_id, JobEvent.seq).having(func.count() > 1)
        )).all()
    assert set(statuses) == {"published"} and len(statuses) == 30
    assert len(successes) == 30 and all(count == 1 for _, count in successes)
    assert job_statuses == {"succeeded"}
    assert duplicate_seqs == []


async def test_concurrent_puts_of_one_provider_record(migrated):
    """Two calls of one account storing the same key at once (a session refresh, a counter) never collide."""
    from gateway.runtime import Runtime

    runtime = Runtime(migrated)
    await runtime.start()
    try:
        store = runtime.provider_context("sandbox", "acct_race", {}).store
        await asyncio.gather(*(store.put("session", "current", {"n": n}) for n in range(20)))
        assert (await store.get("session", "current"))["n"] in range(20)
        assert [key for key, _ in await store.list("session")] == ["current"]
    finally:
        await runtime.stop()


async def test_concurrent_connects_of_one_identity_make_one_account(pg_api):
    from gateway.storage.models import Account
    from tests.conftest import make_org_with_key
    from tests.engine import CONNECT

    org = await make_org_with_key(pg_api.runtime)
    bodies = await asyncio.gather(*(pg_api.graphql(CONNECT, {"c": {"handle": "twin"}}, key=org.secret) for _ in range(10)))
    ids = {b["data"]["connectAccount"]["account"]["id"] for b in bodies}
    assert len(ids) == 1, bodies
    async with pg_api.runtime.database.read() as session:
        count = (await session.execute(select(func.count()).select_from(Account).where(Account.organization_id == org.organization_id))).scalar()
    assert count == 1


async def test_cancelling_while_a_claim_holds_the_target_waits_instead_of_deadlocking(pg_api):
    """The engine locks a target, then its job; cancelPost takes them in that order too."""
    from sqlalchemy import update

    from tests.engine import new_post, publish, sandbox_account, setup_org

    org = await setup_org(pg_api)
    account = await sandbox_account(pg_api, org.secret, "lockorder")
    post_id = await new_post(pg_api, org.secret, [account])
    job_id = (await publish(pg_api, org.secret, post_id))["job"]["id"]
    cancel_post = "mutation($id: ID!) { cancelPost(input: {postId: $id}) { userErrors { code } } }"
    async with pg_api.runtime.database.write() as claim:  # a claim, between its two steps
        await claim.execute(update(Target).where(Target.post_id == post_id).values(status="publishing"))
        cancel = asyncio.create_task(pg_api.graphql(cancel_post, {"id": post_id}, key=org.secret))
        await _until_a_transaction_waits_for_a_lock(pg_api.runtime.database)  # the cancel waits for the target
        await claim.execute(select(Job.id).where(Job.id == job_id).with_for_update())  # the claim's job lock
    body = await asyncio.wait_for(cancel, 30)
    assert "errors" not in body, body
    # The claim committed first: the target is publishing, so there is nothing left to cancel.
    assert body["data"]["cancelPost"]["userErrors"] == [{"code": "NOTHING_TO_CANCEL"}]


async def test_org_events_reach_another_process_on_postgres(pg_api, migrated):
    """account.connected is stored with the account; another process's relay carries it (12.7)."""
    from gateway.runtime import Runtime
    from tests.conftest import make_org_with_key
    from tests.engine import CONNECT

    other = Runtime(migrated)  # a second gateway process on the same database
    await other.start()
    try:
        org = await make_org_with_key(pg_api.runtime)
        subscription = other.events.subscribe(org.organization_id)
        body = await pg_api.graphql(CONNECT, {"c": {"handle": "elsewhere"}}, key=org.secret)
        await other.relay.relay_once()
        event = await asyncio.wait_for(subscription.next(), 5)
    finally:
        await other.stop()
    assert event.kind == "account.connected"
    assert event.payload == {"accountId": body["data"]["connectAccount"]["account"]["id"], "provider": "sandbox", "connectionId": None}


async def _until_a_transaction_waits_for_a_lock(database) -> None:
    """Return once some transaction of this database waits for a row lock (the command under test)."""
    from sqlalchemy import text

    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    async with asyncio.timeout(30):
        while True:
            async with database.read() as session:
                if (await session.execute(waiting)).scalar():
                    return
            await asyncio.sleep(0.02)


async def test_deleting_while_a_claim_holds_the_target_sees_the_claim_instead_of_overwriting_it(pg_api):
    """A claim commits between deletePost's read and its write: the target stays publishing."""
    from sqlalchemy import update

    from gateway.storage.models import Post
    from tests.engine import new_post, publish, sandbox_account, setup_org

    org = await setup_org(pg_api)
    post_id = await new_post(pg_api, org.secret, [await sandbox_account(pg_api, org.secret, "deleteclaim")])
    await publish(pg_api, org.secret, post_id)
    delete_post = "mutation($id: ID!) { deletePost(input: {id: $id}) { userErrors { code } } }"
    async with pg_api.runtime.database.write() as claim:  # a claim, holding the target's row
        await claim.execute(update(Target).where(Target.post_id == post_id).values(status="publishing", lease_owner="pg-claim"))
        delete = asyncio.create_task(pg_api.graphql(delete_post, {"id": post_id}, key=org.secret))
        await _until_a_transaction_waits_for_a_lock(pg_api.runtime.database)
    body = await asyncio.wait_for(delete, 30)
    assert body["data"]["deletePost"]["userErrors"] == [{"code": "CONFLICT"}], body
    async with pg_api.runtime.database.read() as session:
        target = (await session.execute(select(Target).where(Target.post_id == post_id))).scalar_one()
        post = await session.get(Post, post_id)
    assert (target.status, target.lease_owner, post.deleted_at) == ("publishing", "pg-claim", None)


async def test_updating_while_a_publish_commits_sees_the_publish_instead_of_editing_a_queued_post(pg_api):
    from sqlalchemy import update

    from gateway.storage.models import Post
    from tests.engine import new_post, sandbox_account, setup_org

    org = await setup_org(pg_api)
    post_id = await new_post(pg_api, org.secret, [await sandbox_account(pg_api, org.secret, "updatepublish")], text="v1")
    update_post = "mutation($id: ID!) { updatePost(input: {id: $id, text: \"v2\"}) { userErrors { code } } }"
    async with pg_api.runtime.database.write() as publishing:  # publishPost, between its lock and its commit
        await publishing.execute(select(Post.id).where(Post.id == post_id).with_for_update())
        await publishing.execute(update(Target).where(Target.post_id == post_id).values(status="scheduled"))
        edit = asyncio.create_task(pg_api.graphql(update_post, {"id": post_id}, key=org.secret))
        await _until_a_transaction_waits_for_a_lock(pg_api.runtime.database)
    body = await asyncio.wait_for(edit, 30)
    assert body["data"]["updatePost"]["userErrors"] == [{"code": "CONFLICT"}], body
    async with pg_api.runtime.database.read() as session:
        assert (await session.get(Post, post_id)).text == "v1"


async def test_media_a_scheduled_post_uses_is_refused_on_postgres(pg_api):
    from tests.engine import new_post, publish, sandbox_account, setup_org
    from tests.test_post_commands import DELETE_MEDIA, _image

    org = await setup_org(pg_api)
    media_id = await _image(pg_api, org)
    post_id = await new_post(pg_api, org.secret, [await sandbox_account(pg_api, org.secret, "mediainuse")], mediaIds=[media_id])
    await publish(pg_api, org.secret, post_id)
    refused = (await pg_api.graphql(DELETE_MEDIA, {"id": media_id}, key=org.secret))["data"]["deleteMedia"]
    assert [e["code"] for e in refused["userErrors"]] == ["MEDIA_IN_USE"] and post_id in refused["userErrors"][0]["message"]


async def test_a_slow_policy_hook_holds_no_row_locks_on_postgres(pg_api):
    """While publishPost's moderation call is out, the engine can lock and write the post's targets."""
    from sqlalchemy import update

    from tests.engine import new_post, sandbox_account, setup_org
    from tests.test_post_commands import PUBLISH, SlowPolicy, _install

    org = await setup_org(pg_api)
    post_id = await new_post(pg_api, org.secret, [await sandbox_account(pg_api, org.secret, "slowpolicy")])
    policy = _install(pg_api, SlowPolicy())
    publishing = asyncio.create_task(pg_api.graphql(PUBLISH, {"id": post_id}, key=org.secret))
    await asyncio.wait_for(policy.entered.wait(), 10)

    async def engine_write() -> None:
        async with pg_api.runtime.database.write() as session:
            await session.execute(select(Target.id).where(Target.post_id == post_id).with_for_update())
            await session.execute(update(Target).where(Target.post_id == post_id).values(error_message=None))

    await asyncio.wait_for(engine_write(), 10)
    policy.release.set()
    body = await asyncio.wait_for(publishing, 10)
    assert body["data"]["publishPost"]["userErrors"] == [], body


async def test_audit_entries_and_a_platform_delete_on_postgres(pg_api):
    """The audit entry's ON CONFLICT insert and upsert, and deletePost(fromPlatforms)'s locks, on PostgreSQL."""
    from tests.engine import new_post, publish, sandbox_account, scheduler_for, setup_org
    from tests.waiting import until

    api = pg_api
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret, "pgaudit")
    post_id = await new_post(api, org.secret, [account])
    await publish(api, org.secret, post_id)
    await scheduler_for(api).drain(timeout=60)
    deleted = await api.graphql(
        "mutation($id: ID!) { deletePost(input: {id: $id, fromPlatforms: true}) { job { id } userErrors { code } } }",
        {"id": post_id}, key=org.secret,
    )
    assert deleted["data"]["deletePost"]["userErrors"] == []

    async def gone() -> bool:
        async with api.runtime.database.read() as session:
            return set((await session.execute(select(Target.status).where(Target.post_id == post_id))).scalars()) == {"deleted"}

    await until(gone, timeout=30)
    entries = (await api.graphql("{ auditLog { nodes { operation outcome objectIds } } }", key=org.secret))["data"]["auditLog"]["nodes"]
    assert [e["operation"] for e in entries] == ["deletePost", "publishPost", "createPost", "connectAccount"]
    assert all(e["outcome"] == "OK" for e in entries) and post_id in entries[0]["objectIds"]


async def test_processing_targets_are_polled_once_each_round_by_two_schedulers_on_postgres(pg_api):
    """Two workers on one PostgreSQL: each check of a processing target is claimed by one of them
    (SKIP LOCKED, as a due target), and no post is uploaded twice. The handle survives as JSON
    (and its absence as SQL NULL, which the claim and the recovery test)."""
    from sqlalchemy import update

    from gateway.core.clock import utcnow
    from tests.engine import new_post, publish, sandbox_account, scheduler_for, setup_org

    api = pg_api
    org = await setup_org(api)
    video = await sandbox_account(api, org.secret, "pgvideo", processing_polls="2", processing_seconds="60")
    plain = await sandbox_account(api, org.secret, "pgplain")
    posts = [await new_post(api, org.secret, [video, plain], text=f"pg video {i}") for i in range(4)]
    for post_id in posts:
        await publish(api, org.secret, post_id)
    first, second = scheduler_for(api, worker_id="pg-one"), scheduler_for(api, worker_id="pg-two")
    for _ in range(3):  # the uploads, then two rounds of checks
        await asyncio.gather(first.drain(timeout=60), second.drain(timeout=60))
        async with api.runtime.database.write() as session:
            await session.execute(
                update(Target).where(Target.organization_id == org.organization_id, Target.status == "processing").values(next_attempt_at=utcnow())
            )
    async with api.runtime.database.read() as session:
        targets = (await session.execute(select(Target).where(Target.organization_id == org.organization_id))).scalars().all()
        polls = (await session.execute(
            select(Attempt.target_id, func.count()).where(Attempt.outcome == "processing", Attempt.target_id.in_([t.id for t in targets]))
            .group_by(Attempt.target_id)
        )).all()
    assert len(targets) == 8
    assert {t.status for t in targets} == {"published"} and all(t.processing_handle is None for t in targets)
    assert sorted(count for _, count in polls) == [2] * 4  # the upload's answer and one more check: each once
    ctx = api.runtime.provider_context("sandbox", video, {})
    for target in (t for t in targets if t.account_id == video):
        assert await ctx.store.get("uploads", target.id) == {"uploads": 1, "polls": 2}
