"""Organizations: the tenants every other row belongs to."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import NotFound, UserError
from gateway.ids import new_id
from gateway.storage.models import Organization

MAX_NAME_LENGTH = 200


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError("NAME_REQUIRED", "An organization needs a name.", ["name"])
    if len(name) > MAX_NAME_LENGTH:
        raise UserError("NAME_TOO_LONG", f"A name is at most {MAX_NAME_LENGTH} characters.", ["name"])
    return name


async def create_organization(
    session: AsyncSession, name: str, *, parent_id: str | None = None, metadata: dict[str, str] | None = None
) -> Organization:
    name = validate_name(name)
    if parent_id is not None:
        parent = await session.get(Organization, parent_id)
        if parent is None:
            raise NotFound(f"No organization {parent_id}.")
        if parent.parent_id is not None:
            raise UserError("NESTING_TOO_DEEP", "Organizations nest one level deep only.", ["parentId"])
    organization = Organization(id=new_id("org"), name=name, parent_id=parent_id, metadata_=metadata or {})
    session.add(organization)
    await session.flush()
    return organization


async def get_organization(session: AsyncSession, organization_id: str) -> Organization:
    organization = await session.get(Organization, organization_id)
    if organization is None:
        raise NotFound(f"No organization {organization_id}.")
    return organization
