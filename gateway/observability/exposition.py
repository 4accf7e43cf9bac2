"""``/metrics``: the scrape, its access rule, and the samples taken from the database when scraped.

Why sampled at scrape: the queue's depth and the age of its oldest due target are facts of the
shared database, not of one process; reading them when Prometheus asks costs one small query per
scrape, instead of a loop in every process.

The operator chooses how the endpoint is reached: with ``SOCIALGATE_METRICS_TOKEN`` set, the API's
own port answers ``/metrics`` to ``Authorization: Bearer <token>`` only; with
``SOCIALGATE_METRICS_PORT`` set, every process (``serve`` and ``worker``) also serves it on that
port of ``SOCIALGATE_HOST``, meant to stay inside the private network. With neither, ``/metrics``
is not served: the figures say how busy each organization's platforms are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import event, func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.core import clock
from gateway.observability.instruments import DB_CONNECTIONS_IN_USE, QUEUE_DEPTH, QUEUE_OLDEST_DUE_AGE
from gateway.storage import Database, Target

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
WAITING_STATUSES = ("scheduled", "retry_pending")  # the engine's due statuses: a target waiting to publish


def watch_pools(database: Database) -> None:
    """Count connections checked out of the database's pools (one engine off SQLite, two on it)."""
    engines = {"read": database.engine} if database.engine is database.write_engine else {
        "read": database.engine, "write": database.write_engine}
    for label, engine in engines.items():
        _count_checkouts(engine.sync_engine, DB_CONNECTIONS_IN_USE.labels(label))


def _count_checkouts(engine: Any, gauge: Any) -> None:
    """One engine's listeners, each bound to its own gauge (a loop's closures would share the last)."""
    event.listen(engine, "checkout", lambda *_: gauge.inc())
    event.listen(engine, "checkin", lambda *_: gauge.dec())


async def sample_queue(database: Database, now: datetime | None = None) -> None:
    """Set the queue gauges from the targets table: waiting targets by status and due-ness, oldest due age."""
    now = now or clock.utcnow()
    due = Target.next_attempt_at <= now
    async with database.read() as session:
        counts = (await session.execute(
            select(Target.status, due.label("due"), func.count()).where(Target.status.in_(WAITING_STATUSES))
            .group_by(Target.status, due)
        )).all()
        oldest = (await session.execute(
            select(func.min(Target.next_attempt_at)).where(Target.status.in_(WAITING_STATUSES), due)
        )).scalar()
    seen = {(status, bool(is_due)): count for status, is_due, count in counts}
    for status in WAITING_STATUSES:
        for is_due in (True, False):
            QUEUE_DEPTH.labels(status, "true" if is_due else "false").set(seen.get((status, is_due), 0))
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    QUEUE_OLDEST_DUE_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)


def exposition() -> bytes:
    """Every series in Prometheus' text format: this process's, or, in multiprocess mode, every process's."""
    if os.environ.get(MULTIPROC_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def forget_process() -> None:
    """In multiprocess mode, drop this process's live gauges (open subscriptions, connections) as it stops."""
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())


def token_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_endpoint(database: Database, token: str | None) -> Any:
    """The /metrics handler: with a token, a request without it is refused with 401 (and says nothing more)."""

    async def scrape(request: Request) -> Response:
        if token is not None and not token_matches(request, token):
            return PlainTextResponse("metrics need SOCIALGATE_METRICS_TOKEN as a bearer token\n", status_code=401,
                                     headers={"www-authenticate": "Bearer"})
        await sample_queue(database)
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return scrape


class _NoSignals(uvicorn.Server):
    """uvicorn's server without its signal handlers: the process's own command owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsServer:
    """``/metrics`` alone on a port of its own, inside the process that runs it."""

    def __init__(self, database: Database, host: str, port: int, token: str | None) -> None:
        app = Starlette(routes=[Route("/metrics", metrics_endpoint(database, token), methods=["GET"])])
        self.server = _NoSignals(uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning", access_log=False))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="metrics server")
        while not self.server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():  # the port could not be bound: say so at start, not never
            self._task.result()
            raise RuntimeError("the metrics server stopped at start")

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
