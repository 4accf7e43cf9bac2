"""Organizations: the tenants every other row belongs to, nested one level deep.

A parent organization (through a key with ``org:admin``) creates, updates, suspends, resumes and
archives its direct children; an organization can also rename itself and edit its own metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal
from gateway.core import NotFound, Page, PageRequest, UserError, is_id_of, new_id, paginate
from gateway.orgs.metadata import merge_metadata, validate_metadata
from gateway.storage import Organization

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


def _seen_from(principal: Principal) -> set[str]:
    """The organizations whose own tree the caller sees: the one it acts in, and the key's own
    organization when a parent's key acts in a child (it sees that tree without the header too)."""
    acting_from = principal.acting_from_organization_id
    return {principal.organization_id, acting_from} if acting_from else {principal.organization_id}


def _within(organization: Organization | None, roots: set[str]) -> Organization | None:
    """The organization if it is one of ``roots`` or a direct child of one, else None."""
    if organization is None or not ({organization.id, organization.parent_id} & roots):
        return None
    return organization


async def _get(session: AsyncSession, organization_id: str) -> Organization | None:
    return await session.get(Organization, organization_id) if is_id_of(organization_id, "org") else None


async def find_visible(session: AsyncSession, principal: Principal, organization_id: str | None) -> Organization | None:
    """The caller's organization or one of its direct children (for a parent's key acting in a
    child, also the parent's own tree); None for anything else.

    Every field that leads to an organization (``organization(id)``, ``node``, ``parent``,
    ``viewer.parentOrganization``) comes through here, so none of them shows what the others
    hide: a child's own key sees neither its parent nor, through it, its siblings.
    """
    if organization_id is None:
        return None
    return _within(await _get(session, organization_id), _seen_from(principal))


async def find_visible_many(session: AsyncSession, principal: Principal, organization_ids: Sequence[str]) -> dict[str, Organization]:
    """``find_visible`` for many ids in one query: those the caller may see, by id."""
    wanted = [i for i in dict.fromkeys(organization_ids) if is_id_of(i, "org")]
    if not wanted:
        return {}
    roots = _seen_from(principal)
    rows = (await session.execute(select(Organization).where(Organization.id.in_(wanted)))).scalars()
    return {row.id: row for row in rows if _within(row, roots) is not None}


async def _editable(session: AsyncSession, principal: Principal, organization_id: str) -> Organization | None:
    """Changes stay inside the organization acted in and its children, even for a parent's key
    acting in a child: that header narrows what the key does, it never widens it."""
    return _within(await _get(session, organization_id), {principal.organization_id})


async def _managed_child(session: AsyncSession, principal: Principal, organization_id: str) -> Organization:
    organization = await _editable(session, principal, organization_id)
    if organization is None or organization.id == principal.organization_id:
        raise UserError("ORGANIZATION_NOT_FOUND", "No child organization with that id.", ["id"])
    return organization


async def create_child(session: AsyncSession, principal: Principal, name: str, metadata: Any) -> Organization:
    return await create_organization(session, name, parent_id=principal.organization_id, metadata=metadata)


async def update_organization(
    session: AsyncSession, principal: Principal, organization_id: str, *, name: str | None, metadata: Any, metadata_given: bool
) -> Organization:
    organization = await _editable(session, principal, organization_id)
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


async def list_children(session: AsyncSession, principal: Principal, parent_id: str, page: PageRequest) -> Page[Organization]:
    """A visible organization's children; none when the caller does not see that whole tree (a
    child's key reaching its parent must not list its siblings)."""
    query = select(Organization).where(Organization.parent_id == parent_id)
    if parent_id not in _seen_from(principal):
        query = query.where(false())
    return await paginate(session, query, Organization, page)


async def set_kill_switch(session: AsyncSession, organization_id: str, on: bool) -> Organization:
    organization = await get_organization(session, organization_id)
    organization.kill_switch = on
    await session.flush()
    return organization
