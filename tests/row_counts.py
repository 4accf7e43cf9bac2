"""Row counts of every table: how a dry run shows it wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.storage.models import Base

# The audit log records every mutation, dry runs included: it is about the call, not data the call changed.
NOT_DATA = {"audit_entries"}


async def row_counts(runtime) -> dict[str, int]:
    async with runtime.database.read() as session:
        return {
            name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in Base.metadata.tables.items() if name not in NOT_DATA
        }
