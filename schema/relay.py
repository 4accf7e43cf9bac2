"""Relay conventions: the Node interface, ``node(id)``, and cursor connections.

Our ids are already global (their prefix names the type), so they serve as Relay ids as they
are; ``node(id)`` dispatches on the prefix to the resolver each type module registers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from gateway.core.errors import BadInput
from gateway.core.ids import id_prefix
from gateway.core.pagination import MAX_PAGE_SIZE, Page, PageRequest
from schema.context import Info

T = TypeVar("T")


@strawberry.interface(description="An object with a globally unique, prefixed id (e.g. `post_…`).")
class Node:
    id: strawberry.ID


NodeResolver = Callable[[Info, str], Awaitable[Node | None]]
_NODE_RESOLVERS: dict[str, NodeResolver] = {}


def node_resolver(prefix: str) -> Callable[[NodeResolver], NodeResolver]:
    """Register how ``node(id)`` fetches ids with this prefix (scoped to the caller's org)."""

    def register(resolver: NodeResolver) -> NodeResolver:
        _NODE_RESOLVERS[prefix] = resolver
        return resolver

    return register


async def resolve_node(info: Info, id: strawberry.ID) -> Node | None:
    """Any object by id, or null when it does not exist in the caller's organization."""
    info.context.principal  # authenticate before saying anything about an id
    prefix = id_prefix(str(id))
    resolver = _NODE_RESOLVERS.get(prefix or "")
    if resolver is None:
        return None
    return await resolver(info, str(id))


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
        nodes = [convert(item) for item in page.items]
        return cls(
            edges=[Edge(cursor=cursor, node=node) for cursor, node in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
        )


def page_request(first: int | None, after: str | None, last: int | None, before: str | None) -> PageRequest:
    return PageRequest(first=first, after=after, last=last, before=before)


def check_ids(ids: Sequence[str], prefix: str, argument: str) -> None:
    for value in ids:
        if id_prefix(value) != prefix:
            raise BadInput(f"`{argument}` expects {prefix}_ ids; {value[:60]!r} is not one.", argument)


CONNECTION_ARGUMENTS_HELP = f"`first`/`after` page forward, `last`/`before` backward; at most {MAX_PAGE_SIZE}."


Row = TypeVar("Row")


async def read_one(info: Info, find: Callable[[Any], Awaitable[Row | None]], convert: Callable[[Row], T]) -> T | None:
    """Run a service's tenant-scoped find in a read session and map the row; None when not found."""
    async with info.context.runtime.database.read() as session:
        row = await find(session)
    return convert(row) if row is not None else None
