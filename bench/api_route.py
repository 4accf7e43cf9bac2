"""The hand-written baselines of ``bench/api.py``: the first page of posts as one Starlette route.

Both routes answer exactly what ``posts(first: 20) { nodes { id text status targets { id status
account { id provider } } } }`` answers, read from the same SQLite file with the same two
statements, with no GraphQL, no ORM and no authentication:

- ``GET /posts`` through SQLAlchemy Core's async engine on aiosqlite, the database layer the
  gateway itself stands on: the baseline of the issue's table;
- ``GET /posts-raw`` on one bare aiosqlite connection: the floor, reported beside it.

They live in bench/ only; the product never serves them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from gateway.content import derive_status

POSTS = (
    "SELECT id, text FROM posts WHERE organization_id = ? AND deleted_at IS NULL "
    "ORDER BY created_at DESC, id DESC LIMIT 20"
)
TARGETS = (
    "SELECT t.post_id, t.id, t.status, a.id, a.provider FROM targets t JOIN accounts a ON a.id = t.account_id "
    "WHERE t.post_id IN ({}) ORDER BY t.created_at, t.id"
)


def make_app(path: str, organization_id: str) -> Starlette:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        async with aiosqlite.connect(path) as connection:
            await connection.execute("PRAGMA query_only = ON")
            state["db"], state["engine"] = connection, engine
            yield
        await engine.dispose()

    def answer(rows: list[Any], found: list[Any]) -> JSONResponse:
        targets: dict[str, list[Any]] = {row[0]: [] for row in rows}
        for post_id, target_id, status, account_id, provider in found:
            targets[post_id].append((target_id, status, account_id, provider))
        nodes = [
            {
                "id": post_id,
                "text": text,
                "status": derive_status([t[1] for t in targets[post_id]]).upper(),
                "targets": [
                    {"id": target_id, "status": status.upper(), "account": {"id": account_id, "provider": provider}}
                    for target_id, status, account_id, provider in targets[post_id]
                ],
            }
            for post_id, text in rows
        ]
        return JSONResponse({"data": {"posts": {"nodes": nodes}}})

    async def posts(_request: Request) -> JSONResponse:
        async with state["engine"].connect() as connection:
            rows = list(await connection.execute(text(POSTS.replace("?", ":org")), {"org": organization_id}))
            found: list[Any] = []
            if rows:
                ids = {f"p{i}": row[0] for i, row in enumerate(rows)}
                query = TARGETS.format(",".join(f":{name}" for name in ids))
                found = list(await connection.execute(text(query), ids))
        return answer(rows, found)

    async def posts_raw(_request: Request) -> JSONResponse:
        db: aiosqlite.Connection = state["db"]
        rows = list(await db.execute_fetchall(POSTS, (organization_id,)))
        found: list[Any] = []
        if rows:
            found = list(await db.execute_fetchall(TARGETS.format(",".join("?" * len(rows))), [row[0] for row in rows]))
        return answer(rows, found)

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/posts", posts), Route("/posts-raw", posts_raw), Route("/healthz", health)], lifespan=lifespan
    )
