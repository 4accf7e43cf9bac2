"""The in-process bus's subscriber queue: giving up on a wait must never lose the next event."""

import asyncio

from gateway.clock import utcnow
from gateway.events import BusEvent, MemoryEventBus


def _event(seq: int) -> BusEvent:
    return BusEvent("org_1", "target.published", {"n": seq}, utcnow(), job_id="job_1", seq=seq)


async def test_a_wait_that_times_out_loses_no_later_event():
    bus = MemoryEventBus()
    subscription = bus.subscribe("org_1")
    for _ in range(3):  # each abandoned wait once left a task behind that took the next event
        try:
            await asyncio.wait_for(subscription.next(), 0.01)
        except TimeoutError:
            pass
    await bus.publish(_event(1))
    await bus.publish(_event(2))
    received = [await asyncio.wait_for(subscription.next(), 5) for _ in range(2)]
    assert [event.seq for event in received] == [1, 2]
    subscription.close()
