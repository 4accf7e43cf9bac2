"""Publish throughput and per-post pipeline overhead, as a ratio to bare httpx calls.

    python bench/publish_overhead.py [--posts 400] [--concurrency 16] [--latency-ms 0,50] [--rounds 3] [--profile]

For each platform latency it runs, in one process and against the same local platform:

- **bare**: N ``POST /posts`` with one pooled httpx client (the gateway's own client settings),
  at most C at a time. This is the floor: what publishing N posts costs with no gateway at all.
  C calls first warm the pool up, untimed.
- **engine**: the gateway in-process on SQLite (WAL). First C posts go through the whole path
  below, untimed, to warm it up (statement caches, connections). Then the API phase: N posts created
  and published through ``/graphql`` by C concurrent callers, scheduler stopped, so every post
  waits queued. Then the publish phase: the scheduler (its real loop, ``Scheduler.start``) with
  at most C calls in flight claims, calls the platform through the benchmark provider, and
  records each outcome, until N ``job.succeeded`` events have come over the bus.

Each latency runs ``--rounds`` pairs of bare calls and engine, one after the other. Reported per
round: throughput and this process's CPU per post for each phase, and the throughput ratio
publish/bare; then the median ratio over the rounds (the target: ≤ 1.5) and its range.
``--profile`` prints where the first round's publish phase spends its CPU (cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event as sql_event

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_provider import PROVIDER_ID, install  # noqa: E402
from local_platform import running_platform  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.auth.keys import mint_key  # noqa: E402
from gateway.engine.scheduler import Limits, Scheduler  # noqa: E402
from gateway.orgs.organizations import create_organization  # noqa: E402
from gateway.outbound.gc_policy import settle_after_startup  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from providers import new_http_client  # noqa: E402

ACCOUNTS = 4
PUBLISH_TIMEOUT = 600.0  # seconds; a bound, never an assertion
CONNECT = 'mutation($c: JSON!) { connectAccount(input: {provider: "%s", credentials: $c}) { account { id } userErrors { code message } } }' % PROVIDER_ID
CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code message } } }"
PUBLISH = "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code message } } }"


@dataclass(frozen=True)
class Phase:
    wall: float
    cpu: float

    def per_post_ms(self, posts: int) -> tuple[float, float]:
        return self.wall / posts * 1000, self.cpu / posts * 1000


class Timer:
    """Wall and process CPU time of a block (the CPU includes aiosqlite's threads)."""

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.phase = Phase(time.perf_counter() - self._wall, time.process_time() - self._cpu)


async def bounded(concurrency: int, count: int, work) -> None:
    """Run ``work(i)`` for i in range(count), at most ``concurrency`` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await work(i)

    await asyncio.gather(*(one(i) for i in range(count)))


async def bare(base: str, posts: int, concurrency: int) -> Phase:
    async with new_http_client() as client:

        async def call(i: int) -> None:
            response = await client.post(base + "/posts", json={"text": f"bench post {i}", "idempotency_key": f"bare-{i}"})
            assert response.status_code == 201, response.text

        await bounded(concurrency, concurrency, lambda i: call(-1 - i))  # warm up, as the engine does
        with Timer() as timer:
            await bounded(concurrency, posts, call)
    return timer.phase


async def graphql(http: httpx.AsyncClient, key: str, query: str, variables: dict) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {key}"})
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


async def publish_queued(runtime, organization_id: str, jobs: int, concurrency: int) -> None:
    """Run the scheduler (its real loop) until ``jobs`` publish jobs have succeeded, then stop it."""
    subscription = runtime.events.subscribe(organization_id)
    scheduler = Scheduler(runtime, limits=Limits(batch=concurrency, per_provider=concurrency, per_account=concurrency))
    scheduler.start()
    succeeded = 0
    last_target_event: dict[str | None, dict] = {}
    try:
        # One deadline for the phase, not a wait_for task per event: the watcher's own cost
        # lands on the engine's CPU, so it takes each event as cheaply as it can.
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            while succeeded < jobs:
                event = await subscription.next()
                if event.kind == "job.succeeded":
                    succeeded += 1
                elif event.kind.startswith("target."):
                    last_target_event[event.job_id] = event.payload
                elif event.kind in ("job.failed", "job.partial"):
                    raise RuntimeError(f"a job did not succeed: {last_target_event.get(event.job_id)}")
    except TimeoutError:
        raise TimeoutError(f"only {succeeded} of {jobs} jobs succeeded in {PUBLISH_TIMEOUT}s") from None
    finally:
        await scheduler.stop()
        subscription.close()


async def engine(base: str, posts: int, concurrency: int, workdir: Path, profile: bool) -> tuple[Phase, Phase, str]:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{workdir}/bench.db", data_dir=str(workdir), run_scheduler=False,
        allow_private_urls=True,  # the platform is on 127.0.0.1
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        runtime = app.state.runtime
        install(runtime)
        settle_after_startup()  # as `socialgate serve` and `worker` do once the application is built
        async with runtime.database.write() as session:
            organization = await create_organization(session, "bench")
            key = (await mint_key(session, organization.id, ["*"], name="bench")).secret
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            accounts = []
            for i in range(ACCOUNTS):
                data = await graphql(http, key, CONNECT, {"c": {"endpoint": base, "account": f"a{i}"}})
                accounts.append(data["connectAccount"]["account"]["id"])

            async def create_and_publish(i: int) -> None:
                target = {"accountId": accounts[i % ACCOUNTS]}
                created = await graphql(http, key, CREATE, {"i": {"text": f"bench post {i}", "targets": [target]}})
                post_id = created["createPost"]["post"]["id"]
                published = await graphql(http, key, PUBLISH, {"id": post_id})
                assert published["publishPost"]["userErrors"] == [], published

            # Warm-up: `concurrency` posts through the whole path, untimed, so the timed phases
            # meet warm statement caches and open connections, as a long-running gateway does
            # (the bare side warms its pool the same way).
            await bounded(concurrency, concurrency, lambda i: create_and_publish(-1 - i))
            await publish_queued(runtime, organization.id, concurrency, concurrency)

            with Timer() as api_timer:
                await bounded(concurrency, posts, create_and_publish)

            statements = [0]

            def count(*_args: object) -> None:
                statements[0] += 1

            engines = {runtime.database.engine.sync_engine, runtime.database.write_engine.sync_engine}
            for sync_engine in engines:
                sql_event.listen(sync_engine, "before_cursor_execute", count)
            profiler = cProfile.Profile() if profile else None
            with Timer() as publish_timer:
                if profiler:
                    profiler.enable()
                await publish_queued(runtime, organization.id, posts, concurrency)
                if profiler:
                    profiler.disable()
            for sync_engine in engines:
                sql_event.remove(sync_engine, "before_cursor_execute", count)
    report = f"SQL statements per post in the publish phase: {statements[0] / posts:.1f}\n"
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        report += "\ncProfile of the publish phase, top functions by own time:\n\n" + out.getvalue()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumtime").print_stats(r"gateway|providers|bench", 30)
        report += "\nThe gateway's own functions, by cumulative time:\n\n" + out.getvalue()
    return api_timer.phase, publish_timer.phase, report


async def run(posts: int, concurrency: int, latency_ms: float, profile: bool, rounds: int) -> None:
    """``rounds`` times: the bare calls, then the engine on a fresh database; the median round decides.

    Alternating the two within seconds of each other keeps a slow spell of the machine from
    landing on one side only; the per-round ratios show how much the machine varied.
    """
    results: list[tuple[Phase, Phase, Phase, str]] = []
    with running_platform(latency_ms) as base:
        for round_number in range(rounds):
            with tempfile.TemporaryDirectory() as workdir:
                floor = await bare(base, posts, concurrency)
                api, publish, report = await engine(base, posts, concurrency, Path(workdir), profile and round_number == 0)
            results.append((floor, api, publish, report))
    print(f"\n## platform latency {latency_ms:g} ms, {posts} posts, concurrency {concurrency}, {rounds} rounds\n")
    print("| round | bare posts/s | engine API posts/s | engine publish posts/s | publish/bare | "
          "engine CPU ms/post (publish / API) | bare CPU ms/post |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for number, (floor, api, publish, _) in enumerate(results, 1):
        print(f"| {number} | {posts / floor.wall:.0f} | {posts / api.wall:.0f} | {posts / publish.wall:.0f} | "
              f"{publish.wall / floor.wall:.2f} | {publish.cpu / posts * 1000:.2f} / {api.cpu / posts * 1000:.2f} | "
              f"{floor.cpu / posts * 1000:.2f} |")
    ratios = sorted(publish.wall / floor.wall for floor, _, publish, _ in results)
    print(f"\npublish/bare throughput ratio: median {statistics.median(ratios):.2f} (rounds: {ratios[0]:.2f}–{ratios[-1]:.2f})")
    print(results[0][3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", default="0,50", help="comma-separated platform latencies to run")
    parser.add_argument("--rounds", type=int, default=3, help="bare/engine pairs per latency; the median ratio is reported")
    parser.add_argument("--profile", action="store_true", help="cProfile the first round's publish phase")
    args = parser.parse_args()
    # The garbage collector as a socialgate process runs it, for the bare calls too: one policy for both sides.
    settle_after_startup()
    for latency in (float(v) for v in args.latency_ms.split(",")):
        asyncio.run(run(args.posts, args.concurrency, latency, args.profile, args.rounds))


if __name__ == "__main__":
    main()
