"""Organizations: the tenants every other row belongs to, nested one level deep.

A parent organization (through a key with ``org:admin``) creates, updates, suspends, resumes and
archives its direct children; an organization can also rename itself and edit its own metadata.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import NotFound, UserError
from gateway.ids import is_id_of, new_id
from gateway.keys import Principal
from gateway.metadata import merge_metadata, validate_metadata
from gateway.pagination import Page, PageRequest, paginate
from gateway.storage.models import Organization

MAX_NAME_LENGTH = 200
STATUSES = ("active", "suspended", "archived")
# status change → the statuses it may start from
TRANSITIONS = {"suspended": ("active",), "active": ("suspended",), "archived": ("active", "suspended")}


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError("NAME_REQUIRED", "An organization needs a name.", ["name"])
    if len(name) > MAX_NAME_LENGTH:
        raise UserError("NAME_TOO_LONG", f"A name is at most {MAX_NAME_LENGTH} characters.", ["name"])
    return name


async def create_organization(
    session: AsyncSession, name: str, *, parent_id: str | None = None, metadata: Any = None
) -> Organization:
    name = validate_name(name)
    metadata = validate_metadata(metadata)
    if parent_id is not None:
        parent = await session.get(Organization, parent_id)
        if parent is None:
            raise NotFound(f"No organization {parent_id}.")
        if parent.parent_id is not None:
            raise UserError("NESTING_TOO_DEEP", "Organizations nest one level deep: a child cannot have children.")
    organization = Organization(id=new_id("org"), name=name, parent_id=parent_id, metadata_=metadata)
    session.add(organization)
    await session.flush()
    return organization


async def get_organization(session: AsyncSession, organization_id: str) -> Organization:
    organization = await session.get(Organization, organization_id)
    if organization is None:
        raise NotFound(f"No organization {organization_id}.")
    return organization


async def find_visible(session: AsyncSession, principal: Principal, organization_id: str) -> Organization | None:
    """The caller's own organization or one of its direct children; None for anything else."""
    if not is_id_of(organization_id, "org"):
        return None
    organization = await session.get(Organization, organization_id)
    if organization is None:
        return None
    if organization.id == principal.organization_id or organization.parent_id == principal.organization_id:
        return organization
    return None


async def _managed_child(session: AsyncSession, principal: Principal, organization_id: str) -> Organization:
    organization = await find_visible(session, principal, organization_id)
    if organization is None or organization.id == principal.organization_id:
        raise UserError("ORGANIZATION_NOT_FOUND", "No child organization with that id.", ["id"])
    return organization


async def create_child(session: AsyncSession, principal: Principal, name: str, metadata: Any) -> Organization:
    return await create_organization(session, name, parent_id=principal.organization_id, metadata=metadata)


async def update_organization(
    session: AsyncSession, principal: Principal, organization_id: str, *, name: str | None, metadata: Any, metadata_given: bool
) -> Organization:
    organization = await find_visible(session, principal, organization_id)
    if organization is None:
        raise UserError("ORGANIZATION_NOT_FOUND", "No organization with that id.", ["id"])
    if organization.status == "archived":
        raise UserError("ORGANIZATION_ARCHIVED", "An archived organization cannot be changed.", ["id"])
    new_name = validate_name(name) if name is not None else organization.name
    new_metadata = merge_metadata(organization.metadata_, metadata) if metadata_given else organization.metadata_
    organization.name = new_name
    organization.metadata_ = new_metadata
    await session.flush()
    return organization


async def change_status(session: AsyncSession, principal: Principal, organization_id: str, status: str) -> Organization:
    """Suspend, resume or archive a direct child; an organization cannot lock itself out."""
    organization = await _managed_child(session, principal, organization_id)
    if organization.status == status:
        return organization
    if organization.status not in TRANSITIONS[status]:
        raise UserError(
            "INVALID_STATUS_TRANSITION", f"An organization that is {organization.status} cannot become {status}.", ["id"]
        )
    organization.status = status
    await session.flush()
    return organization


async def list_children(session: AsyncSession, parent_id: str, page: PageRequest) -> Page[Organization]:
    return await paginate(session, select(Organization).where(Organization.parent_id == parent_id), Organization, page)


async def set_kill_switch(session: AsyncSession, organization_id: str, on: bool) -> Organization:
    organization = await get_organization(session, organization_id)
    organization.kill_switch = on
    await session.flush()
    return organization
