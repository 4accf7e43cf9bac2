"""Webhook delivery latency with one endpoint hanging: 1,000 events to 10 endpoints.

Target (issue 17): p99 ≤ 1 s from event to delivery, on SQLite, for the 9 endpoints that answer,
while the 10th never answers (every call to it runs into the 15 s timeout).

The receiver runs in its own process (``python bench/webhooks.py --receiver PORT``) so its work is
not counted in the gateway's; it records, per delivery, when it arrived and the event's
``timestamp`` from the body. The gateway side is the real thing: a ``Runtime`` on a fresh SQLite
file, the ``WebhookDispatcher`` loop as ``serve`` starts it (woken by each committed event), and
events recorded with ``record_org_event`` in their own transactions at ``--rate`` events a second,
each fanned out by the outbox to the 10 endpoints in that transaction. Latency = arrival at the
receiver − the event's commit-time timestamp, same machine, same clock.

    python bench/webhooks.py                  # --events 1000 --endpoints 10 --rate 100 [--no-hang]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402

HANG = "hang"


def receiver_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    arrivals: list[tuple[str, str, str, float]] = []  # (path, webhook-id, event timestamp, arrival)
    hang_forever = asyncio.Event()

    async def hook(request: Request) -> PlainTextResponse:
        arrived = time.time()
        body = json.loads(await request.body())
        name = request.path_params["name"]
        arrivals.append((name, request.headers["webhook-id"], body["timestamp"], arrived))
        if name == HANG:
            await hang_forever.wait()
        return PlainTextResponse("ok")

    async def stats(_request: Request) -> JSONResponse:
        return JSONResponse(arrivals)

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/hook/{name}", hook, methods=["POST"]), Route("/stats", stats), Route("/health", health),
    ])


def run_receiver(port: int) -> None:
    import uvicorn

    uvicorn.run(receiver_app(), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)


def start_receiver() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the receiver did not start")
        time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def run(events: int, endpoint_count: int, rate: float, drain_timeout: float, hanging: bool = True) -> dict:
    from gateway.auth.keys import Principal
    from gateway.events import record_org_event
    from gateway.runtime import Runtime
    from gateway.settings import load_settings
    from gateway.webhooks import endpoints
    from gateway.webhooks.dispatcher import WebhookDispatcher
    from tests.conftest import make_org_with_key

    process, base = start_receiver()
    workdir = Path(tempfile.mkdtemp(prefix="socialgate-bench-webhooks-"))
    runtime = Runtime(load_settings(
        database_url=f"sqlite+aiosqlite:///{workdir}/bench.db", data_dir=str(workdir), allow_private_urls=True,
    ))
    await runtime.start()
    try:
        made = await make_org_with_key(runtime)
        owner = Principal(made.api_key_id, made.organization_id, ("*",))
        names = [str(n) for n in range(endpoint_count - 1)] + ([HANG] if hanging else [str(endpoint_count - 1)])
        async with runtime.database.write() as session:
            for name in names:
                await endpoints.create_endpoint(
                    session, owner, runtime.secret_key, url=f"{base}/hook/{name}", event_types=["*"], allow_private=True,
                )
        dispatcher = WebhookDispatcher(runtime)
        runtime.webhook_dispatcher = dispatcher
        dispatcher.start()
        started = time.monotonic()
        cpu_started = time.process_time()
        for n in range(events):
            async with runtime.database.write() as session:
                event = await record_org_event(session, made.organization_id, "account.connected", {"accountId": f"acct_{n}"})
            await runtime.publish(event)
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
        emitted = time.monotonic() - started
        healthy_expected = events * (endpoint_count - 1 if hanging else endpoint_count)
        async with httpx.AsyncClient(base_url=base) as client:
            deadline = time.monotonic() + drain_timeout
            while True:
                arrivals = (await client.get("/stats")).json()
                healthy = [a for a in arrivals if a[0] != HANG]
                if len({a[1] for a in healthy}) >= healthy_expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        runtime.webhook_dispatcher = None
        await dispatcher.stop()
    finally:
        await runtime.stop()
        process.terminate()
        process.wait(timeout=10)
    first_arrival: dict[str, float] = {}
    stamps: dict[str, str] = {}
    for _name, delivery_id, stamp, arrived in healthy:
        first_arrival[delivery_id] = min(arrived, first_arrival.get(delivery_id, arrived))
        stamps[delivery_id] = stamp
    latencies = [first_arrival[d] - datetime.fromisoformat(stamps[d]).timestamp() for d in first_arrival]
    return {
        "events": events, "endpoints": endpoint_count, "hanging": hanging, "rate_per_s": rate, "emit_seconds": round(emitted, 2),
        "healthy_deliveries": f"{len(first_arrival)}/{healthy_expected}",
        "duplicates": len(healthy) - len(first_arrival),
        "calls_to_hanging_endpoint": sum(1 for a in arrivals if a[0] == HANG),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "deliveries_per_s": round(len(first_arrival) / elapsed, 1),
        "gateway_cpu_ms_per_delivery": round(cpu * 1000 / max(1, len(first_arrival)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="events a second")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--no-hang", action="store_true", help="every endpoint answers: the baseline to compare with")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
        return
    import uvloop  # the loop `socialgate serve` runs on (uvicorn picks it when installed)

    result = uvloop.run(run(args.events, args.endpoints, args.rate, args.drain_timeout, hanging=not args.no_hang))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
