"""Webhook endpoints: register (secret shown once), list, update, enable, disable, delete, rotate.

The URL passes the SSRF guard's checks when it is registered or changed, and again before every
delivery (``gateway.webhooks.dispatcher``), where the guarded transport also checks the address
it connects to: DNS may answer differently tomorrow. A secret is ``whsec_`` and 32 random bytes
in base64, as Standard Webhooks has it; it is sealed with the runtime's key because signing
needs it back. Rotating keeps the old secret signing beside the new one for 24 hours, so a
receiver can switch without losing a delivery.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal, has_scope, require_owned
from gateway.core import Page, PageRequest, UserError, new_id, paginate, utcnow
from gateway.events import EVENT_KINDS
from gateway.outbound import UnsafeURL, validate_url
from gateway.storage import WebhookEndpoint, decrypt, encrypt
from gateway.webhooks.outbox import ALL_CHILDREN, OWN, endpoints_changed
from gateway.webhooks.patterns import WILDCARD

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)
SCOPES = (OWN, ALL_CHILDREN)
MAX_EVENT_TYPES = 50
MAX_DESCRIPTION = 500
NOT_FOUND = "WEBHOOK_ENDPOINT_NOT_FOUND"


@dataclass(frozen=True)
class NewSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown to the caller this once


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal_secret(key: bytes, endpoint_id: str, secret: str) -> bytes:
    return encrypt(key, {"secret": secret}, associated=f"webhook:{endpoint_id}")


def open_secret(key: bytes, endpoint_id: str, sealed: bytes) -> str:
    return str(decrypt(key, sealed, associated=f"webhook:{endpoint_id}")["secret"])


class SealedSecrets(Protocol):
    secret: bytes
    previous_secret: bytes | None
    previous_secret_expires_at: datetime | None


def signing_secrets(key: bytes, endpoint_id: str, sealed: SealedSecrets, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during its overlap.

    ``sealed`` is the endpoint row, or any row with its three secret columns (the dispatcher's claim).
    """
    found = [open_secret(key, endpoint_id, sealed.secret)]
    if sealed.previous_secret and sealed.previous_secret_expires_at and sealed.previous_secret_expires_at > now:
        found.append(open_secret(key, endpoint_id, sealed.previous_secret))
    return found


def check_url(url: str, *, allow_private: bool) -> str:
    try:
        return str(validate_url(url.strip(), allow_private=allow_private))
    except UnsafeURL as refused:
        raise UserError(refused.code, refused.message, ["url"]) from None


def check_event_types(event_types: Sequence[str]) -> list[str]:
    """Exact kinds from the catalogue, ``group.*`` over at least one of them, or ``*``."""
    if not event_types:
        raise UserError("EVENT_TYPES_REQUIRED", "Name at least one event type (`*` for all).", ["eventTypes"])
    if len(event_types) > MAX_EVENT_TYPES:
        raise UserError("TOO_MANY_EVENT_TYPES", f"At most {MAX_EVENT_TYPES} event types.", ["eventTypes"])
    for index, pattern in enumerate(event_types):
        known = pattern == WILDCARD or pattern in EVENT_KINDS or (
            pattern.endswith(".*") and any(kind.startswith(pattern[:-1]) for kind in EVENT_KINDS)
        )
        if not known:
            raise UserError(
                "EVENT_TYPE_UNKNOWN", f"{pattern!r} is not an event type (see docs/events.md) nor a `group.*` over one.",
                ["eventTypes", str(index)],
            )
    return list(dict.fromkeys(event_types))


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise UserError("DESCRIPTION_TOO_LONG", f"A description is at most {MAX_DESCRIPTION} characters.", ["description"])
    return description


async def create_endpoint(
    session: AsyncSession, principal: Principal, key: bytes, *, url: str, event_types: Sequence[str],
    description: str = "", scope: str = OWN, allow_private: bool = False,
) -> NewSecret:
    if scope not in SCOPES:
        raise UserError("SCOPE_INVALID", "The scope is OWN or ALL_CHILDREN.", ["scope"])
    if scope == ALL_CHILDREN and not has_scope(principal.scopes, "org:admin"):
        raise UserError("ORG_ADMIN_REQUIRED", "An ALL_CHILDREN endpoint needs a key with org:admin.", ["scope"])
    endpoint_id = new_id("whk")
    secret = generate_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id, organization_id=principal.organization_id, url=check_url(url, allow_private=allow_private),
        event_types=check_event_types(event_types), description=_check_description(description), scope=scope,
        secret=seal_secret(key, endpoint_id, secret),
    )
    session.add(endpoint)
    await session.flush()
    endpoints_changed(session)
    return NewSecret(endpoint, secret)


async def find_endpoint(session: AsyncSession, organization_id: str, endpoint_id: str) -> WebhookEndpoint:
    return await require_owned(session, WebhookEndpoint, "whk", organization_id, endpoint_id, code=NOT_FOUND, noun="webhook endpoint")


async def list_endpoints(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.organization_id == principal.organization_id, WebhookEndpoint.deleted_at.is_(None)
    )
    return await paginate(session, query, WebhookEndpoint, page)


async def update_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: str, *, url: str | None = None,
    event_types: Sequence[str] | None = None, description: str | None = None, allow_private: bool = False,
) -> WebhookEndpoint:
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    if url is not None:
        endpoint.url = check_url(url, allow_private=allow_private)
    if event_types is not None:
        endpoint.event_types = check_event_types(event_types)
    if description is not None:
        endpoint.description = _check_description(description)
    await session.flush()
    endpoints_changed(session)
    return endpoint


async def set_enabled(session: AsyncSession, principal: Principal, endpoint_id: str, enabled: bool) -> WebhookEndpoint:
    """Enabling starts a clean record (no failing streak); disabling by hand says so."""
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else "manual"
    endpoint.failing_since = None
    await session.flush()
    endpoints_changed(session)
    return endpoint


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    """Soft delete: its deliveries stay readable in the log until they age out with it."""
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    endpoint.deleted_at = utcnow()
    endpoint.enabled = False
    await session.flush()
    endpoints_changed(session)
    return endpoint


async def rotate_secret(session: AsyncSession, principal: Principal, key: bytes, endpoint_id: str) -> NewSecret:
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    secret = generate_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
    endpoint.secret = seal_secret(key, endpoint.id, secret)
    await session.flush()
    return NewSecret(endpoint, secret)
