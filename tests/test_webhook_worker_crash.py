"""A webhook worker killed with SIGKILL in the middle of a delivery: another delivers it after the lease.

At least once, never lost: the dead worker's delivery stays leased until its lease runs out, then
the next worker claims it and sends it again with the same ``webhook-id``.
"""

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from gateway.auth.keys import Principal
from gateway.events import record_org_event
from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage.models import WebhookDelivery
from gateway.webhooks import endpoints
from tests.conftest import make_org_with_key
from tests.waiting import until
from tests.webhook_receiver import running_receiver

pytestmark = pytest.mark.e2e


def _worker(tmp_path, name: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
    env.update(
        SOCIALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hooks.db",
        SOCIALGATE_DATA_DIR=str(tmp_path),
        SOCIALGATE_ALLOW_PRIVATE_URLS="true",
        SOCIALGATE_WEBHOOK_LEASE_SECONDS="2",
        SOCIALGATE_SCHEDULER_POLL_SECONDS="0.2",
    )
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)


async def test_sigkill_mid_delivery_delivers_after_restart(tmp_path):
    runtime = Runtime(load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hooks.db", data_dir=str(tmp_path), allow_private_urls=True,
    ))
    await runtime.start()
    try:
        async with running_receiver() as receiver:
            made = await make_org_with_key(runtime)
            async with runtime.database.write() as session:
                endpoint = await endpoints.create_endpoint(
                    session, Principal(made.api_key_id, made.organization_id, ("*",)), runtime.secret_key,
                    url=receiver.url("/hook"), event_types=["*"], allow_private=True,
                )
                await record_org_event(session, made.organization_id, "account.connected", {"accountId": "acct_x"})
            receiver.hanging.add("/hook")  # the first call never gets its answer: the worker is mid-delivery

            first = _worker(tmp_path, "first")
            try:
                await receiver.wait_for("/hook", 1)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            finally:
                if first.poll() is None:
                    first.kill()
            assert first.returncode == -signal.SIGKILL
            receiver.hanging.discard("/hook")

            second = _worker(tmp_path, "second")
            try:
                requests = await receiver.wait_for("/hook", 2, timeout=30)

                async def delivered() -> bool:
                    async with runtime.database.read() as session:
                        return (await session.execute(select(WebhookDelivery.status))).scalar_one() == "delivered"

                await until(delivered, timeout=20)
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=20)
            assert second.returncode == 0, (tmp_path / "second.log").read_text()
    finally:
        await runtime.stop()

    before, after = requests
    assert before.headers["webhook-id"] == after.headers["webhook-id"]
    assert Webhook(endpoint.secret).verify(after.body, after.headers)["type"] == "account.connected"
