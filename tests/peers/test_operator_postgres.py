"""Operator mistakes on a real PostgreSQL, met through the real command line (issue 24).

Each test gets a database of its own on the module's server, so what one migrates another does not see.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.peers.test_postgres import SECRET_KEY, postgres_url  # noqa: F401 (the server, a fixture)
from tests.servers import free_port
from tests.test_operator_mistakes import assert_clean_refusal, new_secret_key, run_cli

pytestmark = pytest.mark.e2e


async def _create_database(server_url: str, name: str) -> str:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


async def test_serve_and_worker_on_an_unmigrated_database_say_to_migrate_first(postgres_url, tmp_path):  # noqa: F811
    env = {"SOCIALGATE_DATABASE_URL": await _create_database(postgres_url, "unmigrated"), "SOCIALGATE_SECRET_KEY": SECRET_KEY}
    for command in (["serve", "--port", str(free_port())], ["worker"]):
        result = run_cli(tmp_path, *command, env=env)
        assert_clean_refusal(result, "has no tables yet", "run `socialgate migrate` first")
        assert "\\n" not in result.stderr  # a message, not a traceback escaped into a JSON log line
    assert run_cli(tmp_path, "migrate", env=env).returncode == 0
    assert run_cli(tmp_path, "orgs", "create", "Acme", env=env).returncode == 0


async def test_without_a_secret_key_nothing_is_generated_and_the_setting_is_required(postgres_url, tmp_path):  # noqa: F811
    env = {"SOCIALGATE_DATABASE_URL": await _create_database(postgres_url, "keyless")}
    for command in (["migrate"], ["worker"], ["serve", "--port", str(free_port())]):
        assert_clean_refusal(run_cli(tmp_path, *command, env=env), "SOCIALGATE_SECRET_KEY: required with a PostgreSQL database")
    assert list(tmp_path.iterdir()) == []  # no key file, no data directory in the working directory


async def test_a_process_with_another_key_refuses_to_start(postgres_url, tmp_path):  # noqa: F811
    env = {"SOCIALGATE_DATABASE_URL": await _create_database(postgres_url, "keyed")}
    first = run_cli(tmp_path, "migrate", env={**env, "SOCIALGATE_SECRET_KEY": SECRET_KEY})
    assert first.returncode == 0, first.stderr
    other = {**env, "SOCIALGATE_SECRET_KEY": new_secret_key()}
    for command in (["worker"], ["migrate"], ["serve", "--port", str(free_port())]):
        assert_clean_refusal(run_cli(tmp_path, *command, env=other), "SOCIALGATE_SECRET_KEY: this key is not the one", "first used with")
    assert run_cli(tmp_path, "orgs", "create", "Acme", env={**env, "SOCIALGATE_SECRET_KEY": SECRET_KEY}).returncode == 0


def test_migrate_against_a_missing_database_says_which_and_how_to_create_it(postgres_url, tmp_path):  # noqa: F811
    server = postgres_url.rsplit("/", 1)[0]  # postgresql+asyncpg://socialgate@127.0.0.1:PORT
    url = server.replace("://socialgate@", "://socialgate:hunter2@") + "/never_created"
    result = run_cli(tmp_path, "migrate", env={"SOCIALGATE_DATABASE_URL": url, "SOCIALGATE_SECRET_KEY": SECRET_KEY})
    host_port = server.rsplit("@", 1)[1]
    assert_clean_refusal(
        result, f"postgresql+asyncpg://socialgate:***@{host_port}/never_created", "no database named 'never_created'",
        "createdb", "CREATE DATABASE", "then run `socialgate migrate`",
    )
    assert "hunter2" not in result.stdout + result.stderr
