"""A real webhook receiver: a Starlette app served by uvicorn on a loopback port, in the test's loop.

Each path answers from a script (statuses in order, then 200), or hangs until released; every
request is recorded with its raw body and headers so a test verifies it exactly as a receiver
would, with ``standardwebhooks.Webhook.verify``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived


@dataclass
class Receiver:
    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def script(self, path: str, *replies: int | tuple[int, dict[str, str], bytes]) -> None:
        self.scripts[path] = [r if isinstance(r, tuple) else (r, {}, b"") for r in replies]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.received.append(Received(path, dict(request.headers), await request.body(), time.time()))
        async with self.arrived:
            self.arrived.notify_all()
        if path in self.hanging:
            await self.release.wait()
        queued = self.scripts.get(path)
        status, headers, body = queued.pop(0) if queued else (200, {}, b"ok")
        return Response(body, status_code=status, headers=headers)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{rest:path}", receiver._handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
    ))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        receiver.base_url = f"http://127.0.0.1:{port}"
        yield receiver
    finally:
        receiver.release.set()
        server.should_exit = True
        await task
