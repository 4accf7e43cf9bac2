"""The audit log over GraphQL: every mutation recorded by one field extension; ``auditLog`` reads it.

``audit_every_mutation`` puts ``Audited`` on every field of the merged Mutation type when the
schema is built, so a mutation added by any module is recorded without that module's help. A
mutation must be ``async`` (they all are): Strawberry refuses a sync resolver under an async-only
extension when the schema is built, so none can slip past unaudited.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types.base import StrawberryObjectDefinition

from gateway.audit import health, kill_switches
from gateway.audit import log as audit
from gateway.core import ServiceError, current_request_id, id_prefix, utcnow
from gateway.storage import AuditEntry as AuditEntryRow
from gateway.storage import every_write_in_context
from schema.api_keys import ApiKeyPayload, ApiKeyType
from schema.context import Info
from schema.organizations import OrganizationPayload, OrganizationType
from schema.payloads import run_mutation
from schema.relay import Connection, page_request

AuditOutcome = strawberry.enum(
    Enum("AuditOutcome", {o.upper(): o for o in audit.OUTCOMES}),  # type: ignore[misc]
    description="ok; user_errors (the payload said what to fix, nothing changed); error (a top-level error).",
)
log = logging.getLogger("socialgate.audit")
MAX_WALK_DEPTH = 4  # input objects nest shallowly; a payload's objects sit at its top level


def _ids_in(value: Any, depth: int = 0) -> Iterator[str]:
    """The ids of ours in a mutation's arguments: strings with a known prefix, in inputs and lists.

    JSON arguments (credentials, metadata, settings) are free-form and never walked: a secret
    that happened to look like an id must not land in the log.
    """
    if depth > MAX_WALK_DEPTH or value is None:
        return
    if isinstance(value, str):
        if id_prefix(value) is not None:
            yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _ids_in(item, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # a Strawberry input
        for item in dataclasses.fields(value):
            yield from _ids_in(getattr(value, item.name), depth + 1)


def _ids_answered(payload: Any) -> Iterator[str]:
    """The ids of the objects a payload carries at its top level (``post``, ``job``, ``apiKey``…)."""
    if not dataclasses.is_dataclass(payload) or isinstance(payload, type):
        return
    for item in dataclasses.fields(payload):
        value = getattr(payload, item.name, None)
        for obj in value if isinstance(value, list) else [value]:
            object_id = getattr(obj, "id", None)
            if isinstance(object_id, str) and id_prefix(object_id) is not None:
                yield object_id


def _user_error_codes(payload: Any) -> list[str]:
    return [error.code for error in getattr(payload, "user_errors", None) or []]


class Audited(FieldExtension):
    """Records the mutation it wraps: actor, operation, object ids, outcome, request id."""

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        context = info.context
        if isinstance(context.principal_or_error, ServiceError):  # no key, no organization to file it under
            return await next_(source, info, **kwargs)
        draft = audit.Draft.of(context.principal, info.field_name, current_request_id.get() or context.request_id)
        draft.add_ids([found for argument in kwargs.values() for found in _ids_in(argument)])

        async def provisional(session: Any) -> None:
            await audit.stage_provisional(session, draft)

        try:
            with every_write_in_context(provisional):
                payload = await next_(source, info, **kwargs)
        except Exception as error:
            draft.outcome, draft.error_codes = "error", [error.code if isinstance(error, ServiceError) else "INTERNAL"]
            await _record(info, draft)
            raise
        draft.add_ids(list(_ids_answered(payload)))
        codes = _user_error_codes(payload)
        if codes:
            draft.outcome, draft.error_codes = "user_errors", codes
        await _record(info, draft)
        return payload


async def _record(info: Info, draft: audit.Draft) -> None:
    """Write the final entry. A failure is logged, never answered: the mutation's own change stands
    (with its provisional entry, committed alongside) and the caller must hear how it went."""
    try:
        await audit.record(info.context.runtime.database, draft)
        draft.final = True
    except Exception:
        log.exception("recording the audit entry %s of %s failed", draft.id, draft.operation)


def audit_every_mutation(mutation: type) -> type:
    """Put ``Audited`` on each field of the Mutation type (once, however often the schema is built)."""
    definition: StrawberryObjectDefinition = mutation.__strawberry_definition__  # type: ignore[attr-defined]
    for field in definition.fields:
        if not any(isinstance(extension, Audited) for extension in field.extensions):
            field.extensions.append(Audited())
    return mutation


@strawberry.type(name="AuditEntry", description="One mutation: who called it, on what, and how it ended.")
class AuditEntryType:
    id: strawberry.ID
    operation: str = strawberry.field(description="The mutation's name, e.g. `createPost`.")
    actor_key_id: strawberry.ID | None = strawberry.field(description="The API key that called it.")
    actor_organization_id: strawberry.ID | None = strawberry.field(description="The organization that key belongs to.")
    organization_id: strawberry.ID = strawberry.field(
        description="The organization acted in: a child, when a parent's key acted through `X-Socialgate-Org`."
    )
    object_ids: list[strawberry.ID] = strawberry.field(description="Ids given in the input and ids of the objects answered.")
    outcome: AuditOutcome  # type: ignore[valid-type]
    error_codes: list[str] = strawberry.field(description="The userErrors' codes, or the top-level error's code.")
    request_id: str | None = strawberry.field(description="Finds the request in the logs (`X-Request-Id`).")
    created_at: datetime

    @classmethod
    def from_row(cls, row: AuditEntryRow) -> AuditEntryType:
        return cls(
            id=strawberry.ID(row.id),
            operation=row.action,
            actor_key_id=strawberry.ID(row.actor_key_id) if row.actor_key_id else None,
            actor_organization_id=strawberry.ID(row.actor_organization_id) if row.actor_organization_id else None,
            organization_id=strawberry.ID(row.organization_id),
            object_ids=[strawberry.ID(i) for i in row.object_ids or []],
            outcome=AuditOutcome(row.outcome),
            error_codes=list(row.error_codes or []),
            request_id=row.request_id,
            created_at=row.created_at,
        )


@strawberry.input
class AuditLogFilter:
    actor_key_id: strawberry.ID | None = None
    operation: str | None = strawberry.field(default=None, description="A mutation's name, e.g. `deletePost`.")
    from_: datetime | None = strawberry.field(default=None, name="from", description="Entries at or after this time.")
    to: datetime | None = strawberry.field(default=None, description="Entries before this time.")


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Every mutation of the organization and of its direct children, newest first (needs audit:read)."
    )
    async def audit_log(
        self,
        info: Info,
        filter: AuditLogFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AuditEntryType] | None:
        principal = info.context.require("audit:read")
        filters = audit.AuditFilter(
            actor_key_id=str(filter.actor_key_id) if filter and filter.actor_key_id else None,
            operation=filter.operation if filter else None,
            since=filter.from_ if filter else None,
            until=filter.to if filter else None,
        )
        async with info.context.runtime.database.read() as session:
            page = await audit.list_entries(session, principal, filters, page_request(first, after, last, before))
        return Connection.from_page(page, AuditEntryType.from_row)


@strawberry.input
class KillSwitchInput:
    id: strawberry.ID = strawberry.field(description="A key (`key_…`) or a child organization (`org_…`), by mutation.")
    on: bool = strawberry.field(description="true refuses it from the next request (open subscriptions close); false lets it in again.")


@strawberry.type
class ControlMutation:
    @strawberry.mutation(
        description="The kill switch of one API key of this organization or of a direct child (needs org:admin). "
        "Recorded in the audit log like every mutation."
    )
    async def set_api_key_kill_switch(self, info: Info, input: KillSwitchInput) -> ApiKeyPayload:
        row, errors = await run_mutation(
            info, "org:admin", lambda session, principal: kill_switches.set_key_kill_switch(session, principal, str(input.id), input.on)
        )
        return ApiKeyPayload(api_key=ApiKeyType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        description="The kill switch of a direct child organization (needs org:admin): on, its keys are refused, "
        "including its own children's. Recorded in the audit log."
    )
    async def set_organization_kill_switch(self, info: Info, input: KillSwitchInput) -> OrganizationPayload:
        row, errors = await run_mutation(
            info, "org:admin",
            lambda session, principal: kill_switches.set_organization_kill_switch(session, principal, str(input.id), input.on),
        )
        return OrganizationPayload(organization=OrganizationType.from_row(row) if row else None, user_errors=errors)


@strawberry.type(name="AccountAttention", description="An account that cannot publish until someone acts.")
class AccountAttentionType:
    account_id: strawberry.ID
    provider: str
    handle: str
    status: str = strawberry.field(description="token_expired, disconnected or rate_limited.")
    rate_limited_until: datetime | None


@strawberry.type(name="WorkerHeartbeat", description="A running scheduler's last sign of life.")
class WorkerHeartbeatType:
    worker_id: str = strawberry.field(description="host:pid:random of the process.")
    started_at: datetime
    last_heartbeat_at: datetime
    alive: bool = strawberry.field(description="Beat within the last three heartbeat intervals.")


@strawberry.type(name="FailingWebhookEndpoint", description="A webhook endpoint whose deliveries fail, or that was switched off for failing.")
class FailingWebhookEndpointType:
    endpoint_id: strawberry.ID
    failing_since: datetime | None = strawberry.field(description="Since when no delivery succeeded; null once switched off and reset.")
    enabled: bool
    disabled_reason: str | None = strawberry.field(description="`gone` (the receiver answered 410) or `failing` (for days), when switched off.")


@strawberry.type(name="Health", description="What needs attention in the organization, and whether anything publishes.")
class HealthType:
    accounts_needing_attention: list[AccountAttentionType]
    queue_depth: int = strawberry.field(description="Targets waiting for their time or their retry.")
    due_unclaimed: int = strawberry.field(description="Of those, the ones already due that no worker has claimed yet.")
    oldest_due_age_seconds: float | None = strawberry.field(description="How long the oldest due, unclaimed target has waited.")
    failed_jobs_last_24h: int
    webhook_endpoints_failing: list[FailingWebhookEndpointType] = strawberry.field(
        description="Webhook endpoints whose deliveries fail now, or that were switched off for failing."
    )
    poll_seconds: strawberry.Private[float]

    @strawberry.field(description="Every scheduler that beat within the last day, most recent first (needs org:admin).")
    async def workers(self, info: Info) -> list[WorkerHeartbeatType] | None:
        info.context.require("org:admin")
        async with info.context.runtime.database.read() as session:
            beats = await health.workers(session, self.poll_seconds, utcnow())
        return [WorkerHeartbeatType(worker_id=b.worker_id, started_at=b.started_at, last_heartbeat_at=b.beat_at, alive=b.alive)
                for b in beats]


@strawberry.type
class HealthQuery:
    @strawberry.field(description="Accounts needing attention, the queue, failed jobs and workers (needs org:read).")
    async def health(self, info: Info) -> HealthType | None:
        organization_id = info.context.require("org:read").organization_id
        now = utcnow()
        async with info.context.runtime.database.read() as session:
            accounts = await health.accounts_needing_attention(session, organization_id, now)
            queue = await health.queue_of(session, organization_id, now)
            failed = await health.failed_jobs(session, organization_id, now)
            endpoints = await health.webhook_endpoints_failing(session, organization_id)
        return HealthType(
            accounts_needing_attention=[
                AccountAttentionType(account_id=strawberry.ID(a.id), provider=a.provider, handle=a.handle,
                                     status=a.status if a.status != "active" else "rate_limited", rate_limited_until=a.rate_limited_until)
                for a in accounts
            ],
            queue_depth=queue.depth,
            due_unclaimed=queue.due_unclaimed,
            oldest_due_age_seconds=(now - queue.oldest_due_at).total_seconds() if queue.oldest_due_at else None,
            failed_jobs_last_24h=failed,
            webhook_endpoints_failing=[
                FailingWebhookEndpointType(endpoint_id=strawberry.ID(e.id), failing_since=e.failing_since, enabled=e.enabled,
                                           disabled_reason=e.disabled_reason)
                for e in endpoints
            ],
            poll_seconds=info.context.runtime.settings.scheduler_poll_seconds,
        )
