"""Who is calling: the key's organization and scopes."""

from __future__ import annotations

import strawberry

from gateway.organizations import get_organization
from schema.context import Info


@strawberry.type(description="An organization: the tenant every account, post and key belongs to.")
class Organization:
    id: strawberry.ID
    name: str
    status: str


@strawberry.type(description="The caller as the API sees them: their API key, its organization and scopes.")
class Viewer:
    api_key_id: strawberry.ID
    scopes: list[str]
    organization_id: strawberry.Private[str]

    @strawberry.field(description="The organization the key acts in.")
    async def organization(self, info: Info) -> Organization:
        async with info.context.runtime.database.read() as session:
            row = await get_organization(session, self.organization_id)
        return Organization(id=strawberry.ID(row.id), name=row.name, status=row.status)


async def resolve_viewer(info: Info) -> Viewer:
    principal = info.context.principal
    return Viewer(
        api_key_id=strawberry.ID(principal.api_key_id),
        scopes=list(principal.scopes),
        organization_id=principal.organization_id,
    )
