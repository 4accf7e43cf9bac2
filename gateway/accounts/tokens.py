"""OAuth token lifecycle: refresh one account's token, and refresh ahead of expiry.

Platforms often rotate refresh tokens: spending one twice fails the second time, and may revoke
the whole grant. So one account is refreshed by one caller at a time, everywhere:

- inside a process, callers queue on the runtime's per-account lock; a caller that waited while
  another refreshed sees the credentials version moved and takes that outcome without calling the
  platform again;
- across processes, the refresher first claims a lease with a conditional UPDATE (same
  credentials version, no live lease); the others wait until the version moves or the lease is
  gone (then they claim it themselves);
- the new tokens are written only if the credentials version is still the one the refresh
  started from, so a refresh never overwrites credentials a reconnect stored meanwhile.

A refresh merges what the platform sent into the stored credentials: a refresh token the
platform did not replace is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.accounts import open_credentials, seal_credentials
from gateway.core import utcnow
from gateway.events import record_org_event
from gateway.outbound import UnsafeURL
from gateway.runtime import Runtime
from gateway.settings import OAuthClient
from gateway.storage import Account, VaultError
from providers import AuthExpired, OAuth2Spec, Provider, ProviderError, Rejected, TokenSet

log = logging.getLogger("socialgate.tokens")

# Longer than a provider call can take (30 s read + 10 s connect timeouts), so a live refresher
# never loses its lease; short enough that a dead one's lease is taken over soon.
LEASE = timedelta(seconds=90)
WAIT_POLL_SECONDS = 0.1
REFRESH_AHEAD = timedelta(minutes=10)
SWEEP_CONCURRENCY = 8
EXPIRED_EVENT = "account.token_expired"


def merge_token_set(credentials: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    """The stored credentials with a refresh's tokens laid over them.

    What the platform did not send stays: the refresh token (most platforms only sometimes rotate
    it) and the granted scopes (RFC 6749 §5.1: unchanged unless said). An expiry the platform no
    longer states is dropped rather than kept stale.
    """
    merged = {**credentials, **tokens.to_credentials()}
    if tokens.expires_at is None:
        merged.pop("expires_at", None)
    return merged


@dataclass(frozen=True)
class _Snapshot:
    """The account as the refresh found it when it took the lease."""

    account_id: str
    organization_id: str
    provider_id: str
    version: int
    credentials: dict[str, Any]


@dataclass(frozen=True)
class _Seen:
    version: int
    expired: bool


def _refresh_client(runtime: Runtime, provider: Provider | None, credentials: Mapping[str, Any]) -> OAuthClient | str:
    """The OAuth client to refresh the token with, or why the token cannot be refreshed at all."""
    if provider is None:
        return "provider_not_installed"
    if not isinstance(provider.auth, OAuth2Spec) or not provider.auth.refreshable or not provider.implements("refresh_token"):
        return "not_refreshable"
    if not credentials.get("refresh_token"):
        return "no_refresh_token"
    return runtime.settings.oauth_client(provider.id) or "oauth_not_configured"


async def _look(runtime: Runtime, account_id: str) -> _Seen | None:
    async with runtime.database.read() as session:
        row = (await session.execute(select(Account.credentials_version, Account.status).where(Account.id == account_id))).one_or_none()
    return None if row is None else _Seen(row.credentials_version, row.status == "token_expired")


async def _take_lease(session: AsyncSession, runtime: Runtime, account_id: str, seen: _Seen) -> _Snapshot | bool | None:
    """Claim the refresh: a snapshot when ours, True/False when it is already decided, None to wait."""
    account = await session.get(Account, account_id)
    if account is None or account.credentials is None or account.status == "disconnected":
        return False
    if account.credentials_version != seen.version:
        return account.status != "token_expired"  # refreshed (or reconnected) while we waited
    if account.status == "token_expired" and not seen.expired:
        return False  # a refresh we waited for was refused
    now = utcnow()
    taken = await session.execute(
        update(Account)
        .where(
            Account.id == account_id,
            Account.credentials_version == account.credentials_version,
            or_(Account.refresh_lease_until.is_(None), Account.refresh_lease_until <= now),
        )
        .values(refresh_lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        return None
    return _Snapshot(account.id, account.organization_id, account.provider, account.credentials_version, open_credentials(runtime.secret_key, account))


def _ours(snapshot: _Snapshot) -> Any:
    return update(Account).where(Account.id == snapshot.account_id, Account.credentials_version == snapshot.version).execution_options(
        synchronize_session=False
    )


async def _release(runtime: Runtime, snapshot: _Snapshot) -> None:
    async with runtime.database.write() as session:
        await session.execute(_ours(snapshot).values(refresh_lease_until=None))


async def _expire(runtime: Runtime, snapshot: _Snapshot, reason: str) -> None:
    async with runtime.database.write() as session:
        marked = await session.execute(_ours(snapshot).values(status="token_expired", refresh_lease_until=None))
        expired = None
        if marked.rowcount == 1:  # stored with the change, so every process's subscribers hear of it
            expired = await record_org_event(
                session, snapshot.organization_id, EXPIRED_EVENT,
                {"accountId": snapshot.account_id, "provider": snapshot.provider_id, "reason": reason}, snapshot.account_id,
            )
    if expired is not None:
        log.warning("account token expired", extra={"account_id": snapshot.account_id, "provider": snapshot.provider_id, "reason": reason})
        await runtime.publish(expired)


async def _store(runtime: Runtime, snapshot: _Snapshot, tokens: TokenSet) -> bool:
    merged = merge_token_set(snapshot.credentials, tokens)
    async with runtime.database.write() as session:
        stored = await session.execute(
            _ours(snapshot).values(
                credentials=seal_credentials(runtime.secret_key, snapshot.account_id, merged),
                credentials_version=snapshot.version + 1,
                refresh_lease_until=None,
                token_expires_at=tokens.expires_at,
                status=case((Account.status == "token_expired", "active"), else_=Account.status),
            )
        )
        if stored.rowcount == 1:
            return True
        # Reconnected while the platform answered: those credentials are newer than ours.
        current = await session.get(Account, snapshot.account_id)
    log.info("refreshed tokens discarded: the account was reconnected meanwhile", extra={"account_id": snapshot.account_id})
    return current is not None and current.status not in ("token_expired", "disconnected")


async def _refresh_with_lease(runtime: Runtime, snapshot: _Snapshot) -> bool:
    provider = runtime.plugins.get(snapshot.provider_id)
    client = _refresh_client(runtime, provider, snapshot.credentials)
    if isinstance(client, str) or provider is None:
        await _expire(runtime, snapshot, str(client))
        return False
    context = runtime.provider_context(provider.id, snapshot.account_id, snapshot.credentials)
    try:
        tokens = await provider.refresh_token(context, client_id=client.client_id, client_secret=client.client_secret)
    except (AuthExpired, Rejected, UnsafeURL) as error:
        # Refused for good: by the platform, or by the SSRF guard (the token endpoint the
        # credentials name is a private address).
        await _expire(runtime, snapshot, error.code)
        return False
    except BaseException:
        # Rate limited, transient, unconfirmed or a bug: nothing was decided; let the caller retry.
        await asyncio.shield(_release(runtime, snapshot))
        raise
    return await _store(runtime, snapshot, tokens)


async def refresh_account_token(runtime: Runtime, account_id: str) -> bool:
    """Refresh the account's OAuth token; True when the account holds usable tokens afterwards.

    False when the platform refused (the account is now ``token_expired`` and the organization
    got an ``account.token_expired`` event), when the token cannot be refreshed at all, or when the
    account is gone or disconnected. Raises ``RateLimited``/``TransientError`` (or any other
    error of the provider) when nothing could be decided: try again later.
    """
    seen = await _look(runtime, account_id)
    if seen is None:
        return False
    async with runtime.account_locks.hold(account_id):
        while True:
            async with runtime.database.write() as session:
                lease = await _take_lease(session, runtime, account_id, seen)
            if isinstance(lease, bool):
                return lease
            if lease is not None:
                return await _refresh_with_lease(runtime, lease)
            await asyncio.sleep(WAIT_POLL_SECONDS)  # another process is refreshing this account


@dataclass
class RefreshSweep:
    """What one ``refresh_expiring`` pass did, by account id."""

    refreshed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # the platform could not answer; next pass


async def _expiring(runtime: Runtime, within: timedelta) -> list[str]:
    async with runtime.database.read() as session:
        accounts = (
            await session.execute(
                select(Account).where(
                    Account.status == "active",
                    Account.credentials.is_not(None),
                    Account.token_expires_at.is_not(None),
                    Account.token_expires_at <= utcnow() + within,
                )
            )
        ).scalars().all()
    # Only tokens a refresh can renew: the others stay usable until they expire, and publishing
    # marks them token_expired then.
    renewable = []
    for account in accounts:
        try:
            credentials = open_credentials(runtime.secret_key, account)
        except VaultError:
            log.error("stored credentials do not open with this secret key", extra={"account_id": account.id})
            continue
        if isinstance(_refresh_client(runtime, runtime.plugins.get(account.provider), credentials), OAuthClient):
            renewable.append(account.id)
    return renewable


async def refresh_expiring(runtime: Runtime, within: timedelta = REFRESH_AHEAD) -> RefreshSweep:
    """Refresh every active OAuth account whose token expires within ``within`` (or already has)."""
    sweep = RefreshSweep()
    slots = asyncio.Semaphore(SWEEP_CONCURRENCY)

    async def one(account_id: str) -> None:
        async with slots:
            try:
                refreshed = await refresh_account_token(runtime, account_id)
            except ProviderError as error:
                log.info("token refresh deferred", extra={"account_id": account_id, "code": error.code})
                sweep.deferred.append(account_id)
                return
            except Exception:  # a provider bug must not stop the other accounts' refreshes
                log.exception("token refresh failed", extra={"account_id": account_id})
                sweep.deferred.append(account_id)
                return
        (sweep.refreshed if refreshed else sweep.expired).append(account_id)

    await asyncio.gather(*(one(account_id) for account_id in await _expiring(runtime, within)))
    return sweep
