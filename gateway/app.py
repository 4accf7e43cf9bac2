"""The ASGI application: routes, middleware and the lifespan that opens and closes the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from gateway.core.http_errors import internal_error
from gateway.core.request_context import RequestIdMiddleware
from gateway.ads.sync import SyncLoop
from gateway.engine.scheduler import Scheduler
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from gateway.storage.worker_heartbeats import WorkerWatch
from gateway.web.body_limit import BodyLimitMiddleware, multipart_limit
from gateway.web.dashboard import dashboard
from gateway.web.media_serving import serve_media
from gateway.web.oauth_callback import oauth_callback
from schema import build_schema
from schema.http import GraphQLView

log = logging.getLogger("socialgate")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    runtime = Runtime(settings)
    graphql = GraphQLView(build_schema(), runtime)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        watch: WorkerWatch | None = None
        ads_sync = SyncLoop(runtime, settings.ads_sync_seconds) if settings.run_scheduler and settings.ads_sync_seconds else None
        if ads_sync is not None:
            ads_sync.start()
        if settings.run_scheduler:
            runtime.scheduler = Scheduler(runtime)
            runtime.scheduler.start()
        else:  # `socialgate worker` processes publish: warn when none does
            watch = WorkerWatch(runtime.database, poll_seconds=settings.scheduler_poll_seconds)
            watch.start()
        try:
            yield
        finally:
            if watch is not None:
                await watch.stop()
            if ads_sync is not None:
                await ads_sync.stop()
            if runtime.scheduler is not None:
                await runtime.scheduler.stop()
            await runtime.stop()

    async def healthz(_request: Request) -> JSONResponse:
        """Liveness: the process answers. Says nothing about its dependencies."""
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        """Readiness: the database answers, so a load balancer may send traffic here."""
        try:
            await runtime.database.ping()
        except Exception:  # any failure to reach the database means "not ready", whatever its kind
            log.warning("readiness check failed: database unreachable", exc_info=True)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok"})

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
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/media/{media_id}/{token}/{filename}", serve_media, methods=["GET", "HEAD"]),
            Route("/oauth/{provider}/callback", oauth_callback, methods=["GET"]),
            Route("/dashboard{rest:path}", dashboard, methods=["GET"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=middleware,
        exception_handlers={Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.fanout = graphql.fanout
    return app
