"""The retention chore: every reading for ``raw_days``, then the last of each day, then none.

Why thin rather than drop: a post's 90-day chart needs one point a day, not the 96 a day its
first hours were read at; keeping every reading of every post forever would make the history
grow with the read rate instead of with the number of posts. Counters are cumulative, so the
day's last reading is the day's figure. ``retention_days`` 0 keeps the daily readings forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select

from gateway.storage import AccountMetricSnapshot, Database, TargetMetricSnapshot

BATCH = 5000  # rows deleted per statement, so one chore never holds a long write lock


async def thin_snapshots(database: Database, now: datetime, raw_days: int, retention_days: int) -> int:
    """Thin and expire both histories; how many rows were deleted."""
    deleted = 0
    for model, owner in ((TargetMetricSnapshot, TargetMetricSnapshot.target_id), (AccountMetricSnapshot, AccountMetricSnapshot.account_id)):
        if retention_days:
            deleted += await _delete_all(database, model, model.captured_at < now - timedelta(days=retention_days))
        deleted += await _thin(database, model, owner, now - timedelta(days=raw_days))
    return deleted


async def _thin(database: Database, model: Any, owner: Any, before: datetime) -> int:
    """Delete readings before ``before`` that are not the last of their owner's day."""
    keep = select(func.max(model.id)).where(model.captured_at < before).group_by(owner, model.day)
    return await _delete_all(database, model, and_(model.captured_at < before, model.id.not_in(keep)))


async def _delete_all(database: Database, model: Any, condition: Any) -> int:
    total = 0
    while True:
        async with database.write() as session:
            ids = list((await session.execute(select(model.id).where(condition).limit(BATCH))).scalars())
            if ids:
                await session.execute(delete(model).where(model.id.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total
