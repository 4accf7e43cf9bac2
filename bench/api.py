"""The API's own speed (issue 21): the four rows of its table, side by side in one run.

    python bench/api.py [--posts 10000] [--big-posts 1000000] [--requests 2000] [--writes 400]
                        [--concurrency 16] [--rounds 3] [--backend sqlite,postgresql] [--writes-everywhere]

Every server runs in its own process under the same uvicorn settings as ``socialgate serve``
(``serve_gateway`` / ``serve_route`` below); the load comes from this process over
``--concurrency`` keep-alive connections, and each server's CPU is read from ``/proc`` around
the timed phase, so the client's own cost is never counted. The rows:

1. **page**: ``posts(first: 20) { nodes { id text status targets { id status account { id provider } } } }``
   against the gateway, and the same rows as JSON from a hand-written Starlette route
   (``bench/api_route.py``) on the same SQLite file: throughput ratio gateway ÷ route (target ≥ 0.5),
   and each side's CPU per request. Rounds alternate route, gateway.
2. **writes**: createPost + publishPost (scheduler stopped, so each post waits queued), server
   CPU per post ÷ the route's CPU per request (target ≤ 2.5), in rounds that alternate the route's
   page and a share of the writes; the median of the rounds' ratios.
3. **rare filter**: ``posts(filter: {status: SCHEDULED})`` with 5 matches among ``--big-posts``
   posts ÷ the same among ``--posts`` (target ≤ 1.5), medians of sequential requests.
4. **deep page**: the page at the middle of ``--big-posts`` (page 25,000 of a million) by cursor
   ÷ page 1 (target ≤ 2).

Posts have two targets each (two sandbox accounts), all published but for 5 posts scheduled;
the databases are written with Core ``executemany`` in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.servers import free_port  # noqa: E402

PAGE = "{ posts(first: 20) { nodes { id text status targets { id status account { id provider } } } } }"
FILTER = "{ posts(first: 20, filter: {status: SCHEDULED}) { nodes { id text status } } }"
DEEP = "query($after: String) { posts(first: 20, after: $after) { nodes { id text status } } }"
CONNECT = 'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } userErrors { code } } }'
CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code message } } }"
PUBLISH = "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code message } } }"
RARE = 5  # posts whose targets are scheduled: what the rare filter finds
CHUNK = 50_000
START_TIMEOUT = 60.0  # seconds for a server to answer; a bound, never an assertion


# -- the databases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    url: str
    key: str
    organization_id: str
    accounts: tuple[str, ...]
    posts: int
    first_created: datetime  # the newest post's created_at; post i was created i seconds earlier
    post_ids: tuple[str, ...] = ()


async def _seed_org(url: str, workdir: Path) -> tuple[str, str, tuple[str, ...]]:
    """A fresh database through the gateway itself: migrations, an organization, a key, two accounts."""
    from asgi_lifespan import LifespanManager

    from gateway.app import create_app
    from gateway.auth.keys import mint_key
    from gateway.orgs.organizations import create_organization
    from gateway.settings import load_settings

    if url.startswith("postgresql"):  # `socialgate migrate`, as an operator runs it before serving
        from gateway.storage import Database
        from gateway.storage.migrate import upgrade

        database = Database(url)
        await upgrade(database)
        await database.engine.dispose()
    app = create_app(load_settings(database_url=url, data_dir=str(workdir), run_scheduler=False))
    async with LifespanManager(app) as manager:
        runtime = app.state.runtime
        async with runtime.database.write() as session:
            organization = await create_organization(session, "bench")
            key = (await mint_key(session, organization.id, ["*"], name="bench")).secret
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://bench") as http:
            accounts = []
            for handle in ("bench_a", "bench_b"):
                data = await _graphql(http, key, CONNECT, {"c": {"handle": handle}})
                accounts.append(data["connectAccount"]["account"]["id"])
    return key, organization.id, tuple(accounts)


def _rows(posts: int, organization_id: str, accounts: tuple[str, ...], has_status: bool) -> Iterator[tuple[list[dict], list[dict], list[str]]]:
    """The posts and targets to write, ``CHUNK`` posts at a time, with their ids."""
    from gateway.core import new_id

    newest = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=posts)
    rare = {posts // (RARE + 1) * (n + 1) for n in range(RARE)}  # spread through the list
    for low in range(0, posts, CHUNK):
        post_rows, target_rows, ids = [], [], []
        for i in range(low, min(posts, low + CHUNK)):
            created = newest - timedelta(seconds=i)
            status = "scheduled" if i in rare else "published"
            post_id = new_id("post")
            ids.append(post_id)
            row = {
                "id": post_id, "organization_id": organization_id, "text": f"bench post {i}", "content": {},
                "approval_status": "none", "created_at": created, "updated_at": created,
            }
            if has_status:
                row["status"] = status
            post_rows.append(row)
            for account_id in accounts:
                target_rows.append({
                    "id": new_id("tgt"), "post_id": post_id, "account_id": account_id, "organization_id": organization_id,
                    "provider": "sandbox", "status": status, "attempt_count": 1 if status == "published" else 0,
                    "published_at": created if status == "published" else None,
                    "publish_at": created + timedelta(days=400) if status == "scheduled" else None,
                    "created_at": created, "updated_at": created,
                })
        yield post_rows, target_rows, ids


def _write_sqlite(path: str, chunks: Iterator[tuple[list[dict], list[dict], list[str]]]) -> list[str]:
    from sqlalchemy import create_engine

    from gateway.storage import Post, Target

    engine = create_engine(f"sqlite:///{path}")
    post_ids: list[str] = []
    triggers = _status_triggers(engine)
    with engine.begin() as connection:
        # The rows carry their post's status already: the trigger that keeps it (migration 0017)
        # would recompute it two million times. Off while seeding, back on after.
        for trigger in triggers:
            connection.exec_driver_sql(f"DROP TRIGGER {trigger[0]}")
        for post_rows, target_rows, ids in chunks:
            connection.execute(Post.__table__.insert(), post_rows)
            connection.execute(Target.__table__.insert(), target_rows)
            post_ids.extend(ids)
        for _name, sql in triggers:
            connection.exec_driver_sql(sql)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return post_ids


async def _write_postgresql(url: str, chunks: Iterator[tuple[list[dict], list[dict], list[str]]]) -> list[str]:
    """COPY, as a PostgreSQL user loads a million rows; the same columns the SQLite path inserts."""
    import json

    import asyncpg

    from gateway.storage import Post, Target

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    post_ids: list[str] = []
    try:
        await connection.execute("ALTER TABLE targets DISABLE TRIGGER USER")  # the stored status, as on SQLite
        for post_rows, target_rows, ids in chunks:
            for table, rows in ((Post.__table__, post_rows), (Target.__table__, target_rows)):
                columns = list(rows[0])
                records = [tuple(json.dumps(row[c]) if c == "content" else row[c] for c in columns) for row in rows]
                await connection.copy_records_to_table(table.name, records=records, columns=columns)
            post_ids.extend(ids)
        await connection.execute("ALTER TABLE targets ENABLE TRIGGER USER")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return post_ids


async def seed(workdir: Path, name: str, posts: int, url: str | None = None) -> Seeded:
    """``posts`` posts × 2 targets, written in bulk (a million in about a minute on SQLite)."""
    from gateway.storage import Post

    url = url or f"sqlite+aiosqlite:///{workdir}/{name}.db"
    key, organization_id, accounts = await _seed_org(url, workdir)
    newest = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=posts)
    has_status = "status" in Post.__table__.c  # the stored derived status (issue 21, point 5)
    started = time.perf_counter()
    chunks = _rows(posts, organization_id, accounts, has_status)
    if url.startswith("postgresql"):
        post_ids = await _write_postgresql(url, chunks)
    else:
        post_ids = _write_sqlite(url.split("///", 1)[1], chunks)
    print(f"  {name}: {posts:,} posts × 2 targets written in {time.perf_counter() - started:.1f} s", flush=True)
    return Seeded(url, key, organization_id, accounts, posts, newest, tuple(post_ids))


# -- the servers ---------------------------------------------------------------------------------


def _status_triggers(engine: Any) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return list(connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'targets'"))


def _uvicorn(application: object, port: int) -> None:
    """The uvicorn settings of ``socialgate serve`` (gateway/cli.py), for every server measured."""
    import uvicorn

    uvicorn.run(application, host="127.0.0.1", port=port, log_config=None, server_header=False, ws_per_message_deflate=False)


def serve_gateway(port: int, url: str, data_dir: str) -> None:
    from gateway.app import create_app
    from gateway.auth.rate_limit import CostRateLimiter, Tier
    from gateway.outbound import settle_after_startup
    from gateway.settings import load_settings

    application = create_app(load_settings(database_url=url, data_dir=data_dir, run_scheduler=False))
    # Thousands of pages a second would spend the standard tier's points in a second: a bigger
    # bucket, the same cost computed and charged for every request.
    application.state.runtime.rate_limiter = CostRateLimiter(Tier("bench", capacity=1e12, restore_rate=1e12))
    settle_after_startup()
    _uvicorn(application, port)


def serve_route(port: int, url: str, organization_id: str) -> None:
    from api_route import make_app

    _uvicorn(make_app(url, organization_id), port)


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU (its threads included), from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)


@contextmanager
def running(mode: str, *args: str) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, mode, str(port), *args])
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(server.base + "/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {mode} server did not start") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


# -- the load ------------------------------------------------------------------------------------


async def _graphql(http: httpx.AsyncClient, key: str, query: str, variables: dict | None = None) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {key}"})
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


@dataclass(frozen=True)
class Phase:
    requests: int
    wall: float
    server_cpu: float

    @property
    def throughput(self) -> float:
        return self.requests / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu / self.requests * 1000


async def _load(server: Server, concurrency: int, requests: int, call: Callable[[httpx.AsyncClient, int], Awaitable[None]]) -> Phase:
    """``requests`` calls over ``concurrency`` keep-alive connections, after one untimed warm-up each."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=120.0) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def worker() -> None:
            while not queue.empty():
                await call(http, queue.get_nowait())

        for i in range(concurrency):
            queue.put_nowait(-1 - i)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        for i in range(requests):
            queue.put_nowait(i)
        cpu, wall = server.cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Phase(requests, time.perf_counter() - wall, server.cpu() - cpu)


async def _latency_ms(server: Server, key: str, query: str, variables: dict | None, repeat: int) -> float:
    """The median wall time of ``repeat`` sequential requests (after two untimed ones)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=120.0) as http:
        times = []
        for i in range(repeat + 2):
            started = time.perf_counter()
            await _graphql(http, key, query, variables)
            if i >= 2:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _page_expected(body: dict) -> int:
    return len(body["posts"]["nodes"])


async def page_row(gateway: Server, route: Server, seeded: Seeded, concurrency: int, requests: int, rounds: int) -> list[tuple[Phase, Phase, Phase]]:
    headers = {"Authorization": f"Bearer {seeded.key}"}

    async def raw_call(http: httpx.AsyncClient, _i: int) -> None:
        response = await http.get("/posts-raw")
        assert len(response.json()["data"]["posts"]["nodes"]) == 20

    async def gateway_call(http: httpx.AsyncClient, _i: int) -> None:
        response = await http.post("/graphql", json={"query": PAGE}, headers=headers)
        assert _page_expected(response.json()["data"]) == 20

    async with httpx.AsyncClient(base_url=gateway.base) as http:  # both sides answer the same rows
        ours = (await http.post("/graphql", json={"query": PAGE}, headers=headers)).json()
    async with httpx.AsyncClient(base_url=route.base) as http:
        theirs = [(await http.get(path)).json() for path in ("/posts", "/posts-raw")]
    if any(ours["data"] != answer["data"] for answer in theirs):
        raise RuntimeError("the routes and the gateway answer different rows")
    results = []
    for _ in range(rounds):
        raw_phase = await _load(route, concurrency, requests, raw_call)
        route_phase = await route_page_phase(route, concurrency, requests)
        gateway_phase = await _load(gateway, concurrency, requests, gateway_call)
        results.append((raw_phase, route_phase, gateway_phase))
    return results


async def route_page_phase(route: Server, concurrency: int, requests: int) -> Phase:
    """The Core route's page alone: row 2's measure of a request's CPU, next to each round of writes."""

    async def route_call(http: httpx.AsyncClient, _i: int) -> None:
        response = await http.get("/posts")
        assert len(response.json()["data"]["posts"]["nodes"]) == 20

    return await _load(route, concurrency, requests, route_call)


async def write_row(gateway: Server, seeded: Seeded, concurrency: int, writes: int) -> Phase:
    headers = {"Authorization": f"Bearer {seeded.key}"}

    async def create_and_publish(http: httpx.AsyncClient, i: int) -> None:
        targets = [{"accountId": account_id} for account_id in seeded.accounts]
        created = await http.post("/graphql", json={"query": CREATE, "variables": {"i": {"text": f"bench write {i}", "targets": targets}}}, headers=headers)
        post_id = created.json()["data"]["createPost"]["post"]["id"]
        published = await http.post("/graphql", json={"query": PUBLISH, "variables": {"id": post_id}}, headers=headers)
        assert published.json()["data"]["publishPost"]["userErrors"] == [], published.text

    return await _load(gateway, concurrency, writes, create_and_publish)


def _cursor_at(seeded: Seeded, index: int) -> str:
    from gateway.core.pagination import encode_cursor

    return encode_cursor(seeded.first_created - timedelta(seconds=index), seeded.post_ids[index])


async def measure(args: argparse.Namespace, workdir: Path, backend: str, urls: tuple[str | None, str | None] = (None, None)) -> None:
    """The rows on one backend: SQLite files in ``workdir``, or the two PostgreSQL databases of ``urls``."""
    print(f"\n== {backend} ==\nSeeding…", flush=True)
    small = await seed(workdir, "small", args.posts, urls[0])
    big = await seed(workdir, "big", args.big_posts, urls[1])
    with (
        running("--serve-gateway", small.url, str(workdir)) as gateway,
        running("--serve-route", small.url, small.organization_id) as route,
        running("--serve-gateway", big.url, str(workdir)) as big_gateway,
    ):
        print(f"\n1. posts(first: 20) page, {args.posts:,} posts, {args.requests} requests × {args.rounds} rounds, C = {args.concurrency}")
        rounds = await page_row(gateway, route, small, args.concurrency, args.requests, args.rounds)
        ratios = []
        raw_ratios = []
        for n, (raw_phase, route_phase, gateway_phase) in enumerate(rounds, 1):
            ratio = gateway_phase.throughput / route_phase.throughput
            ratios.append(ratio)
            raw_ratios.append(gateway_phase.throughput / raw_phase.throughput)
            print(
                f"   round {n}: raw route {raw_phase.throughput:5.0f} req/s, {raw_phase.cpu_ms:5.2f} ms CPU/req | "
                f"Core route {route_phase.throughput:5.0f} req/s, {route_phase.cpu_ms:5.2f} ms CPU/req | "
                f"gateway {gateway_phase.throughput:5.0f} req/s, {gateway_phase.cpu_ms:5.2f} ms CPU/req | ratio {ratio:.2f}"
            )
        route_cpu = statistics.median(r.cpu_ms for _, r, _ in rounds)
        print(f"   median throughput ratio gateway/route: {statistics.median(ratios):.2f} (target ≥ 0.5); "
              f"gateway/raw route: {statistics.median(raw_ratios):.2f}")

        repeat = args.latency_repeat
        print(f"\n3. posts(filter: {{status: SCHEDULED}}), {RARE} matches, median of {repeat}")
        small_filter = await _latency_ms(gateway, small.key, FILTER, None, repeat)
        big_filter = await _latency_ms(big_gateway, big.key, FILTER, None, repeat)
        print(f"   {args.posts:,} posts {small_filter:.2f} ms | {args.big_posts:,} posts {big_filter:.2f} ms | "
              f"ratio {big_filter / small_filter:.2f} (target ≤ 1.5)")

        middle = args.big_posts // 40  # page 25,000 of a million
        print(f"\n4. page {middle:,} of posts(first: 20) by cursor at {args.big_posts:,} posts, median of {repeat}")
        first_page = await _latency_ms(big_gateway, big.key, DEEP, {"after": None}, repeat)
        deep_page = await _latency_ms(big_gateway, big.key, DEEP, {"after": _cursor_at(big, (middle - 1) * 20 - 1)}, repeat)
        print(f"   page 1 {first_page:.2f} ms | page {middle:,} {deep_page:.2f} ms | ratio {deep_page / first_page:.2f} (target ≤ 2)")

        if backend != "sqlite" and not args.writes_everywhere:
            return  # the table asks rows 1 and 3 of PostgreSQL; --writes-everywhere measures row 2 too
        # Rounds alternate the Core route's page and a share of the writes, each ratio taken minutes
        # apart at most: this machine's speed drifts by a third within minutes, and the route's CPU
        # from row 1, measured before rows 3 and 4, made row 2 swing with the drift.
        per_round = max(1, args.writes // args.rounds)
        print(f"\n2. createPost + publishPost, {per_round * args.rounds} posts × 2 targets in {args.rounds} rounds, C = {args.concurrency}")
        write_ratios = []
        for n in range(1, args.rounds + 1):
            route_phase = await route_page_phase(route, args.concurrency, args.requests)
            writes = await write_row(gateway, small, args.concurrency, per_round)
            write_ratios.append(writes.cpu_ms / route_phase.cpu_ms)
            print(f"   round {n}: {writes.throughput:.0f} posts/s, server CPU {writes.cpu_ms:.2f} ms/post | "
                  f"route {route_phase.cpu_ms:.2f} ms/request | ratio {write_ratios[-1]:.2f}")
        print(f"   median ratio {statistics.median(write_ratios):.2f} (target ≤ 2.5); row 1's route: {route_cpu:.2f} ms/request")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-gateway":
        serve_gateway(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-route":
        serve_route(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--big-posts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-repeat", type=int, default=21)
    parser.add_argument("--backend", default="sqlite,postgresql", help="sqlite, postgresql, or both (Debian's PostgreSQL, as the tests' peer)")
    parser.add_argument("--writes-everywhere", action="store_true", help="measure row 2 on PostgreSQL too")
    args = parser.parse_args()
    for backend in args.backend.split(","):
        with tempfile.TemporaryDirectory(prefix="socialgate-bench-api-") as workdir, ExitStack() as servers:
            urls: tuple[str | None, str | None] = (None, None)
            if backend == "postgresql":
                from tests.peers.postgres_peer import running_postgres

                # PostgreSQL needs the key every process shares; the servers inherit it.
                os.environ.setdefault("SOCIALGATE_SECRET_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())

                urls = (servers.enter_context(running_postgres()), servers.enter_context(running_postgres()))
            elif backend != "sqlite":
                parser.error(f"unknown backend {backend!r}")
            asyncio.run(measure(args, Path(workdir), backend, urls))


if __name__ == "__main__":
    main()
