"""Every setting comes from an environment variable prefixed ``SOCIALGATE_``.

A bad value stops the start with a message naming the variable and what it expects, instead of
failing later somewhere far from the cause.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "SOCIALGATE_"
SUPPORTED_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
SUPPORTED_EVENT_SCHEMES = ("memory", "redis", "rediss")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILENAME = "socialgate.secret"

# What each variable expects, said in the error message when its value is refused.
EXPECTATIONS = {
    "database_url": "a SQLAlchemy URL using sqlite+aiosqlite:// or postgresql+asyncpg://",
    "events_url": "memory:// or a redis:// (rediss://) URL",
    "secret_key": "32 random bytes as URL-safe base64, e.g. from "
    "`python -c \"import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\"`",
    "public_base_url": "an absolute http(s) URL such as https://api.example.com",
    "host": "a host name or IP address to bind",
    "port": "an integer from 1 to 65535",
    "log_level": "one of " + ", ".join(LOG_LEVELS),
    "cors_origins": "a comma-separated list of origins such as https://app.example.com, or *",
    "plugins": "a comma-separated list of plugin names",
    "data_dir": "a directory path",
    "allow_private_urls": "true or false",
    "kill_switch": "true or false",
}
SECRET_FIELDS = {"secret_key"}


class SettingsError(Exception):
    """Raised when the environment holds a value socialgate cannot start with."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """The service's configuration, read once at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./socialgate.db"
    events_url: str = "memory://"
    secret_key: str | None = Field(default=None, repr=False)
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    plugins: Annotated[tuple[str, ...] | None, NoDecode] = None
    data_dir: str | None = None
    # Outbound URLs that resolve to private, loopback or link-local addresses are refused unless
    # this is on (tests and single-machine setups that talk to local peers).
    allow_private_urls: bool = False
    # Global kill switch: when on, every API key is refused.
    kill_switch: bool = False

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("not a valid URL") from exc
        if url.drivername not in SUPPORTED_DATABASE_DRIVERS:
            raise ValueError(f"unsupported driver {url.drivername!r}")
        return value

    @field_validator("events_url")
    @classmethod
    def _check_events_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in SUPPORTED_EVENT_SCHEMES:
            raise ValueError("unsupported scheme")
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: str | None) -> str | None:
        if value is not None:
            decode_secret_key(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("not an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "/" in value:
            raise ValueError("not a host")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError("unknown level")
        return level

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_cors_origins(cls, value: Any) -> Any:
        origins = _split_commas(value)
        for origin in origins or ():
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
                raise ValueError(f"{origin!r} is not an origin")
        return origins

    @field_validator("plugins", mode="before")
    @classmethod
    def _parse_plugins(cls, value: Any) -> Any:
        return _split_commas(value)

    # -- derived values -------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @property
    def resolved_data_dir(self) -> Path:
        """Where the service keeps files: media, the generated secret key.

        Beside the SQLite database by default, so one directory holds one installation.
        """
        if self.data_dir:
            return Path(self.data_dir)
        url = make_url(self.database_url)
        if self.is_sqlite and url.database and url.database != ":memory:":
            return Path(url.database).resolve().parent
        return Path("socialgate-data").resolve()

    @property
    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and explicit overrides), or raise SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = ENV_PREFIX + field.upper()
        expected = EXPECTATIONS.get(field, "a valid value")
        if field in SECRET_FIELDS:
            got = ""  # never echo a secret, even a malformed one
        else:
            got = f" (got {error.get('input')!r})"
        problems.append(f"{variable}: expected {expected}{got}")
    return problems


def decode_secret_key(value: str) -> bytes:
    """Decode a configured secret key, insisting on 32 bytes (AES-256)."""
    try:
        raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not URL-safe base64") from exc
    if len(raw) != 32:
        raise ValueError("must decode to exactly 32 bytes")
    return raw


def resolve_secret_key(settings: Settings) -> bytes:
    """The key that encrypts provider tokens at rest.

    When none is configured, one is generated once into a 0600 file in the data directory and
    reused on every later start: the embedded default works with no set-up, and restarts can
    still read what earlier runs encrypted.
    """
    if settings.secret_key:
        return decode_secret_key(settings.secret_key)
    path = settings.resolved_data_dir / SECRET_KEY_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written to a private temporary file, then linked into place: a concurrent start either
        # wins the link or reads the complete file the winner wrote, never a half-written one.
        encoded = base64.urlsafe_b64encode(secrets.token_bytes(32))
        temporary = path.with_name(f".{SECRET_KEY_FILENAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    try:
        return decode_secret_key(path.read_text())
    except ValueError:
        raise SettingsError(
            [f"{path}: the secret key file is corrupt; restore it or set {ENV_PREFIX}SECRET_KEY"]
        ) from None
