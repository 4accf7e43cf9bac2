"""The in-process bus's subscriber queue: giving up on a wait must never lose the next event."""

import asyncio

from gateway.core.clock import utcnow
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


async def test_the_relay_brings_events_stored_by_another_process_once(runtime):
    """A worker process stores events this process never published; the relay puts each on the bus once."""
    from gateway.engine.jobs import create_job
    from gateway.events import StoredEventRelay, record_job_event
    from tests.conftest import make_org_with_key

    owner = await make_org_with_key(runtime)
    subscription = runtime.events.subscribe(owner.organization_id)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)
        local = await record_job_event(session, owner.organization_id, job.id, "job.queued", {})
        await record_job_event(session, owner.organization_id, job.id, "job.running", {})  # "another process"
    await runtime.events.publish(local)  # this process published the first one itself
    assert await runtime.relay.relay_once() == 2
    assert await runtime.relay.relay_once() == 0
    received = []
    while not subscription.queue.empty():
        received.append(subscription.queue.get_nowait().seq)
    assert received == [1, 2]
    relay = StoredEventRelay(runtime.database, runtime.events)
    await relay.start()  # a relay starting now begins after what is already stored
    assert await relay.relay_once() == 0
    await relay.stop()


async def test_the_relay_loads_only_events_this_process_did_not_carry(runtime):
    """Its own events are recognised by their keys: the relay reads no row it would drop."""
    from sqlalchemy import event as sql_event

    from gateway.engine.jobs import create_job
    from gateway.events import record_job_event
    from tests.conftest import make_org_with_key

    owner = await make_org_with_key(runtime)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)
        carried = [await record_job_event(session, owner.organization_id, job.id, "target.publishing", {}) for n in range(5)]
    for event in carried:
        await runtime.events.publish(event)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sql_event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await runtime.relay.relay_once() == 5
    finally:
        sql_event.remove(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2 and not any("payload" in read for read in reads)  # the keys only, one read per table


async def test_the_relay_finds_an_event_that_committed_below_its_cursor(runtime):
    """On PostgreSQL an id is taken at insert and becomes visible at commit, possibly after higher ids."""
    from sqlalchemy import insert

    from gateway.engine.jobs import create_job
    from gateway.events import StoredEventRelay
    from gateway.storage.models import JobEvent
    from tests.conftest import make_org_with_key

    owner = await make_org_with_key(runtime)
    subscription = runtime.events.subscribe(owner.organization_id)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)

    async def stored(event_id: int, seq: int) -> None:
        async with runtime.database.write() as session:
            await session.execute(insert(JobEvent).values(
                id=event_id, job_id=job.id, organization_id=owner.organization_id, seq=seq, kind=f"step.{seq}", payload={},
            ))

    for lookback, late_seen in ((10.0, [2]), (0.0, [])):
        relay = StoredEventRelay(runtime.database, runtime.events, lookback=lookback)
        await relay.start()
        base = relay._feeds[0].cursor
        await stored(base + 100, seq=base + 1)
        assert await relay.relay_once() == 1
        await stored(base + 50, seq=base + 2)  # committed after the cursor passed its id
        assert await relay.relay_once() == 0
        received = []
        while not subscription.queue.empty():
            received.append(subscription.queue.get_nowait().seq - base)
        assert received == [1, *late_seen]
        await relay.stop()
    subscription.close()


async def test_replaying_subscribers_hold_no_pooled_connection_while_they_wait(runtime):
    """follow_job reads a job's stored events, closes its session, then yields them to a slow reader."""
    from gateway.engine.jobs import create_job
    from gateway.events import follow_job, record_job_event, stored_job_events
    from tests.conftest import make_org_with_key

    owner = await make_org_with_key(runtime)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)
        for n in range(3):
            await record_job_event(session, owner.organization_id, job.id, "target.publishing", {})
    pool = runtime.database.engine.pool
    readers = []
    for _ in range(pool.size() + 2):  # more subscribers than the pool has connections, none reading on
        subscription = runtime.events.subscribe(owner.organization_id)
        follower = follow_job(runtime.database, subscription, job.id, 0)
        assert (await anext(follower)).seq == 1
        readers.append((follower, subscription))
    assert pool.checkedout() == 0
    async with runtime.database.read() as session:  # an ordinary request still gets a connection
        assert [e.seq for e in await stored_job_events(session, job.id)] == [1, 2, 3]
    for follower, subscription in readers:
        await follower.aclose()
        subscription.close()
