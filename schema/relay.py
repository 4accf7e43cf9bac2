"""Relay conventions: the Node interface, ``node(id)``, ``nodes(ids:)``, and cursor connections.

Our ids are already global (their prefix names the type), so they serve as Relay ids as they
are. Each type module registers how to fetch many of its ids at once, scoped to the caller's
organization (``nodes_resolver``); ``nodes(ids:)`` groups its ids by prefix and runs one query
per type, and ``node(id)`` is the same path with one id, so both hide the same things: an id of
another organization, unknown or malformed comes back null.

A connection's ``totalCount`` counts the query its page was cut from (same filters, no cursor)
in one ``SELECT count(*)``, run only when a client selects the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from gateway.core import MAX_PAGE_SIZE, BadInput, Forbidden, Page, PageRequest, count, id_prefix
from schema.context import Info

T = TypeVar("T")


@strawberry.interface(description="An object with a globally unique, prefixed id (e.g. `post_…`).")
class Node:
    id: strawberry.ID


# How many ids one ``nodes(ids:)`` takes, like a page of a connection.
MAX_NODES = MAX_PAGE_SIZE

NodesResolver = Callable[[Info, list[str]], Awaitable[Mapping[str, Node]]]
_NODES_RESOLVERS: dict[str, NodesResolver] = {}


def nodes_resolver(prefix: str) -> Callable[[NodesResolver], NodesResolver]:
    """Register how ids with this prefix are fetched, many in one query, scoped to the caller's
    organization: the resolver returns the objects it found by id and leaves the others out. It
    checks the scope its type needs (``Forbidden`` otherwise)."""

    def register(resolver: NodesResolver) -> NodesResolver:
        _NODES_RESOLVERS[prefix] = resolver
        return resolver

    return register


async def resolve_node(info: Info, id: strawberry.ID) -> Node | None:
    """Any object by id, or null when it does not exist in the caller's organization."""
    info.context.principal  # authenticate before saying anything about an id
    resolver = _NODES_RESOLVERS.get(id_prefix(str(id)) or "")
    if resolver is None:
        return None
    return (await resolver(info, [str(id)])).get(str(id))


async def resolve_nodes(
    info: Info, ids: list[strawberry.ID]
) -> list[Node | None] | None:
    """Objects by id, in the order asked, each null where ``node(id)`` would be null. One query per
    type; a type whose scope the key lacks is null at its positions, each with a FORBIDDEN error."""
    info.context.principal
    if len(ids) > MAX_NODES:
        raise BadInput(f"`ids` takes at most {MAX_NODES} ids; {len(ids)} were sent.", "ids")
    by_prefix: dict[str, list[str]] = {}
    for value in dict.fromkeys(str(i) for i in ids):
        prefix = id_prefix(value)
        if prefix in _NODES_RESOLVERS:
            by_prefix.setdefault(prefix, []).append(value)
    found: dict[str, Any] = {}
    for prefix, group in by_prefix.items():
        try:
            found.update(await _NODES_RESOLVERS[prefix](info, group))
        except Forbidden as refused:
            # graphql-core raises an exception it finds in a list at that item's path only.
            found.update(dict.fromkeys(group, refused))
    return [found.get(str(i)) for i in ids]


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
    counted: strawberry.Private[Any]  # the page's query, for totalCount

    @strawberry.field(
        description="How many items the whole list holds with the same filters, whatever the page and its cursors. "
        "Counted only when selected; costs 1."
    )
    async def total_count(self, info: Info) -> int:
        async with info.context.read() as session:
            return await count(session, self.counted)

    @classmethod
    def from_page(cls, page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
        nodes = [convert(item) for item in page.items]
        return cls(
            counted=page.query,
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
    async with info.context.read() as session:
        row = await find(session)
    return convert(row) if row is not None else None


async def read_many(
    info: Info, find: Callable[[Any], Awaitable[Mapping[str, Row]]], convert: Callable[[Row], T]
) -> dict[str, T]:
    """Run a tenant-scoped find of many ids (one query) in a read session and map the rows by id."""
    async with info.context.read() as session:
        rows = await find(session)
    return {row_id: convert(row) for row_id, row in rows.items()}
