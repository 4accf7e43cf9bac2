"""Mistakes an operator makes deploying socialgate, caught at start with a clear message (issue 24).

The startup messages are checked on the real command line, as an operator meets them: exit
status 2, the problem in words, no traceback, no password. The PostgreSQL side is in
tests/peers/test_operator_postgres.py.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.core.clock import utcnow
from gateway.engine.scheduler import Scheduler
from gateway.runtime import Runtime
from gateway.settings import SettingsError, load_settings
from gateway.storage.key_fingerprint import FINGERPRINT
from gateway.storage.models import InstallationSetting, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def run_cli(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m gateway ARGS` in ``workdir`` with only the SOCIALGATE_ variables given."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def assert_clean_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit status 2, each expected phrase said, and no traceback (escaped in JSON or not)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "socialgate cannot start" in result.stderr, output
    for phrase in expected:
        assert phrase in output, output
    assert "Traceback" not in output, output


def test_a_process_with_another_secret_key_refuses_to_start(tmp_path):
    """The database remembers the key it was first used with; serve, worker and migrate with another stop."""
    database = {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/shared.db", "SOCIALGATE_DATA_DIR": str(tmp_path)}
    first = run_cli(tmp_path, "orgs", "create", "Acme", env={**database, "SOCIALGATE_SECRET_KEY": new_secret_key()})
    assert first.returncode == 0, first.stderr
    other = {**database, "SOCIALGATE_SECRET_KEY": new_secret_key()}
    for command in (["worker"], ["migrate"], ["serve", "--port", str(free_port())]):
        assert_clean_refusal(run_cli(tmp_path, *command, env=other), "SOCIALGATE_SECRET_KEY", "first used with")
    # Without any key, the process would generate its own beside the database: refused the same way.
    unset = run_cli(tmp_path, "worker", env=database)
    assert_clean_refusal(unset, "SOCIALGATE_SECRET_KEY", "first used with", "socialgate.secret")


async def test_a_key_that_opens_none_of_the_stored_credentials_is_not_recorded(tmp_path):
    """A database from before the fingerprint holds sealed credentials: a wrong key must not become the record."""
    right = new_secret_key()
    async with engine_app(tmp_path, secret_key=right) as api:
        org = await setup_org(api)
        await sandbox_account(api, org.secret, "sealed")
        async with api.runtime.database.write() as session:  # as before revision 0006: nothing recorded
            await session.execute(InstallationSetting.__table__.delete())
    wrong = Runtime(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/engine.db", data_dir=str(tmp_path),
                                  secret_key=new_secret_key()))
    try:
        with pytest.raises(SettingsError, match="SOCIALGATE_SECRET_KEY: this key opens none of the provider credentials"):
            await wrong.start()
        async with wrong.database.read() as session:
            assert (await session.execute(select(InstallationSetting).where(InstallationSetting.name == FINGERPRINT))).first() is None
    finally:
        await wrong.stop()
    right_again = Runtime(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/engine.db", data_dir=str(tmp_path), secret_key=right))
    await right_again.start()  # the right key opens them, and is recorded
    try:
        async with right_again.database.read() as session:
            assert (await session.execute(select(InstallationSetting.value).where(InstallationSetting.name == FINGERPRINT))).scalar()
    finally:
        await right_again.stop()


async def test_credentials_a_worker_cannot_open_wait_for_a_worker_that_can(tmp_path):
    """CREDENTIALS_UNREADABLE is this worker's problem, not the post's: the target is retried, not failed."""
    key = new_secret_key()
    async with engine_app(tmp_path, secret_key=key) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret, "keyed")
        post_id = await new_post(api, org.secret, [account], text="published by the right worker")
        await publish(api, org.secret, post_id)
        # A worker holding another key (started before the fingerprint could stop it, say).
        stray = Runtime(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/engine.db", data_dir=str(tmp_path),
                                      secret_key=new_secret_key(), retry_base_seconds=600, retry_max_seconds=600))
        try:
            await Scheduler(stray).drain()  # claims it, cannot open the credentials, leaves it for later
        finally:
            await stray.stop()
        async with api.runtime.database.read() as session:
            target = (await session.execute(select(Target))).scalar_one()
        assert (target.status, target.error_code) == ("retry_pending", "CREDENTIALS_UNREADABLE")
        async with api.runtime.database.write() as session:  # its backoff has passed
            await session.execute(update(Target).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        await scheduler_for(api).drain()
        async with api.runtime.database.read() as session:
            target = (await session.execute(select(Target))).scalar_one()
        assert target.status == "published"


def test_a_database_url_with_the_wrong_driver_never_echoes_its_password(tmp_path):
    result = run_cli(tmp_path, "migrate", env={"SOCIALGATE_DATABASE_URL": "postgresql://sg:hunter2@db.example:5432/socialgate"})
    assert_clean_refusal(result, "SOCIALGATE_DATABASE_URL", "postgresql://sg:***@db.example:5432/socialgate")
    assert "hunter2" not in result.stdout + result.stderr


def test_an_events_url_the_code_cannot_use_is_refused(tmp_path):
    result = run_cli(tmp_path, "migrate", env={"SOCIALGATE_EVENTS_URL": "kafka://:hunter2@127.0.0.1:9092/0"})
    assert_clean_refusal(result, "SOCIALGATE_EVENTS_URL: expected memory://", "kafka://:***@127.0.0.1:9092/0")
    assert "hunter2" not in result.stdout + result.stderr
