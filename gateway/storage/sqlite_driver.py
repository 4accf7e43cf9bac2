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

A read whose connection's thread is idle runs on the event loop's thread instead, within a budget
and without waiting for locks (``gateway.storage.sqlite_inline``), and so does a rollback: no
trip at all.

Everything else is SQLAlchemy's: the dialect, its statement cache, its error translation,
transactions, server-side cursors (streaming results keep the stock cursor). The function reaches
the thread through ``aiosqlite.Connection._execute``, the same private door SQLAlchemy's own adapter
uses for ``isolation_level`` (``_tx``); ``tests/test_sqlite_driver.py`` pins the behaviour it
relies on, so an aiosqlite release that moves it fails there first.
"""

from __future__ import annotations

import collections
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

from gateway.storage.sqlite_inline import ThreadWatch, is_read, read_inline

# Execution options of a statement whose result nobody reads: on SQLite it travels with the
# transaction's next trip (``OneTripCursor.defer``); elsewhere the option means nothing.
DEFERRED = {"socialgate_deferred": True}
# Execution options of a read that needs no transaction: one statement, whose own snapshot is all it
# reads. Sent first in its transaction, it leaves the BEGIN waiting: a session that runs nothing
# else sends no BEGIN and needs no rollback (one trip where there were three).
ALONE = {"socialgate_alone": True}

Ahead = tuple[str | None, list[tuple[str, Any, bool]]]  # a deferred BEGIN and deferred statements, in order
# BEGINs a read may send from the loop's thread (gateway.storage.sqlite_inline): a deferred BEGIN
# takes no lock; BEGIN IMMEDIATE waits for the write lock, on the connection's thread.
_TAKES_NO_LOCK = (None, "BEGIN")


def _send_ahead(connection: sqlite3.Connection, ahead: Ahead) -> None:
    begin, deferred = ahead
    if begin is not None:
        connection.execute(begin)
    for operation, parameters, many in deferred:
        if many:
            connection.executemany(operation, parameters)
        else:
            connection.execute(operation, () if parameters is None else parameters)


def _run(
    connection: sqlite3.Connection, operation: str | None, parameters: Any, many: bool, ahead: Ahead = (None, [])
) -> tuple[Any, list[Any], int, int | None]:
    """On the connection's thread: what waited (``ahead``), then one statement from cursor to close."""
    _send_ahead(connection, ahead)
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
    _send_ahead(connection, ahead)
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
            ahead = (None, []) if alone else adapted.take_ahead(unsettle=True)
            result = None
            begin, deferred = ahead
            if not many and not deferred and begin in _TAKES_NO_LOCK and is_read(operation) and adapted.thread_idle():
                result = read_inline(connection._conn, operation, parameters, begin, adapted.busy_timeout_ms())
                ahead = (None, [])  # sent here, even when the read itself goes to the thread
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

    __slots__ = ("_settled", "_begin", "_deferred", "_watch", "_busy_timeout_ms")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._settled = False
        self._begin: str | None = None
        self._deferred: list[tuple[str, Any, bool]] = []
        self._watch = ThreadWatch(connection)
        self._busy_timeout_ms: int | None = None

    def thread_idle(self) -> bool:
        """Nothing queued or running on the connection's thread: a read may run on the loop's."""
        return self._watch.idle

    def busy_timeout_ms(self) -> int:
        """The connection's busy timeout (set as it connected), which an inline read restores."""
        if self._busy_timeout_ms is None:
            self._busy_timeout_ms = int(self._connection._conn.execute("PRAGMA busy_timeout").fetchone()[0])
        return self._busy_timeout_ms

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
        self._begin, self._deferred = None, []  # never sent: nothing of them to roll back
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
        if not deferred:
            if begin is not None and self._settled:  # a transaction that sent nothing: nothing to commit
                return
            super().commit()
            self._settled = True
            return
        connection: aiosqlite.Connection = self._connection
        try:  # the statements that waited, then COMMIT: one trip; a failure among them is the commit's
            await_(connection._execute(_commit, connection._conn, (begin, deferred)))
        except Exception as error:
            self._handle_exception(error)
        self._settled = True


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (``create_async_engine(module=…)``)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
