"""OAuth connections: the authorization-code handshake that turns a platform login into an Account.

``start_connection`` checks the provider, its client settings and the caller's redirect URI,
then stores a Connection holding only a hash of the ``state`` (single use, bound to the
organization, 10 minutes) and, when the provider's OAuth2Spec asks for PKCE, the S256 verifier
sealed with the vault. ``complete_connection`` handles the platform's redirect to
``{base_url}/oauth/{provider}/callback``: it claims the connection with a conditional UPDATE (so
a replayed or concurrent callback does nothing), exchanges the code through the provider, asks
the provider whose account the tokens open, stores the account with its tokens sealed, and says
where to send the browser: the connection's redirect URI with ``connection_id``, ``status`` and,
on failure, ``error``. A state that names no connection cannot be tied to a redirect URI that was
checked, so it gets a plain 400 page and no redirect.

Redirect URIs are allowed per organization (``setOAuthRedirectUris``): a URI passed to
``startConnection`` must match one of them exactly in scheme, host, port and path (its query may
differ); https only, except for loopback hosts during development.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.accounts import provider_reason, require_provider, save_account
from gateway.auth import find_owned
from gateway.core import UserError, UserErrors, new_id, utcnow
from gateway.orgs import get_organization
from gateway.outbound import UnsafeURL
from gateway.runtime import Runtime
from gateway.settings import OAuthClient
from gateway.storage import Connection, Organization, decrypt, encrypt
from providers import OAuth2Spec, Provider, ProviderError, TokenSet

log = logging.getLogger("socialgate.oauth")

STATE_TTL = timedelta(minutes=10)
# An exchange that started in time may finish a little after the state expired; one that has not
# finished this long after expiry belongs to a process that died mid-exchange.
EXCHANGE_GRACE = timedelta(minutes=5)
# How long a handshake stays readable through `connection(id)` once its state expired.
CONNECTION_RETENTION = timedelta(days=7)
MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2_000
MAX_STATE_LENGTH = 512
MAX_PLATFORM_MESSAGE = 300
REDIRECT_URIS_SETTING = "oauth_redirect_uris"
# Connection.status values; "exchanging" (the callback holds it) reads as pending from outside.
PENDING, EXCHANGING, SUCCEEDED, FAILED = "pending", "exchanging", "succeeded", "failed"

# Why a connection failed: stable codes, in the redirect's ``error`` and on the Connection.
CONSENT_DENIED = "CONSENT_DENIED"
AUTHORIZATION_FAILED = "AUTHORIZATION_FAILED"
STATE_INVALID = "STATE_INVALID"
STATE_EXPIRED = "STATE_EXPIRED"
STATE_ALREADY_USED = "STATE_ALREADY_USED"
CODE_MISSING = "CODE_MISSING"
OAUTH_NOT_CONFIGURED = "OAUTH_NOT_CONFIGURED"
EXCHANGE_FAILED = "EXCHANGE_FAILED"
PROFILE_FAILED = "PROFILE_FAILED"


# -- redirect URIs ------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_redirect_uri(value: str, field: list[str], *, registered: bool) -> SplitResult:
    """An absolute https URI (http only on loopback) without credentials or a fragment.

    A registered URI has no query either: it names a place, and the URIs passed to
    ``startConnection`` may add their own query to it.
    """

    def invalid(reason: str) -> UserError:
        return UserError("REDIRECT_URI_INVALID", f"{value[:100]!r} is not a usable redirect URI: {reason}.", field)

    if len(value) > MAX_URI_LENGTH:
        raise invalid(f"longer than {MAX_URI_LENGTH} characters")
    try:
        parts = urlsplit(value.strip())
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise invalid("it does not parse as a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise invalid("it must be an absolute https URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise invalid("plain http is only allowed for localhost and loopback addresses")
    if parts.username is not None or parts.password is not None:
        raise invalid("it must not carry a user name or password")
    if parts.fragment or value.rstrip().endswith("#"):
        raise invalid("it must not have a fragment")
    if registered and (parts.query or value.rstrip().endswith("?")):
        raise invalid("an allowed redirect URI has no query")
    return parts


def _place(parts: SplitResult) -> tuple[str, str, int, str]:
    """What must match exactly: scheme, host, port (the scheme's default when absent), path."""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port, parts.path or "/"


def redirect_uris_of(organization: Organization) -> list[str]:
    return list((organization.settings or {}).get(REDIRECT_URIS_SETTING, []))


async def set_redirect_uris(session: AsyncSession, organization_id: str, uris: Sequence[str]) -> list[str]:
    """Replace the organization's allowed OAuth redirect URIs (an empty list allows none)."""
    if len(uris) > MAX_REDIRECT_URIS:
        raise UserError("TOO_MANY_REDIRECT_URIS", f"At most {MAX_REDIRECT_URIS} redirect URIs are allowed.", ["redirectUris"])
    problems, cleaned = [], []
    for index, uri in enumerate(uris):
        try:
            _parse_redirect_uri(uri, ["redirectUris", str(index)], registered=True)
        except UserError as error:
            problems.append(error)
            continue
        if uri.strip() not in cleaned:
            cleaned.append(uri.strip())
    if problems:
        raise UserErrors(problems)
    organization = await get_organization(session, organization_id)
    organization.settings = {**(organization.settings or {}), REDIRECT_URIS_SETTING: cleaned}
    await session.flush()
    return cleaned


def _check_redirect_uri(organization: Organization, redirect_uri: str) -> str:
    parts = _parse_redirect_uri(redirect_uri, ["redirectUri"], registered=False)
    allowed = {_place(urlsplit(uri)) for uri in redirect_uris_of(organization)}
    if _place(parts) not in allowed:
        raise UserError(
            "REDIRECT_URI_NOT_ALLOWED",
            "This redirect URI is not among the organization's allowed OAuth redirect URIs (setOAuthRedirectUris); "
            "scheme, host, port and path must match one exactly.",
            ["redirectUri"],
        )
    return redirect_uri.strip()


def with_outcome(redirect_uri: str, connection_id: str, status: str, error_code: str | None) -> str:
    """The redirect URI with the handshake's outcome added to its query (earlier values replaced)."""
    parts = urlsplit(redirect_uri)
    ours = {"connection_id": connection_id, "status": status}
    if error_code:
        ours["error"] = error_code
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name not in ("connection_id", "status", "error")]
    return urlunsplit(parts._replace(query=urlencode(kept + list(ours.items()))))


# -- start --------------------------------------------------------------------------------------


def callback_url(base_url: str, provider_id: str) -> str:
    """The redirect URI registered with the platform (``base_url``: the gateway's public URL), the same for every organization."""
    return f"{base_url}/oauth/{provider_id}/callback"


def _hash_state(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _oauth_provider(runtime: Runtime, provider_id: str) -> tuple[Provider, OAuth2Spec]:
    provider = require_provider(runtime.plugins, provider_id)
    if not isinstance(provider.auth, OAuth2Spec):
        raise UserError(
            "OAUTH_NOT_SUPPORTED", f"{provider.name} does not connect through OAuth; use connectAccount with its credentials form.", ["provider"]
        )
    return provider, provider.auth


def _oauth_client(runtime: Runtime, provider: Provider) -> OAuthClient:
    client = runtime.settings.oauth_client(provider.id)
    if client is None:
        missing = runtime.settings.missing_oauth_variables(provider.id)
        raise UserError(
            OAUTH_NOT_CONFIGURED,
            f"{provider.name}'s OAuth client is not configured on this gateway: set {' and '.join(missing)}.",
            ["provider"],
        )
    return client


@dataclass(frozen=True)
class StartedConnection:
    connection: Connection
    authorize_url: str  # carries the state: shown to the caller once, never stored


async def start_connection(
    session: AsyncSession, runtime: Runtime, organization_id: str, provider_id: str, redirect_uri: str
) -> StartedConnection:
    provider, spec = _oauth_provider(runtime, provider_id)
    organization = await get_organization(session, organization_id)
    client, problems = None, []
    try:
        client = _oauth_client(runtime, provider)
    except UserError as error:
        problems.append(error)
    try:
        redirect_uri = _check_redirect_uri(organization, redirect_uri)
    except UserError as error:
        problems.append(error)
    if problems or client is None:
        raise UserErrors(problems)

    connection_id = new_id("conn")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if spec.pkce else None  # 86 unreserved characters
    now = utcnow()
    connection = Connection(
        id=connection_id,
        organization_id=organization_id,
        provider=provider.id,
        state_hash=_hash_state(state),
        pkce_verifier=None if verifier is None else encrypt(runtime.secret_key, {"verifier": verifier}, associated=connection_id),
        redirect_uri=redirect_uri,
        status=PENDING,
        expires_at=now + STATE_TTL,
        created_at=now,
    )
    session.add(connection)
    await session.flush()
    authorize_url = spec.authorization_url(
        client_id=client.client_id,
        redirect_uri=callback_url(runtime.settings.base_url, provider.id),
        state=state,
        code_challenge=None if verifier is None else pkce_challenge(verifier),
    )
    return StartedConnection(connection, authorize_url)


# -- reading ------------------------------------------------------------------------------------


async def find_connection(session: AsyncSession, organization_id: str, connection_id: str) -> Connection | None:
    return await find_owned(session, Connection, "conn", organization_id, connection_id)


@dataclass(frozen=True)
class ConnectionState:
    status: str  # pending | succeeded | failed
    error_code: str | None
    error_message: str | None


def connection_state(connection: Connection, now: datetime | None = None) -> ConnectionState:
    """Where the handshake stands as a frontend polling it should see it.

    A pending handshake whose state expired can no longer finish, so it reads as failed even
    though no callback came to mark it.
    """
    now = now or utcnow()
    if connection.status in (SUCCEEDED, FAILED):
        return ConnectionState(connection.status, connection.error_code, connection.error_message)
    abandoned_at = connection.expires_at + (EXCHANGE_GRACE if connection.status == EXCHANGING else timedelta())
    if now >= abandoned_at:
        return ConnectionState(FAILED, STATE_EXPIRED, "The authorization was not completed in time; start a new connection.")
    return ConnectionState(PENDING, None, None)


async def purge_connections(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete handshakes whose state expired more than CONNECTION_RETENTION ago; returns how many.

    The frontend that polled one is long gone by then, and its state hash and sealed PKCE
    verifier have no use left: keeping them would only grow the table with every attempt.
    """
    cutoff = (now or utcnow()) - CONNECTION_RETENTION
    result = await session.execute(delete(Connection).where(Connection.expires_at < cutoff))
    return int(result.rowcount or 0)


# -- the callback -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback answers. ``redirect_to`` None: the state names no connection (400)."""

    redirect_to: str | None
    connection_id: str | None = None
    status: str = FAILED
    error_code: str | None = STATE_INVALID


class _Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Claimed:
    connection_id: str
    organization_id: str
    sealed_verifier: bytes | None
    code: str


def _platform_error(params: Mapping[str, str]) -> _Failed:
    error = params["error"][:100]
    description = "".join(c for c in params.get("error_description", "") if c.isprintable())[:MAX_PLATFORM_MESSAGE]
    if error == "access_denied":
        return _Failed(CONSENT_DENIED, "The user declined to authorize the application.")
    return _Failed(AUTHORIZATION_FAILED, f"The platform refused the authorization ({error}){': ' + description if description else ''}.")


async def _claim(runtime: Runtime, provider_id: str, state: str, params: Mapping[str, str]) -> tuple[Connection | None, _Claimed | _Failed | None]:
    """Find the connection the state names and take it: only one callback ever proceeds with it.

    Returns (connection, what to do): a claim to exchange the code, a failure already recorded,
    or None when the connection was used before (a replay changes nothing).
    """
    async with runtime.database.write() as session:
        connection = (await session.execute(select(Connection).where(Connection.state_hash == _hash_state(state)))).scalar_one_or_none()
        if connection is None:
            return None, None
        failure: _Failed | None = None
        if connection.provider != provider_id:
            failure = _Failed(STATE_INVALID, "The authorization came back to another provider's callback.")
        elif utcnow() >= connection.expires_at:
            failure = _Failed(STATE_EXPIRED, "The authorization took longer than 10 minutes; start a new connection.")
        elif "error" in params:
            failure = _platform_error(params)
        elif not params.get("code"):
            failure = _Failed(CODE_MISSING, "The platform came back without an authorization code.")
        outcome: dict[str, Any] = {"status": EXCHANGING}
        if failure is not None:
            outcome = {"status": FAILED, "error_code": failure.code, "error_message": failure.message, "completed_at": utcnow()}
        claimed = await session.execute(
            update(Connection)
            .where(Connection.id == connection.id, Connection.status == PENDING)
            .values(**outcome)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            return connection, None
        if failure is not None:
            return connection, failure
        return connection, _Claimed(connection.id, connection.organization_id, connection.pkce_verifier, params["code"])


async def _exchange(runtime: Runtime, provider: Provider, claim: _Claimed) -> tuple[TokenSet, Any]:
    client = runtime.settings.oauth_client(provider.id)
    if client is None:  # configured when the connection started, removed since
        raise _Failed(OAUTH_NOT_CONFIGURED, f"{provider.name}'s OAuth client is no longer configured on this gateway.")
    verifier = None
    if claim.sealed_verifier is not None:
        verifier = decrypt(runtime.secret_key, claim.sealed_verifier, associated=claim.connection_id)["verifier"]
    context = runtime.provider_context(provider.id, None, {})
    try:
        tokens = await provider.exchange_code(
            context, code=claim.code, redirect_uri=callback_url(runtime.settings.base_url, provider.id), code_verifier=verifier,
            client_id=client.client_id, client_secret=client.client_secret,
        )
    except (ProviderError, UnsafeURL) as error:
        raise _Failed(EXCHANGE_FAILED, f"{provider.name} did not exchange the authorization code: {provider_reason(error)}") from None
    credentials = tokens.to_credentials()
    try:
        profile = await provider.connect(runtime.provider_context(provider.id, None, credentials), credentials)
    except (ProviderError, UnsafeURL) as error:
        raise _Failed(PROFILE_FAILED, f"{provider.name} did not say whose account this is: {provider_reason(error)}") from None
    return tokens, profile


async def _finish(session: AsyncSession, connection_id: str, *, failure: _Failed | None = None, account_id: str | None = None) -> None:
    connection = await session.get_one(Connection, connection_id)
    connection.status = FAILED if failure else SUCCEEDED
    connection.error_code = failure.code if failure else None
    connection.error_message = failure.message if failure else None
    connection.account_id = account_id
    connection.completed_at = utcnow()


async def complete_connection(runtime: Runtime, provider_id: str, params: Mapping[str, str]) -> CallbackOutcome:
    """Handle the platform's redirect back to ``/oauth/{provider_id}/callback``."""
    state = params.get("state", "")
    if not state or len(state) > MAX_STATE_LENGTH:
        return CallbackOutcome(redirect_to=None)
    connection, step = await _claim(runtime, provider_id, state, params)
    if connection is None:
        return CallbackOutcome(redirect_to=None)

    def answer(status: str, code: str | None) -> CallbackOutcome:
        return CallbackOutcome(with_outcome(connection.redirect_uri, connection.id, status, code), connection.id, status, code)

    if step is None:
        log.warning("a used OAuth state came back again", extra={"connection_id": connection.id})
        return answer(FAILED, STATE_ALREADY_USED)
    if isinstance(step, _Failed):
        return answer(FAILED, step.code)

    provider = runtime.plugins.get(provider_id)
    try:
        if provider is None:
            raise _Failed(STATE_INVALID, "The provider is no longer installed.")
        tokens, profile = await _exchange(runtime, provider, step)
        async with runtime.database.write() as session:
            saved = await save_account(
                session, runtime.secret_key, step.organization_id, provider.id, profile, tokens.to_credentials(),
                token_expires_at=tokens.expires_at, connection_id=step.connection_id,
            )
            await _finish(session, step.connection_id, account_id=saved.account.id)
    except Exception as error:
        failure = error if isinstance(error, _Failed) else _Failed(EXCHANGE_FAILED, "The exchange failed inside the gateway.")
        if failure is not error:
            # A provider bug or a storage failure: the connection must still end, saying only that much.
            log.exception("the OAuth exchange failed unexpectedly", extra={"connection_id": step.connection_id, "provider": provider_id})
        async with runtime.database.write() as session:
            await _finish(session, step.connection_id, failure=failure)
        return answer(FAILED, failure.code)
    await runtime.publish(saved.connected)
    return answer(SUCCEEDED, None)
