"""Subscription fan-out: many WebSocket subscribers to ``orgEvents``, delivery latency and RSS.

    python bench/fanout.py [--subscribers 1000] [--posts 100] [--interval 0.25] [--processes 1]

Starts the real server (``socialgate serve --demo``, SQLite, in-process bus) in a subprocess,
or with ``--processes N`` (N > 1) N servers on one SQLite database and the Redis Streams bus
(Debian's ``redis-server``, started here on a free loopback port; only the first runs the
scheduler), and opens the subscribers spread round-robin over them. It
opens N graphql-transport-ws connections from this process (``websockets``' sans-I/O protocol), each
subscribed to ``orgEvents(kinds: ["job."])``, then publishes posts through the API one every
``--interval`` seconds. Every post makes three job events (queued, running, succeeded), each
delivered to every subscriber.

Latency is the time from the event's ``occurredAt`` (stamped by the server when it records the
event, before its transaction commits) to the moment the message's bytes reached this process, on
the same clock. It therefore includes the commit, the bus, the server's WebSocket writes and
the kernel's delivery, and this client's wake-up for each socket; the client parses after the
run, so its parsing is not part of it. Server RSS
comes from /proc (VmRSS now, VmHWM peak).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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
import uvloop
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.demo_server import demo_key  # noqa: E402
from tests.peers.redis_peer import running_redis  # noqa: E402
from tests.servers import RunningServer, serve  # noqa: E402

SUBSCRIBE = {"query": 'subscription { orgEvents(kinds: ["job."]) { kind jobId seq occurredAt } }'}
SLOWEST_SHOWN = 5
EVENTS_PER_POST = 3  # job.queued, job.running, job.succeeded
CONNECT_CONCURRENCY = 50
DELIVERY_TIMEOUT = 120.0  # seconds; a bound, never an assertion


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Subscriber(asyncio.Protocol):
    """One graphql-transport-ws connection subscribed to orgEvents, stamping each message on arrival.

    Built on the ``websockets`` library's sans-I/O protocol rather than its asyncio client: the
    arrival time is taken in ``data_received``, before any parsing, and messages are parsed after
    the run. One client process reads all N sockets, so a client that parsed as it went (about
    50 µs per message with the asyncio client) would add its own queue to what it measures.

    Once subscribed, incoming frames are cut by ``_take_frames`` rather than by websockets'
    reader (a generator per frame, ~10 µs a message here): the client shares the machine's cores
    with the servers, so its CPU per message is latency it adds to what it measures. Every frame is
    still taken whole and checked (final, unmasked, a known opcode); pings are answered, and a
    close is an error.
    """

    def __init__(self, url: str, key: str) -> None:
        self.uri, self.key = parse_uri(url), key
        self.protocol = ClientProtocol(self.uri, subprotocols=[Subprotocol("graphql-transport-ws")])
        self.transport: asyncio.Transport | None = None
        self.arrivals: list[tuple[float, bytes]] = []  # (time.time() on arrival, frame text)
        self.latencies: list[float] = []
        self.by_event: dict[tuple[str, int], float] = {}  # (job id, seq) -> latency
        self.error: str | None = None
        self.stopping = False
        self._waiting_for: tuple[bytes, asyncio.Future[None]] | None = None
        self._frames: bytearray | None = None  # set once subscribed: from then on frames are cut here
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self.uri.host, self.uri.port)
        await asyncio.wait_for(self._handshake, 30)
        await self._exchange({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}, b"connection_ack")
        self._send({"id": "1", "type": "subscribe", "payload": SUBSCRIBE})
        # The server reads messages in order: its pong means the subscription has started.
        await self._exchange({"type": "ping"}, b"pong")
        self.arrivals.clear()
        # websockets' reader holds nothing between two frames: what arrives next starts a frame.
        assert not self.protocol.reader.buffer, "a frame was arriving while the subscription started"
        self._frames = bytearray()

    def _send(self, message: dict) -> None:
        assert self.transport is not None
        self.protocol.send_text(json.dumps(message).encode())
        self.transport.write(b"".join(self.protocol.data_to_send()))

    async def _exchange(self, message: dict, expected_type: bytes) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiting_for = (b'"type":"%s"' % expected_type, waiter)
        self._send(message)
        await asyncio.wait_for(waiter, 30)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not an asyncio.Transport
        self.protocol.send_request(self.protocol.connect())
        transport.write(b"".join(self.protocol.data_to_send()))

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        if self._frames is not None:
            # Most reads are one whole small text frame: kept as it came, without a copy into the buffer.
            if not self._frames and len(data) > 2 and data[0] == 0x81 and data[1] < 126 and len(data) == data[1] + 2:
                payload = data[2:]
                self.arrivals.append((arrived, payload))
                if b'"ping"' in payload:
                    self._send({"type": "pong"})
            else:
                self._take_frames(arrived, data)
            return
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is None:
                    self._handshake.set_result(None)
                else:
                    self._handshake.set_exception(self.protocol.handshake_exc)
            elif event.opcode is Opcode.TEXT:
                text = bytes(event.data)
                self.arrivals.append((arrived, text))
                if self._waiting_for and self._waiting_for[0] in text.replace(b" ", b""):
                    self._waiting_for[1].set_result(None)
                    self._waiting_for = None
                elif b'"ping"' in text:
                    self._send({"type": "pong"})
        outgoing = self.protocol.data_to_send()
        if outgoing and self.transport is not None:
            self.transport.write(b"".join(outgoing))

    def _take_frames(self, arrived: float, data: bytes) -> None:
        """Cut the server's frames (RFC 6455 §5.2: unmasked, never fragmented here) out of what arrived."""
        buffer = self._frames
        assert buffer is not None
        buffer += data
        size, start = len(buffer), 0
        while size - start >= 2:
            head, second = buffer[start], buffer[start + 1]
            length, offset = second & 0x7F, start + 2
            if length == 126:
                length, offset = int.from_bytes(buffer[offset:offset + 2]), offset + 2
            elif length == 127:
                length, offset = int.from_bytes(buffer[offset:offset + 8]), offset + 8
            end = offset + length
            if end > size or offset > size:
                break
            payload, start = bytes(buffer[offset:end]), end
            opcode = head & 0x0F
            if head & 0xF0 != 0x80 or second & 0x80:  # not final, reserved bits, or masked
                self._fail(f"unexpected frame header {head:#x} {second:#x}")
            elif opcode == 0x1:
                self.arrivals.append((arrived, payload))
                if b'"ping"' in payload:
                    self._send({"type": "pong"})
            elif opcode == 0x9:  # a WebSocket ping (uvicorn's keepalive): answer it
                self.protocol.send_pong(payload)
                self._flush()
            elif opcode != 0xA:  # a close, or anything this subscription never receives
                self._fail(f"frame with opcode {opcode:#x}: {payload[:200]!r}")
        del buffer[:start]

    def _flush(self) -> None:
        outgoing = self.protocol.data_to_send()
        if outgoing and self.transport is not None:
            self.transport.write(b"".join(outgoing))

    def _fail(self, reason: str) -> None:
        if self.error is None and not self.stopping:
            self.error = reason

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stopping and self.error is None:
            self.error = f"closed by the server: {exc}"

    def delivered(self) -> int:
        return len(self.arrivals)

    def parse(self) -> None:
        """Latencies of the event messages received, and the first error or completion, if any."""
        for arrived, text in self.arrivals:
            message = json.loads(text)
            if message["type"] == "next":
                event = message["payload"]["data"]["orgEvents"]
                latency = arrived - datetime.fromisoformat(event["occurredAt"]).timestamp()
                self.latencies.append(latency)
                self.by_event[(event["jobId"], event["seq"])] = latency
            elif message["type"] in ("error", "complete") and self.error is None:
                self.error = json.dumps(message)[:300]

    async def stop(self) -> None:
        self.stopping = True
        if self.transport is not None:
            self.transport.close()


def publish_post(server: RunningServer, http: httpx.Client, key: str, account_id: str, i: int) -> str:
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
    job_id = published["data"]["publishPost"]["job"]["id"]
    assert job_id, published
    return job_id


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_servers(stack: contextlib.ExitStack, workdir: Path, processes: int) -> list[RunningServer]:
    """One demo server, or ``processes`` of them sharing a SQLite database and a Redis bus."""
    if processes == 1:
        return [stack.enter_context(serve(workdir, "--demo"))]
    env = {
        "SOCIALGATE_EVENTS_URL": stack.enter_context(running_redis()),
        "SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/shared.db",
        "SOCIALGATE_DATA_DIR": str(workdir),
    }
    servers = []
    for number in range(processes):
        (workdir / f"p{number}").mkdir()
        extra = () if number else ("--demo",)
        scheduler = {} if number == 0 else {"SOCIALGATE_RUN_SCHEDULER": "false"}
        servers.append(stack.enter_context(serve(workdir / f"p{number}", *extra, env={**env, **scheduler})))
    return servers


async def run(subscribers: int, posts: int, interval: float, processes: int = 1) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, subscribers * 2 + 256)), hard))
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        servers = start_servers(stack, Path(workdir), processes)
        server = servers[0]
        key = demo_key(server.stdout())
        pids = [s.process.pid for s in servers]
        with httpx.Client(timeout=30) as http:
            accounts = http.post(server.base_url + "/graphql", headers={"Authorization": f"Bearer {key}"},
                                 json={"query": "{ accounts(first: 1) { nodes { id } } }"}).json()
        account_id = accounts["data"]["accounts"]["nodes"][0]["id"]
        idle_rss = sum(rss_mib(pid)[0] for pid in pids)

        urls = [s.base_url.replace("http://", "ws://", 1) + "/graphql" for s in servers]
        clients = [Subscriber(urls[i % len(urls)], key) for i in range(subscribers)]
        slots = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def start(client: Subscriber) -> None:
            async with slots:
                await client.start()

        started = time.perf_counter()
        await asyncio.gather(*(start(c) for c in clients))
        connect_seconds = time.perf_counter() - started
        subscribed_rss = sum(rss_mib(pid)[0] for pid in pids)

        loop = asyncio.get_running_loop()
        # This process keeps every message it received until the end (tens of thousands of
        # objects): its full garbage collections grow to hundreds of milliseconds, during which
        # no arrival is stamped. Nothing it allocates from here on is garbage to collect.
        gc.freeze()
        gc.disable()
        cpu_before, client_cpu, events_started = list(map(cpu_seconds, pids)), time.process_time(), time.perf_counter()
        job_ids: list[str] = []
        with httpx.Client(timeout=30) as http:
            for i in range(posts):
                job_ids.append(await loop.run_in_executor(None, publish_post, server, http, key, account_id, i))
                await asyncio.sleep(interval)
        expected = posts * EVENTS_PER_POST
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline and any(c.delivered() < expected and c.error is None for c in clients):
            await asyncio.sleep(0.1)
        loaded_rss, peak_rss = (sum(values) for values in zip(*map(rss_mib, pids)))
        cpu_by_process = [after - before for before, after in zip(cpu_before, map(cpu_seconds, pids))]
        server_cpu, client_cpu = sum(cpu_by_process), time.process_time() - client_cpu
        events_seconds = time.perf_counter() - events_started
        await asyncio.gather(*(c.stop() for c in clients))
        gc.enable()
        for client in clients:
            client.parse()

    latencies = [value for c in clients for value in c.latencies]
    errors = [c.error for c in clients if c.error]
    delivered = len(latencies)
    over = f" over {processes} API processes (Redis Streams bus)" if processes > 1 else ""
    print(f"\n## {subscribers} subscribers{over}, {posts} posts ({expected} job events each), one post every {interval:g} s\n")
    print(f"connected and subscribed in {connect_seconds:.1f} s")
    print(f"delivered {delivered} of {subscribers * expected} events; subscribers with an error: {len(errors)}")
    if errors:
        print("first error:", errors[0])
    if latencies:
        print(f"latency ms: p50 {percentile(latencies, 0.50) * 1000:.1f}, p99 {percentile(latencies, 0.99) * 1000:.1f}, "
              f"p99.9 {percentile(latencies, 0.999) * 1000:.1f}, "
              f"max {max(latencies) * 1000:.1f}, mean {statistics.fmean(latencies) * 1000:.1f}")
        per_event: dict[tuple[str, int], list[float]] = {}
        for client in clients:
            for event, latency in client.by_event.items():
                per_event.setdefault(event, []).append(latency)
        slowest = sorted(per_event.items(), key=lambda item: max(item[1]), reverse=True)[:SLOWEST_SHOWN]
        print("slowest events (first → last subscriber reached):", ", ".join(
            f"post {job_ids.index(job) + 1} event {seq}: {min(values) * 1000:.0f} → {max(values) * 1000:.0f} ms"
            for (job, seq), values in slowest))
    print(f"while publishing and delivering ({events_seconds:.1f} s): server CPU {server_cpu:.1f} s "
          f"({server_cpu / max(1, delivered) * 1e6:.0f} µs per delivered event), this client's CPU {client_cpu:.1f} s "
          f"({client_cpu / max(1, delivered) * 1e6:.1f} µs per delivered event)")
    if processes > 1:
        # Subscribers were spread round-robin: process i wrote to clients i, i + N, i + 2N...
        own = [sum(len(c.latencies) for c in clients[number::processes]) for number in range(processes)]
        print("server CPU per delivered event by process: " + ", ".join(
            f"{number}{' (API, scheduler)' if number == 0 else ''} {cpu / max(1, own[number]) * 1e6:.1f} µs"
            for number, cpu in enumerate(cpu_by_process)))
    print(f"server RSS MiB (all processes): idle {idle_rss:.0f}, with subscribers {subscribed_rss:.0f}, after the events {loaded_rss:.0f}, "
          f"peak {peak_rss:.0f} (≈ {(subscribed_rss - idle_rss) * 1024 / subscribers:.0f} KiB per subscriber)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two publishes")
    parser.add_argument("--processes", type=int, default=1, help="API processes; above 1 they share a Redis bus")
    args = parser.parse_args()
    uvloop.run(run(args.subscribers, args.posts, args.interval, args.processes))


if __name__ == "__main__":
    main()
