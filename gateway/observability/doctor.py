"""`socialgate doctor`: what is wrong with a deployment's configuration, each problem said once.

Why a command of its own: `serve` and `worker` stop at the first problem they meet (the database,
then the key), and some problems never stop anything — a Redis bus nobody can reach, a public URL
the platforms cannot call back, half an OAuth client, a variable with a typo — they only show up
when a user's post or connection fails. The doctor looks at every one and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.plugins import PluginRegistry
from gateway.settings import ENV_PREFIX, SECRET_KEY_FILENAME, Settings, oauth_client_variables, resolve_secret_key
from gateway.storage import (
    Database,
    DatabaseUnreachable,
    SecretKeyMismatch,
    check_secret_key,
    current_revision,
    head_revision,
    mask_passwords,
    masked_url,
)
from providers import OAuth2Spec

REDIS_SCHEMES = ("redis", "rediss", "unix")
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Finding:
    """One check's verdict: ``ok`` False is a problem (the doctor exits non-zero), ``note`` a remark."""

    check: str
    ok: bool
    message: str


async def diagnose(settings: Settings, plugins: PluginRegistry) -> list[Finding]:
    """Every check, in the order a deployment depends on them."""
    key_set = _secret_key_set(settings)
    findings = [key_set, *await _database(settings, compare_key=key_set.ok)]
    findings.append(await _redis(settings.events_url))
    findings.append(await _public_url(settings))
    findings.extend(_oauth_clients(settings, plugins))
    return findings


def _secret_key_set(settings: Settings) -> Finding:
    if settings.secret_key is None and not settings.is_sqlite:
        return Finding("secret key", False, f"{ENV_PREFIX}SECRET_KEY is not set: on a shared database every process must be "
                       "given the same key (none is generated off SQLite)")
    source = "set" if settings.secret_key else f"generated into {settings.resolved_data_dir / SECRET_KEY_FILENAME}"
    return Finding("secret key", True, source)


async def _database(settings: Settings, *, compare_key: bool) -> list[Finding]:
    """Reachable, migrated, and used with this process's key (its fingerprint is stored in the database)."""
    database = Database(settings.database_url)
    where = masked_url(database.url)
    findings: list[Finding] = []
    try:
        try:
            await database.check_reachable()
        except DatabaseUnreachable as error:
            return [Finding("database", False, str(error))]
        findings.append(Finding("database", True, f"{where} answers"))
        revision, head = await current_revision(database), head_revision()
        if revision == head:
            findings.append(Finding("migrations", True, f"at revision {head}"))
        elif settings.is_sqlite:
            findings.append(Finding("migrations", True, f"at revision {revision or 'none'}; `serve` and `worker` migrate SQLite to {head} at start"))
        else:
            found = f"at revision {revision}" if revision else "without tables"
            findings.append(Finding("migrations", False, f"{where} is {found}, this socialgate needs {head}: run `socialgate migrate`"))
        if compare_key:
            findings.append(await _same_key(settings, database))
    finally:
        await database.dispose()
    return findings


async def _same_key(settings: Settings, database: Database) -> Finding:
    """The key's fingerprint against the one the database recorded (recorded now if it has none, as a first start does)."""
    try:
        await check_secret_key(database, resolve_secret_key(settings))
    except SecretKeyMismatch:
        return Finding("same secret key", False, f"{ENV_PREFIX}SECRET_KEY is not the key {masked_url(database.url)} was first used with: "
                       "no stored credential would open. Give every serve, worker and migrate process the same key")
    return Finding("same secret key", True, "this process's key is the one the database was first used with")


async def _redis(events_url: str) -> Finding:
    """A Redis event bus must answer PING; the in-process bus needs nothing."""
    if urlsplit(events_url).scheme not in REDIS_SCHEMES:
        return Finding("event bus", True, "in-process (SOCIALGATE_EVENTS_URL unset): processes share events through the database")
    client = redis.from_url(events_url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
    shown = mask_passwords(events_url)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        return Finding("event bus", False, f"Redis at {shown} does not answer PING: {type(error).__name__}: {mask_passwords(str(error))}")
    finally:
        await client.aclose()
    return Finding("event bus", True, f"Redis at {shown} answers PING")


async def _public_url(settings: Settings) -> Finding:
    """The URL platforms call back (OAuth) and fetch media from must reach a socialgate."""
    if settings.public_base_url is None:
        return Finding("public URL", True, f"{ENV_PREFIX}PUBLIC_BASE_URL is not set: links use {settings.base_url}; "
                       "behind a load balancer set it to the balancer's https URL")
    url = settings.public_base_url + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            response = await http.get(url)
    except httpx.HTTPError as error:
        return Finding("public URL", False, f"{url} cannot be reached: {type(error).__name__} {error}")
    if response.status_code != 200 or _json_status(response) != "ok":
        return Finding("public URL", False, f"{url} answered {response.status_code}, not socialgate's health check")
    return Finding("public URL", True, f"{url} answers")


def _json_status(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def _oauth_clients(settings: Settings, plugins: PluginRegistry) -> list[Finding]:
    """Half a client (an id without its secret) and a variable naming no installed provider are mistakes;
    an OAuth provider without a client is only listed: it simply cannot be connected."""
    findings = []
    known: set[str] = set()
    unconfigured = []
    for provider in sorted(plugins.providers.values(), key=lambda p: p.id):
        if not isinstance(provider.auth, OAuth2Spec):
            continue
        variables = oauth_client_variables(provider.id)
        known.update(variables)
        missing = settings.missing_oauth_variables(provider.id)
        if len(missing) == 1:
            findings.append(Finding("OAuth clients", False, f"{provider.id}: {missing[0]} is missing (the other half is set)"))
        elif missing:
            unconfigured.append(provider.id)
    for name in sorted(set(settings.oauth_variable_names) - known):
        findings.append(Finding("OAuth clients", False, f"{name} names no installed OAuth provider (a typo, or a plugin not installed?)"))
    if not findings:
        note = f"; not configured (cannot be connected): {', '.join(unconfigured)}" if unconfigured else ""
        findings.append(Finding("OAuth clients", True, "every configured client is complete" + note))
    return findings

