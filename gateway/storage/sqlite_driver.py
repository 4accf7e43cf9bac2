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
path of a few statements per transaction paid a whole trip for each ``BEGIN``. Everything else is SQLAlchemy's: the dialect, its statement cache, its error translation,
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


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool, begin: str | None = None
) -> tuple[Any, list[Any], int, int | None]:
    """On the connection's thread: the transaction's deferred ``begin``, then one statement from cursor to close."""
    if begin is not None:
        connection.execute(begin)
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


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement makes one trip to aiosqlite's thread (see the module)."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

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
        async with self._adapt_connection._execute_mutex:
            connection: aiosqlite.Connection = self._connection
            begin = self._adapt_connection.take_begin()
            description, rows, self._rowcount, self._lastrowid = await connection._execute(
                _run, connection._conn, operation, parameters, many, begin
            )
            self._description = description
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
    connection back in the pool. Any cursor counts as a statement sent.
    """

    __slots__ = ("_settled", "_begin")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._settled = False
        self._begin: str | None = None

    def defer_begin(self, begin: str) -> None:
        """Open the transaction with ``begin`` in the trip of its first statement, not a trip of its own."""
        self._begin = begin

    def take_begin(self) -> str | None:
        """The ``BEGIN`` still owed, handed to the statement that carries it (once)."""
        begin, self._begin = self._begin, None
        return begin

    def cursor(self, server_side: bool = False) -> Any:
        self._settled = False
        if server_side and (begin := self.take_begin()) is not None:  # a streaming cursor runs its own trips
            connection: aiosqlite.Connection = self._connection
            await_(connection._execute(connection._conn.execute, begin))
        return super().cursor(server_side)

    def rollback(self) -> None:
        self._begin = None  # never sent: nothing of it to roll back
        if self._settled:
            return
        super().rollback()
        self._settled = True

    def commit(self) -> None:
        if self._begin is not None and self._settled:  # a transaction that sent nothing: nothing to commit
            self._begin = None
            return
        self._begin = None
        super().commit()
        self._settled = True


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (``create_async_engine(module=…)``)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
