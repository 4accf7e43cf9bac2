"""The durable outbox: a delivery row per (event, endpoint) in the transaction that records the event.

Why in the same transaction: an event committed without its deliveries would be lost to the
endpoints if the process died before writing them, and deliveries committed without their event
would announce something that never happened. ``gateway.events`` calls ``stage_event`` for every
job and organization event; the first call of a transaction stages one finisher
(``gateway.storage.staging``) that, when the transaction writes its staged rows, looks up the
matching endpoints of all the transaction's events in one query and stages their deliveries
beside the events.

Which endpoints an organization's events go to is asked by every engine write, hundreds a
second, and changes only when someone edits an endpoint: the answer is kept per organization
(``RECEIVERS``), an organization without endpoints costs no query at all. Whatever changes an
endpoint in this process says so (``endpoints_changed``), which forgets every kept answer; an
answer is kept at most ``RECEIVERS_SECONDS``, which bounds how long another process's edit
takes to reach this one. The answer holds no secret, so a rotation changes nothing in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from sqlalchemy import and_, event, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.core import new_id, utcnow
from gateway.storage import Organization, WebhookDelivery, WebhookEndpoint, stage_finisher, stage_rows
from gateway.webhooks.patterns import wants

OUTBOX = "socialgate_webhook_outbox"  # session.info: the events this transaction recorded
ALL_CHILDREN = "all_children"
OWN = "own"
DELIVERIES = WebhookDelivery.__table__
ENDPOINTS = WebhookEndpoint.__table__
ORGANIZATIONS = Organization.__table__
RECEIVERS_SECONDS = 2.0  # how long an organization's endpoints are kept; another process's edit shows within it
ENDPOINTS_CHANGED = "socialgate_webhook_endpoints_changed"  # session.info: forget the kept endpoints at commit

# (endpoint id, the endpoint's organization, its event patterns): what an organization's events go to.
Receiver = tuple[str, str, list[str]]


class _Receivers:
    """Each organization's receiving endpoints, as last read; forgotten on any change to one.

    ``generation`` goes up with every change, so a lookup that read before a change finished
    never stores what it read.
    """

    def __init__(self) -> None:
        self.kept: TTLCache[str, list[Receiver]] = TTLCache(maxsize=10_000, ttl=RECEIVERS_SECONDS)
        self.generation = 0

    def forget(self) -> None:
        self.generation += 1
        self.kept.clear()

    async def of(self, session: AsyncSession, organization_ids: Iterable[str]) -> dict[str, list[Receiver]]:
        wanted = set(organization_ids)
        found = {org: self.kept[org] for org in wanted if org in self.kept}
        missing = wanted - found.keys()
        if missing:
            generation = self.generation
            read: dict[str, list[Receiver]] = {org: [] for org in missing}
            for endpoint_id, endpoint_org, patterns, event_org in await session.execute(_receivers_query(missing)):
                read[event_org].append((endpoint_id, endpoint_org, patterns))
            if generation == self.generation:
                self.kept.update(read)
            found.update(read)
        return found


RECEIVERS = _Receivers()


def _receivers_query(organization_ids: set[str]) -> Any:
    """(endpoint, the organization whose events it receives): its own, and a parent's ALL_CHILDREN
    endpoint for each direct child: one query for all the organizations."""
    return (
        select(ENDPOINTS.c.id, ENDPOINTS.c.organization_id, ENDPOINTS.c.event_types, ORGANIZATIONS.c.id)
        .join(ORGANIZATIONS, or_(
            ENDPOINTS.c.organization_id == ORGANIZATIONS.c.id,
            and_(ENDPOINTS.c.organization_id == ORGANIZATIONS.c.parent_id, ENDPOINTS.c.scope == ALL_CHILDREN),
        ))
        .where(ORGANIZATIONS.c.id.in_(organization_ids), ENDPOINTS.c.enabled.is_(True), ENDPOINTS.c.deleted_at.is_(None))
    )


def endpoints_changed(session: AsyncSession) -> None:
    """Say that this transaction changed which endpoints receive what (created, edited, enabled,
    disabled, deleted): kept answers are forgotten now, and again when it commits or rolls back.

    Committed: a lookup that raced the commit read the endpoints as they were. Rolled back: a
    lookup inside the transaction may have kept an endpoint that never was. The hooks are this
    session's own, registered by this explicit call, never a global listener.
    """
    RECEIVERS.forget()
    sync_session = session.sync_session
    if not sync_session.info.get(ENDPOINTS_CHANGED):
        sync_session.info[ENDPOINTS_CHANGED] = True
        event.listen(sync_session, "after_commit", _forget_at_end)
        event.listen(sync_session, "after_rollback", _forget_at_end)


def _forget_at_end(session: Session) -> None:
    if session.info.pop(ENDPOINTS_CHANGED, False):
        RECEIVERS.forget()


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
    receivers = await RECEIVERS.of(session, {event.organization_id for event in events})
    if not any(receivers.values()):
        return
    now = utcnow()
    rows = [
        delivery_row(endpoint_id, endpoint_org, event.kind, envelope(event.kind, event.organization_id, event.data, event.occurred_at), now)
        for event in events
        for endpoint_id, endpoint_org, patterns in receivers[event.organization_id]
        if wants(patterns, event.kind)
    ]
    if rows:
        stage_rows(session, DELIVERIES, *rows)
