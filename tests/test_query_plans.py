"""Every paginated list reads one index range from its cursor on: the query plan, not a timing.

Keyset pagination is only as fast as the database's use of the cursor. Written as
``created < ? OR (created = ? AND id < ?)`` SQLite cannot take it as an index bound and walks
every newer row before the page (page 25,000 of a million posts: 225 ms against 0.1 ms). Each
list here is read with an ``after`` cursor through the API; its SQL is captured and asked for its
plan, which must search the list's (scope, created_at, id) index with the cursor as the range.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from gateway.core.ids import new_id
from gateway.core.pagination import encode_cursor

CURSOR_AT = datetime(2026, 6, 1, tzinfo=UTC)

# list name → (query, the id prefix of its rows, the table read, the index that must bound it)
LISTS = {
    "apiKeys": ("{ apiKeys(first: 5, after: $after) { nodes { id } } }", "key", "api_keys", "ix_api_keys_org_created"),
    "accounts": ("{ accounts(first: 5, after: $after) { nodes { id } } }", "acct", "accounts", "ix_accounts_org_created"),
    "media": ("{ media(first: 5, after: $after) { nodes { id } } }", "med", "media_assets", "ix_media_assets_org_created"),
    "posts": ("{ posts(first: 5, after: $after) { nodes { id } } }", "post", "posts", "ix_posts_org_created"),
    "jobs": ("{ jobs(first: 5, after: $after) { nodes { id } } }", "job", "jobs", "ix_jobs_org_created"),
    "children": (
        "{ organization(id: $org) { children(first: 5, after: $after) { nodes { id } } } }", "org", "organizations",
        "ix_organizations_parent_created",
    ),
}


async def captured_page_statement(api, org, name) -> tuple[str, object]:
    """The SQL (and parameters) of list ``name``'s page after a cursor, read through the API."""
    document, prefix, table, _index = LISTS[name]
    query = ("query($after: String, $org: ID!) " if "$org" in document else "query($after: String) ") + document
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if f"FROM {table}" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    engine = api.runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        body = await api.graphql(query, {"after": encode_cursor(CURSOR_AT, new_id(prefix)), **({"org": org.organization_id} if "$org" in document else {})}, key=org.secret)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert "errors" not in body, body
    assert captured, f"no paginated read of {table} was seen"
    return captured[-1]


@pytest.mark.parametrize("name", sorted(LISTS))
async def test_a_page_after_a_cursor_is_one_index_range(api, org, name):
    index = LISTS[name][3]
    statement, parameters = await captured_page_statement(api, org, name)
    async with api.runtime.database.engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()
    details = [row[-1] for row in plan]
    searched = [d for d in details if f"USING INDEX {index} (" in d or f"USING COVERING INDEX {index} (" in d]
    assert searched, f"{name}: the page is not read through {index}: {details}"
    assert "(created_at,id)<(?,?)" in searched[0].replace(" ", ""), f"{name}: the cursor does not bound the index range: {searched[0]}"
