"""The Redis Streams bus and the shared state on a real Redis server (Debian's redis-server).

Each test builds two "processes" (two buses, limiters or lock sets, each with its own client)
on one server, and shows what one does reaching the other.
"""

import asyncio
import contextlib
import uuid

import pytest
from redis.asyncio import Redis

from gateway.auth import RedisCostRateLimiter
from gateway.auth.rate_limit import CostRateLimiter, Tier
from gateway.core import RedisKeyedLocks
from gateway.core.clock import utcnow
from gateway.events import RESUME_EXPIRED, BusEvent, RedisEventBus, SubscriptionClosed, follow_organization
from gateway.events.redis_bus import stream_key
from tests.lifespan import lifespan_of


def _client(redis_url: str) -> Redis:
    return Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
async def buses(redis_url):
    """Two processes' buses on one Redis server."""
    made = [RedisEventBus(_client(redis_url)) for _ in range(2)]
    for bus in made:
        await bus.start()
    yield made
    for bus in made:
        await bus.close()
        await bus.redis.aclose()


def _org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


def _event(org: str, seq: int) -> BusEvent:
    return BusEvent(org, "target.published", {"n": seq}, utcnow(), job_id="job_1", seq=seq)


async def _next(subscription) -> BusEvent:
    return await asyncio.wait_for(subscription.next(), 10)


async def test_an_event_published_by_one_process_reaches_the_subscribers_of_another_in_order(buses):
    a, b = buses
    org = _org()
    subscription = b.subscribe(org)
    await asyncio.wait_for(subscription.following.wait(), 10)
    for seq in range(1, 6):
        await a.publish(_event(org, seq))
    received = [await _next(subscription) for _ in range(5)]
    assert [e.seq for e in received] == [1, 2, 3, 4, 5]
    assert [e.payload for e in received] == [{"n": n} for n in range(1, 6)]
    ids = [e.stream_id for e in received]
    assert all(ids) and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


async def test_a_process_reads_only_the_streams_of_organizations_it_has_subscribers_for(buses):
    a, b = buses
    watched, other = _org(), _org()
    subscription = b.subscribe(watched)
    await asyncio.wait_for(subscription.following.wait(), 10)
    await a.publish(_event(other, 1))
    await a.publish(_event(watched, 1))
    assert (await _next(subscription)).organization_id == watched
    assert set(b._positions) == {watched}
    subscription.close()
    follower = b.subscribe(other)  # the next round of the reader drops `watched`, takes `other` in
    await asyncio.wait_for(follower.following.wait(), 10)
    assert set(b._positions) == {other}


async def test_resuming_on_another_process_after_an_event_id_loses_nothing_and_repeats_nothing(buses):
    a, b = buses
    org = _org()
    first = a.subscribe(org)
    await asyncio.wait_for(first.following.wait(), 10)
    for seq in (1, 2, 3):
        await a.publish(_event(org, seq))
    seen = [await _next(first) for _ in range(3)]
    first.close()  # the client's connection to process A ends here

    resumed = b.subscribe(org)
    stream = follow_organization(resumed, after=seen[0].stream_id)
    replayed = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
    await a.publish(_event(org, 4))
    live = await asyncio.wait_for(anext(stream), 10)
    assert [e.seq for e in (*replayed, live)] == [2, 3, 4]
    assert [e.stream_id for e in replayed] == [e.stream_id for e in seen[1:]]


async def test_a_resume_point_whose_successors_were_trimmed_ends_with_resume_expired(buses):
    a, b = buses
    org = _org()
    for seq in range(1, 6):
        await a.publish(_event(org, seq))
    entries = await a.redis.xrange(stream_key(org))
    await a.redis.xtrim(stream_key(org), maxlen=2, approximate=False)
    with pytest.raises(SubscriptionClosed) as closed:
        await b.replay(org, entries[0][0])
    assert closed.value.reason == RESUME_EXPIRED
    assert [e.seq for e in await b.replay(org, entries[3][0])] == [5]  # whole from the 4th on


async def test_streams_are_trimmed_as_they_grow(redis_url):
    bus = RedisEventBus(_client(redis_url), maxlen=10)
    org = _org()
    try:
        for seq in range(1, 301):
            await bus.publish(_event(org, seq))
        length = await bus.redis.xlen(stream_key(org))
    finally:
        await bus.close()
        await bus.redis.aclose()
    assert 10 <= length < 300  # MAXLEN ~ trims whole nodes of entries, never below 10


async def test_rate_limit_buckets_are_shared_by_every_process(redis_url):
    tier = Tier("t", capacity=10, restore_rate=0.001)
    key = f"key_{uuid.uuid4().hex}"
    clients = [_client(redis_url) for _ in range(2)]
    try:
        one, two = (RedisCostRateLimiter(c, tier) for c in clients)
        assert (await one.acquire(key, 6)).allowed
        refused = await two.acquire(key, 6)
        assert not refused.allowed and 3.9 < refused.remaining < 4.1 and refused.retry_after > 1_000
        assert (await two.acquire(key, 4)).allowed
        assert not (await one.acquire(key, 1)).allowed
    finally:
        for c in clients:
            await c.aclose()
    # Apart, each process would have allowed both draws.
    apart = [CostRateLimiter(tier), CostRateLimiter(tier)]
    assert [(await limiter.acquire(key, 6)).allowed for limiter in apart] == [True, True]


async def test_a_refresh_lock_held_by_one_process_makes_another_wait(redis_url):
    clients = [_client(redis_url) for _ in range(2)]
    one, two = (RedisKeyedLocks(c, poll=0.01) for c in clients)
    account = f"acct_{uuid.uuid4().hex}"
    order: list[str] = []

    async def second() -> None:
        async with two.hold(account):
            order.append("second")

    try:
        async with one.hold(account):
            waiting = asyncio.create_task(second())
            done, _ = await asyncio.wait({waiting}, timeout=0.5)
            assert not done  # the other process is still waiting for the lock
            order.append("first")
        await asyncio.wait_for(waiting, 10)
        assert order == ["first", "second"]
        assert await clients[0].exists("sg:lock:" + account) == 0  # released
    finally:
        for c in clients:
            await c.aclose()


async def test_a_stored_event_enters_the_stream_once_whoever_adds_it(buses):
    """Its publisher and the relays of other processes may all try (one died before its XADD, say)."""
    a, b = buses
    org = _org()
    subscription = b.subscribe(org)
    await asyncio.wait_for(subscription.following.wait(), 10)
    event = _event(org, 1)
    await b.carry(event)  # a relay found the row first: the publisher never added it
    await a.publish(event)  # the publisher, late
    await a.carry(event)  # another process's relay
    await a.publish(_event(org, 2))
    received = [await _next(subscription) for _ in range(2)]
    assert [e.seq for e in received] == [1, 2] and all(e.stream_id for e in received)
    assert await a.redis.xlen(stream_key(org)) == 2


async def test_two_api_processes_on_one_redis_draw_a_key_s_queries_from_one_bucket(redis_url, tmp_path):
    """Through GraphQL: what one process spent of a key's points, the other cannot spend again."""
    import httpx
    
    from gateway.app import create_app
    from gateway.settings import load_settings
    from tests.conftest import ApiClient, make_org_with_key

    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/shared.db", data_dir=str(tmp_path),
                             events_url=redis_url, run_scheduler=False)
    query = "{ viewer { organization { id } } }"
    async with contextlib.AsyncExitStack() as stack:
        apis = []
        for _ in range(2):
            app = create_app(settings)
            manager = await stack.enter_async_context(lifespan_of(app))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t"))
            runtime = app.state.runtime
            runtime.rate_limiter = RedisCostRateLimiter(runtime.redis, Tier("tiny", capacity=3, restore_rate=0.001))
            apis.append(ApiClient(http=http, runtime=runtime))
        owner = await make_org_with_key(apis[0].runtime)
        first = await apis[0].graphql(query, key=owner.secret)
        cost = first["extensions"]["cost"]["requestedQueryCost"]
        assert "errors" not in first and 3 - cost < cost  # one query fits the bucket, a second does not
        second = await apis[1].graphql(query, key=owner.secret)
    assert second["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
