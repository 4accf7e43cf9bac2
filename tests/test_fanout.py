"""Shared subscription streams (schema/fanout.py): one execution per document, frames to every subscriber.

The first half drives a hub over a small schema of its own, so that executions can be counted
and clients can be made slow or broken; the second runs the real server and real WebSocket
clients of both protocols.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable

import pytest
import strawberry
import websockets
from strawberry.types import Info

from gateway.app import create_app
from gateway.core.clock import utcnow
from gateway.events import SLOW_CONSUMER, BusEvent
from schema.fanout import DISCONNECTED, Delivery, FanoutHub, legacy_ws_frame, transport_ws_frame
from tests.conftest import make_org_with_key
from tests.oauth_platform import serving


class Feed:
    """What the test schema's subscription reads, and how many executions read it."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue[int | None]] = []
        self.started = 0
        self.closed = 0

    def publish(self, value: int | None) -> None:
        for queue in self.queues:
            queue.put_nowait(value)


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def numbers(self, info: Info, offset: int = 0) -> AsyncGenerator[int, None]:
        feed: Feed = info.context["feed"]
        feed.started += 1
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        feed.queues.append(queue)
        try:
            while (value := await queue.get()) is not None:
                if value < 0:
                    raise ValueError("negative")
                yield value + offset
        finally:
            feed.queues.remove(queue)
            feed.closed += 1


SCHEMA = strawberry.Schema(query=Query, subscription=Subscription)
NUMBERS = "subscription($offset: Int! = 0) { numbers(offset: $offset) }"


class Client:
    """A subscriber's socket: records frames; can be stuck (never done writing) or gone (raises)."""

    def __init__(self, *, stuck: bool = False, gone: bool = False, delay: float = 0.0) -> None:
        self.frames: list[str] = []
        self.stuck, self.gone, self.delay = stuck, gone, delay

    async def send_text(self, text: str) -> None:
        if self.gone:
            raise ConnectionResetError("the client went away")
        if self.stuck:
            await asyncio.Event().wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.frames.append(text)

    def values(self) -> list[int]:
        return [json.loads(frame)["payload"]["data"]["numbers"] for frame in self.frames]


def delivery(hub: FanoutHub, client: Client, feed: Feed, *, operation_id: str = "1", variables: dict | None = None,
             envelope: Callable[[str, str], str] = transport_ws_frame) -> Delivery:
    return Delivery(hub=hub, operation_id=operation_id, query=NUMBERS, variables=variables, operation_name=None,
                    context={"feed": feed}, root_value=None, envelope=envelope, send_text=client.send_text)


async def subscriber(hub: FanoutHub, organization_id: str, delivery: Delivery) -> str | None:
    """What a resolver does: join the stream and wait for the end; returns why it ended."""
    async with hub.join(organization_id, delivery) as member:
        return await member.ended


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_subscribers_of_one_document_share_one_execution():
    hub, feed = FanoutHub(SCHEMA), Feed()
    clients = [Client(), Client(), Client(), Client()]
    deliveries = [
        delivery(hub, clients[0], feed),
        delivery(hub, clients[1], feed),
        delivery(hub, clients[2], feed, operation_id="7"),
        delivery(hub, clients[3], feed, envelope=legacy_ws_frame),
    ]
    tasks = [asyncio.create_task(subscriber(hub, "org_a", d)) for d in deliveries]
    await until(lambda: len(feed.queues) == 1 and hub.member_count() == 4)
    for value in (1, 2, 3):
        feed.publish(value)
    await until(lambda: all(len(c.frames) == 3 for c in clients))

    assert feed.started == 1 and hub.stream_count() == 1
    assert all(c.values() == [1, 2, 3] for c in clients)
    assert json.loads(clients[0].frames[0]) == {"id": "1", "type": "next", "payload": {"data": {"numbers": 1}}}
    assert json.loads(clients[2].frames[0])["id"] == "7"
    assert json.loads(clients[3].frames[0]) == {"id": "1", "type": "data", "payload": {"data": {"numbers": 1}}}
    # One frame per event for subscribers with the same envelope and operation id, not one each.
    assert clients[0].frames[0] is clients[1].frames[0]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_other_variables_or_another_organization_get_a_stream_of_their_own():
    hub, feed = FanoutHub(SCHEMA), Feed()
    plain, shifted, elsewhere = Client(), Client(), Client()
    tasks = [
        asyncio.create_task(subscriber(hub, "org_a", delivery(hub, plain, feed))),
        asyncio.create_task(subscriber(hub, "org_a", delivery(hub, shifted, feed, variables={"offset": 10}))),
        asyncio.create_task(subscriber(hub, "org_b", delivery(hub, elsewhere, feed))),
    ]
    await until(lambda: len(feed.queues) == 3)
    feed.publish(1)
    await until(lambda: all(c.frames for c in (plain, shifted, elsewhere)))
    assert hub.stream_count() == 3 and feed.started == 3
    assert (plain.values(), shifted.values(), elsewhere.values()) == ([1], [11], [1])
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_subscriber_that_cannot_keep_up_is_ended_and_the_others_are_not():
    hub, feed = FanoutHub(SCHEMA, backlog_limit=3), Feed()
    stuck, fine = Client(stuck=True), Client()
    stuck_task = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, stuck, feed)))
    fine_task = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, fine, feed)))
    await until(lambda: len(feed.queues) == 1 and hub.member_count() == 2)
    for value in range(10):
        feed.publish(value)
        await asyncio.sleep(0)
    assert await asyncio.wait_for(stuck_task, 5) == SLOW_CONSUMER
    await until(lambda: len(fine.frames) == 10)
    assert fine.values() == list(range(10)) and not fine_task.done()
    assert hub.member_count() == 1 and feed.closed == 0  # the stream goes on for the others
    fine_task.cancel()
    await asyncio.gather(fine_task, return_exceptions=True)


async def test_a_client_gone_mid_write_ends_its_own_membership_only():
    hub, feed = FanoutHub(SCHEMA), Feed()
    gone, fine = Client(gone=True), Client()
    gone_task = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, gone, feed)))
    fine_task = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, fine, feed)))
    await until(lambda: len(feed.queues) == 1 and hub.member_count() == 2)
    feed.publish(1)
    feed.publish(2)
    assert await asyncio.wait_for(gone_task, 5) == DISCONNECTED
    await until(lambda: len(fine.frames) == 2)
    fine_task.cancel()
    await asyncio.gather(fine_task, return_exceptions=True)


async def test_the_last_subscriber_leaving_stops_the_stream():
    hub, feed = FanoutHub(SCHEMA), Feed()
    first = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, Client(), feed)))
    second = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, Client(), feed)))
    await until(lambda: len(feed.queues) == 1 and hub.member_count() == 2)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await until(lambda: hub.member_count() == 1)  # the first one's departure is processed
    assert feed.closed == 0 and hub.stream_count() == 1
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    await until(lambda: feed.closed == 1)
    assert hub.stream_count() == 0 and hub.member_count() == 0
    # A newcomer starts a fresh stream.
    third = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, Client(), feed)))
    await until(lambda: feed.started == 2 and len(feed.queues) == 1)
    third.cancel()
    await asyncio.gather(third, return_exceptions=True)


async def test_when_the_stream_ends_every_frame_is_written_before_its_subscribers_end():
    hub, feed = FanoutHub(SCHEMA), Feed()
    slow = Client(delay=0.02)
    task = asyncio.create_task(subscriber(hub, "org_a", delivery(hub, slow, feed)))
    await until(lambda: len(feed.queues) == 1)
    for value in (1, 2, 3, None):
        feed.publish(value)
    assert await asyncio.wait_for(task, 5) is None
    assert slow.values() == [1, 2, 3]
    assert hub.stream_count() == 0


async def test_an_execution_error_reaches_every_subscriber_as_a_result_with_errors():
    hub, feed = FanoutHub(SCHEMA), Feed()
    clients = [Client(), Client()]
    tasks = [asyncio.create_task(subscriber(hub, "org_a", delivery(hub, c, feed))) for c in clients]
    await until(lambda: len(feed.queues) == 1 and hub.member_count() == 2)
    feed.publish(-1)
    assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [None, None]
    for client in clients:
        payload = json.loads(client.frames[-1])["payload"]
        assert payload["data"] is None and payload["errors"][0]["message"] == "negative"


# The real server: WebSocket subscribers of both protocols share one stream and one bus subscription.

ORG_EVENTS = 'subscription { orgEvents(kinds: ["job."]) { kind jobId seq } }'


async def _subscribe(url: str, key: str, protocol: str, query: str) -> websockets.ClientConnection:
    socket = await websockets.connect(url, subprotocols=[protocol])
    await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
    assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await socket.send(json.dumps({"id": "1", "type": start, "payload": {"query": query}}))
    return socket


async def _next_event(socket: websockets.ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] in ("next", "data"):
            return message


async def test_websocket_subscribers_of_an_organization_share_one_stream(settings):
    app = create_app(settings)
    runtime, hub = app.state.runtime, app.state.fanout
    async with serving(app) as base:
        org = await make_org_with_key(runtime)
        other = await make_org_with_key(runtime, "Other")
        url = base.replace("http", "ws", 1) + "/graphql"
        sockets = [await _subscribe(url, org.secret, "graphql-transport-ws", ORG_EVENTS) for _ in range(3)]
        sockets.append(await _subscribe(url, org.secret, "graphql-ws", ORG_EVENTS))
        posts_only = await _subscribe(url, org.secret, "graphql-transport-ws", ORG_EVENTS.replace('"job."', '"post."'))
        outsider = await _subscribe(url, other.secret, "graphql-transport-ws", ORG_EVENTS)
        await until(lambda: hub.member_count() == 6)
        # Three streams (two documents in one organization, one in the other), one bus subscription each.
        assert hub.stream_count() == 3 and runtime.events.subscriber_count() == 3

        await runtime.publish(BusEvent(org.organization_id, "job.queued", {}, utcnow(), job_id="job_x", seq=1))
        received = [await _next_event(socket) for socket in sockets]
        assert [m["type"] for m in received] == ["next", "next", "next", "data"]
        assert all(m["payload"]["data"]["orgEvents"] == {"kind": "job.queued", "jobId": "job_x", "seq": 1} for m in received)
        for silent in (posts_only, outsider):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(silent.recv(), 0.3)

        for socket in [*sockets, posts_only, outsider]:
            await socket.close()
        await until(lambda: hub.stream_count() == 0)
        assert runtime.events.subscriber_count() == 0
