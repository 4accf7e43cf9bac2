"""`socialgate doctor` on a real PostgreSQL: an unmigrated database is named with the command that fixes it."""

from __future__ import annotations

import pytest

from tests.peers.test_operator_postgres import _create_database
from tests.peers.test_postgres import SECRET_KEY, postgres_url  # noqa: F401 (the server, a fixture)
from tests.test_operator_mistakes import run_cli

pytestmark = pytest.mark.e2e


async def test_doctor_says_to_migrate_then_passes(postgres_url, tmp_path):  # noqa: F811
    env = {"SOCIALGATE_DATABASE_URL": await _create_database(postgres_url, "doctored"), "SOCIALGATE_SECRET_KEY": SECRET_KEY}
    before = run_cli(tmp_path, "doctor", env=env)
    assert before.returncode == 1 and "FAIL migrations:" in before.stdout and "run `socialgate migrate`" in before.stdout
    assert run_cli(tmp_path, "migrate", env=env).returncode == 0
    after = run_cli(tmp_path, "doctor", env=env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "ok   same secret key" in after.stdout
