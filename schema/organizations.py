"""Organizations and sub-organizations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

import gateway.orgs as service
from gateway.storage import Organization as OrganizationRow
from schema.context import Info
from schema.payloads import UserErrorType, run_create, run_mutation
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one


@strawberry.type(name="Organization", description="A tenant: accounts, posts and keys belong to one.")
class OrganizationType(Node):
    id: strawberry.ID
    name: str
    status: str = strawberry.field(description="active, suspended or archived.")
    metadata: JSON = strawberry.field(description="Your own string→string map (≤ 50 keys).")
    kill_switch: bool = strawberry.field(description="On: its keys, and its children's, are refused (setOrganizationKillSwitch).")
    created_at: datetime
    parent_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: OrganizationRow) -> OrganizationType:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            status=row.status,
            metadata=dict(row.metadata_),
            kill_switch=row.kill_switch,
            created_at=row.created_at,
            parent_id=row.parent_id,
        )

    @strawberry.field(description="The parent organization, for a child; null unless the caller's key belongs to it.")
    async def parent(self, info: Info) -> OrganizationType | None:
        return await _visible(info, self.parent_id) if self.parent_id else None

    @strawberry.field(description="Direct child organizations, newest first.")
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> Connection[OrganizationType]:
        principal = info.context.require("org:read")
        async with info.context.runtime.database.read() as session:
            page = await service.list_children(session, principal, str(self.id), page_request(first, after, last, before))
        return Connection.from_page(page, OrganizationType.from_row)


async def _visible(info: Info, id: str) -> OrganizationType | None:
    principal = info.context.principal
    return await read_one(info, lambda session: service.find_visible(session, principal, id), OrganizationType.from_row)


async def load_organization(info: Info, id: str) -> OrganizationType | None:
    info.context.require("org:read")
    return await _visible(info, id)


@nodes_resolver("org")
async def load_organizations(info: Info, ids: list[str]) -> dict[str, OrganizationType]:
    principal = info.context.require("org:read")
    return await read_many(info, lambda session: service.find_visible_many(session, principal, ids), OrganizationType.from_row)


@strawberry.input
class CreateOrganizationInput:
    name: str
    metadata: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input
class UpdateOrganizationInput:
    id: strawberry.ID
    name: str | None = None
    metadata: JSON | None = strawberry.field(
        default=strawberry.UNSET, description='Merged key by key: "" removes a key; null clears them all.'
    )


@strawberry.input
class OrganizationIdInput:
    id: strawberry.ID


@strawberry.type
class OrganizationPayload:
    organization: OrganizationType | None
    user_errors: list[UserErrorType]


async def _status_change(info: Info, id: strawberry.ID, status: str) -> OrganizationPayload:
    async def work(session: Any, principal: Any) -> OrganizationRow:
        return await service.change_status(session, principal, str(id), status)

    row, errors = await run_mutation(info, "org:admin", work)
    return OrganizationPayload(organization=OrganizationType.from_row(row) if row else None, user_errors=errors)


@strawberry.type
class OrganizationQuery:
    @strawberry.field(description="The caller's organization or one of its direct children.")
    async def organization(self, info: Info, id: strawberry.ID) -> OrganizationType | None:
        return await load_organization(info, str(id))


@strawberry.type
class OrganizationMutation:
    @strawberry.mutation(description="Create a child of the caller's organization (needs org:admin).")
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> OrganizationPayload:
        async def work(session: Any, principal: Any) -> dict[str, Any]:
            row = await service.create_child(session, principal, input.name, input.metadata)
            return {"id": row.id}

        request = {"name": input.name, "metadata": input.metadata}
        result, errors = await run_create(info, "org:admin", "createOrganization", input.idempotency_key, request, work)
        # The payload shows what was made even to a key without org:read.
        organization = await _visible(info, result["id"]) if result else None
        return OrganizationPayload(organization=organization, user_errors=errors)

    @strawberry.mutation(description="Rename an organization or merge its metadata (needs org:admin).")
    async def update_organization(self, info: Info, input: UpdateOrganizationInput) -> OrganizationPayload:
        metadata_given = input.metadata is not strawberry.UNSET

        async def work(session: Any, principal: Any) -> OrganizationRow:
            return await service.update_organization(
                session,
                principal,
                str(input.id),
                name=input.name,
                metadata=input.metadata if metadata_given else None,
                metadata_given=metadata_given,
            )

        row, errors = await run_mutation(info, "org:admin", work)
        return OrganizationPayload(organization=OrganizationType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Suspend a child organization: its keys are refused until it resumes.")
    async def suspend_organization(self, info: Info, input: OrganizationIdInput) -> OrganizationPayload:
        return await _status_change(info, input.id, "suspended")

    @strawberry.mutation(description="Resume a suspended child organization.")
    async def resume_organization(self, info: Info, input: OrganizationIdInput) -> OrganizationPayload:
        return await _status_change(info, input.id, "active")

    @strawberry.mutation(description="Archive a child organization for good; its keys are refused.")
    async def archive_organization(self, info: Info, input: OrganizationIdInput) -> OrganizationPayload:
        return await _status_change(info, input.id, "archived")
