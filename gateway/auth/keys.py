"""API keys: minting, hashing and authenticating ``sg_live_…`` secrets.

A key is ``sg_live_`` + a 12-character lookup + a 32-character secret. Only the lookup and a
SHA-256 of the whole key are stored; the secret is shown once. A high-entropy random secret needs
no slow password hash: SHA-256 already makes the stored value useless to whoever reads the table.

Authentication takes the same path for every failure — a row lookup and a constant-time hash
comparison happen even for a malformed or unknown key — so neither the message nor the timing
tells an attacker which check refused them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from gateway.auth.scopes import covers, is_valid_scope
from gateway.auth.tenancy import find_owned, require_owned
from gateway.core import Forbidden, NotFound, Page, PageRequest, ServiceError, Unauthenticated, UserError, new_id, paginate, utcnow
from gateway.storage import ALONE, ApiKey, Organization

KEY_PREFIX = "sg_live_"
LOOKUP_LENGTH = 12
SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}([A-Za-z0-9]{{{LOOKUP_LENGTH}}})([A-Za-z0-9]{{{SECRET_LENGTH}}})$")
# Compared against when there is no row, so a miss costs what a hit costs.
_DUMMY_HASH = hashlib.sha256(b"socialgate-no-such-key").digest()
_DUMMY_LOOKUP = "0" * LOOKUP_LENGTH
# Writing last_used_at on every request would serialize reads behind writes on SQLite.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_SCOPES = 50
MAX_NAME_LENGTH = 200
# How long a rotated key's old secret keeps working, so deployments can roll over without downtime.
ROTATION_GRACE = timedelta(hours=24)
# Only an operator (the CLI) mints keys holding this; a key never hands it on.
UNDELEGABLE_SCOPE = "org:admin"
# The organization a key's organization belongs to, if any (its kill switch counts too).
_Parent = aliased(Organization)


@dataclass(frozen=True)
class MintedKey:
    key: ApiKey
    secret: str  # the only moment the full secret exists outside the caller's hands


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its organization and what it may do."""

    api_key_id: str
    organization_id: str
    scopes: tuple[str, ...]
    last_used_at: datetime | None = field(default=None, compare=False)
    # Set when a parent organization's key acts inside a child through X-Socialgate-Org.
    acting_from_organization_id: str | None = None

    def needs_touch(self, now: datetime | None = None) -> bool:
        """Whether last_used_at is stale enough to be worth a write."""
        now = now or utcnow()
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def validate_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise UserError("SCOPES_REQUIRED", "A key needs at least one scope.", ["scopes"])
    if len(scopes) > MAX_SCOPES:
        raise UserError("TOO_MANY_SCOPES", f"A key holds at most {MAX_SCOPES} scopes.", ["scopes"])
    for index, scope in enumerate(scopes):
        if not is_valid_scope(scope):
            raise UserError("INVALID_SCOPE", f"Unknown scope {scope[:80]!r}.", ["scopes", str(index)])
    return sorted(set(scopes))


async def mint_key(
    session: AsyncSession,
    organization_id: str,
    scopes: list[str],
    *,
    name: str = "",
    created_by_key_id: str | None = None,
    rotated_from_id: str | None = None,
) -> MintedKey:
    scopes = validate_scopes(scopes)
    lookup = _random(LOOKUP_LENGTH)
    secret = KEY_PREFIX + lookup + _random(SECRET_LENGTH)
    key = ApiKey(
        id=new_id("key"),
        organization_id=organization_id,
        name=name[:200],
        lookup=lookup,
        secret_hash=hash_secret(secret),
        scopes=scopes,
        created_by_key_id=created_by_key_id,
        rotated_from_id=rotated_from_id,
    )
    session.add(key)
    await session.flush()
    return MintedKey(key=key, secret=secret)


@dataclass(frozen=True)
class Refusal:
    """Why a key no longer opens the API: checked at authentication and again by open subscriptions."""

    code: str
    message: str

    def as_error(self) -> ServiceError:
        """The error a request gets: the same Unauthenticated for every key that is not (or no longer) valid."""
        return Unauthenticated() if self.code in (KEY_REVOKED, KEY_EXPIRED) else Forbidden(self.message)


KEY_REVOKED = "KEY_REVOKED"
KEY_EXPIRED = "KEY_EXPIRED"
KILL_SWITCH = "KILL_SWITCH"


def refusal_of(
    key: ApiKey, organization: Organization, *, kill_switch: bool, parent_killed: bool, now: datetime
) -> Refusal | None:
    """Why ``key`` (of ``organization``) is refused now, or None when it stands.

    ``kill_switch`` is the global one; ``parent_killed`` is the kill switch of the organization's
    parent, which stops its children too: it is how an operator halts a whole tenant.
    """
    if key.revoked_at is not None:
        return Refusal(KEY_REVOKED, "The API key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        return Refusal(KEY_EXPIRED, "The API key expired.")
    if kill_switch or key.disabled or parent_killed:
        return Refusal(KILL_SWITCH, "This API key is disabled by a kill switch.")
    return organization_refusal(organization)


def organization_refusal(organization: Organization) -> Refusal | None:
    """Why keys acting in ``organization`` are refused (its kill switch, its status), or None."""
    if organization.kill_switch:
        return Refusal(KILL_SWITCH, "This API key is disabled by a kill switch.")
    if organization.status != "active":
        return Refusal(f"ORGANIZATION_{organization.status.upper()}", f"The organization is {organization.status}.")
    return None


def select_keys_with_organizations() -> Select:
    """Rows of (ApiKey, Organization, parent_killed): everything ``refusal_of`` weighs."""
    return (
        select(ApiKey, Organization, _Parent.kill_switch.label("parent_killed"))
        .join(Organization, Organization.id == ApiKey.organization_id)
        .outerjoin(_Parent, _Parent.id == Organization.parent_id)
    )


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@dataclass(frozen=True)
class _OrganizationFacts:
    """What ``organization_refusal`` reads of an organization, from ``_AUTHENTICATION``'s row."""

    kill_switch: bool
    status: str


def _authentication_statement() -> Select:
    """Every request's lookup: the columns ``refusal_of`` and ``Principal`` read, as one Core row.
    Built once, so its cache key is too; loading the key and its organization as ORM objects cost
    more than the query."""
    parent = Organization.__table__.alias("parent")
    keys, organizations, parents = ApiKey.__table__.c, Organization.__table__.c, parent.c
    return (
        select(
            keys.id, keys.organization_id, keys.secret_hash, keys.scopes, keys.last_used_at, keys.revoked_at, keys.expires_at,
            keys.disabled, organizations.kill_switch.label("organization_killed"), organizations.status.label("organization_status"),
            parents.kill_switch.label("parent_killed"),
        )
        .join(Organization.__table__, organizations.id == keys.organization_id)
        .outerjoin(parent, parents.id == organizations.parent_id)
        .where(keys.lookup == bindparam("lookup"))
    )


# One statement, a request's first: it needs no transaction of its own (``storage.ALONE``), which on
# SQLite spares the BEGIN and the rollback around it. It reads the latest committed key, as before.
_AUTHENTICATION = _authentication_statement().execution_options(**ALONE)


async def authenticate(
    session: AsyncSession | AsyncConnection, token: str | None, *, kill_switch: bool = False, now: datetime | None = None
) -> Principal:
    """The principal behind a secret, or Unauthenticated — the same error for every reason. One Core
    statement: a session or a bare connection (``Database.connect``) serves alike."""
    now = now or utcnow()
    match = KEY_PATTERN.match(token or "")
    lookup = match.group(1) if match else _DUMMY_LOOKUP
    key = (await session.execute(_AUTHENTICATION, {"lookup": lookup})).first()
    stored_hash = key.secret_hash if key else _DUMMY_HASH
    matches = hmac.compare_digest(stored_hash, hash_secret(token or ""))
    if not (match and key and matches):
        raise Unauthenticated()
    organization = _OrganizationFacts(kill_switch=key.organization_killed, status=key.organization_status)
    refusal = refusal_of(key, organization, kill_switch=kill_switch, parent_killed=bool(key.parent_killed), now=now)  # type: ignore[arg-type]
    if refusal is not None:
        raise refusal.as_error()
    return Principal(
        api_key_id=key.id,
        organization_id=key.organization_id,
        scopes=tuple(key.scopes),
        last_used_at=key.last_used_at,
    )


async def touch_last_used(session: AsyncSession, api_key_id: str, now: datetime | None = None) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == api_key_id).values(last_used_at=now or utcnow()))


# -- keys managed through the API ---------------------------------------------------------------


def _check_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise UserError("NAME_TOO_LONG", f"A key name is at most {MAX_NAME_LENGTH} characters.", ["name"])
    return name.strip()


async def create_child_key(session: AsyncSession, principal: Principal, name: str, scopes: list[str]) -> MintedKey:
    """A key made by another key: its scopes stay within its creator's, never org:admin."""
    scopes = validate_scopes(scopes)
    for index, scope in enumerate(scopes):
        if covers([scope], [UNDELEGABLE_SCOPE]):
            raise UserError(
                "SCOPE_NOT_DELEGABLE", f"{scope!r} would include {UNDELEGABLE_SCOPE!r}, which keys cannot hand on.",
                ["scopes", str(index)],
            )
        if not covers(principal.scopes, [scope]):
            raise UserError(
                "SCOPE_NOT_HELD", f"The calling key does not hold {scope!r}, so it cannot grant it.", ["scopes", str(index)]
            )
    return await mint_key(
        session, principal.organization_id, scopes, name=_check_name(name), created_by_key_id=principal.api_key_id
    )


async def find_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey | None:
    return await find_owned(session, ApiKey, "key", principal.organization_id, key_id)


async def _managed_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    """A key of the caller's organization that the caller may rotate or revoke.

    ``keys:write`` alone is not enough: acting on a key needs every scope that key holds, or a
    ``keys:write`` key could rotate an admin key into a fresh ``*`` secret for itself, or revoke
    it to lock the admin out. So a key holding ``org:admin`` yields only to an ``org:admin`` key,
    and a ``*`` key only to a ``*`` key.
    """
    key = await require_owned(
        session, ApiKey, "key", principal.organization_id, key_id, code="API_KEY_NOT_FOUND", noun="API key"
    )
    if not covers(principal.scopes, key.scopes):
        raise Forbidden("This API key cannot act on a key holding scopes it does not hold itself.")
    return key


async def rotate_key(session: AsyncSession, principal: Principal, key_id: str, now: datetime | None = None) -> MintedKey:
    """A new secret with the same scopes; the old one keeps working for 24 hours."""
    now = now or utcnow()
    old = await _managed_key(session, principal, key_id)
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise UserError("API_KEY_REVOKED", "A revoked or expired key cannot be rotated.", ["id"])
    if old.disabled:
        # Its successor would start enabled: rotation must not undo the operator's kill switch.
        raise UserError("API_KEY_DISABLED", "A key turned off by its kill switch cannot be rotated.", ["id"])
    grace_end = now + ROTATION_GRACE
    old.expires_at = min(old.expires_at, grace_end) if old.expires_at else grace_end
    return await mint_key(
        session,
        old.organization_id,
        list(old.scopes),
        name=old.name,
        created_by_key_id=old.created_by_key_id,
        rotated_from_id=old.id,
    )


async def revoke_key(session: AsyncSession, principal: Principal, key_id: str, now: datetime | None = None) -> ApiKey:
    key = await _managed_key(session, principal, key_id)
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        await session.flush()
    return key


async def list_keys(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[ApiKey]:
    query = select(ApiKey).where(ApiKey.organization_id == principal.organization_id)
    return await paginate(session, query, ApiKey, page)


async def set_key_disabled(session: AsyncSession, key_id: str, disabled: bool) -> ApiKey:
    """The per-key kill switch (operator's CLI)."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    key.disabled = disabled
    await session.flush()
    return key
