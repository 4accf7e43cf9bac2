"""Acting in a child organization: a parent key with ``org:admin`` and the X-Socialgate-Org header.

The refusal is the same whether the organization does not exist, belongs to someone else or is
not a direct child, so the header cannot be used to probe for other tenants' ids.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.keys import Principal
from gateway.auth.scopes import has_scope
from gateway.core import Forbidden
from gateway.storage import Organization

ACT_AS_HEADER = "x-socialgate-org"


async def act_as(session: AsyncSession, principal: Principal, organization_id: str) -> Principal:
    if organization_id == principal.organization_id:
        return principal
    if not has_scope(principal.scopes, "org:admin"):
        raise Forbidden("Acting in another organization needs the 'org:admin' scope.")
    child = await session.get(Organization, organization_id)
    if child is None or child.parent_id != principal.organization_id:
        raise Forbidden("The key may only act in a direct child of its organization.")
    if child.status != "active" or child.kill_switch:
        raise Forbidden(f"The organization {child.id} is {child.status if child.status != 'active' else 'disabled'}.")
    return replace(principal, organization_id=child.id, acting_from_organization_id=principal.organization_id)
