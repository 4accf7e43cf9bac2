import re

import pytest
from typer.testing import CliRunner

from gateway.cli import app, main

runner = CliRunner()


def _refused(monkeypatch, capsys, args, env):
    """Run the console script's ``main`` (which turns errors into messages and exit codes, where
    ``runner.invoke(app)`` would hand back the raw exception) and return (exit code, stderr)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", ["socialgate", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, " ".join(capsys.readouterr().err.split())


def _env(tmp_path):
    return {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}


def test_migrate_is_repeatable(tmp_path):
    for _ in range(2):
        result = runner.invoke(app, ["migrate"], env=_env(tmp_path))
        assert result.exit_code == 0, result.output
        assert "database at revision" in result.output


def test_orgs_create_then_keys_create(tmp_path):
    created = runner.invoke(app, ["orgs", "create", "Acme"], env=_env(tmp_path))
    assert created.exit_code == 0, created.output
    org_id = created.stdout.strip()
    assert re.fullmatch(r"org_[A-Za-z0-9]{24}", org_id)
    key = runner.invoke(app, ["keys", "create", "--org", org_id, "--scope", "posts:*", "--scope", "accounts:read"], env=_env(tmp_path))
    assert key.exit_code == 0, key.output
    assert re.search(r"^sg_live_[A-Za-z0-9]{44}$", key.stdout, re.M)


def test_keys_create_refuses_unknown_org_and_scope(tmp_path, monkeypatch, capsys):
    unknown = _refused(monkeypatch, capsys, ["keys", "create", "--org", "org_nope", "--scope", "*"], _env(tmp_path))
    assert unknown == (1, "NOT_FOUND: No organization org_nope.")
    org_id = runner.invoke(app, ["orgs", "create", "Acme"], env=_env(tmp_path)).stdout.strip()
    bad_scope = _refused(monkeypatch, capsys, ["keys", "create", "--org", org_id, "--scope", "posts:fly"], _env(tmp_path))
    assert bad_scope == (1, "INVALID_SCOPE: Unknown scope 'posts:fly'.")


def test_bad_setting_stops_the_cli(tmp_path, monkeypatch, capsys):
    code, message = _refused(monkeypatch, capsys, ["migrate"], {"SOCIALGATE_DATABASE_URL": "mysql://x"})
    assert code == 2
    assert message.startswith("socialgate cannot start. Invalid configuration:") and "SOCIALGATE_DATABASE_URL" in message
    assert "Traceback" not in message


def test_kill_switches_per_key_and_org(tmp_path):
    import asyncio

    from gateway.auth.keys import authenticate
    from gateway.core.errors import Forbidden
    from gateway.settings import load_settings
    from gateway.storage import Database

    env = _env(tmp_path)
    org_id = runner.invoke(app, ["orgs", "create", "Acme"], env=env).stdout.strip()
    created = runner.invoke(app, ["keys", "create", "--org", org_id, "--scope", "*"], env=env)
    secret = created.stdout.strip().splitlines()[-1]
    key_id = created.stderr.split()[1]

    def refused() -> bool:
        async def check() -> bool:
            database = Database(load_settings(**{"database_url": env["SOCIALGATE_DATABASE_URL"]}).database_url)
            try:
                async with database.read() as session:
                    await authenticate(session, secret)
                return False
            except Forbidden:
                return True
            finally:
                await database.dispose()

        return asyncio.run(check())

    assert not refused()
    assert runner.invoke(app, ["keys", "kill-switch", key_id, "--on"], env=env).exit_code == 0
    assert refused()
    assert runner.invoke(app, ["keys", "kill-switch", key_id, "--off"], env=env).exit_code == 0
    assert not refused()
    assert runner.invoke(app, ["orgs", "kill-switch", org_id, "--on"], env=env).exit_code == 0
    assert refused()
    assert runner.invoke(app, ["orgs", "kill-switch", org_id, "--off"], env=env).exit_code == 0
    assert not refused()


def test_kill_switch_of_an_unknown_key_is_refused_with_a_message(tmp_path, monkeypatch, capsys):
    code, message = _refused(monkeypatch, capsys, ["keys", "kill-switch", "key_nope", "--on"], _env(tmp_path))
    assert (code, message.split(":")[0]) == (1, "NOT_FOUND")
    assert "key_nope" in message
