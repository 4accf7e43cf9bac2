"""Tenant isolation in one place: fetching a row by id only when it belongs to the caller's org.

Every "find by id" of the services goes through ``find_owned``, so "unknown", "another
organization's", "soft-deleted" and "not even an id of this kind" all look the same: None.
``find_owned_many`` is the same rule for many ids in one query (``nodes(ids:)``): such an id is
simply absent from what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import UserError, is_id_of

Row = TypeVar("Row")


async def find_owned(session: AsyncSession, model: type[Row], prefix: str, organization_id: str, object_id: str) -> Row | None:
    if not is_id_of(object_id, prefix):
        return None
    row: Any = await session.get(model, object_id)
    if row is None or row.organization_id != organization_id or getattr(row, "deleted_at", None) is not None:
        return None
    return row


async def find_owned_many(
    session: AsyncSession, model: Any, prefix: str, organization_id: str, object_ids: Iterable[str]
) -> dict[str, Any]:
    """The rows among ``object_ids`` that ``find_owned`` would return, by id, in one query."""
    wanted = [object_id for object_id in dict.fromkeys(object_ids) if is_id_of(object_id, prefix)]
    if not wanted:
        return {}
    query = select(model).where(model.id.in_(wanted), model.organization_id == organization_id)
    if hasattr(model, "deleted_at"):
        query = query.where(model.deleted_at.is_(None))
    return {row.id: row for row in (await session.execute(query)).scalars()}


async def require_owned(
    session: AsyncSession, model: type[Row], prefix: str, organization_id: str, object_id: str, *, code: str, noun: str
) -> Row:
    """Like ``find_owned``, for mutations: a missing row is a user error on the ``id`` input."""
    row = await find_owned(session, model, prefix, organization_id, object_id)
    if row is None:
        raise UserError(code, f"No {noun} with that id.", ["id"])
    return row
