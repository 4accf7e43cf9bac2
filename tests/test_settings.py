import base64
import os
import stat

import pytest

from gateway.settings import SettingsError, load_settings, resolve_secret_key


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SOCIALGATE_DATABASE_URL", "mysql://localhost/db"),
        ("SOCIALGATE_DATABASE_URL", "not a url at all"),
        ("SOCIALGATE_EVENTS_URL", "kafka://broker"),
        ("SOCIALGATE_EVENTS_URL", "amqp://localhost:5672/"),
        ("SOCIALGATE_SECRET_KEY", "too-short"),
        ("SOCIALGATE_PUBLIC_BASE_URL", "ftp://example.com"),
        ("SOCIALGATE_PUBLIC_BASE_URL", "example.com"),
        ("SOCIALGATE_HOST", "bad host"),
        ("SOCIALGATE_PORT", "abc"),
        ("SOCIALGATE_PORT", "70000"),
        ("SOCIALGATE_PORT", "0"),
        ("SOCIALGATE_LOG_LEVEL", "LOUD"),
        ("SOCIALGATE_CORS_ORIGINS", "https://ok.example,not-an-origin"),
        ("SOCIALGATE_ALLOW_PRIVATE_URLS", "maybe"),
        ("SOCIALGATE_KILL_SWITCH", "sometimes"),
    ],
)
def test_each_bad_setting_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(variable + ": expected ")


def test_secret_key_problem_never_echoes_the_value(monkeypatch):
    monkeypatch.setenv("SOCIALGATE_SECRET_KEY", "hunter2-is-my-secret")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_defaults_and_lists(monkeypatch):
    monkeypatch.setenv("SOCIALGATE_CORS_ORIGINS", "https://a.example, http://localhost:3000")
    monkeypatch.setenv("SOCIALGATE_PLUGINS", "sandbox,bluesky")
    monkeypatch.setenv("SOCIALGATE_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./socialgate.db"
    assert settings.events_url == "memory://"
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")
    assert settings.plugins == ("sandbox", "bluesky")
    assert settings.log_level == "DEBUG"
    assert settings.base_url == "http://127.0.0.1:8000"


def test_secret_key_is_generated_once_private_and_reused(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/db/socialgate.db")
    first = resolve_secret_key(settings)
    path = tmp_path / "db" / "socialgate.secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 32
    assert resolve_secret_key(settings) == first
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_configured_secret_key_wins_and_writes_no_file(tmp_path):
    raw = bytes(range(32))
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db",
        secret_key=base64.urlsafe_b64encode(raw).decode(),
    )
    assert resolve_secret_key(settings) == raw
    assert not (tmp_path / "socialgate.secret").exists()


def test_corrupt_secret_file_stops_the_start(tmp_path):
    (tmp_path / "socialgate.secret").write_text("garbage")
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db")
    with pytest.raises(SettingsError, match="corrupt"):
        resolve_secret_key(settings)


def test_postgresql_requires_the_secret_key_and_generates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(database_url="postgresql+asyncpg://sg:hunter2@db.example/socialgate")
    with pytest.raises(SettingsError, match="SOCIALGATE_SECRET_KEY: required with a PostgreSQL database") as caught:
        resolve_secret_key(settings)
    assert "hunter2" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_database_url_is_shown_with_its_password_masked(monkeypatch):
    monkeypatch.setenv("SOCIALGATE_DATABASE_URL", "mysql://sg:hunter2@db.example/socialgate")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value) and "mysql://sg:***@db.example/socialgate" in str(caught.value)
    assert "hunter2" not in repr(load_settings(database_url="postgresql+asyncpg://sg:hunter2@db.example/socialgate"))
