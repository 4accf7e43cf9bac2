"""Campaigns, ad sets and ads as stored: what the platform accepted, and what a sync found drifted.

One table holds the three levels (``level``); their ids say which (``adc_``, ``adset_``, ``adv_``).
A row is written from a platform answer only: after a write the platform accepted
(``store_accepted``: ours and the platform's agree, drift cleared), or by a sync
(``record_synced``: a new object is imported; for a known one, each tracked field that differs
is recorded in ``drift`` and ours is left as it was — a person decides which side is right).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import find_owned
from gateway.core import BadInput, Page, PageRequest, id_prefix, new_id, paginate, utcnow
from gateway.storage import AdAccount, AdObject
from providers import AdObject as PlatformObject
from providers import Money
from providers.ads import AD_STATUSES, PARENT_LEVEL

PREFIX = {"campaign": "adc", "ad_set": "adset", "ad": "adv"}
LEVEL_OF_PREFIX = {prefix: level for level, prefix in PREFIX.items()}
# What a sync compares: the fields a write through us sets. ``effective_status`` is the platform's
# own account of delivery, so it is always taken as reported.
TRACKED = ("name", "status", "daily_budget_minor", "bid_minor", "starts_at", "ends_at")


def level_of(object_id: str) -> str | None:
    return LEVEL_OF_PREFIX.get(id_prefix(object_id) or "")


def _values(obj: PlatformObject) -> dict[str, Any]:
    def minor(money: Money | None) -> int | None:
        return None if money is None else money.amount_minor

    return {
        "name": obj.name[:512], "status": obj.status, "effective_status": (obj.effective_status or None) and obj.effective_status[:80],
        "objective": obj.objective, "daily_budget_minor": minor(obj.daily_budget), "bid_minor": minor(obj.bid),
        "starts_at": obj.starts_at, "ends_at": obj.ends_at,
    }


def _json(value: Any) -> Any:
    """A drift value as JSON: amounts as strings (64-bit safe), times in ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return value


async def find_object(session: AsyncSession, organization_id: str, object_id: str, level: str | None = None) -> AdObject | None:
    found_level = level_of(object_id)
    if found_level is None or (level is not None and found_level != level):
        return None
    return await find_owned(session, AdObject, PREFIX[found_level], organization_id, object_id)


async def _by_external(session: AsyncSession, ad_account_id: str, level: str, external_id: str) -> AdObject | None:
    query = select(AdObject).where(AdObject.ad_account_id == ad_account_id, AdObject.level == level, AdObject.external_id == external_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _parent_row_id(session: AsyncSession, ad_account: AdAccount, obj: PlatformObject) -> str | None:
    parent_level = PARENT_LEVEL[obj.level]
    if parent_level is None or obj.parent_id is None:
        return None
    parent = await _by_external(session, ad_account.id, parent_level, obj.parent_id)
    return parent.id if parent else None


async def store_accepted(session: AsyncSession, ad_account: AdAccount, obj: PlatformObject) -> AdObject:
    """Write what the platform answered to a write it accepted; ours now equals the platform's."""
    row = await _by_external(session, ad_account.id, obj.level, obj.external_id)
    if row is None:
        row = AdObject(id=new_id(PREFIX[obj.level]), organization_id=ad_account.organization_id, ad_account_id=ad_account.id,
                       level=obj.level, external_id=obj.external_id, currency=ad_account.currency)
        session.add(row)
    for name, value in _values(obj).items():
        if name == "name" and not value and row.name:  # a delete answer (TikTok, Apple) names nothing
            continue
        setattr(row, name, value)
    row.parent_id = await _parent_row_id(session, ad_account, obj) or row.parent_id
    row.drift = {}
    row.synced_at = utcnow()
    await session.flush()
    return row


@dataclass(frozen=True)
class Synced:
    row: AdObject
    imported: bool
    drifted: tuple[str, ...]


async def record_synced(session: AsyncSession, ad_account: AdAccount, obj: PlatformObject) -> Synced:
    """Import an object new to us, or record how a known one differs on the platform."""
    row = await _by_external(session, ad_account.id, obj.level, obj.external_id)
    if row is None:
        return Synced(await store_accepted(session, ad_account, obj), True, ())
    theirs = _values(obj)
    drift = {
        name: {"ours": _json(getattr(row, name)), "platform": _json(theirs[name])}
        for name in TRACKED if getattr(row, name) != theirs[name]
    }
    row.drift = drift
    row.effective_status = theirs["effective_status"]
    row.synced_at = utcnow()
    await session.flush()
    return Synced(row, False, tuple(sorted(drift)))


async def list_objects(
    session: AsyncSession, organization_id: str, level: str, page: PageRequest, *,
    ad_account_id: str | None = None, parent_id: str | None = None, status: str | None = None,
) -> Page[AdObject]:
    query = select(AdObject).where(AdObject.organization_id == organization_id, AdObject.level == level)
    if ad_account_id is not None:
        query = query.where(AdObject.ad_account_id == ad_account_id)
    if parent_id is not None:
        query = query.where(AdObject.parent_id == parent_id)
    if status is not None:
        if status not in AD_STATUSES:
            raise BadInput(f"Unknown ad status {status[:40]!r}.", "status")
        query = query.where(AdObject.status == status)
    return await paginate(session, query, AdObject, page)


async def children_of(session: AsyncSession, organization_id: str, parent_ids: Sequence[str]) -> dict[str, list[AdObject]]:
    """The ad sets of many campaigns (or ads of many ad sets) in one query, oldest first."""
    found: dict[str, list[AdObject]] = {parent_id: [] for parent_id in parent_ids}
    if not parent_ids:
        return found
    query = (select(AdObject).where(AdObject.organization_id == organization_id, AdObject.parent_id.in_(list(parent_ids)))
             .order_by(AdObject.created_at, AdObject.id))
    for row in (await session.execute(query)).scalars():
        found[row.parent_id].append(row)  # type: ignore[index]
    return found


def money_of(row: AdObject, column: str) -> Money | None:
    value = getattr(row, column)
    return None if value is None else Money(value, row.currency)
