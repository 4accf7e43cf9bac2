"""The deliveries log and its commands: list with attempts, replay one, replay since, send a test.

A replay sends the same delivery again — the same ``webhook-id``, so a receiver that did get it
can drop the repeat — starting the ladder over. ``replayWebhookDeliveries`` is for after an
outage: every delivery of the endpoint since a time that did not get through is due again now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal, require_owned
from gateway.core import Page, PageRequest, UserError, paginate, utcnow
from gateway.storage import WebhookAttempt, WebhookDelivery
from gateway.webhooks.endpoints import find_endpoint
from gateway.webhooks.outbox import DELIVERIES, delivery_row, envelope

STATUSES = ("pending", "delivering", "delivered", "failed")
NOT_DELIVERED = ("pending", "failed")
TEST_EVENT = "webhook.test"


async def list_deliveries(
    session: AsyncSession, principal: Principal, endpoint_id: str, status: str | None, page: PageRequest
) -> Page[WebhookDelivery]:
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    query = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.organization_id == principal.organization_id
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return await paginate(session, query, WebhookDelivery, page)


async def attempts_of(session: AsyncSession, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
    """The attempts of many deliveries in one query, oldest first: a page costs the same at any size."""
    found: dict[str, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        rows = await session.execute(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.id)
        )
        for attempt in rows.scalars():
            found[attempt.delivery_id].append(attempt)
    return found


async def find_delivery(session: AsyncSession, organization_id: str, delivery_id: str) -> WebhookDelivery:
    return await require_owned(
        session, WebhookDelivery, "whd", organization_id, delivery_id, code="WEBHOOK_DELIVERY_NOT_FOUND", noun="webhook delivery"
    )


def _due_again(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.ladder_step = 0
    delivery.lease_owner = delivery.lease_expires_at = None


async def replay_delivery(session: AsyncSession, principal: Principal, delivery_id: str) -> WebhookDelivery:
    delivery = await find_delivery(session, principal.organization_id, delivery_id)
    if delivery.status == "delivering":
        raise UserError("DELIVERY_IN_FLIGHT", "The delivery is being sent right now.", ["id"])
    await find_endpoint(session, principal.organization_id, delivery.endpoint_id)  # not a deleted endpoint's
    _due_again(delivery, utcnow())
    await session.flush()
    return delivery


async def replay_since(session: AsyncSession, principal: Principal, endpoint_id: str, since: datetime) -> int:
    """Make every undelivered delivery of the endpoint created since ``since`` due now; how many."""
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    if since > utcnow():
        raise UserError("SINCE_IN_FUTURE", "`since` is in the future.", ["since"])
    now = utcnow()
    replayed = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.created_at >= since,
            WebhookDelivery.status.in_(NOT_DELIVERED),
        )
        .values(status="pending", next_attempt_at=now, ladder_step=0, lease_owner=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(replayed.rowcount or 0)


async def send_test(session: AsyncSession, principal: Principal, endpoint_id: str) -> WebhookDelivery:
    """A ``webhook.test`` delivery to this endpoint alone, due now (disabled endpoints too: a test is how
    you check one before enabling it again — it is sent once the endpoint is enabled)."""
    endpoint = await find_endpoint(session, principal.organization_id, endpoint_id)
    now = utcnow()
    data = {"endpointId": endpoint.id, "message": "This is a test delivery from socialgate."}
    row = delivery_row(endpoint.id, endpoint.organization_id, TEST_EVENT, envelope(TEST_EVENT, endpoint.organization_id, data, now), now)
    await session.execute(DELIVERIES.insert(), [row])
    return await find_delivery(session, principal.organization_id, row["id"])
