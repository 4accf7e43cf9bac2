"""Provider quotas on PostgreSQL: workers claiming at once never spend one unit twice (the advisory lock)."""

import asyncio

import pytest
from sqlalchemy import select

from gateway.engine.scheduler import Limits
from gateway.storage.models import Target
from tests.engine import scheduler_for, setup_org
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401 - fixtures
from tests.test_provider_quotas import account, install, post_to

pytestmark = pytest.mark.e2e


async def test_concurrent_workers_share_one_quota(pg_api):
    api = pg_api
    install(api.runtime)
    org = await setup_org(api)
    accounts = [await account(api, org.secret, "quota_account", f"pgq{i}") for i in range(2)]
    for account_id in accounts:
        for i in range(4):
            await post_to(api, org.secret, account_id, f"pg quota {account_id} {i}")
    # One call at a time each: every worker's claim reads the same account's quota at once.
    workers = [scheduler_for(api, worker_id=f"pgq-{n}", limits=Limits(batch=1)) for n in range(4)]
    await asyncio.gather(*(worker.drain(timeout=60) for worker in workers))
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(Target.account_id, Target.status))).all()
    for account_id in accounts:
        mine = [status for owner, status in rows if owner == account_id]
        assert sorted(mine) == ["published", "published", "scheduled", "scheduled"]  # 2 per hour, whichever worker claimed
