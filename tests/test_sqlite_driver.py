"""The SQLite driver (gateway.storage.sqlite_driver): one trip to aiosqlite's thread per
statement, with everything SQLAlchemy's stock adapter gives its callers unchanged."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.storage.database import Database


@pytest.fixture
async def database(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with database.write() as session:
        await session.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield database
    await database.engine.dispose()
    await database.write_engine.dispose()


@pytest.fixture
def on_the_thread(monkeypatch):
    """Every statement and rollback on aiosqlite's thread, none on the loop's (sqlite_inline)."""
    from gateway.storage.sqlite_driver import OneTripConnection

    monkeypatch.setattr(OneTripConnection, "thread_idle", lambda self: False)


async def test_a_read_session_on_an_idle_connection_makes_no_trip(database, trips):
    """Reads and the read's rollback run on the loop's thread when the connection's is idle."""
    async with database.read() as session:
        await session.execute(text("SELECT 1"))
    trips.clear()
    async with database.read() as session:
        assert (await session.execute(text("SELECT 40 + 2"))).scalar_one() == 42
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0
        connection = (await session.connection()).sync_connection.connection.driver_connection
        assert connection.in_transaction  # the first read sent the BEGIN
    assert trips == [] and not connection.in_transaction


async def test_a_read_session_makes_one_trip_per_statement(database, trips, on_the_thread):
    async with database.read() as session:
        await session.execute(text("SELECT 1"))  # the pool opens its connection outside the count
    trips.clear()
    async with database.read() as session:
        assert (await session.execute(text("SELECT 40 + 2"))).scalar_one() == 42
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0
    # Two statements (the first carries the BEGIN) and one rollback: the stock adapter made 4
    # trips a statement, and the pool rolled back a second time a transaction the session had
    # already ended.
    assert trips == ["_run", "_run", "rollback"]


async def test_begin_travels_with_the_first_statement_and_opens_the_transaction_before_it(database, trips):
    """The deferred BEGIN still opens the transaction before the first statement: a read session
    sees one snapshot, and a write transaction holds SQLite's write lock (BEGIN IMMEDIATE) from
    its first statement to its commit."""
    import sqlite3

    async with database.read() as session:
        await session.execute(text("SELECT 1"))
    trips.clear()
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0
        async with database.write() as writer:  # another connection commits a row meanwhile
            await writer.execute(text("INSERT INTO things (name) VALUES ('later')"))
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0  # the snapshot held
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 1
    async with database.write() as writer:
        await writer.execute(text("UPDATE things SET name = 'locked'"))
        other = sqlite3.connect(str(database.url.database), timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    assert "_run" in trips and all(name in ("_run", "commit", "rollback") for name in trips)


async def test_a_transaction_that_sends_nothing_makes_no_trip(database, trips):
    async with database.read() as session:
        await session.execute(text("SELECT 1"))
    async with database.write() as session:
        await session.execute(text("SELECT 1"))
    trips.clear()
    async with database.read() as session:
        await session.connection()  # begun, nothing sent
    async with database.write() as session:
        await session.connection()
    assert trips == []
    async with database.write() as session:
        await session.execute(text("INSERT INTO things (name) VALUES ('one')"))
    assert trips == ["_run"]  # a write, which may be long, goes to the thread; its COMMIT is sent from here


async def test_writes_report_rowcount_lastrowid_and_many(database):
    async with database.write() as session:
        inserted = await session.execute(text("INSERT INTO things (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await session.execute(text("INSERT INTO things (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}, {"name": "d"}])
        updated = await session.execute(text("UPDATE things SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 3
    async with database.read() as session:
        rows = (await session.execute(text("SELECT id, name FROM things ORDER BY id"))).all()
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d!")]
    assert list(rows[0]._mapping) == ["id", "name"]  # the description came back with the rows
    async with database.read() as session:
        result = await session.execute(text("SELECT id FROM things ORDER BY id"))
        assert [tuple(r) for r in result.fetchmany()] == [(1,)]  # the DBAPI's arraysize, 1
        assert [tuple(r) for r in result.fetchmany(2)] == [(2,), (3,)]
        assert [tuple(r) for r in result.fetchall()] == [(4,)]


async def test_errors_are_sqlalchemys_and_roll_the_write_back(database):
    with pytest.raises(IntegrityError):
        async with database.write() as session:
            await session.execute(text("INSERT INTO things (name) VALUES ('x')"))
            await session.execute(text("INSERT INTO things (name) VALUES ('x')"))
    with pytest.raises(OperationalError):
        async with database.read() as session:
            await session.execute(text("SELECT nothing FROM nowhere"))
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0


async def test_a_connection_given_back_mid_transaction_is_rolled_back(database):
    """The pool's own rollback is skipped only when nothing was sent since the last commit or
    rollback: a connection given back inside a transaction (a cancelled request, say) is still
    rolled back before anyone reuses it."""
    from sqlalchemy.util import greenlet_spawn

    engine = database.engine
    fairy = await engine.raw_connection()
    connection = fairy.driver_connection
    await connection.execute("BEGIN")
    assert connection.in_transaction
    await greenlet_spawn(fairy.close)
    assert not connection.in_transaction


async def test_a_begin_cancelled_while_queued_is_rolled_back_before_the_connection_is_reused(database):
    """A statement whose caller was cancelled still runs when aiosqlite's thread reaches it: the
    rollback as the connection goes home must follow it, not be skipped on sqlite3's word that no
    transaction is open yet (it was not, when asked)."""
    import asyncio
    import threading

    from sqlalchemy.util import greenlet_spawn

    engine = database.write_engine
    fairy = await engine.raw_connection()
    adapted = fairy.dbapi_connection
    connection = adapted.driver_connection
    await greenlet_spawn(adapted.rollback)  # settled: the last thing sent was a rollback
    gate = threading.Event()
    busy = asyncio.ensure_future(connection._execute(gate.wait))  # the thread is busy
    begin = asyncio.create_task(greenlet_spawn(lambda: adapted.cursor().execute("BEGIN IMMEDIATE")))
    while connection._tx.qsize() < 2:  # the BEGIN waits behind the busy call
        await asyncio.sleep(0)
    begin.cancel()
    assert not connection.in_transaction
    closing = asyncio.create_task(greenlet_spawn(fairy.close))  # the pool's reset: queued behind the BEGIN
    while not closing.done() and connection._tx.qsize() < 2:
        await asyncio.sleep(0)
    gate.set()
    await busy
    await closing
    with pytest.raises(asyncio.CancelledError):
        await begin
    await connection._execute(lambda: None)  # everything queued has run
    assert not connection.in_transaction


INSERT_DEFERRED = text("INSERT INTO things (name) VALUES (:name)").execution_options(socialgate_deferred=True)


async def test_deferred_statements_travel_with_the_next_trip_in_order(database, trips, on_the_thread):
    """A statement whose result is not read (``storage.DEFERRED``) makes no trip of its own: it
    goes with the transaction's next statement, which sees it, or with the COMMIT. (With the
    connection's thread idle, all of it goes from the loop's thread: ``test_sqlite_inline.py``.)"""
    from gateway.storage import DEFERRED

    assert DEFERRED == {"socialgate_deferred": True}
    async with database.write() as session:
        await session.execute(text("SELECT 1"))
    trips.clear()
    async with database.write() as session:
        await session.execute(INSERT_DEFERRED, {"name": "a"})
        await session.execute(INSERT_DEFERRED, [{"name": "b"}, {"name": "c"}])
        assert trips == []
        assert (await session.execute(text("SELECT group_concat(name, '') FROM things ORDER BY id"))).scalar_one() == "abc"
        assert trips == ["_run"]
        await session.execute(INSERT_DEFERRED, {"name": "d"})
    assert trips == ["_run", "_commit"]
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 4


@pytest.fixture(params=["loop", "thread"])
def either_thread(request, monkeypatch):
    """Run the test twice: with the connection's thread idle (statements from the loop's thread,
    ``sqlite_inline``), and with it busy (everything on the connection's thread)."""
    if request.param == "thread":
        from gateway.storage.sqlite_driver import OneTripConnection

        monkeypatch.setattr(OneTripConnection, "thread_idle", lambda self: False)


async def test_a_deferred_statement_that_fails_fails_the_commit_and_a_rollback_drops_the_rest(database, either_thread):
    with pytest.raises(IntegrityError):
        async with database.write() as session:
            await session.execute(INSERT_DEFERRED, {"name": "same"})
            await session.execute(INSERT_DEFERRED, {"name": "same"})  # the UNIQUE name: raised at the commit
    with pytest.raises(RuntimeError):
        async with database.write() as session:
            await session.execute(INSERT_DEFERRED, {"name": "never sent"})
            raise RuntimeError("rolled back before anything went out")
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0
    async with database.write() as session:  # the connection is clean for the next writer
        await session.execute(INSERT_DEFERRED, {"name": "next"})
    async with database.read() as session:
        assert (await session.execute(text("SELECT name FROM things"))).scalars().all() == ["next"]


SELECT_ALONE = text("SELECT count(*) FROM things").execution_options(socialgate_alone=True)


async def test_a_read_alone_makes_one_trip_and_leaves_no_transaction(database, trips, on_the_thread):
    """A session whose one statement is ``ALONE`` (a request's key lookup) sends no BEGIN and needs
    no rollback; a statement after it opens the transaction as usual, and in a transaction that
    already wrote, ``ALONE`` changes nothing (the read sees the transaction's own writes)."""
    from gateway.storage import ALONE

    assert ALONE == {"socialgate_alone": True}
    async with database.read() as session:
        await session.execute(text("SELECT 1"))
    trips.clear()
    async with database.read() as session:
        assert (await session.execute(SELECT_ALONE)).scalar_one() == 0
    assert trips == ["_run"]
    trips.clear()
    async with database.read() as session:
        await session.execute(SELECT_ALONE)
        await session.execute(text("SELECT 1"))
        connection = (await session.connection()).sync_connection.connection.driver_connection
        assert connection.in_transaction  # the second statement carried the BEGIN
    assert trips == ["_run", "_run", "rollback"]
    async with database.write() as session:
        await session.execute(text("INSERT INTO things (name) VALUES ('mine')"))
        assert (await session.execute(SELECT_ALONE)).scalar_one() == 1
    async with database.read() as session:
        assert (await session.execute(SELECT_ALONE)).scalar_one() == 1


async def test_a_streaming_read_begins_before_its_cursor(database):
    """A server-side cursor keeps the stock path; the BEGIN waiting for the first statement goes first."""
    async with database.write() as session:
        await session.execute(text("INSERT INTO things (name) VALUES (:name)"), [{"name": f"s{n}"} for n in range(5)])
    async with database.read() as session:
        streamed = await session.stream(text("SELECT name FROM things ORDER BY id"))
        assert [row[0] async for row in streamed] == [f"s{n}" for n in range(5)]
        raw = (await session.connection()).sync_connection.connection.dbapi_connection.driver_connection
        assert raw.in_transaction


async def test_the_write_turn_waits_with_a_timeout_only_when_taken(database, monkeypatch):
    """An uncontended write takes the in-process write turn at once (``asyncio.wait_for`` runs a
    task per call: only a writer that must wait pays it); a write nested in another still fails
    after the busy timeout instead of hanging."""
    import asyncio

    import gateway.storage.database as module

    waited: list[float] = []
    original = asyncio.wait_for

    async def recording(awaitable, timeout):
        waited.append(timeout)
        return await original(awaitable, timeout)

    monkeypatch.setattr(module.asyncio, "wait_for", recording)
    monkeypatch.setattr(module, "SQLITE_BUSY_TIMEOUT_MS", 50)
    async with database.write() as session:
        await session.execute(text("INSERT INTO things (name) VALUES ('free')"))
    assert waited == []
    with pytest.raises(module.WriteLockTimeout):
        async with database.write():
            async with database.write():
                pass
    assert waited == [0.05]
