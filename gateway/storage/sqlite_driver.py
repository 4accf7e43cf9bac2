"""SQLAlchemy's aiosqlite adapter, with each statement in one trip to the connection's thread.

aiosqlite runs every call of a connection on that connection's own thread; each call is a trip
there and back (a queue put, a thread wake-up, a callback on the event loop through its self-pipe).
SQLAlchemy's adapter makes four trips per statement: open a cursor, execute, fetch all, close.
A page of posts ran 26 trips (six statements and four rollbacks), and the trips, not SQLite, were
most of the request's database cost: a trip costs about 33 µs of CPU on this machine, a whole
one-trip statement about as much.

``OneTripCursor`` opens, executes, fetches and closes in one function run on the connection's
thread. A transaction's ``BEGIN`` waits on the connection (``OneTripConnection.defer_begin``) and
goes out in the same trip as the transaction's first statement; a transaction that sends none
sends no ``BEGIN``, and so has nothing to commit or roll back either: no trip at all. A write
path of a few statements per transaction paid a whole trip for each ``BEGIN``.

A statement run with the execution option ``DEFERRED`` (its result is never read: an INSERT with
its keys given, an UPDATE whose rowcount nobody checks) waits on the connection too, and travels
with the transaction's next statement or with its COMMIT, in the order sent. A failure of such a
statement is raised by that next trip, which the transaction's error handling rolls back as any
other; reads in the transaction still see every write before them.

When the connection's thread is idle, a read (with the BEGIN and the deferred writes ahead of it)
and a COMMIT (with the writes that travel with it) run on the event loop's thread instead, never
waiting for a lock, a read within a budget, a write only a few rows in WAL mode
(``gateway.storage.sqlite_inline``), and so does a rollback: no trip at all. A connection that
commits there checkpoints on its own thread instead of in the COMMIT.

Everything else is SQLAlchemy's: the dialect, its statement cache, its error translation,
transactions, server-side cursors (streaming results keep the stock cursor). The function reaches
the thread through ``aiosqlite.Connection._execute``, the same private door SQLAlchemy's own adapter
uses for ``isolation_level`` (``_tx``); ``tests/test_sqlite_driver.py`` pins the behaviour it
relies on, so an aiosqlite release that moves it fails there first.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from gateway.storage.sqlite_inline import (
    CHECKPOINT_EVERY_COMMITS,
    INLINE_WRITE_ROWS,
    NOTHING_AHEAD,
    Ahead,
    ThreadWatch,
    checkpoint,
    commit_inline,
    is_read,
    read_inline,
    rows_of,
    send_ahead,
    stop_automatic_checkpoints,
)

log = logging.getLogger("socialgate.storage")

# Execution options of a statement whose result nobody reads: on SQLite it travels with the
# transaction's next trip (``OneTripCursor.defer``); elsewhere the option means nothing.
DEFERRED = {"socialgate_deferred": True}
# Execution options of a read that needs no transaction: one statement, whose own snapshot is all it
# reads. Sent first in its transaction, it leaves the BEGIN waiting: a session that runs nothing
# else sends no BEGIN and needs no rollback (one trip where there were three).
ALONE = {"socialgate_alone": True}

# The write engine's BEGIN (gateway.storage.database): once it is sent, the transaction holds the
# write lock, and its writes wait for nothing (in WAL mode).
WRITE_BEGIN = "BEGIN IMMEDIATE"
# BEGINs the loop's thread may send (gateway.storage.sqlite_inline): a deferred BEGIN takes no lock,
# and a BEGIN IMMEDIATE that meets another writer's lock is handed to the connection's thread.
_MAY_BEGIN_HERE = (None, "BEGIN", WRITE_BEGIN)


def _run(
    connection: sqlite3.Connection, operation: str | None, parameters: Any, many: bool, ahead: Ahead = (None, [])
) -> tuple[Any, list[Any], int, int | None]:
    """On the connection's thread: what waited (``ahead``), then one statement from cursor to close."""
    send_ahead(connection, ahead)
    if operation is None:
        return None, [], -1, None
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _commit(connection: sqlite3.Connection, ahead: Ahead) -> None:
    """On the connection's thread: what waited, then COMMIT, in one trip."""
    send_ahead(connection, ahead)
    connection.commit()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement makes one trip to aiosqlite's thread (see the module)."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize", "_deferred", "_alone")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened here (the stock adapter's first trip): ``_run`` makes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1  # DBAPI's default size of a fetchmany()
        self._deferred = False
        self._alone = False

    def defer(self) -> None:
        """Let this cursor's next statement wait for the transaction's next trip (see ``DEFERRED``)."""
        self._deferred = True

    def alone(self) -> None:
        """Run this cursor's next statement outside the transaction if none went out yet (see ``ALONE``)."""
        self._alone = True

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        if self._deferred:  # no result is read: it travels with the next trip, in order
            self._deferred = False
            self._adapt_connection.defer_statement(operation, parameters, many)
            self._description, self._rows, self._rowcount, self._lastrowid = None, collections.deque(), -1, None
            return
        adapted: OneTripConnection = self._adapt_connection
        alone, self._alone = self._alone and adapted.nothing_sent(), False
        async with adapted._execute_mutex:
            connection: aiosqlite.Connection = self._connection
            ahead = NOTHING_AHEAD if alone else adapted.take_ahead(unsettle=True)
            result = None
            if not many and is_read(operation) and adapted.may_send_here(ahead):
                # What it could not send here (a BEGIN IMMEDIATE that met a lock) goes to the thread.
                adapted.rest_without_waiting()
                result, ahead = read_inline(connection._conn, operation, parameters, ahead)
            if result is None:
                result = await connection._execute(_run, connection._conn, operation, parameters, many, ahead)
            self._description, rows, self._rowcount, self._lastrowid = result
            self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        """Nothing stays open on the thread: the rows are already here."""

    def close(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Rolls back only when a statement went out since its last commit or rollback.

    A session rolls back as it ends, and the pool rolls back again as the connection comes home:
    one trip per session for nothing. ``_settled`` is this side's own record, not sqlite3's
    ``in_transaction``: a statement whose caller was cancelled may still wait in the thread's
    queue, and a rollback skipped on sqlite3's word would let its BEGIN open a transaction on a
    connection back in the pool. Any statement sent or deferred counts, but one run ``ALONE``
    (no BEGIN before it, so no transaction it could leave open).
    """

    __slots__ = ("_settled", "_begin", "_deferred", "_writing", "_watch", "_wal", "_checkpoints_here")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._settled = False
        self._begin: str | None = None
        self._deferred: list[tuple[str, Any, bool]] = []
        self._writing = False  # the open transaction began with WRITE_BEGIN: it holds the write lock
        self._watch = ThreadWatch(connection)
        self._wal: bool | None = None
        self._checkpoints_here = False  # SQLite's automatic checkpoints are off: commit() runs them

    def thread_idle(self) -> bool:
        """Nothing queued or running on the connection's thread: a statement may run on the loop's."""
        return self._watch.idle

    def in_wal_mode(self) -> bool:
        """In WAL mode a writer holding the write lock, and its COMMIT, never wait for readers."""
        if self._wal is None:
            self._wal = self._connection._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        return self._wal

    def may_send_here(self, ahead: Ahead) -> bool:
        """Whether ``ahead`` may go out from the loop's thread (``gateway.storage.sqlite_inline``):
        the connection's thread is idle, a BEGIN never waits there (a locked one is handed back),
        and deferred writes go only in WAL mode, few, once the write lock is held."""
        begin, deferred = ahead
        if begin not in _MAY_BEGIN_HERE or not self.thread_idle():
            return False
        return not deferred or (self._writing and rows_of(deferred) <= INLINE_WRITE_ROWS and self.in_wal_mode())

    def rest_without_waiting(self) -> None:
        """Before a statement goes out from the loop's thread (``sqlite_inline``), which must never
        wait: the connection rests at busy timeout 0, and its thread's calls set the timeout around
        themselves (``ThreadWatch``)."""
        self._watch.rest_without_waiting(self._connection._conn)

    def defer_begin(self, begin: str) -> None:
        """Open the transaction with ``begin`` in the trip of its first statement, not a trip of its own."""
        self._begin = begin

    def defer_statement(self, operation: str, parameters: Any, many: bool) -> None:
        self._settled = False
        self._deferred.append((operation, parameters, many))

    def nothing_sent(self) -> bool:
        """No statement went out or waits since the last commit or rollback: no transaction is open."""
        return self._settled and not self._deferred

    def take_ahead(self, *, unsettle: bool = False) -> Ahead:
        """The ``BEGIN`` and statements still owed, handed to the trip that carries them (once);
        ``unsettle``: that trip sends a statement, after which a rollback must go out."""
        ahead = (self._begin, self._deferred)
        if self._begin == WRITE_BEGIN:
            self._writing = True  # from the trip that carries it on; a failed one ends in a rollback
        self._begin, self._deferred = None, []
        if unsettle:
            self._settled = False
        return ahead

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            self._settled = False
        if server_side and (self._begin is not None or self._deferred):  # a streaming cursor runs its own trips
            connection: aiosqlite.Connection = self._connection
            await_(connection._execute(_run, connection._conn, None, None, False, self.take_ahead()))
        return super().cursor(server_side)

    def rollback(self) -> None:
        self._begin, self._deferred, self._writing = None, [], False  # never sent: nothing of them to roll back
        if self._settled:
            return
        if self.thread_idle():  # a rollback waits for no lock: on the loop's thread, as a read (sqlite_inline)
            try:
                self._connection._conn.rollback()
            except Exception as error:
                self._handle_exception(error)
        else:
            super().rollback()
        self._settled = True

    def commit(self) -> None:
        begin, deferred = self.take_ahead()
        try:
            if not deferred and begin is not None and self._settled:
                return  # a transaction that sent nothing: nothing to commit
            owed = self._commit_here((begin, deferred))
            if owed is None:
                return
            begin, deferred = owed
            if not deferred and begin is None:
                super().commit()
            else:
                connection: aiosqlite.Connection = self._connection
                try:  # the statements that waited, then COMMIT: one trip; a failure among them is the commit's
                    await_(connection._execute(_commit, connection._conn, (begin, deferred)))
                except Exception as error:
                    self._handle_exception(error)
            self._settled = True
            self._count_commit()
        finally:
            self._writing = False

    def _commit_here(self, ahead: Ahead) -> Ahead | None:
        """Commit on the loop's thread (``gateway.storage.sqlite_inline``) when it may: None once
        committed, else what is still owed (all of ``ahead``, or what a lock kept from going out
        here), which the connection's thread sends before its COMMIT."""
        if not (self.may_send_here(ahead) and self.in_wal_mode()):
            return ahead
        raw = self._connection._conn
        try:
            if not self._checkpoints_here:
                stop_automatic_checkpoints(raw)
                self._checkpoints_here = True
            self.rest_without_waiting()
            committed, owed = commit_inline(raw, ahead)
        except Exception as error:
            self._handle_exception(error)
        if not committed:
            return owed
        self._settled = True
        self._count_commit()
        return None

    def _count_commit(self) -> None:
        """Checkpoint on the connection's thread every ``CHECKPOINT_EVERY_COMMITS`` commits, when this
        connection took the job over from SQLite (``gateway.storage.sqlite_inline``)."""
        if not self._checkpoints_here:
            return
        dbapi: OneTripDBAPI = self.dbapi
        dbapi.commits_since_checkpoint += 1
        if dbapi.commits_since_checkpoint < CHECKPOINT_EVERY_COMMITS:
            return
        dbapi.commits_since_checkpoint = 0
        connection: aiosqlite.Connection = self._connection
        try:
            await_(connection._execute(checkpoint, connection._conn))
        except Exception:  # the commit stands; the next checkpoint copies what this one did not
            log.warning("a WAL checkpoint failed; the next one will retry", exc_info=True)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (``create_async_engine(module=…)``),
    one per ``Database``: its connections count their commits here, between checkpoints."""

    commits_since_checkpoint = 0

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # Statements run on the loop's thread too, one at a time with the connection's own
        # (ThreadWatch): sqlite3 must not refuse them. SQLAlchemy says so for a file, not for
        # ``:memory:``, whose every statement failed on the loop's thread.
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
