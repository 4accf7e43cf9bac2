"""SQLite reads on the event loop's thread (gateway.storage.sqlite_inline): only when the
connection's thread is idle, never waiting for a lock, never longer than a budget of steps; every
other read goes to the connection's thread, with the same answer."""

import asyncio
import os
import sqlite3
import threading

import pytest
from sqlalchemy import text

from gateway.storage import sqlite_inline
from gateway.storage.database import SQLITE_BUSY_TIMEOUT_MS, Database

COUNT_TO = "SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :top) SELECT i FROM n)"
BUSY_TIMEOUT = "SELECT timeout FROM pragma_busy_timeout"


@pytest.fixture
async def database(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    async with database.write() as session:
        await session.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
        await session.execute(text("INSERT INTO things (name) VALUES ('a'), ('b')"))
    async with database.read() as session:  # the pool opens its connection outside the tests' counts
        await session.execute(text("SELECT 1"))
    yield database
    await database.dispose()


def _driver(connection):
    return connection.sync_connection.connection.driver_connection


async def test_a_short_read_runs_on_the_loops_thread_without_waiting_for_locks(database, trips):
    """It runs with no busy timeout (a lock in its way sends it to the thread, see below). The
    connection rests at 0 from then on, with no PRAGMA around each statement, and whatever runs on
    its thread runs with the timeout the connection was opened with, set around the call."""
    async with database.read() as session:
        assert (await session.execute(text(COUNT_TO), {"top": 100})).scalar_one() == 100
        assert (await session.execute(text(BUSY_TIMEOUT))).scalar_one() == 0
        raw = _driver(await session.connection())
        assert raw.in_transaction  # its BEGIN went first, from here too
    assert trips == []

    def timeout_on_the_thread() -> int:
        return raw._conn.execute("PRAGMA busy_timeout").fetchone()[0]

    assert await raw._execute(timeout_on_the_thread) == SQLITE_BUSY_TIMEOUT_MS
    assert raw._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0  # at rest again once it has run
    statements = []
    raw._conn.set_trace_callback(statements.append)
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2
    raw._conn.set_trace_callback(None)
    assert not any("busy_timeout" in statement for statement in statements), statements


async def test_a_read_over_its_budget_is_stopped_and_runs_on_the_thread(database, trips, monkeypatch):
    monkeypatch.setattr(sqlite_inline, "STEP_BUDGET", 1_000)
    async with database.read() as session:
        assert (await session.execute(text(COUNT_TO), {"top": 20_000})).scalar_one() == 20_000
        # The BEGIN went once, from the loop's thread: the thread's run did not send it again
        # ("cannot start a transaction within a transaction"), and the snapshot is one.
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2
    assert trips == ["_run"]


async def test_a_short_read_run_again_and_again_is_never_stopped(database, trips, monkeypatch):
    """SQLite counts a statement's steps since it was prepared, so a short cached read crosses the
    handler's period now and then. Stopping it there sent it to the thread, and left it marked in
    use in sqlite3's statement cache, to be prepared anew on every later run."""
    monkeypatch.setattr(sqlite_inline, "STEP_BUDGET", 1_000)
    for _ in range(300):  # about 20 steps each: 6,000 steps of one cached statement
        async with database.read() as session:
            assert (await session.execute(text("SELECT name FROM things WHERE id = :id"), {"id": 1})).scalar_one() == "a"
    assert trips == []


async def test_a_read_while_the_thread_is_busy_goes_to_the_thread_in_turn(database, trips):
    async with database.read() as session:
        raw = _driver(await session.connection())
        gate = threading.Event()
        busy = asyncio.ensure_future(raw._execute(gate.wait))  # a call still queued or running there
        read = asyncio.ensure_future(session.execute(text("SELECT name FROM things ORDER BY id")))
        while "_run" not in trips:
            await asyncio.sleep(0)
        assert not read.done()  # behind the busy call, not past it on the loop's thread
        gate.set()
        await busy
        assert [row[0] for row in (await read)] == ["a", "b"]
    assert trips[:2] == ["wait", "_run"]


class _Refusing:
    """A connection whose statements fail as SQLite fails them."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.statements: list[str] = []

    def execute(self, statement, *_args):
        self.statements.append(statement)

    def set_progress_handler(self, handler, steps):
        pass

    def cursor(self):
        refusing = self

        class Cursor:
            def execute(self, operation, parameters):
                error = sqlite3.OperationalError("database is locked" if refusing.code == sqlite3.SQLITE_BUSY else "disk I/O error")
                error.sqlite_errorcode = refusing.code
                raise error

            def close(self):
                pass

        return Cursor()


def test_a_read_that_meets_a_lock_is_handed_to_the_thread_and_other_errors_are_raised():
    """A read never waits on the loop's thread: one that meets a lock (SQLITE_BUSY, at once, with the
    busy timeout 0) is handed back to run on the connection's thread, which waits as any statement
    there does; any other error is the read's."""
    busy = _Refusing(sqlite3.SQLITE_BUSY)
    result, owed = sqlite_inline.read_inline(busy, "SELECT 1", None, ("BEGIN", []))  # type: ignore[arg-type]
    assert result is None and owed == sqlite_inline.NOTHING_AHEAD  # the BEGIN went out here
    assert busy.statements == ["BEGIN"]
    failing = _Refusing(sqlite3.SQLITE_IOERR)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlite_inline.read_inline(failing, "SELECT 1", None, sqlite_inline.NOTHING_AHEAD)  # type: ignore[arg-type]


INSERT = text("INSERT INTO things (name) VALUES (:name)").execution_options(socialgate_deferred=True)


async def test_a_write_transaction_runs_on_the_loops_thread_from_begin_to_commit(database, trips):
    """BEGIN IMMEDIATE (the write lock was free), the reads, the deferred writes and the COMMIT: no
    trip to the connection's thread, and what it wrote is committed for every other connection."""
    async with database.write() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2
        assert (await session.execute(text(BUSY_TIMEOUT))).scalar_one() == 0  # the connection rests at 0
        await session.execute(INSERT, [{"name": "c"}, {"name": "d"}])
        assert (await session.execute(text("SELECT max(id) FROM things"))).scalar_one() == 4  # its own writes, seen
        await session.execute(INSERT, {"name": "e"})
        raw = _driver(await session.connection())
    assert trips == []
    assert not raw._conn.in_transaction
    other = sqlite3.connect(str(database.url.database))
    try:
        assert [row[0] for row in other.execute("SELECT name FROM things ORDER BY id")] == ["a", "b", "c", "d", "e"]
    finally:
        other.close()


async def test_a_write_transactions_begin_that_meets_another_writers_lock_waits_on_the_thread(database, trips):
    """Another process holds the write lock: the BEGIN IMMEDIATE is not sent from the loop's thread
    (which never waits) but from the connection's, which waits for the lock as it always did, and
    the read that came with it goes there too; the loop stays free meanwhile."""
    other = sqlite3.connect(str(database.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def write() -> int:
            async with database.write() as session:
                count = (await session.execute(text("SELECT count(*) FROM things"))).scalar_one()
                await session.execute(INSERT, {"name": "mine"})
                return count

        writing = asyncio.ensure_future(write())
        while "_run" not in trips:
            await asyncio.sleep(0)  # the loop turns while the thread waits for the lock
        assert not writing.done()
        other.execute("INSERT INTO things (name) VALUES ('theirs')")
        other.execute("COMMIT")
        assert await writing == 3  # it began after the other writer committed
    finally:
        other.close()
    assert trips == ["_run"]  # the COMMIT, the lock held, went from the loop's thread
    async with database.read() as session:
        assert (await session.execute(text("SELECT name FROM things ORDER BY id"))).scalars().all() == ["a", "b", "theirs", "mine"]


async def test_many_deferred_rows_go_to_the_thread_with_the_commit(database, trips):
    """Writes are never stopped midway (SQLite would roll the transaction back), so only a few rows
    go from the loop's thread; a bulk change goes to the connection's."""
    rows = [{"name": f"n{index}"} for index in range(sqlite_inline.INLINE_WRITE_ROWS + 1)]
    async with database.write() as session:
        await session.execute(text("SELECT 1"))
        await session.execute(INSERT, rows)
    assert trips == ["_commit"]
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2 + len(rows)


async def test_writes_outside_wal_mode_go_to_the_thread(database, trips, monkeypatch):
    """Outside WAL mode a COMMIT waits for readers (and a cache spill for the lock): the thread's work."""
    from gateway.storage.sqlite_driver import OneTripConnection

    monkeypatch.setattr(OneTripConnection, "in_wal_mode", lambda self: False)
    async with database.write() as session:
        await session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE takes the lock or is handed over: here
        await session.execute(INSERT, {"name": "c"})
    assert trips == ["_commit"]


async def test_a_connection_that_commits_here_checkpoints_on_its_thread_every_so_many_commits(database, trips, monkeypatch):
    """A COMMIT may run SQLite's automatic checkpoint, which copies pages to the database and syncs
    it: too slow for the loop's thread. A connection that commits there turns it off and runs a
    passive checkpoint on its own thread every ``CHECKPOINT_EVERY_COMMITS`` commits."""
    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_EVERY_COMMITS", 3)
    monkeypatch.setattr("gateway.storage.sqlite_driver.CHECKPOINT_EVERY_COMMITS", 3)
    wal = f"{database.url.database}-wal"
    database.write_engine.sync_engine.dialect.loaded_dbapi.commits_since_checkpoint = 0  # the fixture's commit
    for index in range(3):
        async with database.write() as session:
            await session.execute(text("SELECT 1"))
            await session.execute(INSERT, {"name": f"n{index}"})
            raw = _driver(await session.connection())._conn
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        if index < 2:
            assert trips == []
    assert trips == ["checkpoint"]
    other = sqlite3.connect(str(database.url.database))
    try:  # everything the WAL held is in the database file: a checkpoint now has nothing to copy
        busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, frames) == (0, copied) and frames > 0
        assert os.path.getsize(wal) > 0
    finally:
        other.close()
