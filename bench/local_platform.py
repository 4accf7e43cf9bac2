"""A tiny local HTTP "platform" for the benchmarks: ``POST /posts`` answers a created post.

It runs in its own process (``python bench/local_platform.py PORT LATENCY_MS``, or
``running_platform()``) so that its work is not counted in the process being measured, and
both sides of a comparison call the very same endpoint. ``LATENCY_MS`` makes every answer
wait, as a real platform's API does (tens to hundreds of milliseconds).
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402


def make_app(latency_ms: float):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    ids = itertools.count(1)

    async def create_post(request: Request) -> JSONResponse:
        body = await request.json()
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        post_id = str(next(ids))
        return JSONResponse(
            {"id": post_id, "url": f"http://127.0.0.1/posts/{post_id}", "length": len(body.get("text", ""))}, status_code=201
        )

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/posts", create_post, methods=["POST"]), Route("/health", health)])


@contextmanager
def running_platform(latency_ms: float = 0.0, timeout: float = 20.0) -> Iterator[str]:
    """Start the platform in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, str(port), str(latency_ms)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the platform exited with {process.returncode}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the platform did not start in time")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(make_app(float(sys.argv[2])), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
