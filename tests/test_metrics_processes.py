"""The collector runs wherever the scheduler runs: in `serve` (the app's lifespan) and in every
`socialgate worker`, and a published post's figures arrive without anyone asking."""

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
from gateway.storage.models import OrganizationEvent, TargetMetrics
from tests.conftest import ApiClient
from tests.engine import engine_app, new_post, publish, sandbox_account, setup_org
from tests.lifespan import lifespan_of
from tests.waiting import until


async def _read(api) -> list[TargetMetrics]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(TargetMetrics).where(TargetMetrics.refreshed_at.is_not(None)))).scalars())


async def test_serve_runs_the_collector_beside_the_scheduler(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db", data_dir=str(tmp_path),
                             metrics_poll_seconds=0.05, scheduler_poll_seconds=0.05)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            api = ApiClient(http=http, runtime=app.state.runtime)
            assert api.runtime.metrics is not None
            org = await setup_org(api)
            account = await sandbox_account(api, org.secret)
            post_id = await new_post(api, org.secret, [account])
            await publish(api, org.secret, post_id)

            async def read() -> bool:
                return len(await _read(api)) == 1

            await until(read, timeout=30)

            async def announced() -> OrganizationEvent | None:
                # The round's one event per post is written after its readings, in a transaction of its own.
                async with api.runtime.database.read() as session:
                    return (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "metrics.updated"))).scalars().first()

            await until(announced, timeout=30)
            assert (await announced()).payload["postId"] == post_id


def test_serve_without_the_scheduler_runs_no_collector(tmp_path):
    app = create_app(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db", data_dir=str(tmp_path), run_scheduler=False))
    assert app.state.runtime.metrics is None  # set only where a scheduler runs


@pytest.mark.e2e
async def test_a_worker_process_collects_the_figures(tmp_path):
    async with engine_app(tmp_path) as api:  # the API without a scheduler: the worker does both
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        post_id = await new_post(api, org.secret, [account])
        await publish(api, org.secret, post_id)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
        env.update(SOCIALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/engine.db", SOCIALGATE_DATA_DIR=str(tmp_path),
                   SOCIALGATE_SCHEDULER_POLL_SECONDS="0.2", SOCIALGATE_METRICS_POLL_SECONDS="0.2")
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)
        try:
            async def read() -> bool:
                return len(await _read(api)) == 1

            await until(read, timeout=60)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            log.close()
        assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
        (row,) = await _read(api)
        assert row.post_id == post_id and row.views is not None and row.quotes is None
