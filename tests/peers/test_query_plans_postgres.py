"""Keyset pagination on PostgreSQL (issue 21, point 4): every list's page after a cursor is one
range of its (scope, created_at, id) index, the row value ``(created_at, id) < (…)`` its bound.

The tables hold a handful of rows, where PostgreSQL rightly prefers a sequential scan; the plan
is asked with sequential scans priced out, which shows whether the index *can* start at the
cursor (what matters at a million rows), not what the planner picks for ten.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_org_with_key
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401  (the fixtures)
from tests.test_query_plans import LISTS, captured_page_statement

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", sorted(LISTS))
async def test_a_page_after_a_cursor_is_one_index_range_on_postgres(pg_api, name):  # noqa: F811
    org = await make_org_with_key(pg_api.runtime)
    index = LISTS[name][3]
    statement, parameters = await captured_page_statement(pg_api, org, name)
    async with pg_api.runtime.database.engine.connect() as connection:
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = [row[0] for row in (await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all()]
    scan = next((i for i, line in enumerate(plan) if f"Index Scan Backward using {index} " in line or f"Index Scan using {index} " in line), None)
    assert scan is not None, f"{name}: the page is not read through {index}:\n" + "\n".join(plan)
    condition = next((line for line in plan[scan + 1:] if "Index Cond:" in line), "")
    # PostgreSQL prints the id column with its cast: ROW(created_at, (id)::text) < ROW(…).
    assert re.search(r"ROW\(created_at, \(?id\)?(::text)?\) < ROW\(", condition), f"{name}: the cursor does not bound the index range:\n" + "\n".join(plan)
