"""A target's attempts: every provider call made for it (publish, reconcile, delete), oldest first.

Read from the rows the engine writes before each call and closes with its outcome, so what the
API shows is exactly what the engine recorded, including a call still in flight (no end yet).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage import Attempt, Target


async def attempts_of(session: AsyncSession, organization_id: str, target_ids: Sequence[str]) -> dict[str, list[Attempt]]:
    """Each target's attempts by number, in one query; targets of other organizations get none."""
    grouped: dict[str, list[Attempt]] = {target_id: [] for target_id in target_ids}
    if not target_ids:
        return grouped
    query = (
        select(Attempt)
        .join(Target, Target.id == Attempt.target_id)
        .where(Attempt.target_id.in_(list(grouped)), Target.organization_id == organization_id)
        .order_by(Attempt.target_id, Attempt.number, Attempt.started_at)
    )
    for attempt in (await session.execute(query)).scalars():
        grouped[attempt.target_id].append(attempt)
    return grouped
