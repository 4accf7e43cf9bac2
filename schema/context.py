"""The per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.types import Info as StrawberryInfo

from gateway.auth import Principal, Refusal, Watch, has_scope
from gateway.core import Forbidden, ServiceError, Unauthenticated, new_request_id
from gateway.runtime import Runtime
from schema.loaders import Loaders


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

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime, lambda: self.principal.organization_id)

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

    def require(self, scope: str) -> Principal:
        principal = self.principal
        if not has_scope(principal.scopes, scope):
            raise Forbidden(f"This API key lacks the {scope!r} scope.")
        return principal


Info = StrawberryInfo[Context, None]
