"""A scripted HTTP server on 127.0.0.1: the far side of outbound fetches (media URLs) in tests.

Each path answers with a scripted status, headers and body; every request is recorded, so a test
can prove a refused URL was never requested at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Seconds to stall after the first 100 bytes of the body: a source that trickles.
    stall: float = 0.0


@dataclass
class ScriptedServer:
    base_url: str
    port: int
    routes: dict[str, Reply] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    """Serve until the block ends; unknown paths get 404."""
    server_state: ScriptedServer

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the body ends when the connection closes, so a reply may omit Content-Length.
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            server_state.requested.append(self.path)
            reply = server_state.routes.get(self.path, Reply(404, {"Content-Type": "text/plain"}, b"missing"))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(reply.body[:100])
                if reply.stall:
                    self.wfile.flush()
                    time.sleep(reply.stall)
                self.wfile.write(reply.body[100:])
            except (BrokenPipeError, ConnectionResetError):  # the client gave up, as tests expect
                return

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    server_state = ScriptedServer(base_url=f"http://127.0.0.1:{port}", port=port)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class LoopbackNetwork(httpcore.AsyncNetworkBackend):
    """A network where every address leads to 127.0.0.1, so a 'public' host can be played locally.

    It stands below the SSRF guard: the guard checks the address it was given, then this backend
    records that address and connects to the local scripted server instead.
    """

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connected_to: list[str] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.connected_to.append(host)
        return await self.inner.connect_tcp("127.0.0.1", port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def fixed_resolver(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver answering from a table, so tests never query real DNS."""

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    return resolve
