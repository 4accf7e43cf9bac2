"""The post's stored status (issue 21, point 5): kept by the database with every change of its
targets, the same as the Python rules derive, and a status filter that is one index range."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, insert, select, text, update

from gateway.content import TARGET_STATUSES, derive_status, status_triggers
from gateway.core.ids import new_id
from gateway.core.pagination import encode_cursor
from gateway.storage import Post, Target
from tests.test_accounts_api import connect

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id status } userErrors { code } } }"
FILTERED = "query($after: String) { posts(first: 20, after: $after, filter: {status: SCHEDULED}) { nodes { id status } } }"


@pytest.fixture
async def accounts(api, org):
    return [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]


async def _post(api, org, accounts) -> str:
    body = await api.graphql(CREATE, {"i": {"text": "x", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
    assert body["data"]["createPost"]["post"]["status"] == "DRAFT"
    return body["data"]["createPost"]["post"]["id"]


async def _stored(api, post_id: str) -> str:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(Post.status).where(Post.id == post_id))).scalar_one()


async def test_every_pair_of_target_statuses_stores_what_the_rules_derive(api, org, accounts):
    post_id = await _post(api, org, accounts)
    async with api.runtime.database.read() as session:
        first, second = (await session.execute(select(Target.id).where(Target.post_id == post_id).order_by(Target.id))).scalars()
    for a, b in itertools.product(TARGET_STATUSES, repeat=2):
        async with api.runtime.database.write() as session:  # Core, as the engine writes them
            await session.execute(update(Target).where(Target.id == first).values(status=a))
            await session.execute(update(Target).where(Target.id == second).values(status=b))
        assert await _stored(api, post_id) == derive_status([a, b]), (a, b)


async def test_inserting_and_deleting_targets_recompute_the_status(api, org, accounts):
    post_id = await _post(api, org, accounts[:1])
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).where(Target.post_id == post_id).values(status="published"))
        await session.execute(insert(Target).values(
            id=new_id("tgt"), post_id=post_id, account_id=accounts[1], organization_id=org.organization_id, provider="sandbox", status="failed",
        ))
    assert await _stored(api, post_id) == "partially_published"
    async with api.runtime.database.write() as session:
        await session.execute(delete(Target).where(Target.post_id == post_id, Target.status == "failed"))
    assert await _stored(api, post_id) == "published"


async def test_a_mutation_answers_the_status_its_targets_were_given(api, org, accounts):
    post_id = await _post(api, org, accounts)
    scheduled = await api.graphql(
        "mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }",
        {"id": post_id, "at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}, key=org.secret,
    )
    assert scheduled["data"]["schedulePost"]["userErrors"] == []
    assert await _stored(api, post_id) == "scheduled"
    canceled = await api.graphql(
        "mutation($id: ID!) { cancelPost(input: {postId: $id}) { post { status } userErrors { code } } }", {"id": post_id}, key=org.secret
    )
    assert canceled["data"]["cancelPost"] == {"post": {"status": "CANCELED"}, "userErrors": []}


async def test_the_installed_triggers_are_the_current_rules(api):
    """A new target status in STATUS_RULES needs a migration that calls install_status_triggers."""
    async with api.runtime.database.engine.connect() as connection:
        installed = (await connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'targets' ORDER BY name")).scalars().all()
        dialect = connection.dialect
    assert sorted(installed) == sorted(status_triggers(dialect))


async def _seed(api, org, accounts, posts: int, rare: int) -> None:
    """``posts`` published posts with ``rare`` scheduled among them, written with Core."""
    newest = datetime(2026, 6, 1, tzinfo=UTC)
    rows, targets = [], []
    for i in range(posts):
        post_id, status = new_id("post"), ("scheduled" if i % (posts // rare) == 0 else "published")
        created = newest - timedelta(seconds=i)
        rows.append({"id": post_id, "organization_id": org.organization_id, "text": "", "content": {}, "created_at": created, "updated_at": created})
        targets.append({"id": new_id("tgt"), "post_id": post_id, "account_id": accounts[0], "organization_id": org.organization_id,
                        "provider": "sandbox", "status": status, "created_at": created, "updated_at": created})
    async with api.runtime.database.write() as session:
        await session.execute(insert(Post), rows)
        await session.execute(insert(Target), targets)
    async with api.runtime.database.write() as session:
        await session.execute(text("ANALYZE"))


async def filtered_pages(api, org, cursors):
    """``FILTERED`` after each cursor: the answers, and each page's SQL with its parameters."""
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if "FROM posts" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    engine = api.runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        bodies = [await api.graphql(FILTERED, {"after": cursor}, key=org.secret) for cursor in cursors]
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return bodies, captured


async def test_a_rare_status_is_one_range_of_the_status_index(api, org, accounts):
    await _seed(api, org, accounts, posts=2_000, rare=5)
    cursor = encode_cursor(datetime(2026, 5, 31, tzinfo=UTC), new_id("post"))
    (first, after), captured = await filtered_pages(api, org, [None, cursor])
    assert [n["status"] for n in first["data"]["posts"]["nodes"]] == ["SCHEDULED"] * 5
    assert "errors" not in after
    assert len(captured) == 2
    for (statement, parameters), bound in zip(captured, ("", "(created_at,id)<(?,?)"), strict=True):
        async with api.runtime.database.engine.connect() as connection:
            details = [row[-1] for row in (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()]
        searched = [d for d in details if "INDEX ix_posts_org_status_created (organization_id=? AND status=?" in d]
        assert searched, details
        assert bound in searched[0].replace(" ", ""), searched[0]
        assert not any("EXISTS" in d or "TEMP B-TREE" in d or d.startswith("CORRELATED") for d in details), details


async def test_0020_replaces_triggers_0017_installed_before_and_recomputes_every_status(tmp_path):
    """A database migrated through 0017 before this release holds an older form of the triggers
    (an EXISTS per status); 0020 puts the current one-pass form in and recomputes every post's
    status. Downgraded to 0017, the database keeps the triggers 0017 installs today."""
    from alembic import command

    from gateway.orgs.organizations import create_organization
    from gateway.storage.database import Database
    from gateway.storage.migrate import alembic_config, upgrade

    database = Database(f"sqlite+aiosqlite:///{tmp_path}/migrated.db")

    async def triggers() -> list[str]:
        async with database.engine.connect() as connection:
            found = await connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'targets' ORDER BY name")
            return sorted(found.scalars())

    try:
        await upgrade(database, to="0017")
        current = await triggers()
        async with database.write() as session:  # an older form, and a status it let drift
            for name in ("trg_targets_post_status_insert", "trg_targets_post_status_update", "trg_targets_post_status_delete"):
                await session.execute(text(f"DROP TRIGGER {name}"))
                await session.execute(text(f"CREATE TRIGGER {name} AFTER INSERT ON targets BEGIN SELECT 1; END"))
            organization = await create_organization(session, "Drifted")
            await session.execute(insert(Post).values(id="post_1", organization_id=organization.id, text="", content={}, status="failed"))
        assert await triggers() != current
        await upgrade(database)
        assert await triggers() == current
        async with database.engine.connect() as connection:
            assert current == sorted(status_triggers(connection.dialect))
            assert (await connection.exec_driver_sql("SELECT status FROM posts")).scalar_one() == "draft"  # no targets

        def downgrade(sync_connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync_connection
            command.downgrade(config, "0017")

        async with database.write_engine.begin() as connection:
            await connection.run_sync(downgrade)
        assert await triggers() == current
    finally:
        await database.dispose()
