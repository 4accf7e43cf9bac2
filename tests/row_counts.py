"""Row counts of every table (how a dry run shows it wrote nothing), and statement counts of a request."""

from __future__ import annotations

from sqlalchemy import event, func, select

from gateway.storage.models import Base

# The audit log records every mutation, dry runs included: it is about the call, not data the call changed.
NOT_DATA = {"audit_entries"}


async def row_counts(runtime) -> dict[str, int]:
    async with runtime.database.read() as session:
        return {
            name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in Base.metadata.tables.items() if name not in NOT_DATA
        }


async def selects_of(api, query: str, variables: dict, key: str) -> tuple[dict, int]:
    """A GraphQL request's answer and how many SELECT statements it ran (the N+1 checks count them)."""
    seen: list[str] = []
    engine = api.runtime.database.engine.sync_engine

    def listener(*args) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        body = await api.graphql(query, variables, key=key)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return body, len([s for s in seen if s.lstrip().upper().startswith("SELECT")])
