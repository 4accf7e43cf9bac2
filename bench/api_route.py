"""The hand-written baselines of ``bench/api.py``: the first page of posts as one Starlette route.

Both routes answer exactly what ``posts(first: 20) { nodes { id text status targets { id status
account { id provider } } } }`` answers, read from the same database with the same two
statements, with no GraphQL, no ORM and no authentication:

- ``GET /posts`` through SQLAlchemy Core's async engine on aiosqlite, the database layer the
  gateway itself stands on: the baseline of the issue's table;
- ``GET /posts-raw`` on one bare aiosqlite connection (on PostgreSQL, asyncpg's own pool): the floor, reported beside it.

On PostgreSQL (``bench/api.py --backend postgresql``) ``/posts`` runs the same Core statements on
SQLAlchemy's asyncpg engine.

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


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2…``."""
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


def make_app(url: str, organization_id: str) -> Starlette:
    state: dict[str, Any] = {}
    postgresql = url.startswith("postgresql")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        engine = create_async_engine(url)  # SQLAlchemy's default pool, as the gateway's own engine
        if postgresql:
            import asyncpg

            pool = await asyncpg.create_pool(url.replace("postgresql+asyncpg://", "postgresql://"), min_size=5, max_size=15)
            state["db"], state["engine"] = pool, engine
            yield
            await pool.close()
        else:
            async with aiosqlite.connect(url.split("///", 1)[1]) as connection:
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
        if postgresql:  # asyncpg's own pool, as large as SQLAlchemy's default (5 + 10)
            async with state["db"].acquire() as connection:
                rows = list(await connection.fetch(_numbered(POSTS), organization_id))
                found = list(await connection.fetch(_numbered(TARGETS.format(",".join("?" * len(rows)))), *[r[0] for r in rows])) if rows else []
            return answer([tuple(r) for r in rows], [tuple(r) for r in found])
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
