"""The loops beside the scheduler run wherever it runs: `serve` in-process and every `socialgate
worker`. Moving publishing to workers (SOCIALGATE_RUN_SCHEDULER=false) must not silently stop the
periodic ads sync, the metrics collector or the webhook deliveries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.settings import load_settings
from gateway.storage.models import AdAccount, Job
from tests.conftest import ApiClient, make_org_with_key
from tests.engine import engine_app
from tests.lifespan import lifespan_of
from tests.test_ads_api import sandbox_ad_accounts
from tests.waiting import until


async def _synced(api: ApiClient) -> set[str]:
    async with api.runtime.database.read() as session:
        jobs = (await session.execute(select(Job.subject_id).where(Job.kind == "ads_sync", Job.status == "succeeded"))).scalars()
        return set(jobs)


async def test_serve_syncs_ad_accounts_periodically(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db", data_dir=str(tmp_path), ads_sync_seconds=0.1)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            api = ApiClient(http=http, runtime=app.state.runtime)
            org = await make_org_with_key(api.runtime)
            accounts = {a["id"] for a in (await sandbox_ad_accounts(api, org.secret)).values()}

            async def all_synced() -> bool:
                return await _synced(api) >= accounts

            await until(all_synced, timeout=30)


@pytest.mark.e2e
async def test_a_worker_process_syncs_ad_accounts(tmp_path):
    async with engine_app(tmp_path) as api:  # the API without a scheduler: the worker runs the loops
        org = await make_org_with_key(api.runtime)
        accounts = {a["id"] for a in (await sandbox_ad_accounts(api, org.secret)).values()}
        assert await _synced(api) == set()  # connecting syncs nothing by itself
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
        env.update(SOCIALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/engine.db", SOCIALGATE_DATA_DIR=str(tmp_path),
                   SOCIALGATE_ADS_SYNC_SECONDS="0.2")
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)
        try:
            async def all_synced() -> bool:
                return await _synced(api) >= accounts

            await until(all_synced, timeout=60)
            async with api.runtime.database.read() as session:
                assert None not in set((await session.execute(select(AdAccount.synced_at).where(AdAccount.id.in_(accounts)))).scalars())
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
