"""One stream per subscription document, its results encoded once and written to every subscriber.

Why: a thousand dashboards on ``orgEvents`` used to run the whole per-event pipeline each — their
own bus queue, resolver, graphql-core's per-event execution, strawberry's result hooks, a JSON
encoding, the ASGI middlewares — only to send the same bytes. At about 0.1 ms of CPU per
subscriber per event, the last of a thousand waited 100 ms and more, and three events of one job
arriving together waited three times that.

Here the subscribers of one organization that sent the same document, operation and variables
share a *stream*: one ordinary strawberry execution of that document (its resolver reads the bus
as any other), whose every result is encoded once and handed, as a ready frame, to each
subscriber's writer. A subscriber still goes through strawberry up to its resolver — limits,
validation, authentication, its scope check, error shaping all apply to it alone — and its
resolver then joins the stream rather than reading the bus itself (``schema.subscriptions``).
Only fields that read nothing but the event may be shared this way: the stream runs with a
context of its own, the organization's, bound to no one subscriber; each subscriber's own key is
re-checked by its own connection, which ends only its own membership.

A frame is written straight to a subscriber's socket, in the broadcast's own turn of the loop,
when the server offers a frame writer (``gateway.web.FrameWritingProtocol``, what ``socialgate
serve`` runs) and nothing of that subscriber is waiting: the WebSocket frame's bytes are built
once per event and operation id, and a delivery is one ``transport.write``. No task wakes up and
no ASGI message passes the middlewares per subscriber; those were half a fan-out process's CPU.
Otherwise the frame joins the subscriber's backlog, which its writer task sends the ordinary way.

Each subscriber's writer holds a bounded backlog. One that cannot keep up is ended with
SLOW_CONSUMER, as a bus subscriber would be: a stuck client neither delays the others nor grows
the server's memory. The protocol handlers (``schema.http``) say how a frame is enveloped and
written; a transport without a handler of ours (SSE) leaves ``current_delivery`` unset and takes
the ordinary path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from strawberry.types import ExecutionResult
from strawberry.utils.aio import aclosing

from gateway.events import DEFAULT_QUEUE_SIZE, SLOW_CONSUMER
from gateway.web import FrameWriter, encode_text_frame

log = logging.getLogger(__name__)

DISCONNECTED = "DISCONNECTED"
INTERNAL = "INTERNAL"

# (operation id, the result's JSON) -> the text frame the protocol sends for one result.
Envelope = Callable[[str, str], str]


def transport_ws_frame(operation_id: str, payload: str) -> str:
    """graphql-transport-ws: ``{"id", "type": "next", "payload"}``."""
    return '{"id":%s,"type":"next","payload":%s}' % (json.dumps(operation_id), payload)


def legacy_ws_frame(operation_id: str, payload: str) -> str:
    """The legacy graphql-ws protocol: ``{"id", "type": "data", "payload"}``."""
    return '{"id":%s,"type":"data","payload":%s}' % (json.dumps(operation_id), payload)


def encode_result(result: ExecutionResult) -> str:
    """A result as the protocols' ``payload``: data, then errors and extensions when present."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return json.dumps(payload, separators=(",", ":"))


@dataclass(frozen=True, eq=False)
class Delivery:
    """The operation a protocol handler is starting: enough to run it as a stream, and to reach its client."""

    hub: FanoutHub
    operation_id: str
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    context: Any
    root_value: Any
    envelope: Envelope
    send_text: Callable[[str], Awaitable[None]]
    # Writes a serialized frame now, or says it cannot (``gateway.web.FrameWriter``); None: ASGI only.
    write_frame: FrameWriter | None = None


class OutgoingFrame:
    """One message for the subscribers of an operation id: its text, and its WebSocket frame built once."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = encode_text_frame(self.text)
        return self._wire


# Set by the protocol handlers in each operation's own task; None where no fan-out applies.
current_delivery: ContextVar[Delivery | None] = ContextVar("socialgate_delivery", default=None)


class Member:
    """One subscriber of a stream: its frames written now when nothing waits, else a bounded backlog and a writer task."""

    def __init__(self, delivery: Delivery, backlog_limit: int) -> None:
        self.delivery = delivery
        self.backlog_limit = backlog_limit
        # Resolves with None when the stream ended and every frame was written, else with a reason.
        self.ended: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._write_frame = delivery.write_frame
        self._backlog: list[OutgoingFrame] = []
        self._sending = False  # the writer task holds frames taken from the backlog
        self._ready = asyncio.Event()
        self._finishing = False
        # Started by the first frame that must wait: a subscriber whose frames all go straight to its
        # socket never has one (a parked task per subscriber is memory and objects for the collector).
        self._writer: asyncio.Task[None] | None = None

    def push(self, frame: OutgoingFrame) -> None:
        if self.ended.done() or self._finishing:
            return
        # Written at once only behind nothing of ours: the frames before it must reach the socket first.
        if self._write_frame is not None and not self._backlog and not self._sending and self._write_frame(frame.wire):
            return
        if len(self._backlog) >= self.backlog_limit:
            log.warning("closing a subscriber that cannot keep up", extra={"operation_id": self.delivery.operation_id})
            self._end(SLOW_CONSUMER)
            return
        self._backlog.append(frame)
        self._wake_writer()

    def waiting(self) -> int:
        """Frames in the backlog, not yet handed to the writer task."""
        return len(self._backlog)

    def finish(self) -> None:
        """The stream is over: write what is waiting, then end without a reason."""
        self._finishing = True
        if self._writer is None and not self._backlog:
            self._end(None)  # nothing was ever left to write
        else:
            self._wake_writer()

    def fail(self, reason: str) -> None:
        self._end(reason)

    def _wake_writer(self) -> None:
        self._ready.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    def _end(self, reason: str | None) -> None:
        self._backlog.clear()
        if not self.ended.done():
            self.ended.set_result(reason)

    async def _write(self) -> None:
        send_text = self.delivery.send_text
        try:
            while not self.ended.done():
                await self._ready.wait()
                self._ready.clear()
                # Take the whole backlog at once: frames pushed while these are written wait for the next turn.
                frames, self._backlog = self._backlog, []
                self._sending = True
                for frame in frames:
                    if self.ended.done():
                        return
                    await send_text(frame.text)
                self._sending = False
                if self._finishing and not self._backlog:
                    self._end(None)
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away mid-write; its own handler tears the operation down
            self._end(DISCONNECTED)

    async def stop(self) -> None:
        self._end(None)
        if self._writer is not None:
            self._writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._writer


StreamKey = tuple[str, str, str | None, str]


class SharedStream:
    """One execution of a subscription document; its results go to every member."""

    def __init__(self, hub: FanoutHub, key: StreamKey, origin: Delivery, context: Any) -> None:
        self.hub = hub
        self.key = key
        self.context = context
        self.members: dict[Member, None] = {}  # insertion-ordered set
        # Only the document is taken from the first subscriber's delivery: holding the delivery
        # would hold its socket for as long as the stream runs.
        self.task = asyncio.create_task(self._run(origin.query, origin.variables, origin.operation_name, origin.root_value))

    async def _run(self, query: str, variables: dict[str, Any] | None, operation_name: str | None, root_value: Any) -> None:
        # The stream's own execution must read the bus, not join itself.
        current_delivery.set(None)
        ending: str | None = None
        try:
            results = await self.hub.schema.stream(
                query,
                variable_values=variables,
                context_value=self.context,
                root_value=root_value,
                operation_name=operation_name,
            )
            async with aclosing(results):
                async for result in results:
                    self._broadcast(encode_result(result))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a shared subscription stream failed")
            ending = INTERNAL
        finally:
            self.hub.forget(self)
        for member in list(self.members):
            if ending is None:
                member.finish()
            else:
                member.fail(ending)

    def _broadcast(self, payload: str) -> None:
        frames: dict[tuple[Envelope, str], OutgoingFrame] = {}  # most clients number their first operation "1"
        for member in list(self.members):
            delivery = member.delivery
            frame_key = (delivery.envelope, delivery.operation_id)
            frame = frames.get(frame_key)
            if frame is None:
                frame = frames[frame_key] = OutgoingFrame(delivery.envelope(delivery.operation_id, payload))
            member.push(frame)


class FanoutHub:
    """This process's shared streams, by organization and document."""

    def __init__(self, schema: Any, backlog_limit: int = DEFAULT_QUEUE_SIZE) -> None:
        self.schema = schema
        self.backlog_limit = backlog_limit
        self._streams: dict[StreamKey, SharedStream] = {}

    def stream_count(self) -> int:
        return len(self._streams)

    def member_count(self) -> int:
        return sum(len(stream.members) for stream in self._streams.values())

    @asynccontextmanager
    async def join(
        self, organization_id: str, delivery: Delivery, stream_context: Callable[[], Any] | None = None
    ) -> AsyncIterator[Member]:
        """Be a member of the stream of ``delivery``'s document for the organization until the block ends.

        ``stream_context`` makes the context a new stream runs with: one bound to no subscriber,
        so that neither the first one's leaving nor its credentials shape the others' stream.
        Without it the stream runs with the context of the subscriber that started it.
        """
        variables = json.dumps(delivery.variables or {}, sort_keys=True, default=str)
        key: StreamKey = (organization_id, delivery.query, delivery.operation_name, variables)
        member = Member(delivery, self.backlog_limit)
        stream = self._streams.get(key)
        if stream is None:
            context = stream_context() if stream_context is not None else delivery.context
            stream = self._streams[key] = SharedStream(self, key, delivery, context)
        stream.members[member] = None
        try:
            yield member
        finally:
            stream.members.pop(member, None)
            await member.stop()
            if not stream.members:
                self.forget(stream)
                stream.task.cancel()

    def forget(self, stream: SharedStream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]


__all__ = [
    "Delivery",
    "FanoutHub",
    "Member",
    "OutgoingFrame",
    "current_delivery",
    "encode_result",
    "legacy_ws_frame",
    "transport_ws_frame",
]
