"""Metrics reads at scale: the analytics rollup by day over 30 days with 1 M snapshots, and one
post's 90-day series, on SQLite and on PostgreSQL.

    python bench/metrics.py [--targets 20000] [--readings 50] [--runs 25] [--backend sqlite,postgresql]

Seeds one organization with 10 accounts on 3 providers and ``--targets`` published targets spread
over the last 30 days, each with its latest figures (``target_metrics``) and ``--readings``
snapshots (20,000 × 50 = 1,000,000), some figures NULL as platforms leave them. One more target
holds a 90-day history as the retention chore leaves it: every 15 minutes for the last 7 days,
one a day before. Then times, through the services the API calls (``gateway.metrics``):

- ``rollup`` grouped by DAY (and by DAY × PROVIDER) over the 30 days: target p50 ≤ 200 ms;
- ``target_series`` of the 90-day post, by DAY and by HOUR.

PostgreSQL is Debian's, started like the tests' peer (tests/peers/postgres_peer.py). Timings are
wall-clock per call in this process, after one untimed call, plus this process's CPU time (on
SQLite that includes the database's own work; on PostgreSQL it does not). On a shared machine the
wall clock follows the load; the CPU time says what a call costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from gateway.metrics.analytics import AnalyticsFilter, rollup  # noqa: E402
from gateway.metrics.reads import target_series  # noqa: E402
from gateway.metrics.records import day_number  # noqa: E402
from gateway.storage import Database  # noqa: E402
from gateway.storage.migrate import upgrade  # noqa: E402
from gateway.storage.models import Account, Organization, Post, Target, TargetMetrics, TargetMetricSnapshot  # noqa: E402

ORG = "org_bench00000000000000000000"
PROVIDERS = ("bluesky", "mastodon", "x")
CHUNK = 10_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def insert_all(database: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with database.write() as session:
            await session.execute(insert(table), rows[start : start + CHUNK])


def figures(rng: random.Random, scale: int) -> dict[str, int | None]:
    views = rng.randint(0, 50 * scale)
    return {
        "views": views, "reach": views * 7 // 10 if rng.random() < 0.5 else None, "likes": rng.randint(0, scale),
        "comments": rng.randint(0, scale // 5 + 1), "reposts": rng.randint(0, scale // 4 + 1),
        "quotes": rng.randint(0, 3) if rng.random() < 0.3 else None, "saves": None, "clicks": rng.randint(0, scale // 2 + 1),
    }


async def seed(database: Database, targets: int, readings: int) -> tuple[str, int]:
    rng = random.Random(15)
    async with database.write() as session:
        session.add(Organization(id=ORG, name="Bench"))
        await session.flush()
        for n in range(10):
            session.add(Account(id=f"acct_bench{n:018d}", organization_id=ORG, provider=PROVIDERS[n % 3], external_id=str(n), handle=f"a{n}"))
    posts, target_rows, latest, snapshots = [], [], [], []
    for n in range(targets + 1):
        series_post = n == targets
        published = NOW - timedelta(days=90 if series_post else rng.uniform(0, 30))
        account = n % 10
        post_id, target_id = f"post_b{n:022d}", f"tgt_b{n:023d}"
        posts.append({"id": post_id, "organization_id": ORG, "text": "", "content": {}, "approval_status": "none",
                      "created_at": published, "updated_at": published})
        target_rows.append({"id": target_id, "post_id": post_id, "account_id": f"acct_bench{account:018d}", "organization_id": ORG,
                            "provider": PROVIDERS[account % 3], "status": "published", "platform_post_id": str(n), "attempt_count": 1,
                            "published_at": published, "created_at": published, "updated_at": published})
        last = figures(rng, 200)
        latest.append({"target_id": target_id, "organization_id": ORG, "post_id": post_id, "account_id": f"acct_bench{account:018d}",
                       "provider": PROVIDERS[account % 3], "published_at": published, "refreshed_at": NOW, **last})
        if series_post:  # what the retention chore leaves of 90 days: 15-minute readings for 7 days, daily before
            moments = [published + timedelta(days=d) for d in range(83)] + [NOW - timedelta(minutes=15 * k) for k in range(7 * 96)]
        else:
            moments = sorted(published + timedelta(minutes=rng.uniform(0, 60 * 24 * 30)) for _ in range(readings))
        snapshots += [{"organization_id": ORG, "target_id": target_id, "captured_at": m, "day": day_number(m), **figures(rng, 200)}
                      for m in moments]
    for table, rows in ((Post.__table__, posts), (Target.__table__, target_rows), (TargetMetrics.__table__, latest),
                        (TargetMetricSnapshot.__table__, snapshots)):
        await insert_all(database, table, rows)
    return f"tgt_b{targets:023d}", len(snapshots)


async def timed(runs: int, work: Any) -> tuple[float, float, float, Any]:
    """p50 and p95 wall-clock ms, and p50 CPU ms of this process (SQLite's work runs in it)."""
    await work()  # untimed: warm caches and prepared statements
    laps, cpu, result = [], [], None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = await work()
        laps.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    laps.sort()
    return statistics.median(laps), laps[int(len(laps) * 0.95) - 1], statistics.median(cpu), result


async def bench(url: str, name: str, args: argparse.Namespace) -> None:
    database = Database(url)
    await upgrade(database)
    started = time.perf_counter()
    series_target, snapshot_count = await seed(database, args.targets, args.readings)
    seeded = time.perf_counter() - started
    window = AnalyticsFilter(NOW - timedelta(days=30), NOW)

    async def by(keys: list[str]) -> Any:
        async with database.read() as session:
            return await rollup(session, ORG, window, keys)

    async def series(interval: str) -> Any:
        async with database.read() as session:
            return await target_series(session, ORG, series_target, NOW - timedelta(days=90), NOW + timedelta(minutes=1), interval)

    print(f"\n{name}: {snapshot_count:,} snapshots, {args.targets + 1:,} targets (seeded in {seeded:.0f} s)")
    for label, work in (("rollup by DAY, 30 days", lambda: by(["day"])), ("rollup by DAY x PROVIDER", lambda: by(["day", "provider"])),
                        ("series 90 days by DAY", lambda: series("day")), ("series 90 days by HOUR", lambda: series("hour"))):
        p50, p95, cpu, result = await timed(args.runs, work)
        size = len(result.groups) if hasattr(result, "groups") else len(result)
        print(f"  {label:<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   CPU p50 {cpu:7.1f} ms   ({size} rows)")
    print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=20_000)
    parser.add_argument("--readings", type=int, default=50)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--backend", default="sqlite,postgresql")
    args = parser.parse_args()
    with ExitStack() as stack:
        for backend in args.backend.split(","):
            if backend == "sqlite":
                directory = stack.enter_context(TemporaryDirectory(prefix="socialgate-bench-"))
                asyncio.run(bench(f"sqlite+aiosqlite:///{directory}/bench.db", "SQLite", args))
            else:
                from tests.peers.postgres_peer import running_postgres

                asyncio.run(bench(stack.enter_context(running_postgres()), "PostgreSQL", args))


if __name__ == "__main__":
    main()
