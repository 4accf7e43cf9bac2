"""`serve` without a scheduler warns when due posts wait and no worker is alive (issue 24.6)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import select

from gateway.app import create_app
from gateway.engine.scheduler import Scheduler
from gateway.settings import load_settings
from gateway.storage.models import Target, WorkerHeartbeat
from gateway.storage.worker_heartbeats import WorkerWatch, find_stall
from tests.engine import engine_app, new_post, publish, sandbox_account, setup_org
from tests.lifespan import lifespan_of

POLL = 1.0  # overdue after 5 s, a heartbeat recent for 15 s


async def test_due_targets_with_no_live_worker_are_reported_and_a_heartbeat_clears_it(tmp_path, caplog):
    async with engine_app(tmp_path) as api:  # run_scheduler=false: nothing in this process publishes
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret, "waiting")
        await publish(api, org.secret, await new_post(api, org.secret, [account]))
        database = api.runtime.database
        async with database.read() as session:
            due = (await session.execute(select(Target.next_attempt_at))).scalar_one()
        # Due a second ago is not waiting long yet; ten seconds is, with no heartbeat at all.
        assert await find_stall(database, poll_seconds=POLL, now=due + timedelta(seconds=1)) is None
        later = due + timedelta(seconds=10)
        stall = await find_stall(database, poll_seconds=POLL, now=later)
        assert stall is not None and stall.waiting == 1 and stall.last_beat is None

        watch = WorkerWatch(database, poll_seconds=POLL)
        with caplog.at_level(logging.WARNING, logger="socialgate.workers"):
            assert await watch.check_once(now=later) is not None
            assert await watch.check_once(now=later) is not None  # still stalled: said once, not at every look
        warnings = [r.getMessage() for r in caplog.records if r.name == "socialgate.workers"]
        assert len(warnings) == 1, warnings
        assert "1 due post target(s) are waiting" in warnings[0] and "start `socialgate worker`" in warnings[0]

        await api.runtime.heartbeat.beat("worker-1")
        assert await find_stall(database, poll_seconds=POLL, now=later) is None
        # The same heartbeat, long after: the worker is gone again.
        assert await find_stall(database, poll_seconds=POLL, now=later + timedelta(hours=1)) is not None


async def test_a_running_scheduler_records_its_heartbeat(tmp_path):
    async with engine_app(tmp_path) as api:
        scheduler = Scheduler(api.runtime, worker_id="beating-worker")
        scheduler.start()
        try:
            deadline = time.monotonic() + 30
            while True:
                async with api.runtime.database.read() as session:
                    beat = (await session.execute(select(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == "beating-worker"))).scalar()
                if beat is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            await scheduler.stop()
        assert beat is not None and beat.beat_at >= beat.started_at


async def test_serve_runs_the_watch_only_without_a_scheduler_of_its_own(tmp_path):
    for run_scheduler in (False, True):
        settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/watch.db", data_dir=str(tmp_path), run_scheduler=run_scheduler)
        async with lifespan_of(create_app(settings)):
            watching = any(task.get_name() == "worker watch" for task in asyncio.all_tasks())
        assert watching is not run_scheduler
