"""Kill switches an ``org:admin`` key turns: one key, or a whole child organization.

Why here and not only on the command line: an agency running its clients as child organizations
must be able to stop a leaked key or a misbehaving client at once, through the API it already
uses, and see afterwards who did it (every call is in the audit log). The switches are the ones
authentication already weighs (``ApiKey.disabled``, ``Organization.kill_switch``, which refuses
the organization's keys and its children's); open subscriptions of a refused key are closed by
the key watch within its recheck interval.

The reach is the caller's tree, as for suspending: keys of the organization acted in and of its
direct children, and those children themselves. A caller cannot switch off its own key or its
own organization (that is the operator's ``socialgate`` command line, which can also turn them
back on).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal
from gateway.core import UserError, is_id_of
from gateway.storage import ApiKey, Organization


async def _in_tree(session: AsyncSession, principal: Principal, organization_id: str) -> Organization | None:
    """The organization if it is the one acted in or a direct child of it."""
    organization = await session.get(Organization, organization_id)
    if organization is None or principal.organization_id not in (organization.id, organization.parent_id):
        return None
    return organization


async def set_key_kill_switch(session: AsyncSession, principal: Principal, key_id: str, on: bool) -> ApiKey:
    key = await session.get(ApiKey, key_id) if is_id_of(key_id, "key") else None
    if key is None or await _in_tree(session, principal, key.organization_id) is None:
        raise UserError("API_KEY_NOT_FOUND", "No API key with that id in this organization or its children.", ["id"])
    if key.id == principal.api_key_id:
        raise UserError("CANNOT_KILL_OWN_KEY", "A key cannot switch itself off; use another org:admin key.", ["id"])
    key.disabled = on
    await session.flush()
    return key


async def set_organization_kill_switch(session: AsyncSession, principal: Principal, organization_id: str, on: bool) -> Organization:
    organization = await _in_tree(session, principal, organization_id) if is_id_of(organization_id, "org") else None
    if organization is None or organization.id == principal.organization_id:
        raise UserError("ORGANIZATION_NOT_FOUND", "No child organization with that id.", ["id"])
    organization.kill_switch = on
    await session.flush()
    return organization
