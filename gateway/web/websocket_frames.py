"""uvicorn's WebSocket protocol, plus a way to write one ready-made frame straight to the socket.

Why: one subscription event goes to thousands of sockets with the same bytes. Through ASGI each
of those writes is an awaited ``websocket.send`` message that passes starlette's ``WebSocket``,
every middleware's ``send`` wrapper and uvicorn's, then websockets builds and serializes a frame
for it — about half of a fan-out process's CPU besides the socket write itself, repeated for every
subscriber. The frame is the same for all of them, so ``schema.fanout`` encodes it once
(``encode_text_frame``) and hands the bytes to each connection's ``FRAME_WRITER`` extension,
which writes them to the transport when the connection is in the state where uvicorn's own send
would have written them (handshake done, open, no close sent or received, the transport
accepting writes, no extension such as compression that would change the bytes). Otherwise it
returns False and the caller takes the ordinary ``websocket.send`` path, which waits for the
transport to drain or reports the disconnect as it always did.

``socialgate serve`` runs uvicorn with ``FrameWritingProtocol``; under any other server the
extension is absent and every frame goes through ASGI as before.
"""

from __future__ import annotations

from collections.abc import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

# The key of the ASGI scope's ``extensions`` entry: a callable taking one serialized frame.
FRAME_WRITER = "socialgate.websocket.write_frame"

FrameWriter = Callable[[bytes], bool]


def encode_text_frame(text: str) -> bytes:
    """One unfragmented, unmasked (server to client) text frame carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def frame_writer(scope: dict) -> FrameWriter | None:
    """The connection's frame writer, when the server offers one."""
    extensions = scope.get("extensions") or {}
    return extensions.get(FRAME_WRITER)


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol whose connections offer ``FRAME_WRITER``."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # a refused handshake has no scope to extend
            self.scope["extensions"][FRAME_WRITER] = self.write_frame

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame`` now if uvicorn's send would write it without waiting; else False."""
        if (
            self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.handshake_complete
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or self.conn.expect_continuation_frame
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True


__all__ = ["FRAME_WRITER", "FrameWriter", "FrameWritingProtocol", "encode_text_frame", "frame_writer"]
