"""The async engine and its sessions.

SQLite gets a database file only its owner may read (``gateway.storage.private_files``), WAL (readers
never wait for the writer), foreign keys, a busy timeout, and real transactions: pysqlite's own
transaction handling is switched off and SQLAlchemy emits BEGIN itself, as the SQLAlchemy docs
recommend. Write transactions use ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gateway.storage.core_session import CoreSession
from gateway.storage.derived import refresh_derived
from gateway.storage.private_files import prepare_sqlite_file
from gateway.storage.reachability import DatabaseUnreachable, describe_unreachable
from gateway.storage.sqlite_driver import OneTripConnection, OneTripCursor, one_trip_dbapi
from gateway.storage.staging import committed, write_staged
from gateway.storage.standing import StandingConnection

SQLITE_BUSY_TIMEOUT_MS = 15_000
# Read connections kept open on SQLite. Each GraphQL query holds one (schema.reads) while it runs;
# with SQLAlchemy's default of 5 (+10 overflow, closed on return) sixteen concurrent queries
# opened a new connection (and aiosqlite thread) for almost every request. WAL lets them all
# read while the writer writes, and an idle one costs a thread and a page cache.
SQLITE_READ_POOL_SIZE = 32
# PostgreSQL connections a process keeps open, and how many more it may open at a peak (closed as
# they come back). SQLAlchemy's 5 + 10 made a server under 16 concurrent requests open a new
# connection for one request in twelve (a handshake and a backend process each: about a tenth of
# a page's CPU). Each process holds up to 20: size PostgreSQL's max_connections (100 by default)
# to the processes deployed (docs/deploy.md).
POSTGRES_POOL_SIZE = 16
POSTGRES_POOL_OVERFLOW = 4


class WriteLockTimeout(Exception):
    """No write transaction could start in time (on SQLite, where writes take turns)."""


def _prepare_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_execute(_connection: Any, cursor: Any, _statement: Any, _parameters: Any, context: Any, _many: bool) -> None:
        if context is None or not isinstance(cursor, OneTripCursor):
            return
        options = context.execution_options
        if options.get("socialgate_deferred"):
            cursor.defer()
        elif options.get("socialgate_alone"):
            cursor.alone()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, OneTripConnection):  # sent with the first statement, in its trip
            dbapi_connection.defer_begin(begin)
            return
        # Straight to the driver's cursor: BEGIN needs none of SQLAlchemy's statement machinery,
        # which cost as much as the query a short read runs after it.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(begin)
        finally:
            cursor.close()


def _is_file(database: str | None) -> bool:
    """A file database gets a queue pool; ``:memory:`` gets SQLAlchemy's single static connection."""
    return bool(database) and database != ":memory:" and "mode=memory" not in (database or "")


class Database:
    """One database: an engine for reads, one for writes (the same engine off SQLite)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:" and not self.url.query.get("uri"):
                prepare_sqlite_file(Path(database))
            pooled = {"pool_size": SQLITE_READ_POOL_SIZE, "max_overflow": SQLITE_READ_POOL_SIZE} if _is_file(database) else {}
            # aiosqlite with one trip to its thread per statement (gateway.storage.sqlite_driver).
            driver = {"module": one_trip_dbapi()} if self.url.get_driver_name() == "aiosqlite" else {}
            self.engine = create_async_engine(url, echo=echo, **pooled, **driver)
            self.write_engine = create_async_engine(url, echo=echo, **driver)
            _prepare_sqlite(self.engine, begin="BEGIN")
            _prepare_sqlite(self.write_engine, begin="BEGIN IMMEDIATE")
            # One-statement reads run on the loop's thread, one after another: one connection kept
            # open serves them all (in memory, SQLAlchemy's static pool has only one anyway).
            self._standing = StandingConnection(self.engine) if _is_file(database) else None
        else:
            pooled = {"pool_size": POSTGRES_POOL_SIZE, "max_overflow": POSTGRES_POOL_OVERFLOW}
            self.engine = create_async_engine(url, echo=echo, pool_pre_ping=True, **pooled)
            self.write_engine = self.engine
            self._standing = None  # PostgreSQL's statements wait on the network: a connection each
        # Core statements straight to the session's connection (gateway.storage.core_session).
        self._read_sessions = async_sessionmaker(self.engine, class_=CoreSession, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, class_=CoreSession, expire_on_commit=False)
        # SQLite lets one writer in at a time. Writers of this process queue on a lock instead of
        # on SQLite's busy handler, which sleeps in growing steps and wastes most of the wait;
        # other processes still meet the busy timeout. A writer that waits longer than that
        # timeout fails as SQLite itself would, so a mistaken nested write() cannot hang forever.
        self._write_turn = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing it does is committed."""
        async with self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one Core statement that reads (``storage.ALONE``), without an ORM session
        around it: a request's key lookup, where building and closing a session cost more than the
        statement. On a SQLite file, the one connection kept open for them
        (``gateway.storage.standing``); whatever transaction a statement opened ends after it."""
        if self._standing is not None:
            async with self._standing.borrow() as connection:
                yield connection
            return
        async with self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, committed when the block ends and rolled back on error.

        The rows the block staged (``gateway.storage.staging``: job events, say) are inserted as
        the transaction's last statements, so they commit with it or not at all.
        """
        if self._write_turn is None:
            async with self._transaction() as session:
                yield session
            return
        if self._write_turn.locked():  # wait, but not forever (wait_for runs a task: only when waiting)
            try:
                await asyncio.wait_for(self._write_turn.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
            except TimeoutError:
                raise WriteLockTimeout("the database stayed busy; try again") from None
        else:
            await self._write_turn.acquire()
        try:
            async with self._transaction() as session:
                yield session
        finally:
            self._write_turn.release()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """The session's transaction begins with its first statement (no ``begin()`` call of its
        own: a greenlet less per write) and commits after the staged rows. An error, or a block
        cut short, rolls it back explicitly: the session's own rollback hooks must run
        (``after_rollback``: webhooks forget endpoints that never were), which a close alone skips."""
        async with self._write_sessions() as session:
            try:
                yield session
                await write_staged(session)
                await refresh_derived(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        committed(session)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def check_reachable(self) -> None:
        """Connect once at start; a failure becomes DatabaseUnreachable, which says why and what to do."""
        try:
            await self.ping()
        except (OSError, DBAPIError) as error:  # refused, unresolvable, no such database, wrong user
            raise DatabaseUnreachable(describe_unreachable(self.url, error)) from None

    async def dispose(self) -> None:
        if self._standing is not None:
            await self._standing.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
