"""orgEvents(after:): every event carries its position in the organization's stream, and a
subscriber that passes the last one back gets the rest, once, in order (the in-process backend;
tests/peers/test_redis_bus.py shows the same across processes on Redis)."""

import asyncio

import pytest

from gateway.core import BadInput
from gateway.core.clock import utcnow
from gateway.events import RESUME_EXPIRED, BusEvent, MemoryEventBus, SubscriptionClosed, follow_organization
from gateway.events import bus as bus_module
from tests.conftest import make_org_with_key


def _event(seq: int, org: str = "org_1") -> BusEvent:
    return BusEvent(org, "target.published", {"n": seq}, utcnow(), job_id="job_1", seq=seq)


async def _take(stream, count: int) -> list[BusEvent]:
    return [await asyncio.wait_for(anext(stream), 5) for _ in range(count)]


async def test_each_event_gets_a_position_that_grows():
    bus = MemoryEventBus()
    subscription = bus.subscribe("org_1")
    for seq in (1, 2, 3):
        await bus.publish(_event(seq))
    received = [await subscription.next() for _ in range(3)]
    positions = [bus_module.stream_position(e.stream_id) for e in received]
    assert positions == sorted(positions) and len(set(positions)) == 3


async def test_resuming_after_an_id_replays_the_rest_then_follows_live_without_repeats():
    bus = MemoryEventBus()
    first = bus.subscribe("org_1")
    for seq in (1, 2, 3):
        await bus.publish(_event(seq))
    seen = [await first.next() for _ in range(3)]
    first.close()

    again = bus.subscribe("org_1")
    stream = follow_organization(again, after=seen[0].stream_id)
    replayed = await _take(stream, 2)
    await bus.publish(_event(4))
    live = await _take(stream, 1)
    assert [e.seq for e in replayed + live] == [2, 3, 4]
    assert [e.stream_id for e in replayed] == [e.stream_id for e in seen[1:]]


async def test_a_resume_point_older_than_what_is_kept_ends_with_resume_expired(monkeypatch):
    monkeypatch.setattr(bus_module, "MEMORY_HISTORY", 2)
    bus = MemoryEventBus()
    subscription = bus.subscribe("org_1")
    for seq in (1, 2, 3, 4):
        await bus.publish(_event(seq))
    oldest = (await subscription.next()).stream_id
    with pytest.raises(SubscriptionClosed) as closed:
        await bus.replay("org_1", oldest)  # event 2 was dropped: the client would miss it
    assert closed.value.reason == RESUME_EXPIRED
    third = [await subscription.next() for _ in range(3)][1]
    assert [e.seq for e in await bus.replay("org_1", third.stream_id)] == [4]  # still whole from here


async def test_an_id_that_is_not_an_event_id_is_bad_input():
    with pytest.raises(BadInput):
        await MemoryEventBus().replay("org_1", "yesterday")


async def test_org_events_rejects_a_malformed_resume_point_with_a_stable_code(api):
    owner = await make_org_with_key(api.runtime)
    response = await api.http.post(
        "/graphql", json={"query": 'subscription { orgEvents(after: "not-an-id") { id kind } }'},
        headers={"Authorization": f"Bearer {owner.secret}", "Accept": "text/event-stream"},
    )
    assert '"code": "BAD_USER_INPUT"' in response.text.replace('":"', '": "'), response.text
    assert api.runtime.events.subscriber_count() == 0  # refused before anything was subscribed
