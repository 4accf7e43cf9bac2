"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.types import Info as StrawberryInfo

from gateway.errors import Forbidden, ServiceError, Unauthenticated
from gateway.keys import Principal
from gateway.runtime import Runtime
from gateway.scopes import has_scope
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

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime, lambda: self.principal.organization_id)

    @property
    def principal(self) -> Principal:
        """The caller, or the authentication error that refused them."""
        if isinstance(self.principal_or_error, ServiceError):
            raise self.principal_or_error
        return self.principal_or_error

    def require(self, scope: str) -> Principal:
        principal = self.principal
        if not has_scope(principal.scopes, scope):
            raise Forbidden(f"This API key lacks the {scope!r} scope.")
        return principal


Info = StrawberryInfo[Context, None]
