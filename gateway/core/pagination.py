"""Keyset pagination over (created_at, id), newest first.

Every paginated table has an index that ends in ``(created_at, id)`` after the columns that
scope the list (an organization, a parent), so a page is one index range whatever its depth;
``tests/test_query_plans.py`` holds each list to it.

Offsets skip and repeat rows when the list changes between pages; a keyset cursor names the last
row seen, so the next page starts exactly after it. The cursor is opaque to clients (URL-safe
base64 of the row's timestamp and id) and checked strictly when it comes back.

A page keeps the query it was cut from (filtered and scoped, before any cursor), so the size of
the whole list can be counted later with exactly the same conditions, and only when asked for:
``count`` runs one ``SELECT count(*)`` over it.

A caller that lists the same way on every request passes a query built once with bind parameters
and their ``parameters``: the page's statement (cursor bounds, order, limit) is then built once
too, and SQLAlchemy computes its cache key once, where building it cost more than running it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Integer, Select, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.errors import BadInput
from gateway.core.ids import id_prefix
from gateway.core.plain_rows import plain_rows

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def size(self) -> int:
        return self.last if self.last is not None and self.first is None else (self.first or DEFAULT_PAGE_SIZE)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    # The filtered, scoped query the page was cut from, before cursors, order and limit, and the
    # values of its bind parameters when it was built once with them.
    unbound_query: Select[Any] | None = None
    parameters: dict[str, Any] | None = None

    @property
    def query(self) -> Select[Any] | None:
        """The page's filtered query with its values bound, for ``count``; bound only when asked for."""
        if self.unbound_query is None or not self.parameters:
            return self.unbound_query
        return self.unbound_query.params(self.parameters)


async def count(session: AsyncSession, query: Select[Any]) -> int:
    """How many rows ``query`` selects: its conditions, none of a page's cursors or limit."""
    return int((await session.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one())


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, argument: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInput(f"`{argument}` is not a cursor this API returned.", argument) from None
    if created_at.tzinfo is None or id_prefix(row_id) is None:
        raise BadInput(f"`{argument}` is not a cursor this API returned.", argument)
    return created_at, row_id


def check_page_request(request: PageRequest) -> None:
    if request.first is not None and request.last is not None:
        raise BadInput("Pass `first` or `last`, not both.", "first")
    for name in ("first", "last"):
        value = getattr(request, name)
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise BadInput(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}.", name)


def _selects_objects(query: Select[Any]) -> bool:
    """True for ``select(Model)`` (one ORM entity), False for a selection of columns."""
    described = query.column_descriptions
    return len(described) == 1 and described[0]["expr"] is described[0]["entity"] is not None


# The page statements of queries built once (``paginate(parameters=…)``), by query and the page's
# shape. Their keys are those queries, module-level constants of their callers: a handful.
_PAGE_STATEMENTS: dict[tuple[Select[Any], bool, bool, bool], tuple[Select[Any], bool]] = {}


def _cut(query: Select[Any], model: Any, after: tuple[Any, Any] | None, before: tuple[Any, Any] | None, backwards: bool, limit: Any) -> Select[Any]:
    """``query`` after and before the cursors' (created_at, id), newest first (oldest for ``last``), limited.

    Row values, not `created < at OR (created = at AND id < row_id)`: both databases take the row
    value as a bound of the (scope, created_at, id) index and start the page at the cursor, where
    the OR form walks every newer row first (page 25,000 of a million posts: 0.1 ms against 225 ms
    on SQLite)."""
    created, ident = model.created_at, model.id
    key = tuple_(created, ident)
    if after is not None:
        query = query.where(key < tuple_(*after))
    if before is not None:
        query = query.where(key > tuple_(*before))
    order = (created.asc(), ident.asc()) if backwards else (created.desc(), ident.desc())
    return query.order_by(*order).limit(limit)


def _page_statement(query: Select[Any], model: Any, after: bool, before: bool, backwards: bool) -> tuple[Select[Any], bool]:
    """``query`` cut at the cursors' bind parameters, one statement per shape; and whether it
    selects ORM objects."""
    key = (query, after, before, backwards)
    built = _PAGE_STATEMENTS.get(key)
    if built is None:
        at = model.created_at.type
        statement = _cut(
            query, model,
            (bindparam("page_after_at", type_=at), bindparam("page_after_id")) if after else None,
            (bindparam("page_before_at", type_=at), bindparam("page_before_id")) if before else None,
            backwards, bindparam("page_limit", type_=Integer),
        )
        built = _PAGE_STATEMENTS[key] = (statement, _selects_objects(query))
    return built


async def paginate(
    session: AsyncSession, query: Select[Any], model: Any, request: PageRequest, *, parameters: dict[str, Any] | None = None
) -> Page[Any]:
    """Run ``query`` (already filtered and scoped) one page at a time, newest first.

    ``model`` is what has the ``created_at`` and ``id`` columns: an ORM class when ``query`` selects
    its objects, or a table's ``.c`` when it selects columns, and then the page holds Core rows.
    With ``parameters``, ``query`` is a statement built once with bind parameters (see the module)."""
    check_page_request(request)
    backwards = request.last is not None and request.first is None
    size = request.size()
    after = decode_cursor(request.after, "after") if request.after else None
    before = decode_cursor(request.before, "before") if request.before else None
    if parameters is not None:
        values = dict(parameters, page_limit=size + 1)
        if after is not None:
            values["page_after_at"], values["page_after_id"] = after
        if before is not None:
            values["page_before_at"], values["page_before_id"] = before
        statement, objects = _page_statement(query, model, after is not None, before is not None, backwards)
        result = await session.execute(statement, values)
    else:
        result = await session.execute(_cut(query, model, after, before, backwards, size + 1))
        objects = _selects_objects(query)
    rows = list(result.scalars()) if objects else plain_rows(result)
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    cursors = [encode_cursor(row.created_at, row.id) for row in rows]
    return Page(
        items=rows,
        cursors=cursors,
        has_next_page=more if not backwards else bool(request.before),
        has_previous_page=more if backwards else bool(request.after),
        unbound_query=query,
        parameters=parameters,
    )
