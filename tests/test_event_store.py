"""Job events are written by an explicit call in the transaction that records them, never by a listener."""

import pytest
from sqlalchemy import event as sql_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.engine.jobs import create_job
from gateway.events import record_job_event, stored_job_events
from gateway.storage.models import JobEvent
from gateway.storage.staging import staged_count, write_staged
from tests.conftest import make_org_with_key


def test_no_session_listener_writes_behind_a_transaction(runtime):
    """Importing the service registers no SQLAlchemy session hook: what a transaction writes is in its code."""
    dispatch = Session().dispatch  # a new session carries every listener registered on the class
    for name in ("before_commit", "after_commit", "after_rollback", "before_flush", "after_flush"):
        assert not list(getattr(dispatch, name)), f"a global Session {name} listener is registered"


async def _count(runtime, job_id: str) -> int:
    async with runtime.database.read() as session:
        return (await session.execute(select(func.count()).where(JobEvent.job_id == job_id))).scalar_one()


async def test_events_are_written_in_the_transaction_that_records_them(runtime):
    owner = await make_org_with_key(runtime)
    inserts: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # noqa: PLR0913 — SQLAlchemy's signature
        if statement.lstrip().upper().startswith("INSERT INTO JOB_EVENTS"):
            inserts.append(statement)

    sql_event.listen(runtime.database.write_engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with runtime.database.write() as session:
            job = await create_job(session, owner.organization_id, "publish", None, 1)
            for step in range(3):
                await record_job_event(session, owner.organization_id, job.id, "target.publishing", {})
            assert staged_count(session) == 3
            await write_staged(session)  # the explicit call: now part of this transaction, readable in it
            assert [e.seq for e in await stored_job_events(session, job.id)] == [1, 2, 3]
            await record_job_event(session, owner.organization_id, job.id, "target.published", {})
        # Database.write() wrote the one staged after the explicit call as its last statement.
        assert await _count(runtime, job.id) == 4
        assert len(inserts) == 2  # one multi-row INSERT per call, not one per event
    finally:
        sql_event.remove(runtime.database.write_engine.sync_engine, "before_cursor_execute", seen)


async def test_events_of_a_transaction_that_fails_are_never_written(runtime):
    owner = await make_org_with_key(runtime)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)
    with pytest.raises(RuntimeError):
        async with runtime.database.write() as session:
            await record_job_event(session, owner.organization_id, job.id, "job.queued", {})
            raise RuntimeError("the transaction fails after recording")
    assert await _count(runtime, job.id) == 0
    async with runtime.database.write() as session:  # the next transaction starts clean and numbers from 1
        event = await record_job_event(session, owner.organization_id, job.id, "job.queued", {})
    assert event.seq == 1 and await _count(runtime, job.id) == 1
