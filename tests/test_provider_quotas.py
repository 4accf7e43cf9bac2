"""Provider quotas hold posts back until the platform's window has room: counted from the database, per account or per app."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import select

from gateway.storage.models import Attempt, JobEvent, Target
from plugins.sandbox import Sandbox
from providers import Quota, hookimpl
from tests.engine import engine_app, new_post, publish, scheduler_for, setup_org
from tests.test_claims import FakeClock

HOUR = 3600
CONNECT = """mutation($p: String!, $c: JSON!) { connectAccount(input: {provider: $p, credentials: $c}) { account { id } userErrors { code } } }"""


class PerAccount(Sandbox):
    """The sandbox under Instagram's kind of quota, shrunk: 2 posts per hour per account."""

    id = "quota_account"
    name = "Quota per account"
    limits = replace(Sandbox.limits, quotas=(Quota(2, HOUR, description="2 posts per hour"),))


class PerApp(Sandbox):
    """The sandbox under YouTube's kind of quota, shrunk: 10 units a day for the app, 4 per upload."""

    id = "quota_app"
    name = "Quota per app"
    limits = replace(Sandbox.limits, quotas=(Quota(10, 24 * HOUR, scope="app", cost=4, description="10 units a day"),))


def install(runtime) -> None:
    @hookimpl
    def register_providers():
        return [PerAccount(), PerApp()]

    runtime.plugins.add("quota-test-plugin", SimpleNamespace(register_providers=register_providers))


async def account(api, key, provider: str, handle: str) -> str:
    body = await api.graphql(CONNECT, {"p": provider, "c": {"handle": handle}}, key=key)
    return body["data"]["connectAccount"]["account"]["id"]


async def post_to(api, key, account_id: str, text: str) -> str:
    post_id = await new_post(api, key, [account_id], text=text)
    assert (await publish(api, key, post_id))["userErrors"] == []
    return post_id


async def statuses(api) -> dict[str, tuple[str, str]]:
    """Post id → (target status, account id)."""
    async with api.runtime.database.read() as session:
        return {t.post_id: (t.status, t.account_id) for t in (await session.execute(select(Target))).scalars()}


async def deferred_events(api) -> list[dict]:
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(JobEvent).where(JobEvent.kind == "target.deferred").order_by(JobEvent.id))).scalars()
        return [row.payload for row in rows]


async def test_an_account_quota_holds_the_third_post_until_the_window_has_room(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        install(api.runtime)
        org = await setup_org(api)
        busy, idle = await account(api, org.secret, "quota_account", "busy"), await account(api, org.secret, "quota_account", "idle")
        posts = [await post_to(api, org.secret, busy, f"busy {i}") for i in range(3)]
        other = await post_to(api, org.secret, idle, "idle 0")
        clock = FakeClock(monkeypatch)  # from now on the scheduler's time is the test's
        await scheduler_for(api).drain()

        seen = await statuses(api)
        assert [seen[p][0] for p in posts].count("published") == 2
        assert seen[other][0] == "published"  # the quota is per account: the idle one is not held up
        (held,) = [p for p in posts if seen[p][0] != "published"]
        assert seen[held][0] == "scheduled"
        (event,) = await deferred_events(api)
        assert event["postId"] == held and event["reason"] == "QUOTA_EXHAUSTED" and event["status"] == "scheduled"
        assert event["quota"] == {"count": 2, "periodSeconds": HOUR, "scope": "account", "cost": 1, "description": "2 posts per hour"}
        async with api.runtime.database.read() as session:
            target = (await session.execute(select(Target).where(Target.post_id == held))).scalar_one()
        assert target.attempt_count == 0  # holding back uses no attempt
        assert abs((target.next_attempt_at.replace(tzinfo=clock.now.tzinfo) - (clock.now + timedelta(seconds=HOUR))).total_seconds()) < 5

        # A fresh worker (a restart, another process) counts the same calls: they are in the database.
        clock.advance(HOUR - 60)
        await scheduler_for(api).drain()
        assert (await statuses(api))[held][0] == "scheduled"
        clock.advance(61)
        await scheduler_for(api).drain()
        assert (await statuses(api))[held][0] == "published"


async def test_an_app_quota_in_units_spans_every_account_of_the_provider(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        install(api.runtime)
        org = await setup_org(api)
        accounts = [await account(api, org.secret, "quota_app", f"channel{i}") for i in range(3)]
        elsewhere = await account(api, org.secret, "quota_account", "unrelated")
        posts = [await post_to(api, org.secret, a, f"upload {i}") for i, a in enumerate(accounts)]
        unrelated = await post_to(api, org.secret, elsewhere, "not an upload")
        FakeClock(monkeypatch)
        await scheduler_for(api).drain()

        seen = await statuses(api)
        assert sorted(seen[p][0] for p in posts) == ["published", "published", "scheduled"]  # 10 units, 4 each: two uploads
        assert seen[unrelated][0] == "published"
        (event,) = await deferred_events(api)
        assert event["quota"]["scope"] == "app" and event["quota"]["cost"] == 4


async def test_checks_on_processing_publishes_and_deletes_spend_no_publish_quota(tmp_path):
    """Only publishes count: two videos each checked twice still leave the quota at 2 of 2, not 6."""
    async with engine_app(tmp_path) as api:
        install(api.runtime)
        org = await setup_org(api)
        body = await api.graphql(
            CONNECT, {"p": "quota_account", "c": {"handle": "video", "processing_polls": "2", "processing_seconds": "1"}}, key=org.secret
        )
        video = body["data"]["connectAccount"]["account"]["id"]
        posts = [await post_to(api, org.secret, video, f"video {i}") for i in range(2)]
        await scheduler_for(api).drain(horizon=3)
        seen = await statuses(api)
        assert [seen[p][0] for p in posts] == ["published", "published"]
        assert await deferred_events(api) == []  # the polls never held a post back
        async with api.runtime.database.read() as session:
            kinds = sorted((await session.execute(select(Attempt.kind))).scalars())
        assert kinds == ["poll"] * 4 + ["publish"] * 2

        third = await post_to(api, org.secret, video, "video 2")
        await scheduler_for(api).drain(horizon=3)
        assert (await statuses(api))[third][0] == "scheduled"  # the two publishes spent the hour's quota
        assert [e["postId"] for e in await deferred_events(api)] == [third]
