"""The request id: taken from ``X-Request-Id`` when sane, made up otherwise, echoed back.

It lives in a context variable so every log line and every GraphQL error of the request carries
it without being handed around.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

current_request_id: ContextVar[str | None] = ContextVar("socialgate_request_id", default=None)


def new_request_id() -> str:
    # Unique, not secret (it is echoed to the caller and logged): 96 bits of the process's
    # Mersenne Twister, seeded from the OS and reseeded in a forked child, where a call to the
    # OS's randomness per request cost 3% of a short query.
    return f"req_{random.getrandbits(96):024x}"


def accept_request_id(value: str | None) -> str:
    """A caller's id when it is safe to log and echo, else a fresh one."""
    if value and _ACCEPTABLE.match(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Pure ASGI middleware, so streaming responses and WebSockets pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        # A WebSocket has no response headers to tag, and each of its frames would pay for the wrapper.
        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            current_request_id.reset(token)
