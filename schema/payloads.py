"""Mutation payloads: the changed object plus ``userErrors`` for anything the caller can fix.

A mutation resolver runs its service call through ``collect_user_errors``: a ``UserError`` raised
by the service (nothing was changed) becomes an entry of the payload's list instead of a
top-level error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal
from gateway.core import UserError as ServiceUserError
from gateway.core import UserErrors
from gateway.storage import run_idempotent
from schema.context import Info

T = TypeVar("T")


@strawberry.type(name="UserError", description="A problem with the input; nothing was changed.")
class UserErrorType:
    field: list[str] | None = strawberry.field(description="Path to the input field at fault, when there is one.")
    code: str = strawberry.field(description="Stable, machine-readable code, e.g. `TEXT_TOO_LONG`.")
    message: str

    @classmethod
    def from_error(cls, error: ServiceUserError) -> UserErrorType:
        return cls(field=error.field, code=error.code, message=error.message)


async def collect_user_errors(work: Awaitable[T]) -> tuple[T | None, list[UserErrorType]]:
    try:
        return await work, []
    except ServiceUserError as error:
        return None, [UserErrorType.from_error(error)]
    except UserErrors as errors:
        return None, [UserErrorType.from_error(error) for error in errors.errors]


# How a write transaction is run: at once, or through a ``PostValidator`` that may run it again.
Runner = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def run_mutation(
    info: Info, scope: str, work: Callable[[AsyncSession, Principal], Awaitable[T]], *, runner: Runner | None = None
) -> tuple[T | None, list[UserErrorType]]:
    """Check the scope, then run ``work`` in one write transaction; user errors roll it back."""
    principal = info.context.require(scope)

    async def in_transaction() -> T:
        async with info.context.runtime.database.write() as session:
            return await work(session, principal)

    return await collect_user_errors(runner(in_transaction) if runner is not None else in_transaction())


async def run_create(
    info: Info,
    scope: str,
    operation: str,
    idempotency_key: str | None,
    request: Any,
    work: Callable[[AsyncSession, Principal], Awaitable[dict[str, Any]]],
    *,
    runner: Runner | None = None,
) -> tuple[dict[str, Any] | None, list[UserErrorType]]:
    """A create mutation: like ``run_mutation``, and replay-safe under an idempotency key.

    ``work`` returns a JSON-able summary (ids) that is stored for replays; the resolver loads
    the objects it names.
    """
    principal = info.context.require(scope)
    return await collect_user_errors(
        run_idempotent(
            info.context.runtime.database,
            principal.organization_id,
            operation,
            idempotency_key,
            request,
            lambda session: work(session, principal),
            runner=runner,
        )
    )
