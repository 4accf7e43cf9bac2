"""Who is calling: the key, its organization (and parent), scopes and rate-limit tier."""

from __future__ import annotations

import strawberry

from gateway.orgs import find_visible, get_organization
from schema.context import Info
from schema.organizations import OrganizationType


@strawberry.type(description="The caller as the API sees them.")
class Viewer:
    api_key_id: strawberry.ID
    scopes: list[str]
    rate_limit_tier: str = strawberry.field(description="The cost budget the key draws from.")
    organization_id: strawberry.Private[str]
    acting_from_organization_id: strawberry.Private[str | None]

    @strawberry.field(description="The organization the key acts in (a child, with X-Socialgate-Org).")
    async def organization(self, info: Info) -> OrganizationType:
        async with info.context.runtime.database.read() as session:
            return OrganizationType.from_row(await get_organization(session, self.organization_id))

    @strawberry.field(
        description="The parent of the organization acted in: set for a parent's key acting in a child "
        "(X-Socialgate-Org), null for the child's own keys, which do not see their parent."
    )
    async def parent_organization(self, info: Info) -> OrganizationType | None:
        async with info.context.runtime.database.read() as session:
            organization = await get_organization(session, self.organization_id)
            parent = await find_visible(session, info.context.principal, organization.parent_id)
        return OrganizationType.from_row(parent) if parent else None

    @strawberry.field(description="Set when a parent organization's key acts in this child.")
    def acting_from_organization(self) -> strawberry.ID | None:
        return strawberry.ID(self.acting_from_organization_id) if self.acting_from_organization_id else None


async def resolve_viewer(info: Info) -> Viewer:
    principal = info.context.principal
    return Viewer(
        api_key_id=strawberry.ID(principal.api_key_id),
        scopes=list(principal.scopes),
        rate_limit_tier=info.context.runtime.rate_limit_tier,
        organization_id=principal.organization_id,
        acting_from_organization_id=principal.acting_from_organization_id,
    )
