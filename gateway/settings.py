"""Every setting comes from an environment variable prefixed ``SOCIALGATE_``.

A bad value stops the start with a message naming the variable and what it expects, instead of
failing later somewhere far from the cause.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.storage import make_private_directories, mask_passwords, masked_url

ENV_PREFIX = "SOCIALGATE_"
SUPPORTED_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# memory:// is the in-process bus (several processes still share events through the database);
# redis:// (rediss:// over TLS) is the Redis Streams bus, which also holds the shared rate-limit
# buckets and OAuth refresh locks (docs/events-redis.md).
SUPPORTED_EVENT_SCHEMES = ("memory", "redis", "rediss")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILENAME = "socialgate.secret"

# What each variable expects, said in the error message when its value is refused.
EXPECTATIONS = {
    "database_url": "a SQLAlchemy URL using sqlite+aiosqlite:// or postgresql+asyncpg://",
    "events_url": "memory:// (the default, in-process) or a Redis URL such as redis://127.0.0.1:6379/0",
    "secret_key": "32 random bytes as URL-safe base64, e.g. from "
    "`python -c \"import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\"`",
    "public_base_url": "an absolute http(s) URL such as https://api.example.com",
    "host": "a host name or IP address to bind",
    "port": "an integer from 1 to 65535",
    "log_level": "one of " + ", ".join(LOG_LEVELS),
    "cors_origins": "a comma-separated list of origins such as https://app.example.com, or *",
    "plugins": "a comma-separated list of plugin names",
    "trace_plugins": "true or false (1 or 0)",
    "data_dir": "a directory path",
    "allow_private_urls": "true or false",
    "kill_switch": "true or false",
    "key_recheck_seconds": "a number of seconds above 0 (at most 300)",
    "run_scheduler": "true or false",
    "publish_max_attempts": "an integer from 1 to 50",
    "retry_base_seconds": "a number of seconds above 0 (at most 3600)",
    "retry_max_seconds": "a number of seconds above 0 (at most 86400)",
    "lease_seconds": "a number of seconds from 1 to 86400",
    "scheduler_poll_seconds": "a number of seconds above 0 (at most 60)",
    "ads_sync_seconds": "a number of seconds from 0 (off) to 86400",
    "max_request_bytes": "a number of bytes from 1024 to 67108864",
    "webhook_lease_seconds": "a number of seconds from 1 to 3600",
    "public_introspection": "true or false",
    "audit_retention_days": "a whole number of days from 1 to 3650",
    "metrics_poll_seconds": "a number of seconds above 0 (at most 3600)",
    "metrics_raw_days": "an integer from 1 to 365",
    "metrics_retention_days": "an integer from 0 (keep forever) to 36500",
    "metrics_token": "at least 16 characters, e.g. from `python -c \"import secrets;print(secrets.token_urlsafe(32))\"`",
    "metrics_port": "an integer from 1 to 65535",
}
SECRET_FIELDS = {"secret_key", "metrics_token"}
# Fields whose refused value may be a URL carrying a password: shown with the password masked.
URL_FIELDS = {"database_url", "events_url", "public_base_url"}

# A provider's OAuth client: SOCIALGATE_OAUTH_<PROVIDER>_CLIENT_ID and _CLIENT_SECRET, where
# <PROVIDER> is the provider id upper-cased with every other character than A-Z and 0-9 made "_".
OAUTH_VARIABLE = re.compile(ENV_PREFIX + r"OAUTH_[A-Z0-9_]+_CLIENT_(ID|SECRET)")


class StartupError(Exception):
    """A process cannot start: the command line prints the problems, without a traceback, and exits 2."""

    heading = ""  # what kind of problem, when the problems do not say it themselves

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__((f"{self.heading}:" if self.heading else "") + "\n" + "\n".join(f"  - {p}" for p in problems))


class SettingsError(StartupError):
    """Raised when the environment holds a value socialgate cannot start with."""

    heading = "Invalid configuration"


@dataclass(frozen=True)
class OAuthClient:
    """The OAuth client the gateway is registered as with one platform. The secret is never shown."""

    client_id: str
    client_secret: str = field(repr=False)


def oauth_client_variables(provider_id: str) -> tuple[str, str]:
    """The two variables that configure a provider's OAuth client: (client id, client secret)."""
    stem = ENV_PREFIX + "OAUTH_" + re.sub(r"[^A-Z0-9]", "_", provider_id.upper())
    return stem + "_CLIENT_ID", stem + "_CLIENT_SECRET"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """The service's configuration, read once at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Not in the repr: a URL may carry a password.
    database_url: str = Field(default="sqlite+aiosqlite:///./socialgate.db", repr=False)
    events_url: str = Field(default="memory://", repr=False)
    secret_key: str | None = Field(default=None, repr=False)
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    plugins: Annotated[tuple[str, ...] | None, NoDecode] = None
    # Log every plugin hook call with its plugin and duration (datasette's DATASETTE_TRACE_PLUGINS).
    trace_plugins: bool = False
    data_dir: str | None = None
    # Outbound URLs that resolve to private, loopback or link-local addresses are refused unless
    # this is on (tests and single-machine setups that talk to local peers).
    allow_private_urls: bool = False
    # Global kill switch: when on, every API key is refused.
    kill_switch: bool = False
    # How often open subscriptions re-check the key they were opened with (revoked, expired,
    # killed, organization suspended); a socket whose key no longer stands is closed with 4403.
    key_recheck_seconds: float = Field(default=5.0, gt=0, le=300)
    # The publishing engine. `serve` runs the scheduler in-process unless this is off (then run
    # `socialgate worker` processes instead).
    run_scheduler: bool = True
    publish_max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    retry_max_seconds: float = Field(default=900.0, gt=0, le=86400)
    lease_seconds: float = Field(default=300.0, ge=1, le=86400)
    scheduler_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long a webhook worker holds a delivery it claimed; a worker that dies leaves it to
    # another after this. Each call gets at most 15 s and never more than 80% of the lease.
    webhook_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    # How often the process that runs the scheduler (`serve`, or each `socialgate worker`) syncs every active ad account (gateway.ads.sync);
    # 0 turns the periodic sync off (`syncAds` still runs one on demand).
    ads_sync_seconds: float = Field(default=900.0, ge=0, le=86400)
    # The largest JSON request body /graphql reads (a document and its variables). Multipart
    # uploads are bounded by the largest media file instead (gateway.web.body_limit).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Introspection (__schema, __type) and GraphiQL for callers without a valid key. Off, only a
    # caller with a key sees the schema (schema.introspection).
    public_introspection: bool = True
    # How long audit entries (every mutation, gateway.audit) are kept before the pruning chore deletes them.
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    # Metrics collection (gateway.metrics), run wherever the scheduler runs: how often it looks
    # for due reads, how long every reading is kept before thinning to one a day, and when
    # readings are dropped altogether (0: never).
    metrics_poll_seconds: float = Field(default=30.0, gt=0, le=3600)
    metrics_raw_days: int = Field(default=7, ge=1, le=365)
    metrics_retention_days: int = Field(default=0, ge=0, le=36500)
    # Prometheus /metrics (gateway.observability): on the API's port to this bearer token, and/or
    # alone on a port of its own in every process (serve and worker). Neither set: not served.
    metrics_token: str | None = Field(default=None, min_length=16, repr=False)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # SOCIALGATE_OAUTH_<PROVIDER>_CLIENT_ID/_CLIENT_SECRET by variable name; provider ids are not
    # known before the plugins load, so every such variable is kept and looked up per provider.
    _oauth_variables: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        self._oauth_variables = {
            name: value.strip() for name, value in os.environ.items() if OAUTH_VARIABLE.fullmatch(name) and value.strip()
        }

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
    def uses_redis(self) -> bool:
        """Whether SOCIALGATE_EVENTS_URL names a Redis server (the Streams bus and shared state)."""
        return urlsplit(self.events_url).scheme != "memory"

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

    def oauth_client(self, provider_id: str) -> OAuthClient | None:
        """The provider's OAuth client, or None unless both its id and its secret are set."""
        id_variable, secret_variable = oauth_client_variables(provider_id)
        client_id, client_secret = self._oauth_variables.get(id_variable), self._oauth_variables.get(secret_variable)
        if not client_id or not client_secret:
            return None
        return OAuthClient(client_id, client_secret)

    @property
    def oauth_variable_names(self) -> list[str]:
        """Every SOCIALGATE_OAUTH_*_CLIENT_ID/_SECRET variable set (names only: `socialgate doctor` spots typos)."""
        return sorted(self._oauth_variables)

    def missing_oauth_variables(self, provider_id: str) -> list[str]:
        """The variables still to set before the provider's OAuth flow can run (none when configured)."""
        return [name for name in oauth_client_variables(provider_id) if name not in self._oauth_variables]

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
        elif field in URL_FIELDS and isinstance(error.get("input"), str):
            shown = masked_url(error["input"]) if field == "database_url" else mask_passwords(error["input"])
            got = f" (got {shown!r})"
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
    still read what earlier runs encrypted. Never on PostgreSQL: its processes run on several
    machines, each would generate a key of its own, and none could open what another sealed.
    """
    if settings.secret_key:
        return decode_secret_key(settings.secret_key)
    path = settings.resolved_data_dir / SECRET_KEY_FILENAME
    if not settings.is_sqlite:
        raise SettingsError([
            f"{ENV_PREFIX}SECRET_KEY: required with a PostgreSQL database, and the same in every serve, worker and "
            f"migrate process; none is generated. Expected {EXPECTATIONS['secret_key']}"
            + (f". A key an earlier version generated is in {path}: use its content." if path.exists() else "")
        ])
    make_private_directories(path.parent)
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
