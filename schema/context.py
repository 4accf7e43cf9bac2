"""The per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.types import Info as StrawberryInfo

from gateway.auth import Principal, Refusal, Watch, has_scope
from gateway.core import Forbidden, ServiceError, Unauthenticated, new_request_id
from gateway.runtime import Runtime
from schema.loaders import Loaders
from schema.reads import SharedRead


@dataclass
class Context:
    runtime: Runtime
    request: Any
    response: Any
    request_id: str
    principal_or_error: Principal | ServiceError = field(default_factory=Unauthenticated)
    # The payload of a WebSocket's connection_init, where browsers put their credentials.
    connection_params: Any = None
    # A WebSocket's re-check of its key, for the whole connection (schema.http): set, an
    # operation on it needs no watch of its own.
    key_watch: Watch | None = None
    # The context of a stream shared by many subscribers (schema.fanout): it acts for the
    # organization, and each member's own key is re-checked by that member's connection.
    shared: bool = False
    # While a query runs (schema.reads): the one read session its resolvers and loaders share.
    _shared_read: SharedRead | None = None
    _allowed: dict[str, tuple[Principal, bool]] = field(default_factory=dict)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime, lambda: self.principal.organization_id, self.read)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        """A read session: the operation's shared one while a query runs, else a session of its own."""
        shared = self._shared_read
        if shared is None:
            async with self.runtime.database.read() as session:
                yield session
            return
        async with shared.session() as session:
            yield session

    @asynccontextmanager
    async def share_reads(self) -> AsyncIterator[None]:
        """For the block, every ``read()`` uses one session, opened on first use and closed at the end."""
        shared = SharedRead(self.runtime.database.read)
        self._shared_read = shared
        try:
            yield
        finally:
            self._shared_read = None
            await shared.close()

    @property
    def principal(self) -> Principal:
        """The caller, or the authentication error that refused them."""
        if isinstance(self.principal_or_error, ServiceError):
            raise self.principal_or_error
        return self.principal_or_error

    @contextmanager
    def watch_key(self, on_refused: Callable[[Refusal], None]) -> Iterator[None]:
        """While the block runs, call ``on_refused`` once if the caller's key stops standing.

        A WebSocket already re-checks its key for all its operations (and closes with 4403);
        SSE and in-process subscriptions have no connection to close, so each ends itself.
        """
        if self.key_watch is not None or self.shared:
            yield
            return
        with self.runtime.key_watch.watch(self.principal, on_refused):
            yield

    def for_shared_stream(self) -> Context:
        """The context a shared stream runs with: the organization's, bound to no one subscriber.

        Every member passed its own scope check before joining and its own key is re-checked by
        its own connection: the first member's leaving, or losing its key, must not end or
        shape the others' stream, nor keep its socket alive.
        """
        principal = self.principal
        return Context(
            runtime=self.runtime,
            request=None,
            response=None,
            request_id=new_request_id(),
            principal_or_error=Principal(api_key_id="", organization_id=principal.organization_id, scopes=principal.scopes),
            shared=True,
        )

    def allows(self, scope: str) -> bool:
        """Whether the caller holds ``scope``; ``require`` is the check that refuses.

        Answered once per scope per request: forty targets on a page each check ``accounts:read``."""
        principal = self.principal
        known = self._allowed.get(scope)
        if known is None or known[0] is not principal:  # a WebSocket's principal is set after its context is made
            known = self._allowed[scope] = (principal, has_scope(principal.scopes, scope))
        return known[1]

    def require(self, scope: str) -> Principal:
        principal = self.principal
        if not self.allows(scope):
            raise Forbidden(f"This API key lacks the {scope!r} scope.")
        return principal


Info = StrawberryInfo[Context, None]
