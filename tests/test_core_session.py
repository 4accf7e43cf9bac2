"""CoreSession (gateway.storage.core_session): a Core statement goes to the session's connection
without Session.execute's dispatch, with the same answer, the same autoflush and the same refusals;
anything with an ORM entity still goes through the ORM."""

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.asyncio.exc import AsyncMethodRequired
from sqlalchemy.orm import Session

from gateway.storage.core_session import CoreSession, is_core
from gateway.storage.database import Database
from gateway.storage.models import Base, Organization

ORGANIZATIONS = Organization.__table__.c
COUNT = select(func.count()).select_from(Organization.__table__)


@pytest.fixture
async def database(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/core.db")
    async with database.write_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with database.write() as session:
        session.add(Organization(id="org_1", name="Acme"))
    yield database
    await database.dispose()


@pytest.fixture
def orm_executions(monkeypatch):
    """Statements that went through Session.execute."""
    seen = []
    original = Session.execute

    def counting(self, statement, *args, **kwargs):
        seen.append(statement)
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", counting)
    return seen


def test_a_statement_is_core_unless_an_orm_entity_is_in_it():
    assert is_core(select(ORGANIZATIONS.id)) and is_core(text("SELECT 1")) and is_core(COUNT)
    assert not is_core(select(Organization)) and not is_core(select(Organization.id))


async def test_core_statements_skip_session_execute_with_the_same_answer(database, orm_executions):
    statement = select(ORGANIZATIONS.id, ORGANIZATIONS.name).where(ORGANIZATIONS.id == "org_1")
    async with database.read() as session:
        assert isinstance(session, CoreSession)
        fast = (await session.execute(statement)).all()
        assert (await session.execute(text("SELECT name FROM organizations WHERE id = :id"), {"id": "org_1"})).scalar_one() == "Acme"
    assert orm_executions == []
    async with AsyncSession(database.engine) as plain:
        assert (await plain.execute(statement)).all() == fast == [("org_1", "Acme")]


async def test_statements_with_orm_entities_go_through_the_orm(database, orm_executions):
    async with database.read() as session:
        organization = (await session.execute(select(Organization))).scalar_one()
        assert organization.name == "Acme" and organization in session  # loaded into the identity map
    assert len(orm_executions) == 1


async def test_pending_objects_are_flushed_before_a_core_statement_unless_autoflush_is_off(database):
    async with database.write() as session:
        session.add(Organization(id="org_2", name="Pending"))
        with session.no_autoflush:
            assert (await session.execute(COUNT)).scalar_one() == 1  # not flushed: autoflush is off
        assert (await session.execute(COUNT)).scalar_one() == 2  # flushed first, as Session.execute does
    async with database.read() as session:
        assert (await session.execute(COUNT)).scalar_one() == 2


async def test_a_session_with_orm_execute_hooks_keeps_the_orms_path(database, orm_executions):
    hooked = []
    async with database.read() as session:
        event.listen(session.sync_session, "do_orm_execute", hooked.append)
        assert (await session.execute(COUNT)).scalar_one() == 1
    assert len(hooked) == 1 and len(orm_executions) == 1


async def test_a_streaming_result_is_refused_as_asyncsession_refuses_it(database):
    async with database.read() as session:
        with pytest.raises(AsyncMethodRequired):
            await session.execute(COUNT.execution_options(stream_results=True))
