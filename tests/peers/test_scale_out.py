"""Scale-out: 2 `serve` + 2 `worker` processes on PostgreSQL and Redis, one of each killed mid-run.

500 posts are published through both APIs while subscribers listen on both: a `jobEvents`
subscription for every fifth job, and an `orgEvents` firehose per API. Mid-run one worker and
one API process get SIGKILL and are started again; the subscribers of the dead API resume on
the new one (`afterSeq`, `after: <event id>`). In the end every target is published, failed or
unconfirmed, no target was sent to the platform twice (the sandbox keeps a record per call),
every job subscriber saw every stored event of its job exactly once and in order, and every
firehose saw every event of the run exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage import Database
from gateway.storage.migrate import upgrade
from gateway.storage.models import JobEvent, ProviderRecord, Target
from tests.conftest import make_org_with_key
from tests.peers.test_operator_postgres import _create_database
from tests.peers.test_postgres import SECRET_KEY, postgres_url  # noqa: F401 (the server, a fixture)
from tests.servers import serve, stop_process

pytestmark = pytest.mark.e2e

POSTS = 500
ACCOUNTS = 5
FOLLOWED_EVERY = 5  # a jobEvents subscriber for every fifth job
CONCURRENCY = 8
RUN_TIMEOUT = 150.0
TERMINAL = {"published", "failed", "unconfirmed"}

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code message } } }"
PUBLISH = "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code message } } }"
CONNECT = 'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } } }'
JOB_EVENTS = "subscription($id: ID!, $after: Int!) { jobEvents(jobId: $id, afterSeq: $after) { seq kind } }"
ORG_EVENTS = "subscription($after: String) { orgEvents(after: $after) { id kind jobId seq } }"


def _env(database_url: str, redis_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    workdir.mkdir(exist_ok=True)
    return {
        "SOCIALGATE_DATABASE_URL": database_url, "SOCIALGATE_EVENTS_URL": redis_url, "SOCIALGATE_SECRET_KEY": SECRET_KEY,
        "SOCIALGATE_DATA_DIR": str(workdir), "SOCIALGATE_LEASE_SECONDS": "5", "SOCIALGATE_SCHEDULER_POLL_SECONDS": "0.2",
        "SOCIALGATE_RETRY_BASE_SECONDS": "0.1", "SOCIALGATE_RETRY_MAX_SECONDS": "0.5", **extra,
    }


class Processes:
    """The fleet: API servers (tests.servers.serve) and workers, each in its own directory."""

    def __init__(self, tmp_path: Path, database_url: str, redis_url: str) -> None:
        self.tmp_path, self.database_url, self.redis_url = tmp_path, database_url, redis_url
        self.stack = contextlib.ExitStack()
        self.workers: list[subprocess.Popen] = []

    async def api(self, name: str):
        env = _env(self.database_url, self.redis_url, self.tmp_path / name, SOCIALGATE_RUN_SCHEDULER="false")
        return await asyncio.to_thread(self.stack.enter_context, serve(self.tmp_path / name, env=env, timeout=60))

    def worker(self, name: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
        env.update(_env(self.database_url, self.redis_url, self.tmp_path / name))
        log = open(self.tmp_path / f"{name}.log", "w")
        process = subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)
        self.workers.append(process)
        return process

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                stop_process(process, timeout=20)
        self.stack.close()


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


class Socket:
    """One graphql-transport-ws connection carrying many subscriptions (operation ids)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.url, self.key = base_url.replace("http", "ws") + "/graphql", key
        self.handlers: dict[str, callable] = {}
        self.completed: set[str] = set()
        self.closed = asyncio.Event()

    async def open(self) -> Socket:
        self.socket = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"], max_queue=None)
        await self.socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}))
        assert json.loads(await self.socket.recv())["type"] == "connection_ack"
        self.reader = asyncio.create_task(self._read())
        return self

    async def subscribe(self, query: str, variables: dict, on_result) -> None:
        operation = uuid.uuid4().hex
        self.handlers[operation] = on_result
        await self.socket.send(json.dumps({"id": operation, "type": "subscribe", "payload": {"query": query, "variables": variables}}))

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                message = json.loads(raw)
                if message["type"] == "next":
                    assert "errors" not in message["payload"], message
                    self.handlers[message["id"]](message["payload"]["data"])
                elif message["type"] in ("complete", "error"):
                    assert message["type"] == "complete", message
                    self.completed.add(message["id"])
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def close(self) -> None:
        await self.socket.close()
        await self.reader


class JobFollower:
    """A jobEvents subscriber of one job; resumes with the last seq it saw."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.seen: list[tuple[int, str]] = []

    def on_result(self, data: dict) -> None:
        self.seen.append((data["jobEvents"]["seq"], data["jobEvents"]["kind"]))

    async def follow(self, socket: Socket) -> None:
        last = self.seen[-1][0] if self.seen else 0
        await socket.subscribe(JOB_EVENTS, {"id": self.job_id, "after": last}, self.on_result)


class Firehose:
    """An orgEvents subscriber; resumes after the id of the last event it saw."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.resumed_after: list[str | None] = []  # the `after` of each subscription it made

    def on_result(self, data: dict) -> None:
        self.seen.append(data["orgEvents"])

    async def follow(self, socket: Socket) -> None:
        last = next((event["id"] for event in reversed(self.seen) if event["id"]), None)
        self.resumed_after.append(last)
        await socket.subscribe(ORG_EVENTS, {"after": last}, self.on_result)


async def _graphql(http: httpx.AsyncClient, base_url: str, key: str, query: str, variables: dict) -> dict:
    """One GraphQL call, waiting out RATE_LIMITED (the buckets are shared by both APIs)."""
    while True:
        response = await http.post(base_url + "/graphql", json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {key}"})
        body = response.json()
        limited = [e for e in body.get("errors", ()) if e["extensions"]["code"] == "RATE_LIMITED"]
        if not limited:
            assert "errors" not in body, body
            return body["data"]
        await asyncio.sleep(limited[0]["extensions"]["retryAfter"])  # what the server asks a client to wait


async def _until(predicate, what: str, timeout: float = RUN_TIMEOUT, describe=lambda: "") -> None:
    async def wait() -> None:
        while not await predicate():
            await asyncio.sleep(0.25)  # polling a condition of the database or the subscribers
    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} {describe()}") from None


async def test_two_apis_and_two_workers_survive_a_kill_of_one_of_each(postgres_url, redis_url, tmp_path):  # noqa: F811
    database_url = await _create_database(postgres_url, f"scale_{uuid.uuid4().hex[:8]}")
    database = Database(database_url)
    await upgrade(database)
    await database.dispose()
    # The organization and its key, written as `socialgate orgs create` and `keys create` would.
    setup = Runtime(load_settings(database_url=database_url, data_dir=str(tmp_path), secret_key=SECRET_KEY, run_scheduler=False))
    await setup.start()
    owner = await make_org_with_key(setup)
    await setup.stop()

    fleet = Processes(tmp_path, database_url, redis_url)
    sockets: list[Socket] = []
    try:
        api_one, api_two = await fleet.api("api1"), await fleet.api("api2")
        worker_one, _ = fleet.worker("worker1"), fleet.worker("worker2")
        apis = [api_one.base_url, api_two.base_url]
        async with httpx.AsyncClient(timeout=60) as http:
            accounts = [
                (await _graphql(http, apis[i % 2], owner.secret, CONNECT, {"c": {"handle": f"acct{i}"}}))["connectAccount"]["account"]["id"]
                for i in range(ACCOUNTS)
            ]
            socket_one, socket_two = await Socket(apis[0], owner.secret).open(), await Socket(apis[1], owner.secret).open()
            sockets += [socket_one, socket_two]
            firehoses = [Firehose(), Firehose()]
            await firehoses[0].follow(socket_one)
            await firehoses[1].follow(socket_two)
            followers: dict[int, JobFollower] = {}  # by post number: its job's subscriber
            on_socket: dict[int, Socket] = {}
            job_ids: list[str] = []
            half_done = asyncio.Event()
            numbers = iter(range(POSTS))

            async def create_post(api: str, n: int) -> str:
                """createPost with an idempotency key, so a retry of one the killed API took makes no second post."""
                while True:
                    created = (await _graphql(http, api, owner.secret, CREATE, {"i": {
                        "text": f"scale-out post {n}", "targets": [{"accountId": accounts[n % ACCOUNTS]}], "idempotencyKey": f"post-{n}",
                    }}))["createPost"]
                    if [e["code"] for e in created["userErrors"]] != ["IDEMPOTENCY_KEY_IN_USE"]:
                        assert created["userErrors"] == [], created
                        return created["post"]["id"]
                    # The dead process's claim on the key stands until it goes stale; "retry shortly".
                    await asyncio.sleep(1)

            async def publish_posts() -> None:
                for n in numbers:
                    api = apis[n % 2]
                    for attempt in range(3):  # a request the killed API never answered goes to the other
                        try:
                            post_id = await create_post(api, n)
                            job_id = (await _graphql(http, api, owner.secret, PUBLISH, {"id": post_id}))["publishPost"]["job"]["id"]
                            break
                        except httpx.TransportError:
                            api = apis[(n + attempt + 1) % 2]
                    else:
                        raise AssertionError(f"post {n} could not be published")
                    job_ids.append(job_id)
                    if n % FOLLOWED_EVERY == 0:
                        followers[n] = JobFollower(job_id)
                        socket = socket_one if api == api_one.base_url else socket_two
                        on_socket[n] = socket
                        with contextlib.suppress(websockets.ConnectionClosed):
                            await followers[n].follow(socket)
                    if len(job_ids) == POSTS // 2:
                        half_done.set()

            started = asyncio.get_running_loop().time()
            phase = lambda what: print(f"{asyncio.get_running_loop().time() - started:6.1f} s {what}")  # noqa: E731
            publishers = [asyncio.create_task(publish_posts()) for _ in range(CONCURRENCY)]
            await half_done.wait()
            phase("half the posts published; killing")
            # Mid-run: a worker dies in the middle of whatever it was doing, and so does an API
            # process with its subscribers' sockets open.
            _kill(worker_one)
            _kill(api_one.process)
            await asyncio.wait_for(socket_one.closed.wait(), 30)
            fleet.worker("worker3")
            api_three = await fleet.api("api3")
            apis[0] = api_three.base_url
            socket_three = await Socket(api_three.base_url, owner.secret).open()
            sockets.append(socket_three)
            await firehoses[0].follow(socket_three)
            for n, follower in list(followers.items()):
                if on_socket[n] is socket_one:
                    on_socket[n] = socket_three
                    await follower.follow(socket_three)
            phase("restarted")
            await asyncio.gather(*publishers)
            assert len(job_ids) == POSTS
            phase("all posts published")

            async def all_targets_settled() -> bool:
                async with setup.database.read() as session:
                    unsettled = (await session.execute(
                        select(func.count()).select_from(Target).where(Target.status.not_in(TERMINAL))
                    )).scalar()
                return unsettled == 0

            await _until(all_targets_settled, "every target to end published, failed or unconfirmed")

            phase("all targets settled")
            async with setup.database.read() as session:
                rows = (await session.execute(select(JobEvent.job_id, JobEvent.seq, JobEvent.kind).order_by(JobEvent.job_id, JobEvent.seq))).all()
                statuses = Counter((await session.execute(select(Target.status))).scalars())
                calls = (await session.execute(
                    select(ProviderRecord.key).where(ProviderRecord.provider == "sandbox", ProviderRecord.kind == "publish_call")
                )).scalars().all()
            stored: dict[str, list[tuple[int, str]]] = defaultdict(list)
            for job_id, seq, kind in rows:
                stored[job_id].append((seq, kind))

            async def subscribers_caught_up() -> bool:
                return all(f.seen == stored[f.job_id] for f in followers.values()) and all(
                    len({(e["jobId"], e["seq"]) for e in hose.seen if e["jobId"]}) >= len(rows) for hose in firehoses
                )

            lagging = lambda: (  # noqa: E731
                [f.job_id for f in followers.values() if f.seen != stored[f.job_id]][:5],
                [(len(h.seen), len({(e["jobId"], e["seq"]) for e in h.seen if e["jobId"]})) for h in firehoses], len(rows),
            )
            await _until(subscribers_caught_up, "every subscriber to see every event of its jobs", timeout=60, describe=lagging)
            phase("subscribers caught up")
    finally:
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        await setup.database.dispose()
        fleet.close()

    assert sum(statuses.values()) == POSTS and set(statuses) <= TERMINAL, statuses
    assert statuses["published"] >= POSTS - 10, statuses  # only what the dead worker had in hand may be unconfirmed
    per_target = Counter(key.split("/")[0] for key in calls)
    assert max(per_target.values()) == 1, [t for t, c in per_target.items() if c > 1]  # never sent twice
    for follower in followers.values():  # exactly once, in order, across the resume
        assert follower.seen == stored[follower.job_id], follower.job_id
    assert firehoses[0].resumed_after[0] is None and firehoses[0].resumed_after[1] is not None  # it did resume
    for hose in firehoses:  # every job event exactly once, across the resume of the first
        job_events = [(e["jobId"], e["seq"]) for e in hose.seen if e["jobId"]]
        assert len(job_events) == len(set(job_events)) == len(rows)
