"""One connection kept checked out of an engine's pool, lent to one borrower at a time.

On SQLite a short statement runs on the event loop's own thread (``gateway.storage.sqlite_inline``),
so a connection that serves borrowers one after another makes none of them wait in practice: the
statement is over before the next borrower asks. Checking a connection out of the pool and back in
costs more than such a statement: the pool's bookkeeping and events, a new ``AsyncConnection``, a
greenlet each way and a task to close it. A request's key lookup took 150-190 µs that way and
80-110 µs on a connection kept open (``bench/README.md``).

Only one-statement reads borrow it (``Database.connect``). No transaction stays open on the
database after a borrower, whether it returned or raised (a refused key must not cost a new
connection); a read sent ``ALONE`` opens none, and needs no rollback after it.
A connection that cannot be rolled back, or whose borrower was cancelled midway (its statement may
still be under way on the connection's thread), is thrown away, and the next borrower opens another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage.sqlite_driver import OneTripConnection

log = logging.getLogger("socialgate.storage")


class StandingConnection:
    """A connection of ``engine`` opened on first use and lent out in turn (see the module)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[AsyncConnection]:
        """The connection, to this borrower alone until the block ends; no transaction stays open on
        the database after it."""
        async with self._turn:
            connection = self._connection
            if connection is None or connection.closed or connection.invalidated:
                connection = self._connection = await self._engine.connect()
            try:
                yield connection
            except Exception:  # a refused key, say: the connection is as sound as the error left it
                await self._end_transaction(connection)
                raise
            except BaseException:  # cancelled: its statement may still be under way on the thread
                self._connection = None
                await _discard(connection)
                raise
            await self._end_transaction(connection)

    async def _end_transaction(self, connection: AsyncConnection) -> None:
        """Roll back what the borrower left open; a connection that cannot be trusted is thrown away.

        A borrower whose statements all went ``ALONE`` sent no BEGIN: SQLAlchemy's transaction,
        begun with its first statement, stays with nothing under it (its rollback would send
        nothing either), and the next borrower's statements join it. The first statement that
        does send a BEGIN is rolled back after its borrower, which ends both."""
        try:
            if not connection.invalidated and connection.in_transaction() and not _nothing_sent(connection):
                await connection.rollback()
        except Exception:
            log.warning("a standing connection failed to roll back; another will be opened", exc_info=True)
        if connection.invalidated or (connection.in_transaction() and not _nothing_sent(connection)):
            self._connection = None
            await _discard(connection)

    async def close(self) -> None:
        """Give the connection back to the pool (before the engine is disposed)."""
        async with self._turn:
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()


def _nothing_sent(connection: AsyncConnection) -> bool:
    driver = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    return isinstance(driver, OneTripConnection) and driver.nothing_sent()


async def _discard(connection: AsyncConnection) -> None:
    """Close ``connection``, to the end even if the borrower's task is cancelled meanwhile; a close
    that fails is logged, not raised over the borrower's own error."""
    try:
        await asyncio.shield(connection.close())
    except Exception:
        log.warning("closing a standing connection after a failure failed", exc_info=True)
