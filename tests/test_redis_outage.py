"""With SOCIALGATE_EVENTS_URL=redis://… and Redis out of reach, nothing is lost: the stored
events are the source of truth. No Redis runs here: the URL points at a port nobody listens on."""

import asyncio

import pytest

from gateway.auth import RedisCostRateLimiter
from gateway.core import RedisKeyedLocks
from gateway.events import RedisEventBus, record_org_event
from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.conftest import make_org_with_key
from tests.servers import free_port


@pytest.fixture
async def cut_off(tmp_path):
    """A process configured for Redis whose Redis does not answer."""
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path),
        events_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    runtime = Runtime(settings)
    # With a Redis URL, the events, the rate-limit buckets and the refresh locks all go through it.
    assert isinstance(runtime.events, RedisEventBus)
    assert isinstance(runtime.rate_limiter, RedisCostRateLimiter)
    assert isinstance(runtime.account_locks, RedisKeyedLocks)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_a_process_cut_off_from_redis_catches_up_from_the_database(cut_off):
    owner = await make_org_with_key(cut_off)
    subscription = cut_off.events.subscribe(owner.organization_id)
    await asyncio.wait_for(subscription.following.wait(), 10)  # the reader gave up waiting for Redis
    async with cut_off.database.write() as session:  # stored by "another process": never published here
        await record_org_event(session, owner.organization_id, "account.connected", {"accountId": "acct_x"})
    event = await asyncio.wait_for(subscription.next(), 15)
    assert (event.kind, event.payload, event.stream_id) == ("account.connected", {"accountId": "acct_x"}, None)
    assert not cut_off.events.connected.is_set()


async def test_an_event_that_cannot_reach_redis_still_reaches_this_process_subscribers(cut_off):
    cut_off.events.on_outage = None  # no catching up from the database: only the publisher's fallback
    owner = await make_org_with_key(cut_off)
    subscription = cut_off.events.subscribe(owner.organization_id)
    async with cut_off.database.write() as session:
        event = await record_org_event(session, owner.organization_id, "account.connected", {"accountId": "acct_y"})
    await cut_off.publish(event)
    received = await asyncio.wait_for(subscription.next(), 10)
    assert received.stored_key == event.stored_key


async def test_without_redis_a_process_rate_limits_on_its_own_rather_than_refusing(cut_off):
    """The shared bucket cannot answer: the query is limited by this process's bucket instead."""
    decision = await cut_off.rate_limiter.acquire("key_1", 5)
    assert decision.allowed and decision.remaining == cut_off.rate_limiter.tier.capacity - 5
