"""SQLite reads on the event loop's thread (gateway.storage.sqlite_inline): only when the
connection's thread is idle, never waiting for a lock, never longer than a budget of steps; every
other read goes to the connection's thread, with the same answer."""

import asyncio
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
    """It runs with no busy timeout (a lock in its way sends it to the thread, see below), and the
    connection's timeout is back for whatever runs next on the thread."""
    async with database.read() as session:
        assert (await session.execute(text(COUNT_TO), {"top": 100})).scalar_one() == 100
        assert (await session.execute(text(BUSY_TIMEOUT))).scalar_one() == 0
        raw = _driver(await session.connection())
        assert raw.in_transaction  # its BEGIN went first, from here too
        assert raw._conn.execute("PRAGMA busy_timeout").fetchone()[0] == SQLITE_BUSY_TIMEOUT_MS
    assert trips == []


async def test_a_read_over_its_budget_is_stopped_and_runs_on_the_thread(database, trips, monkeypatch):
    monkeypatch.setattr(sqlite_inline, "STEP_BUDGET", 1_000)
    async with database.read() as session:
        assert (await session.execute(text(COUNT_TO), {"top": 20_000})).scalar_one() == 20_000
        # The BEGIN went once, from the loop's thread: the thread's run did not send it again
        # ("cannot start a transaction within a transaction"), and the snapshot is one.
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2
    assert trips == ["_run"]


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
    there does; any other error is the read's, and the busy timeout is restored either way."""
    busy = _Refusing(sqlite3.SQLITE_BUSY)
    assert sqlite_inline.read_inline(busy, "SELECT 1", None, "BEGIN", 15_000) is None  # type: ignore[arg-type]
    assert busy.statements == ["BEGIN", "PRAGMA busy_timeout = 0", "PRAGMA busy_timeout = 15000"]
    failing = _Refusing(sqlite3.SQLITE_IOERR)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlite_inline.read_inline(failing, "SELECT 1", None, None, 15_000)  # type: ignore[arg-type]
    assert failing.statements[-1] == "PRAGMA busy_timeout = 15000"


async def test_a_write_transactions_begin_waits_for_the_write_lock_on_the_thread(database, trips):
    async with database.write() as session:
        assert (await session.execute(text("SELECT count(*) FROM things"))).scalar_one() == 2  # BEGIN IMMEDIATE: the thread
        assert (await session.execute(text("SELECT max(id) FROM things"))).scalar_one() == 2  # the lock held: here
    assert trips == ["_run", "commit"]
