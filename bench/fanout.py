"""Subscription fan-out: many WebSocket subscribers to ``orgEvents``, delivery latency and RSS.

    python bench/fanout.py [--subscribers 1000] [--posts 20] [--interval 0.25]

Starts the real server (``socialgate serve --demo``, SQLite, in-process bus) in a subprocess,
opens N graphql-transport-ws connections from this process (python ``websockets``), each
subscribed to ``orgEvents(kinds: ["job."])``, then publishes posts through the API one every
``--interval`` seconds. Every post makes three job events (queued, running, succeeded), each
delivered to every subscriber.

Latency is the time from the event's ``occurredAt`` (stamped by the server when it records the
event, before its transaction commits) to the moment this process has parsed the message, on
the same clock. It therefore includes the commit, the bus, the server's WebSocket writes and
this client's own reading of N sockets: an upper bound on what a subscriber sees. Server RSS
comes from /proc (VmRSS now, VmHWM peak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.demo_server import demo_key  # noqa: E402
from tests.servers import RunningServer, serve  # noqa: E402

SUBSCRIBE = {"query": 'subscription { orgEvents(kinds: ["job."]) { kind jobId seq occurredAt } }'}
EVENTS_PER_POST = 3  # job.queued, job.running, job.succeeded
CONNECT_CONCURRENCY = 50
DELIVERY_TIMEOUT = 120.0  # seconds; a bound, never an assertion


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Subscriber:
    """One graphql-transport-ws connection subscribed to orgEvents; records each event's latency."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.latencies: list[float] = []
        self.socket: websockets.ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.error: str | None = None

    async def start(self) -> None:
        self.socket = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"], max_queue=None)
        await self.socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}))
        ack = json.loads(await asyncio.wait_for(self.socket.recv(), 30))
        if ack["type"] != "connection_ack":
            raise RuntimeError(f"not acknowledged: {ack}")
        await self.socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": SUBSCRIBE}))
        # The server reads messages in order: its pong means the subscription has started.
        await self.socket.send(json.dumps({"type": "ping"}))
        while json.loads(await asyncio.wait_for(self.socket.recv(), 30))["type"] != "pong":
            pass
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.socket is not None
        try:
            async for raw in self.socket:
                message = json.loads(raw)
                if message["type"] == "next":
                    event = message["payload"]["data"]["orgEvents"]
                    self.latencies.append(time.time() - datetime.fromisoformat(event["occurredAt"]).timestamp())
                elif message["type"] == "ping":
                    await self.socket.send(json.dumps({"type": "pong"}))
                elif message["type"] in ("error", "complete"):
                    self.error = json.dumps(message)[:300]
                    return
        except websockets.ConnectionClosed as closed:
            self.error = f"closed: {closed}"

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.socket is not None:
            await self.socket.close()


def publish_post(server: RunningServer, http: httpx.Client, key: str, account_id: str, i: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    created = http.post(
        server.base_url + "/graphql", headers=headers,
        json={"query": "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
              "variables": {"i": {"text": f"fan-out {i}", "targets": [{"accountId": account_id}]}}},
    ).json()
    post_id = created["data"]["createPost"]["post"]["id"]
    published = http.post(
        server.base_url + "/graphql", headers=headers,
        json={"query": "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }", "variables": {"id": post_id}},
    ).json()
    assert published["data"]["publishPost"]["job"]["id"], published


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(subscribers: int, posts: int, interval: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, subscribers * 2 + 256)), hard))
    with tempfile.TemporaryDirectory() as workdir, serve(Path(workdir), "--demo") as server:
        key = demo_key(server.stdout())
        pid = server.process.pid
        with httpx.Client(timeout=30) as http:
            accounts = http.post(server.base_url + "/graphql", headers={"Authorization": f"Bearer {key}"},
                                 json={"query": "{ accounts(first: 1) { nodes { id } } }"}).json()
        account_id = accounts["data"]["accounts"]["nodes"][0]["id"]
        idle_rss, _ = rss_mib(pid)

        url = server.base_url.replace("http://", "ws://", 1) + "/graphql"
        clients = [Subscriber(url, key) for _ in range(subscribers)]
        slots = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def start(client: Subscriber) -> None:
            async with slots:
                await client.start()

        started = time.perf_counter()
        await asyncio.gather(*(start(c) for c in clients))
        connect_seconds = time.perf_counter() - started
        subscribed_rss, _ = rss_mib(pid)

        loop = asyncio.get_running_loop()
        server_cpu, client_cpu, events_started = cpu_seconds(pid), time.process_time(), time.perf_counter()
        with httpx.Client(timeout=30) as http:
            for i in range(posts):
                await loop.run_in_executor(None, publish_post, server, http, key, account_id, i)
                await asyncio.sleep(interval)
        expected = posts * EVENTS_PER_POST
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline and any(len(c.latencies) < expected and c.error is None for c in clients):
            await asyncio.sleep(0.1)
        loaded_rss, peak_rss = rss_mib(pid)
        server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
        events_seconds = time.perf_counter() - events_started
        await asyncio.gather(*(c.stop() for c in clients))

    latencies = [value for c in clients for value in c.latencies]
    errors = [c.error for c in clients if c.error]
    delivered = len(latencies)
    print(f"\n## {subscribers} subscribers, {posts} posts ({expected} job events each), one post every {interval:g} s\n")
    print(f"connected and subscribed in {connect_seconds:.1f} s")
    print(f"delivered {delivered} of {subscribers * expected} events; subscribers with an error: {len(errors)}")
    if errors:
        print("first error:", errors[0])
    if latencies:
        print(f"latency ms: p50 {percentile(latencies, 0.50) * 1000:.1f}, p99 {percentile(latencies, 0.99) * 1000:.1f}, "
              f"max {max(latencies) * 1000:.1f}, mean {statistics.fmean(latencies) * 1000:.1f}")
    print(f"while publishing and delivering ({events_seconds:.1f} s): server CPU {server_cpu:.1f} s "
          f"({server_cpu / max(1, delivered) * 1e6:.0f} µs per delivered event), this client's CPU {client_cpu:.1f} s")
    print(f"server RSS MiB: idle {idle_rss:.0f}, with subscribers {subscribed_rss:.0f}, after the events {loaded_rss:.0f}, "
          f"peak {peak_rss:.0f} (≈ {(subscribed_rss - idle_rss) * 1024 / subscribers:.0f} KiB per subscriber)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two publishes")
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, args.posts, args.interval))


if __name__ == "__main__":
    main()
