"""The ASGI application: routes, middleware and the lifespan that opens and closes the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from gateway.ads.sync import SyncLoop
from gateway.audit.health import scheduler_alive
from gateway.campaigns.recurrence import advance_recurrences
from gateway.core import RequestIdMiddleware, internal_error
from gateway.engine.scheduler import Chore, Scheduler
from gateway.metrics.collector import MetricsCollector
from gateway.observability import MetricsServer, metrics_endpoint
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from gateway.storage import WorkerWatch
from gateway.web import BodyLimitMiddleware, dashboard, multipart_limit, oauth_callback, preview_page, preview_stylesheet, serve_media
from gateway.webhooks.dispatcher import WebhookDispatcher
from schema import build_schema
from schema.http import GraphQLView

log = logging.getLogger("socialgate")


RECURRENCE_SWEEP_INTERVAL = 60.0  # seconds between two looks for recurring posts whose latest occurrence ended


def add_wing_chores(runtime: Runtime) -> None:
    """The scheduler chores of wings the engine may not import (they build on its command door):
    every scheduler of this process runs them beside its own."""
    runtime.chores.append(Chore("recurring posts", RECURRENCE_SWEEP_INTERVAL, advance_recurrences))


def start_beside_scheduler(runtime: Runtime) -> list[Any]:
    """Start the loops every process that runs a scheduler runs beside it (`serve` in-process and
    `socialgate worker` alike, so moving publishing to workers moves them too): the metrics
    collector, the webhook dispatcher and the periodic ads sync. Returns them, to stop."""
    runtime.metrics = MetricsCollector(runtime)
    runtime.webhook_dispatcher = WebhookDispatcher(runtime)
    loops: list[Any] = [runtime.metrics, runtime.webhook_dispatcher]
    if runtime.settings.ads_sync_seconds:
        loops.append(SyncLoop(runtime, runtime.settings.ads_sync_seconds))
    for loop in loops:
        loop.start()
    return loops


async def stop_all(loops: list[Any]) -> None:
    for loop in reversed(loops):
        await loop.stop()


async def start_metrics_server(runtime: Runtime) -> MetricsServer | None:
    """/metrics on a port of its own when SOCIALGATE_METRICS_PORT is set (gateway.observability)."""
    settings = runtime.settings
    if settings.metrics_port is None:
        return None
    server = MetricsServer(runtime.database, settings.host, settings.metrics_port, settings.metrics_token)
    await server.start()
    return server


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    runtime = Runtime(settings)
    add_wing_chores(runtime)
    graphql = GraphQLView(build_schema(), runtime)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        watch: WorkerWatch | None = None
        loops: list[Any] = []
        metrics_server = await start_metrics_server(runtime)
        if settings.run_scheduler:
            runtime.scheduler = Scheduler(runtime)
            await runtime.heartbeat.beat(runtime.scheduler.worker_id)  # ready from the start: /readyz reads heartbeats
            runtime.scheduler.start()
            loops = start_beside_scheduler(runtime)
        else:  # `socialgate worker` processes publish: warn when none does
            watch = WorkerWatch(runtime.database, poll_seconds=settings.scheduler_poll_seconds)
            watch.start()
        try:
            yield
        finally:
            if watch is not None:
                await watch.stop()
            await stop_all(loops)
            if metrics_server is not None:
                await metrics_server.stop()
            if runtime.scheduler is not None:
                await runtime.scheduler.stop()
            await runtime.stop()

    async def healthz(_request: Request) -> JSONResponse:
        """Liveness: the process answers. Says nothing about its dependencies."""
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        """Readiness: the database answers and some scheduler (here or a `socialgate worker`) beat
        its heartbeat within the last three heartbeat intervals: posts accepted here will go out."""
        try:
            await runtime.database.ping()
        except Exception:  # any failure to reach the database means "not ready", whatever its kind
            log.warning("readiness check failed: database unreachable", exc_info=True)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        if not await scheduler_alive(runtime.database, settings.scheduler_poll_seconds):
            log.warning("readiness check failed: no scheduler has beaten its heartbeat recently")
            return JSONResponse({"status": "unavailable", "database": "ok", "scheduler": "no recent heartbeat"}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok", "scheduler": "ok"})

    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, json_limit=settings.max_request_bytes, upload_limit=multipart_limit()),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-request-id", "x-socialgate-org"],
                expose_headers=["x-request-id"],
            )
        )
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *([Route("/metrics", metrics_endpoint(runtime.database, settings.metrics_token), methods=["GET"])]
              if settings.metrics_token else []),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/media/{media_id}/{token}/{filename}", serve_media, methods=["GET", "HEAD"]),
            Route("/oauth/{provider}/callback", oauth_callback, methods=["GET"]),
            Route("/dashboard{rest:path}", dashboard, methods=["GET"]),
            Route("/preview/assets/preview.css", preview_stylesheet, methods=["GET"]),
            Route("/preview/{token}", preview_page, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=middleware,
        exception_handlers={Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.fanout = graphql.fanout
    return app
