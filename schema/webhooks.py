"""Webhooks: endpoints (secret shown once, rotation), the deliveries log with attempts, replay, tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gateway.auth import find_owned_many
from gateway.storage import WebhookAttempt as AttemptRow
from gateway.storage import WebhookDelivery as DeliveryRow
from gateway.storage import WebhookEndpoint as EndpointRow
from gateway.webhooks import deliveries, endpoints
from schema.context import Info
from schema.payloads import UserErrorType, run_create, run_mutation
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many

WebhookScope = strawberry.enum(
    Enum("WebhookScope", {"OWN": "own", "ALL_CHILDREN": "all_children"}),  # type: ignore[misc]
    description="OWN: this organization's events. ALL_CHILDREN (org:admin): also every direct child's.",
)
WebhookDeliveryStatus = strawberry.enum(
    Enum("WebhookDeliveryStatus", {s.upper(): s for s in deliveries.STATUSES}),  # type: ignore[misc]
)


@strawberry.type(name="WebhookEndpoint", description="A URL that receives signed events. Its secret is shown only when made.")
class WebhookEndpointType(Node):
    id: strawberry.ID
    url: str
    description: str
    event_types: list[str] = strawberry.field(description="Kinds from docs/events.md, `group.*`, or `*`.")
    scope: WebhookScope  # type: ignore[valid-type]
    enabled: bool
    disabled_reason: str | None = strawberry.field(description="manual, gone (answered 410) or failing (5 days of failures).")
    failing_since: datetime | None
    secret_rotation_ends_at: datetime | None = strawberry.field(description="Until then the previous secret signs too.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: EndpointRow) -> WebhookEndpointType:
        return cls(
            id=strawberry.ID(row.id), url=row.url, description=row.description, event_types=list(row.event_types),
            scope=WebhookScope(row.scope), enabled=row.enabled, disabled_reason=row.disabled_reason,
            failing_since=row.failing_since, secret_rotation_ends_at=row.previous_secret_expires_at,
            created_at=row.created_at, updated_at=row.updated_at,
        )


@strawberry.type(name="WebhookAttempt", description="One call of a delivery.")
class WebhookAttemptType:
    number: int
    started_at: datetime
    finished_at: datetime
    status_code: int | None
    error: str | None = strawberry.field(description="e.g. HTTP_500, TIMEOUT, NETWORK_ERROR: ConnectError, URL_NOT_ALLOWED.")
    duration_ms: int
    response_excerpt: str | None = strawberry.field(description="The first 4 KB of the answer.")

    @classmethod
    def from_row(cls, row: AttemptRow) -> WebhookAttemptType:
        return cls(
            number=row.number, started_at=row.started_at, finished_at=row.finished_at, status_code=row.status_code,
            error=row.error, duration_ms=row.duration_ms, response_excerpt=row.response_excerpt,
        )


@strawberry.type(name="WebhookDelivery", description="One event owed to one endpoint; its id is the `webhook-id` header.")
class WebhookDeliveryType(Node):
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_type: str
    payload: JSON = strawberry.field(description="The body sent: {type, timestamp, data}.")
    status: WebhookDeliveryStatus  # type: ignore[valid-type]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[WebhookAttemptType]

    @classmethod
    def from_row(cls, row: DeliveryRow, attempts: Sequence[AttemptRow] = ()) -> WebhookDeliveryType:
        return cls(
            id=strawberry.ID(row.id), endpoint_id=strawberry.ID(row.endpoint_id), event_type=row.event_type,
            payload=dict(row.payload), status=WebhookDeliveryStatus(row.status), attempt_count=row.attempt_count,
            next_attempt_at=row.next_attempt_at, last_status_code=row.last_status_code, last_error=row.last_error,
            delivered_at=row.delivered_at, created_at=row.created_at,
            attempts=[WebhookAttemptType.from_row(a) for a in attempts],
        )


@nodes_resolver("whk")
async def load_webhook_endpoints(info: Info, ids: list[str]) -> dict[str, WebhookEndpointType]:
    organization_id = info.context.require("webhooks:read").organization_id
    return await read_many(
        info, lambda session: find_owned_many(session, EndpointRow, "whk", organization_id, ids), WebhookEndpointType.from_row
    )


async def _deliveries_with_attempts(session: Any, rows: Sequence[DeliveryRow]) -> list[WebhookDeliveryType]:
    attempts = await deliveries.attempts_of(session, [row.id for row in rows])
    return [WebhookDeliveryType.from_row(row, attempts[row.id]) for row in rows]


@nodes_resolver("whd")
async def load_webhook_deliveries(info: Info, ids: list[str]) -> dict[str, WebhookDeliveryType]:
    organization_id = info.context.require("webhooks:read").organization_id
    async with info.context.runtime.database.read() as session:
        rows = await find_owned_many(session, DeliveryRow, "whd", organization_id, ids)
        return {str(d.id): d for d in await _deliveries_with_attempts(session, list(rows.values()))}


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    event_types: list[str] = strawberry.field(description="Kinds from docs/events.md, `group.*` (e.g. `post.*`), or `*`.")
    description: str = ""
    scope: WebhookScope = strawberry.field(default=WebhookScope("own"))  # type: ignore[valid-type]
    idempotency_key: str | None = strawberry.field(
        default=None, description="A replay returns the endpoint without its secret: the secret is shown once."
    )


@strawberry.input
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None


@strawberry.input
class WebhookEndpointIdInput:
    id: strawberry.ID


@strawberry.input
class WebhookDeliveryIdInput:
    id: strawberry.ID


@strawberry.input
class ReplayWebhookDeliveriesInput:
    endpoint_id: strawberry.ID
    since: datetime = strawberry.field(description="Every delivery made since then that did not get through is sent again.")


@strawberry.input
class SendTestWebhookInput:
    endpoint_id: strawberry.ID


@strawberry.type
class WebhookEndpointPayload:
    webhook_endpoint: WebhookEndpointType | None
    user_errors: list[UserErrorType]


@strawberry.type
class WebhookEndpointWithSecretPayload:
    webhook_endpoint: WebhookEndpointType | None
    secret: str | None = strawberry.field(description="The `whsec_…` signing secret. Shown this once.")
    user_errors: list[UserErrorType]


@strawberry.type
class WebhookDeliveryPayload:
    webhook_delivery: WebhookDeliveryType | None
    user_errors: list[UserErrorType]


@strawberry.type
class ReplayWebhookDeliveriesPayload:
    replayed_count: int | None = strawberry.field(description="How many deliveries are due again.")
    user_errors: list[UserErrorType]


def _endpoint_payload(row: EndpointRow | None, errors: list[UserErrorType]) -> WebhookEndpointPayload:
    return WebhookEndpointPayload(webhook_endpoint=WebhookEndpointType.from_row(row) if row else None, user_errors=errors)


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="The organization's webhook endpoints, newest first.")
    async def webhook_endpoints(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> Connection[WebhookEndpointType] | None:
        principal = info.context.require("webhooks:read")
        async with info.context.runtime.database.read() as session:
            page = await endpoints.list_endpoints(session, principal, page_request(first, after, last, before))
        return Connection.from_page(page, WebhookEndpointType.from_row)

    @strawberry.field(description="An endpoint's deliveries, newest first, each with its attempts.")
    async def webhook_deliveries(
        self, info: Info, endpoint_id: strawberry.ID, status: WebhookDeliveryStatus | None = None,  # type: ignore[valid-type]
        first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> Connection[WebhookDeliveryType] | None:
        principal = info.context.require("webhooks:read")
        async with info.context.runtime.database.read() as session:
            page = await deliveries.list_deliveries(
                session, principal, str(endpoint_id), status.value if status else None, page_request(first, after, last, before)
            )
            converted = {str(d.id): d for d in await _deliveries_with_attempts(session, page.items)}
        return Connection.from_page(page, lambda row: converted[row.id])


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Register a URL for signed events; answers its `whsec_…` secret this once.")
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput) -> WebhookEndpointWithSecretPayload:
        runtime = info.context.runtime
        secrets: dict[str, str] = {}

        async def work(session: Any, principal: Any) -> dict[str, Any]:
            made = await endpoints.create_endpoint(
                session, principal, runtime.secret_key, url=input.url, event_types=input.event_types,
                description=input.description, scope=input.scope.value, allow_private=runtime.settings.allow_private_urls,
            )
            secrets[made.endpoint.id] = made.secret  # kept out of the stored replay result
            return {"id": made.endpoint.id}

        request = {"url": input.url, "eventTypes": sorted(input.event_types), "description": input.description, "scope": input.scope.value}
        result, errors = await run_create(info, "webhooks:write", "createWebhookEndpoint", input.idempotency_key, request, work)
        endpoint = (await load_webhook_endpoints(info, [result["id"]])).get(result["id"]) if result else None
        return WebhookEndpointWithSecretPayload(
            webhook_endpoint=endpoint, secret=secrets.get(result["id"]) if result else None, user_errors=errors
        )

    @strawberry.mutation(description="Change an endpoint's URL, event types or description.")
    async def update_webhook_endpoint(self, info: Info, input: UpdateWebhookEndpointInput) -> WebhookEndpointPayload:
        allow_private = info.context.runtime.settings.allow_private_urls
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: endpoints.update_endpoint(
            s, p, str(input.id), url=input.url, event_types=input.event_types, description=input.description, allow_private=allow_private,
        ))
        return _endpoint_payload(row, errors)

    @strawberry.mutation(description="Deliver to the endpoint again (and start its failure record afresh).")
    async def enable_webhook_endpoint(self, info: Info, input: WebhookEndpointIdInput) -> WebhookEndpointPayload:
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: endpoints.set_enabled(s, p, str(input.id), True))
        return _endpoint_payload(row, errors)

    @strawberry.mutation(description="Stop delivering; events raised meanwhile are not owed to it.")
    async def disable_webhook_endpoint(self, info: Info, input: WebhookEndpointIdInput) -> WebhookEndpointPayload:
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: endpoints.set_enabled(s, p, str(input.id), False))
        return _endpoint_payload(row, errors)

    @strawberry.mutation(description="Delete the endpoint; nothing more is delivered to it.")
    async def delete_webhook_endpoint(self, info: Info, input: WebhookEndpointIdInput) -> WebhookEndpointPayload:
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: endpoints.delete_endpoint(s, p, str(input.id)))
        return _endpoint_payload(row, errors)

    @strawberry.mutation(description="A new secret, shown once; for 24 hours deliveries carry both signatures.")
    async def rotate_webhook_secret(self, info: Info, input: WebhookEndpointIdInput) -> WebhookEndpointWithSecretPayload:
        key = info.context.runtime.secret_key
        made, errors = await run_mutation(info, "webhooks:write", lambda s, p: endpoints.rotate_secret(s, p, key, str(input.id)))
        return WebhookEndpointWithSecretPayload(
            webhook_endpoint=WebhookEndpointType.from_row(made.endpoint) if made else None,
            secret=made.secret if made else None, user_errors=errors,
        )

    @strawberry.mutation(description="Send a delivery again now, with the same `webhook-id`.")
    async def replay_webhook_delivery(self, info: Info, input: WebhookDeliveryIdInput) -> WebhookDeliveryPayload:
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: deliveries.replay_delivery(s, p, str(input.id)))
        return await _delivery_payload(info, row, errors)

    @strawberry.mutation(description="After an outage: send again every delivery of the endpoint since `since` that did not get through.")
    async def replay_webhook_deliveries(self, info: Info, input: ReplayWebhookDeliveriesInput) -> ReplayWebhookDeliveriesPayload:
        count, errors = await run_mutation(
            info, "webhooks:write", lambda s, p: deliveries.replay_since(s, p, str(input.endpoint_id), input.since)
        )
        _wake(info)
        return ReplayWebhookDeliveriesPayload(replayed_count=count, user_errors=errors)

    @strawberry.mutation(description="Send a `webhook.test` event to this endpoint alone.")
    async def send_test_webhook(self, info: Info, input: SendTestWebhookInput) -> WebhookDeliveryPayload:
        row, errors = await run_mutation(info, "webhooks:write", lambda s, p: deliveries.send_test(s, p, str(input.endpoint_id)))
        return await _delivery_payload(info, row, errors)


def _wake(info: Info) -> None:
    if info.context.runtime.webhook_dispatcher is not None:
        info.context.runtime.webhook_dispatcher.wake()


async def _delivery_payload(info: Info, row: DeliveryRow | None, errors: list[UserErrorType]) -> WebhookDeliveryPayload:
    if row is None:
        return WebhookDeliveryPayload(webhook_delivery=None, user_errors=errors)
    _wake(info)
    found = await load_webhook_deliveries(info, [row.id])
    return WebhookDeliveryPayload(webhook_delivery=found.get(row.id), user_errors=errors)
