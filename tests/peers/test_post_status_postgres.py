"""The post's stored status on PostgreSQL (issue 21, point 5): revision 0017's trigger keeps it
through the engine's writes, and a rare status filter reads the status index."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, update

from gateway.content import TARGET_STATUSES, derive_status
from gateway.storage.models import Post, Target
from tests.engine import new_post, sandbox_account, setup_org
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401  (the fixtures)
from tests.test_post_status import _seed, filtered_pages

pytestmark = pytest.mark.e2e


async def test_the_trigger_stores_what_the_rules_derive_on_postgres(pg_api):  # noqa: F811
    api = pg_api
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, h) for h in ("pg-ann", "pg-bob")]
    post_id = await new_post(api, org.secret, accounts)
    async with api.runtime.database.read() as session:
        first, second = (await session.execute(select(Target.id).where(Target.post_id == post_id).order_by(Target.id))).scalars()
    for a, b in itertools.product(TARGET_STATUSES, repeat=2):
        async with api.runtime.database.write() as session:
            await session.execute(update(Target).where(Target.id == first).values(status=a))
            await session.execute(update(Target).where(Target.id == second).values(status=b))
        async with api.runtime.database.read() as session:
            stored = (await session.execute(select(Post.status).where(Post.id == post_id))).scalar_one()
        assert stored == derive_status([a, b]), (a, b)


async def test_a_rare_status_reads_the_status_index_on_postgres(pg_api):  # noqa: F811
    api = pg_api
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, "pg-plan")]
    await _seed(api, org, accounts, posts=20_000, rare=5)
    (body,), captured = await filtered_pages(api, org, [None])
    assert [n["status"] for n in body["data"]["posts"]["nodes"]] == ["SCHEDULED"] * 5
    statement, parameters = captured[-1]
    async with api.runtime.database.engine.connect() as connection:
        plan = "\n".join(row[0] for row in (await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all())
    assert "ix_posts_org_status_created" in plan, plan
    assert "SubPlan" not in plan and "Seq Scan on posts" not in plan, plan
