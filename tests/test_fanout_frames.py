"""A fan-out's frames written straight to the socket (schema/fanout.py, gateway/web/websocket_frames.py).

The first half drives a hub (the small schema of tests/test_fanout.py) whose subscribers offer a
frame writer: frames go to it, built once, and when it refuses one, that frame and every later
one go the ordinary way, in order. The second half runs the real server with the WebSocket
protocol `socialgate serve` runs, and checks that its frames reach real clients of both
protocols through the writer, that the writer refuses while uvicorn would have to wait, and that a
socket which stops draining still ends as a slow consumer while the others get every frame.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import pytest
import websockets
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from gateway.app import create_app
from gateway.core.clock import utcnow
from gateway.events import BusEvent
from gateway.web import FrameWritingProtocol, encode_text_frame
from schema.fanout import Delivery, FanoutHub, OutgoingFrame, transport_ws_frame
from tests.conftest import make_org_with_key
from tests.oauth_platform import serving
from tests.test_fanout import NUMBERS, SCHEMA, Client, Feed, _next_event, _subscribe, until

ORG_EVENTS = 'subscription { orgEvents(kinds: ["job."]) { kind jobId seq } }'


def unframe(wire: bytes) -> str:
    """The text of one serialized server-to-client frame, parsed by websockets itself."""
    reader = StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as parsed:
        frame: Frame = parsed.value
    else:
        raise AssertionError("an incomplete frame")
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert not reader.buffer  # nothing after the one frame
    return frame.data.decode()


class Socket(Client):
    """A subscriber whose server offers a frame writer; ``order`` records every write, either way, as it happens."""

    def __init__(self, *, accepting: bool = True) -> None:
        super().__init__()
        self.accepting = accepting
        self.wires: list[bytes] = []
        self.order: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None  # when set up, an ordinary send waits for it
        self.sending = asyncio.Event()

    def write_frame(self, wire: bytes) -> bool:
        if not self.accepting:
            return False
        self.wires.append(wire)
        self.order.append(("frame", _number(unframe(wire))))
        return True

    async def send_text(self, text: str) -> None:
        self.sending.set()
        if self.gate is not None:
            await self.gate.wait()
        await super().send_text(text)
        self.order.append(("asgi", _number(text)))


def _number(text: str) -> int:
    return json.loads(text)["payload"]["data"]["numbers"]


def _delivery(hub: FanoutHub, socket: Socket, feed: Feed, operation_id: str = "1") -> Delivery:
    return Delivery(hub=hub, operation_id=operation_id, query=NUMBERS, variables=None, operation_name=None,
                    context={"feed": feed}, root_value=None, envelope=transport_ws_frame,
                    send_text=socket.send_text, write_frame=socket.write_frame)


def test_a_frame_is_encoded_once_as_one_unmasked_text_frame():
    frame = OutgoingFrame('{"id":"1","type":"next","payload":{"data":{"numbers":1}}}')
    assert frame.wire is frame.wire
    assert unframe(frame.wire) == frame.text
    long_text = "é" * 70_000  # a 64-bit length
    assert unframe(encode_text_frame(long_text)) == long_text


async def test_frames_go_to_the_writer_built_once_for_subscribers_of_one_operation_id():
    hub, feed = FanoutHub(SCHEMA), Feed()
    sockets = [Socket(), Socket(), Socket()]
    other_id = Socket()
    async with hub.join("org_a", _delivery(hub, sockets[0], feed)), hub.join("org_a", _delivery(hub, sockets[1], feed)), \
            hub.join("org_a", _delivery(hub, sockets[2], feed)), hub.join("org_a", _delivery(hub, other_id, feed, "7")):
        await until(lambda: len(feed.queues) == 1)
        for value in (1, 2):
            feed.publish(value)
        await until(lambda: all(len(s.wires) == 2 for s in [*sockets, other_id]))
    assert all(s.frames == [] for s in [*sockets, other_id])  # nothing went the ordinary way
    assert all(s.order == [("frame", 1), ("frame", 2)] for s in sockets)
    # One frame's bytes for every subscriber of operation "1", another for operation "7".
    assert sockets[0].wires[0] is sockets[1].wires[0] is sockets[2].wires[0]
    assert json.loads(unframe(other_id.wires[0]))["id"] == "7"


async def test_subscribers_whose_frames_all_go_straight_to_their_sockets_park_no_task_and_end_cleanly():
    hub, feed = FanoutHub(SCHEMA), Feed()
    before = len(asyncio.all_tasks())
    sockets = [Socket() for _ in range(3)]
    async with AsyncExitStack() as stack:
        members = [await stack.enter_async_context(hub.join("org_a", _delivery(hub, s, feed))) for s in sockets]
        await until(lambda: len(feed.queues) == 1)
        feed.publish(1)
        await until(lambda: all(len(s.wires) == 1 for s in sockets))
        assert len(asyncio.all_tasks()) == before + 1  # the stream's one execution, no writer per subscriber
        feed.publish(None)  # the stream ends
        assert await asyncio.wait_for(asyncio.gather(*(m.ended for m in members)), 5) == [None, None, None]
    assert hub.stream_count() == 0


async def test_a_refused_frame_and_those_behind_it_go_the_ordinary_way_in_order():
    hub, feed = FanoutHub(SCHEMA), Feed()
    socket = Socket(accepting=False)
    socket.gate = asyncio.Event()
    async with hub.join("org_a", _delivery(hub, socket, feed)) as member:
        await until(lambda: len(feed.queues) == 1)
        feed.publish(1)  # refused (the transport is paused): the writer task sends it, held at the gate
        await socket.sending.wait()
        socket.accepting = True
        feed.publish(2)
        feed.publish(3)
        await until(lambda: member.waiting() == 2)  # behind frame 1, though the writer would take them now
        socket.gate.set()
        await until(lambda: len(socket.order) == 3)
        feed.publish(4)  # nothing waits any more: straight to the writer
        await until(lambda: len(socket.order) == 4)
    assert socket.order == [("asgi", 1), ("asgi", 2), ("asgi", 3), ("frame", 4)]


class CountingProtocol(FrameWritingProtocol):
    """The served protocol, keeping its connections and counting the frames it wrote directly."""

    connections_seen: list[CountingProtocol] = []
    written = 0

    def handle_connect(self, event) -> None:  # type: ignore[no-untyped-def]
        super().handle_connect(event)
        CountingProtocol.connections_seen.append(self)

    def write_frame(self, frame: bytes) -> bool:
        wrote = super().write_frame(frame)
        CountingProtocol.written += wrote
        return wrote


@pytest.mark.parametrize("deflate", [False, True], ids=["as served", "compression negotiated"])
async def test_the_served_protocol_writes_each_subscribers_frame_directly_unless_compressed(settings, deflate):
    CountingProtocol.connections_seen, CountingProtocol.written = [], 0
    app = create_app(settings)
    runtime, hub = app.state.runtime, app.state.fanout
    async with serving(app, ws=CountingProtocol, ws_per_message_deflate=deflate) as base:
        org = await make_org_with_key(runtime)
        url = base.replace("http", "ws", 1) + "/graphql"
        sockets = [await _subscribe(url, org.secret, "graphql-transport-ws", ORG_EVENTS) for _ in range(3)]
        sockets.append(await _subscribe(url, org.secret, "graphql-ws", ORG_EVENTS))
        await until(lambda: hub.member_count() == 4)
        for seq in (1, 2):
            await runtime.publish(BusEvent(org.organization_id, "job.running", {}, utcnow(), job_id="job_x", seq=seq))
        received = [[await _next_event(socket) for _ in range(2)] for socket in sockets]
        # A frame built once cannot carry a connection's compression: those go through ASGI.
        assert CountingProtocol.written == (0 if deflate else 8)
        assert [[m["type"] for m in r] for r in received] == [["next", "next"]] * 3 + [["data", "data"]]
        assert all([m["payload"]["data"]["orgEvents"]["seq"] for m in r] == [1, 2] for r in received)
        for socket in sockets:
            await socket.close()
        await until(lambda: hub.stream_count() == 0)


async def test_the_served_protocol_refuses_a_frame_while_uvicorn_would_wait_or_after_the_close(settings):
    CountingProtocol.connections_seen = []
    app = create_app(settings)
    async with serving(app, ws=CountingProtocol, ws_per_message_deflate=False) as base:
        org = await make_org_with_key(app.state.runtime)
        socket = await _subscribe(base.replace("http", "ws", 1) + "/graphql", org.secret, "graphql-transport-ws", ORG_EVENTS)
        [connection] = CountingProtocol.connections_seen
        wire = encode_text_frame('{"type":"ping"}')
        connection.pause_writing()
        assert connection.write_frame(wire) is False
        connection.resume_writing()
        assert connection.write_frame(wire) is True
        assert json.loads(await asyncio.wait_for(socket.recv(), 10)) == {"type": "ping"}
        await socket.close()
        await until(lambda: connection.disconnected or connection.close_sent)
        assert connection.write_frame(wire) is False


async def test_a_refused_handshake_offers_no_writer(settings):
    CountingProtocol.connections_seen = []
    app = create_app(settings)
    async with serving(app, ws=CountingProtocol) as base:
        url = base.replace("http", "ws", 1) + "/graphql"
        # No subprotocol strawberry speaks: the app refuses the socket before accepting it.
        try:
            async with websockets.connect(url, subprotocols=["not-graphql"]) as socket:
                await asyncio.wait_for(socket.recv(), 10)
        except (websockets.InvalidStatus, websockets.ConnectionClosed):
            pass
        [connection] = CountingProtocol.connections_seen
        assert connection.write_frame(encode_text_frame("x")) is False


async def test_a_socket_that_stops_draining_ends_as_a_slow_consumer_and_the_others_get_every_frame(settings):
    CountingProtocol.connections_seen = []
    app = create_app(settings)
    runtime, hub = app.state.runtime, app.state.fanout
    hub.backlog_limit = 3
    async with serving(app, ws=CountingProtocol, ws_per_message_deflate=False) as base:
        org = await make_org_with_key(runtime)
        url = base.replace("http", "ws", 1) + "/graphql"
        stuck = await _subscribe(url, org.secret, "graphql-transport-ws", ORG_EVENTS)
        fine = await _subscribe(url, org.secret, "graphql-transport-ws", ORG_EVENTS)
        await until(lambda: hub.member_count() == 2)
        stuck_connection = CountingProtocol.connections_seen[0]
        stuck_connection.pause_writing()  # what uvicorn is told when the socket's buffer is full
        for seq in range(1, 7):
            await runtime.publish(BusEvent(org.organization_id, "job.running", {}, utcnow(), job_id="job_x", seq=seq))
        assert [(await _next_event(fine))["payload"]["data"]["orgEvents"]["seq"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]
        await until(lambda: hub.member_count() == 1)  # the stuck one is no longer fed
        stuck_connection.resume_writing()
        messages = []
        while not any("SLOW_CONSUMER" in json.dumps(m) for m in messages):
            messages.append(json.loads(await asyncio.wait_for(stuck.recv(), 10)))
        # What it was sent before the end came in order, and fewer than all six events.
        seqs = [m["payload"]["data"]["orgEvents"]["seq"] for m in messages if m["type"] == "next" and m["payload"].get("data")]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 6
        for socket in (stuck, fine):
            await socket.close()
