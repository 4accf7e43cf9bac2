"""One read session per GraphQL query, shared by its resolvers and DataLoaders.

A page of posts with their targets and accounts used to open a session (a pooled connection and
its ``BEGIN``) for the list and one more for each DataLoader's batch; on SQLite each came through
aiosqlite's thread, and under load the pool overflowed and churned new connections. A query now
reads through ``Context.read()``: the first read opens one session, later reads reuse it, and
the operation's end closes it. One read transaction also gives the whole answer one snapshot.

Only queries share: a mutation reads what its own write transactions committed (a session begun
before them would not see it on SQLite's WAL), and a subscription lives for hours, which a read
transaction must not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType


class SharedRead:
    """A session opened on first use and kept until ``close``; one user at a time.

    An ``AsyncSession`` allows no concurrent operations, and DataLoaders of one query dispatch
    their batches concurrently: they take turns on the lock, which costs nothing the single
    connection would not serialize anyway.
    """

    def __init__(self, open_session: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        self._open_session = open_session
        self._stack = AsyncExitStack()
        self._session: Any = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        async with self._turn:
            if self._session is None:
                self._session = await self._stack.enter_async_context(self._open_session())
            yield self._session

    async def close(self) -> None:
        async with self._turn:
            self._session = None
            await self._stack.aclose()


class SharedReads(SchemaExtension):
    """Gives a query's context one shared read session for the operation (see the module)."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        execution = self.execution_context
        context = execution.context
        if execution.operation_type is not OperationType.QUERY or not hasattr(context, "share_reads"):
            yield
            return
        async with context.share_reads():
            yield
