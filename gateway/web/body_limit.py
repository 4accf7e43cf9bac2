"""Request-body limits on /graphql, applied while the body arrives rather than after.

Why: strawberry reads a JSON request whole into memory before any limit looks at it, and
Starlette spools a multipart upload whole to disk before the resolver's per-kind cap applies. A
JSON body may be ``max_request_bytes`` (settings; a GraphQL document and its variables); a
multipart upload the largest media file plus ``MULTIPART_OVERHEAD`` for its other parts. A body
over its limit gets a 413 with a GraphQL-shaped error (code PAYLOAD_TOO_LARGE): at once when
``Content-Length`` says so, otherwise as soon as the bytes received pass the limit, so a chunked
body without a length cannot grow past it either.

A WebSocket on the same path is held to the JSON limit frame by frame: a ``subscribe`` message
is a GraphQL document and its variables, like a JSON body. ``socialgate serve`` passes the limit
to uvicorn as ``ws_max_size`` too, so the server refuses a large frame before assembling it; this
check is the app's own, for any other ASGI server and for in-process clients. A frame over the
limit closes the socket with 1009 (message too big), the code RFC 6455 gives that case.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.content import DEFAULT_LIMITS, MiB
from gateway.core import error_response, response_media_type

PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
MESSAGE_TOO_BIG = 1009  # RFC 6455 close code
MULTIPART_OVERHEAD = 1 * MiB  # the operations and map parts of a GraphQL multipart request


class _BodyTooLarge(Exception):
    pass


def multipart_limit() -> int:
    return max(DEFAULT_LIMITS.max_bytes.values()) + MULTIPART_OVERHEAD


class BodyLimitMiddleware:
    """Pure ASGI, so the count happens message by message as the body streams in."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int, paths: tuple[str, ...] = ("/graphql",)) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] in self.paths:
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.upload_limit if headers.get("content-type", "").startswith("multipart/") else self.json_limit
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if response_started:  # cannot happen with a handler that reads before it answers; be loud if it does
                raise
            await self._refuse(limit, scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and _frame_size(message) > self.json_limit:
                closed = True
                reason = f"A message is larger than {self.json_limit} bytes."
                await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": reason})
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}  # the app winds down as if the client left
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # after our close frame the app's late sends have nowhere to go
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than {limit} bytes."
        media_type = response_media_type(Headers(scope=scope).get("accept"))
        response = error_response(413, PAYLOAD_TOO_LARGE, message, headers={"Connection": "close"}, media_type=media_type, limit=limit)
        await response(scope, receive, send)


def _frame_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text") or ""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
