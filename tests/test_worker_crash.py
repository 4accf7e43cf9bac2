"""A worker killed with SIGKILL in the middle of a provider call: nothing twice, nothing stuck."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from gateway.storage.models import Attempt, ProviderRecord, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, setup_org

pytestmark = pytest.mark.e2e


def _worker(tmp_path, name: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
    env.update(
        SOCIALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/engine.db",
        SOCIALGATE_DATA_DIR=str(tmp_path),
        SOCIALGATE_LEASE_SECONDS="4",  # calls get 3.2 s, so the sandbox's 3 s slow mode still completes
        SOCIALGATE_SCHEDULER_POLL_SECONDS="0.2",
    )
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)


async def _wait_for(api, predicate, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with api.runtime.database.read() as session:
            target = (await session.execute(select(Target))).scalar_one()
        if predicate(target):
            return target
        await asyncio.sleep(0.1)
    raise AssertionError(f"target stayed {target.status}")


async def test_sigkill_mid_call_ends_unconfirmed_and_never_publishes_twice(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret, "crash", failure_mode="slow", failure_count="0")
        post_id = await new_post(api, org.secret, [account], text="publish me once")
        await publish(api, org.secret, post_id)

        first = _worker(tmp_path, "first")
        try:
            # `publishing` is written with the call's Attempt row, in the transaction right before
            # the call goes out: from here on the worker is inside the sandbox's 3-second call.
            await _wait_for(api, lambda t: t.status == "publishing")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == -signal.SIGKILL

        second = _worker(tmp_path, "second")
        try:
            target = await _wait_for(api, lambda t: t.status in ("published", "failed", "unconfirmed"))
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
        assert second.returncode == 0, (tmp_path / "second.log").read_text()

        # The dead worker's call never stored a post; recovery asked the sandbox, found nothing,
        # and left the target for a human instead of publishing it again.
        assert (target.status, target.error_code) == ("unconfirmed", "LEASE_EXPIRED")
        async with api.runtime.database.read() as session:
            outcomes = list((await session.execute(select(Attempt.outcome).order_by(Attempt.number))).scalars())
            stored_posts = (await session.execute(
                select(func.count()).select_from(ProviderRecord).where(ProviderRecord.kind == "post")
            )).scalar()
        assert outcomes == ["lease_expired", "unconfirmed"]
        assert stored_posts == 0
