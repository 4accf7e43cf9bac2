"""The durable outbox: a delivery row per (event, endpoint) in the transaction that records the event.

Why in the same transaction: an event committed without its deliveries would be lost to the
endpoints if the process died before writing them, and deliveries committed without their event
would announce something that never happened. ``gateway.events`` calls ``stage_event`` for every
job and organization event; the first call of a transaction stages one finisher
(``gateway.storage.staging``) that, when the transaction writes its staged rows, looks up the
matching endpoints of all the transaction's events in one query and stages their deliveries
beside the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import new_id, utcnow
from gateway.storage import Organization, WebhookDelivery, WebhookEndpoint, stage_finisher, stage_rows
from gateway.webhooks.patterns import wants

OUTBOX = "socialgate_webhook_outbox"  # session.info: the events this transaction recorded
ALL_CHILDREN = "all_children"
OWN = "own"
DELIVERIES = WebhookDelivery.__table__


@dataclass(frozen=True)
class OutboxEvent:
    organization_id: str
    kind: str
    data: dict[str, Any]
    occurred_at: datetime


def envelope(kind: str, organization_id: str, data: dict[str, Any], occurred_at: datetime) -> dict[str, Any]:
    """The Standard Webhooks payload: ``{type, timestamp, data}``, ``data.organizationId`` always set.

    A parent's ALL_CHILDREN endpoint receives its children's events; the organization id says whose.
    """
    return {"type": kind, "timestamp": occurred_at.isoformat(), "data": {**data, "organizationId": organization_id}}


def delivery_row(endpoint_id: str, endpoint_organization_id: str, kind: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A new delivery, due now (the ladder's first step is "immediately")."""
    return {
        "id": new_id("whd"), "endpoint_id": endpoint_id, "organization_id": endpoint_organization_id,
        "event_type": kind, "payload": payload, "status": "pending", "attempt_count": 0, "ladder_step": 0,
        "next_attempt_at": now, "lease_owner": None, "lease_expires_at": None, "last_status_code": None,
        "last_error": None, "delivered_at": None, "created_at": now, "updated_at": now,
    }


def stage_event(session: AsyncSession, organization_id: str, kind: str, data: dict[str, Any], occurred_at: datetime) -> None:
    """Owe this event to every endpoint that wants it, in the caller's transaction."""
    session.sync_session.info.setdefault(OUTBOX, []).append(OutboxEvent(organization_id, kind, data, occurred_at))
    stage_finisher(session, OUTBOX, _stage_deliveries)


async def _stage_deliveries(session: AsyncSession) -> None:
    events: list[OutboxEvent] = session.sync_session.info.pop(OUTBOX, [])
    if not events:
        return
    # (endpoint, the organization whose events it receives): its own, and a parent's ALL_CHILDREN
    # endpoint for each direct child: one query for every event of the transaction.
    receivers = (await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.organization_id, WebhookEndpoint.event_types, Organization.id)
        .join(Organization, or_(
            WebhookEndpoint.organization_id == Organization.id,
            and_(WebhookEndpoint.organization_id == Organization.parent_id, WebhookEndpoint.scope == ALL_CHILDREN),
        ))
        .where(
            Organization.id.in_({event.organization_id for event in events}),
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
    )).all()
    if not receivers:
        return
    now = utcnow()
    rows = [
        delivery_row(endpoint_id, endpoint_org, event.kind, envelope(event.kind, event.organization_id, event.data, event.occurred_at), now)
        for event in events
        for endpoint_id, endpoint_org, patterns, event_org in receivers
        if event_org == event.organization_id and wants(patterns, event.kind)
    ]
    if rows:
        stage_rows(session, DELIVERIES, *rows)
