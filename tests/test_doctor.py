"""`socialgate doctor`: a healthy setup passes; one broken setting of each kind is named, with a
non-zero exit, and no secret is printed. PostgreSQL's migrations: tests/peers/test_doctor_postgres.py."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from gateway.observability import Finding, diagnose
from gateway.plugins import load_plugins
from gateway.settings import load_settings
from tests.servers import FAST_RETRIES, free_port, serve
from tests.test_operator_mistakes import new_secret_key, run_cli


def _sqlite(tmp_path) -> dict[str, str]:
    return {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/doctor.db", "SOCIALGATE_DATA_DIR": str(tmp_path)}


async def _findings(tmp_path, **overrides) -> list[Finding]:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/doctor.db", data_dir=str(tmp_path), **overrides)
    return await diagnose(settings, load_plugins(settings.plugins))


def _failed(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.message for f in findings if not f.ok}


def test_a_healthy_setup_passes(tmp_path):
    assert run_cli(tmp_path, "migrate", env=_sqlite(tmp_path)).returncode == 0
    result = run_cli(tmp_path, "doctor", env=_sqlite(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "migrations: at revision" in result.stdout


def test_a_bad_setting_is_reported_not_raised(tmp_path):
    result = run_cli(tmp_path, "doctor", env={**_sqlite(tmp_path), "SOCIALGATE_METRICS_PORT": "none"})
    assert result.returncode == 1 and "FAIL settings: SOCIALGATE_METRICS_PORT" in result.stdout
    assert "Traceback" not in result.stderr


def test_an_unreachable_database(tmp_path):
    url = f"postgresql+asyncpg://socialgate:hunter2@127.0.0.1:{free_port()}/socialgate"
    result = run_cli(tmp_path, "doctor", env={"SOCIALGATE_DATABASE_URL": url, "SOCIALGATE_SECRET_KEY": new_secret_key()})
    assert result.returncode == 1
    assert "FAIL database: cannot reach the database postgresql+asyncpg://socialgate:***@" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_no_secret_key_on_a_shared_database(tmp_path):
    url = f"postgresql+asyncpg://socialgate@127.0.0.1:{free_port()}/socialgate"
    result = run_cli(tmp_path, "doctor", env={"SOCIALGATE_DATABASE_URL": url})
    assert result.returncode == 1 and "FAIL secret key: SOCIALGATE_SECRET_KEY is not set" in result.stdout


def test_a_process_with_another_secret_key(tmp_path):
    first = new_secret_key()
    assert run_cli(tmp_path, "migrate", env={**_sqlite(tmp_path), "SOCIALGATE_SECRET_KEY": first}).returncode == 0
    assert run_cli(tmp_path, "doctor", env={**_sqlite(tmp_path), "SOCIALGATE_SECRET_KEY": first}).returncode == 0
    other = new_secret_key()
    result = run_cli(tmp_path, "doctor", env={**_sqlite(tmp_path), "SOCIALGATE_SECRET_KEY": other})
    assert result.returncode == 1 and "FAIL same secret key: SOCIALGATE_SECRET_KEY is not the key" in result.stdout
    assert first not in result.stdout and other not in result.stdout


async def test_an_unreachable_redis_bus(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/doctor.db", data_dir=str(tmp_path))
    # The Redis bus's URL scheme is accepted by the settings once that bus exists; the check does not wait for it.
    settings = settings.model_copy(update={"events_url": f"redis://:s3cret@127.0.0.1:{free_port()}/0"})
    failed = _failed(await diagnose(settings, load_plugins(settings.plugins)))
    assert failed["event bus"].startswith("Redis at redis://:***@127.0.0.1:") and "does not answer PING" in failed["event bus"]
    assert "s3cret" not in failed["event bus"]


async def test_an_in_process_bus_needs_nothing(tmp_path):
    assert "event bus" not in _failed(await _findings(tmp_path))


async def test_an_unreachable_public_url(tmp_path):
    failed = _failed(await _findings(tmp_path, public_base_url=f"http://127.0.0.1:{free_port()}"))
    assert "cannot be reached" in failed["public URL"]


@pytest.fixture
def not_socialgate() -> Iterator[str]:
    """A web server that answers /healthz with someone else's page (a misrouted load balancer)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>Welcome to nginx!</html>")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


async def test_a_public_url_that_is_not_socialgate(tmp_path, not_socialgate):
    failed = _failed(await _findings(tmp_path, public_base_url=not_socialgate))
    assert "answered 200, not socialgate's health check" in failed["public URL"]


@pytest.mark.e2e
async def test_a_public_url_that_reaches_a_running_socialgate(tmp_path):
    with serve(tmp_path, env={**FAST_RETRIES, **_sqlite(tmp_path)}) as server:
        findings = await _findings(tmp_path, public_base_url=server.base_url)
    assert _failed(findings) == {}
    assert any(f.check == "public URL" and f.message.endswith("/healthz answers") for f in findings)


async def test_half_an_oauth_client_and_a_misspelt_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIALGATE_OAUTH_X_CLIENT_ID", "the-client")
    monkeypatch.setenv("SOCIALGATE_OAUTH_LINKEDN_CLIENT_SECRET", "not-shown-anywhere")
    findings = await _findings(tmp_path)
    problems = [f.message for f in findings if not f.ok]
    assert "x: SOCIALGATE_OAUTH_X_CLIENT_SECRET is missing (the other half is set)" in problems
    assert "SOCIALGATE_OAUTH_LINKEDN_CLIENT_SECRET names no installed OAuth provider (a typo, or a plugin not installed?)" in problems
    assert not any("not-shown-anywhere" in f.message for f in findings)


async def test_complete_oauth_clients_pass_and_the_rest_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIALGATE_OAUTH_X_CLIENT_ID", "the-client")
    monkeypatch.setenv("SOCIALGATE_OAUTH_X_CLIENT_SECRET", "the-secret")
    (oauth,) = [f for f in await _findings(tmp_path) if f.check == "OAuth clients"]
    assert oauth.ok and "linkedin" in oauth.message and ", x" not in oauth.message
