"""The connection a SQLite file keeps open for one-statement reads (gateway.storage.standing):
lent to one borrower at a time, no transaction left open after any of them, kept after an ordinary
error, thrown away after a cancellation, and given back when the database is disposed."""

import asyncio

import pytest
from sqlalchemy import event, text

from gateway.storage import ALONE
from gateway.storage.database import Database

COUNT = text("SELECT count(*) FROM things").execution_options(**ALONE)


@pytest.fixture
async def database(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/standing.db")
    async with database.write() as session:
        await session.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY)"))
        await session.execute(text("INSERT INTO things DEFAULT VALUES"))
    yield database
    await database.dispose()


@pytest.fixture
def checkouts(database):
    """Connections checked out of the read pool, counted as they are."""
    counted: list[object] = []
    pool_events = database.engine.sync_engine

    def checkout(dbapi_connection, _record, _proxy):
        counted.append(dbapi_connection)

    event.listen(pool_events, "checkout", checkout)
    yield counted
    event.remove(pool_events, "checkout", checkout)


def _driver(connection):
    return connection.sync_connection.connection.driver_connection


async def test_one_connection_serves_every_borrower_in_turn(database, checkouts):
    seen = set()
    for _ in range(5):
        async with database.connect() as connection:
            assert (await connection.execute(COUNT)).scalar_one() == 1
            seen.add(id(_driver(connection)))
    assert len(seen) == 1
    assert len(checkouts) == 1  # checked out once, not once per borrower


async def test_borrowers_reading_alone_send_nothing_to_roll_back_and_see_every_commit(database):
    """A statement sent ALONE opens no transaction on the database: nothing is rolled back after its
    borrower (SQLAlchemy's own transaction stays, with nothing under it), and each read sees what
    was committed before it."""
    async with database.connect() as connection:  # a new connection: its set-up PRAGMAs went first
        await connection.execute(COUNT)
    rollbacks: list[object] = []
    count = rollbacks.append
    event.listen(database.engine.sync_engine, "rollback", count)
    try:
        for expected in (1, 2, 3):
            async with database.connect() as connection:
                assert (await connection.execute(COUNT)).scalar_one() == expected
                assert not _driver(connection).in_transaction
            async with database.write() as session:
                await session.execute(text("INSERT INTO things DEFAULT VALUES"))
    finally:
        event.remove(database.engine.sync_engine, "rollback", count)
    assert rollbacks == []


async def test_borrowers_take_turns(database):
    """A second borrower waits until the first block ends: one connection is never shared midway."""
    order = []
    first_inside = asyncio.Event()
    release_first = asyncio.Event()

    async def first():
        async with database.connect():
            order.append("first in")
            first_inside.set()
            await release_first.wait()
            order.append("first out")

    async def second():
        await first_inside.wait()
        async with database.connect():
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_inside.wait()
    await asyncio.sleep(0)  # the second borrower asks now, and must wait
    assert order == ["first in"]
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]


async def test_a_transaction_a_borrower_opened_is_rolled_back_after_it(database, checkouts):
    """A statement that is not ALONE sends a BEGIN; the next borrower must not read in its snapshot."""
    async with database.connect() as connection:
        await connection.execute(text("SELECT count(*) FROM things"))
        assert _driver(connection).in_transaction
    async with database.write() as session:
        await session.execute(text("INSERT INTO things DEFAULT VALUES"))
    async with database.connect() as connection:
        assert not _driver(connection).in_transaction
        assert (await connection.execute(COUNT)).scalar_one() == 2  # a snapshot left open would say 1
    assert len(checkouts) == 1


async def test_an_ordinary_error_keeps_the_connection(database, checkouts):
    """A refused key raises inside the block: that must not cost the next request a new connection."""
    with pytest.raises(LookupError):
        async with database.connect() as connection:
            await connection.execute(text("SELECT count(*) FROM things"))
            kept = _driver(connection)
            raise LookupError("no such key")
    async with database.connect() as connection:
        assert _driver(connection) is kept
        assert not kept.in_transaction
    assert len(checkouts) == 1


async def test_a_cancelled_borrower_leaves_a_connection_that_is_not_lent_again(database, checkouts):
    inside = asyncio.Event()
    lent = []

    async def borrower():
        async with database.connect() as connection:
            lent.append(connection)
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(borrower())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert database.engine.sync_engine.pool.checkedout() == 0  # the thrown-away one went back to the pool
    async with database.connect() as connection:
        assert (await connection.execute(COUNT)).scalar_one() == 1
        assert connection is not lent[0]
    assert len(checkouts) == 2  # checked out again, through the pool's own reset


async def test_dispose_gives_the_connection_back(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/dispose.db")
    async with database.connect() as connection:
        await connection.execute(text("SELECT 1").execution_options(**ALONE))
    assert database.engine.sync_engine.pool.checkedout() == 1
    await database.dispose()
    assert connection.closed


async def test_in_memory_each_borrower_gets_the_pools_connection():
    """In memory, SQLAlchemy's static pool holds the one connection there is; nothing is kept
    aside. Its statements run on the loop's thread as a file's do (sqlite3 once refused them there)."""
    database = Database("sqlite+aiosqlite:///:memory:")
    try:
        async with database.connect() as connection:
            assert (await connection.execute(text("SELECT 1").execution_options(**ALONE))).scalar_one() == 1
            await connection.execute(text("SELECT 2"))  # a BEGIN first, and a rollback after
        assert connection.closed
    finally:
        await database.dispose()
