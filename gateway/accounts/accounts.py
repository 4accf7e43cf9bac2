"""Connected accounts: connect with a credentials form, update, disconnect, list.

Credentials are checked against the provider's form first, then with the platform itself
(``Provider.connect`` says whose account they are), and only then sealed with the vault and
stored. They never appear in a response, a log line or an error message: errors name the field,
never its value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import find_owned, require_owned
from gateway.core import BadInput, Page, PageRequest, UserError, UserErrors, new_id, paginate, utcnow
from gateway.events import BusEvent, record_org_event
from gateway.orgs import merge_metadata
from gateway.outbound import UnsafeURL
from gateway.plugins import PluginRegistry
from gateway.runtime import Runtime
from gateway.storage import Account, decrypt, encrypt
from providers import AccountProfile, AuthExpired, ProviderError, RateLimited, Rejected, TransientError, validate_credentials

log = logging.getLogger("socialgate.accounts")

ACCOUNT_STATUSES = ("active", "token_expired", "disconnected", "rate_limited")
CONNECTED_EVENT = "account.connected"
MAX_CREDENTIAL_LENGTH = 10_000
MAX_DISPLAY_NAME = 255


# What a reader of an account is shown: never the sealed credentials (the heaviest column, and a
# secret), nor the refresh bookkeeping.
SHOWN_COLUMNS = (
    "id", "organization_id", "provider", "external_id", "handle", "display_name", "account_type", "status",
    "token_expires_at", "rate_limited_until", "metadata_", "created_at", "disconnected_at",
)


# Built once, with bind parameters: its cache key is computed once and its columns coerced once.
_SHOWN_ACCOUNTS = select(*(getattr(Account, name) for name in SHOWN_COLUMNS)).where(
    Account.id.in_(bindparam("ids", expanding=True)), Account.organization_id == bindparam("organization_id")
)


async def shown_accounts(session: AsyncSession, organization_id: str, ids: Sequence[str]) -> dict[str, Any]:
    """The accounts among ``ids`` in this organization, as Core rows of ``SHOWN_COLUMNS``, by id."""
    rows = await session.execute(_SHOWN_ACCOUNTS, {"ids": list(ids), "organization_id": organization_id})
    return {row.id: row for row in rows}


def require_provider(registry: PluginRegistry, provider_id: str) -> Any:
    provider = registry.get(provider_id)
    if provider is None:
        raise UserError("UNKNOWN_PROVIDER", f"No provider {provider_id[:60]!r} is installed.", ["provider"])
    return provider


def seal_credentials(secret_key: bytes, account_id: str, credentials: Mapping[str, Any]) -> bytes:
    # Bound to the account id: a sealed blob copied onto another row will not open there.
    return encrypt(secret_key, dict(credentials), associated=account_id)


def _credentials_replaced(account: Account) -> None:
    """A new credentials version: a token refresh started from the old credentials will not write
    over the new ones, and no refresh lease survives the change."""
    account.credentials_version = (account.credentials_version or 0) + 1
    account.refresh_lease_until = None


def open_credentials(secret_key: bytes, account: Account) -> dict[str, Any]:
    if account.credentials is None:
        return {}
    return decrypt(secret_key, account.credentials, associated=account.id)


async def verify_credentials(runtime: Runtime, provider_id: str, credentials: Mapping[str, str]) -> AccountProfile:
    """Check a submitted form, then ask the platform whose account it opens. Nothing is stored."""
    provider = require_provider(runtime.plugins, provider_id)
    oversized = [name for name, value in credentials.items() if len(str(value)) > MAX_CREDENTIAL_LENGTH]
    if oversized:
        raise UserError("CREDENTIAL_INVALID", f"{oversized[0]!r} is too long.", ["credentials", oversized[0]])
    issues = validate_credentials(provider, credentials)
    if issues:
        raise UserErrors([UserError(i.code, i.message, list(i.field)) for i in issues])
    context = runtime.provider_context(provider.id, None, dict(credentials))
    try:
        return await provider.connect(context, dict(credentials))
    except (AuthExpired, Rejected) as error:
        raise UserError("CREDENTIALS_REJECTED", f"{provider.name} refused these credentials: {provider_reason(error)}", ["credentials"]) from None
    except (RateLimited, TransientError) as error:
        raise UserError("PROVIDER_UNAVAILABLE", f"{provider.name} did not answer usably; try again. ({provider_reason(error)})", ["provider"]) from None
    except ProviderError as error:
        raise UserError("CONNECT_FAILED", f"{provider.name} could not connect the account: {provider_reason(error)}", ["credentials"]) from None
    except UnsafeURL as error:  # the form named a private or loopback address
        raise UserError(error.code, error.message, ["credentials"]) from None


def provider_reason(error: Exception) -> str:
    """The platform's reason, trimmed; providers never put credentials in their error messages."""
    return str(error)[:300]


@dataclass(frozen=True)
class SavedAccount:
    """A connected account and its stored ``account.connected`` event, to publish after the commit."""

    account: Account
    connected: BusEvent


async def save_account(
    session: AsyncSession,
    secret_key: bytes,
    organization_id: str,
    provider_id: str,
    profile: AccountProfile,
    credentials: Mapping[str, Any],
    *,
    token_expires_at: datetime | None = None,
    connection_id: str | None = None,
) -> SavedAccount:
    """Create the account, or refresh the existing one for the same platform identity.

    ``token_expires_at`` is when the access token in ``credentials`` expires (OAuth), if it does;
    ``connection_id`` names the OAuth connection that made it. The ``account.connected`` event is
    stored in the same transaction, whichever way the account was connected: the caller publishes
    it once that transaction has committed.
    """
    same_identity = select(Account).where(
        Account.organization_id == organization_id,
        Account.provider == provider_id,
        Account.external_id == profile.external_id,
    )
    account = (await session.execute(same_identity)).scalar_one_or_none()
    if account is None:
        created = Account(id=new_id("acct"), organization_id=organization_id, provider=provider_id, external_id=profile.external_id)
        try:
            async with session.begin_nested():
                session.add(created)
                await session.flush()
            account = created
        except IntegrityError:  # a concurrent connect of the same identity created it first: update that one
            account = (await session.execute(same_identity)).scalar_one()
    account.handle = profile.handle[:255]
    account.display_name = (profile.display_name or profile.handle)[:255]
    account.account_type = profile.account_type[:40]
    account.status = "active"
    account.disconnected_at = None
    account.rate_limited_until = None
    account.credentials = seal_credentials(secret_key, account.id, credentials)
    _credentials_replaced(account)
    account.token_expires_at = token_expires_at
    await session.flush()
    connected = await record_org_event(
        session, organization_id, CONNECTED_EVENT,
        {"accountId": account.id, "provider": provider_id, "connectionId": connection_id}, account.id,
    )
    return SavedAccount(account, connected)


async def find_account(session: AsyncSession, organization_id: str, account_id: str) -> Account | None:
    return await find_owned(session, Account, "acct", organization_id, account_id)


async def _owned(session: AsyncSession, organization_id: str, account_id: str) -> Account:
    return await require_owned(session, Account, "acct", organization_id, account_id, code="ACCOUNT_NOT_FOUND", noun="account")


async def update_account(
    session: AsyncSession, organization_id: str, account_id: str, *, display_name: str | None, metadata: Any, metadata_given: bool
) -> Account:
    account = await _owned(session, organization_id, account_id)
    if display_name is not None:
        if len(display_name) > MAX_DISPLAY_NAME:
            raise UserError("DISPLAY_NAME_TOO_LONG", f"A display name is at most {MAX_DISPLAY_NAME} characters.", ["displayName"])
        account.display_name = display_name.strip()
    if metadata_given:
        account.metadata_ = merge_metadata(account.metadata_, metadata)
    await session.flush()
    return account


async def disconnect_account(session: AsyncSession, organization_id: str, account_id: str) -> Account:
    """Wipe the credentials and keep the row, so published posts keep their history."""
    account = await _owned(session, organization_id, account_id)
    account.credentials = None
    _credentials_replaced(account)
    account.token_expires_at = None
    account.status = "disconnected"
    account.disconnected_at = account.disconnected_at or utcnow()
    await session.flush()
    return account


@dataclass(frozen=True)
class AccountFilter:
    provider: str | None = None
    status: str | None = None


async def list_accounts(session: AsyncSession, organization_id: str, filters: AccountFilter, page: PageRequest) -> Page[Account]:
    query = select(Account).where(Account.organization_id == organization_id)
    if filters.provider is not None:
        query = query.where(Account.provider == filters.provider)
    if filters.status is not None:
        if filters.status not in ACCOUNT_STATUSES:
            raise BadInput(f"Unknown account status {filters.status[:40]!r}.", "status")
        query = query.where(Account.status == filters.status)
    return await paginate(session, query, Account, page)


def connect_fingerprint(secret_key: bytes, provider_id: str, credentials: Mapping[str, Any]) -> dict[str, str]:
    """What an idempotency record remembers of a connect request: a keyed hash, never the secrets."""
    digest = hmac.new(secret_key, json.dumps(dict(credentials), sort_keys=True, default=str).encode(), hashlib.sha256)
    return {"provider": provider_id, "credentials": digest.hexdigest()}
