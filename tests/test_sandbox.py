"""The sandbox platform: the conformance kit, its failure modes, threads, delete, metrics and ads,
publishing into the gateway's own database through ProviderContext.store."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from gateway.core import clock
from gateway.storage.models import ProviderRecord
from plugins.sandbox import SLOW_SECONDS, Sandbox
from providers import (
    AdAccountRef,
    AdSpec,
    AuthExpired,
    Money,
    PublishRequest,
    RateLimited,
    Rejected,
    ThreadPart,
    TransientError,
    Unconfirmed,
)
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, sample_media
from providers.validation import publish_checked


def failing(mode, count="0"):
    return {"handle": "demo", "failure_mode": mode, "failure_count": count}


class TestSandboxConformance(ProviderConformance):
    provider = Sandbox()
    credentials = {"handle": "demo"}
    uses_http = False
    error_cases = [
        ErrorCase("rate limited", [], RateLimited, retry_after=30, credentials=failing("rate_limited")),
        ErrorCase("transient", [], TransientError, code="SANDBOX_UNAVAILABLE", credentials=failing("transient")),
        ErrorCase("auth expired", [], AuthExpired, credentials=failing("auth_expired")),
        ErrorCase("rejected", [], Rejected, code="SANDBOX_REJECTED", credentials=failing("rejected")),
        ErrorCase("published, no answer", [], Unconfirmed, credentials=failing("unconfirmed")),
    ]

    processing_credentials = {"handle": "demo", "processing_polls": "3"}
    processing_polls = [[], [], []]
    processing_failed_credentials = {"handle": "demo", "processing_polls": "1", "processing_outcome": "error"}

    def check_published_requests(self, sent):
        assert sent == []


@pytest.fixture
def now(monkeypatch):
    """The gateway clock, pinned and movable."""
    current = {"at": FIXED_NOW}
    monkeypatch.setattr(clock, "utcnow", lambda: current["at"])
    return current


def context(runtime, credentials=None, account_id="acct_sandbox1"):
    return runtime.provider_context("sandbox", account_id, credentials or {"handle": "demo"})


def request(key="tgt_1", **changes):
    return PublishRequest(text="Hello sandbox", idempotency_key=key, **changes)


async def test_publish_stores_the_post_and_a_retry_lands_on_the_same_one(runtime, now):
    ctx = context(runtime)
    first = await publish_checked(Sandbox(), ctx, request(settings={"visibility": "private"}, media=(sample_media("image"),)))
    again = await Sandbox().publish(ctx, request())
    assert again == first
    assert first.url == f"https://sandbox.socialgate.invalid/@demo/{first.platform_post_id}"
    stored = await ctx.store.get("post", first.platform_post_id)
    assert stored["text"] == "Hello sandbox"
    assert stored["settings"] == {"visibility": "private"}
    assert stored["media"] == [{"kind": "image", "url": "https://media.example.com/image.bin", "alt_text": "a sample image"}]
    async with runtime.database.read() as session:
        rows = (await session.execute(select(ProviderRecord.kind, func.count()).group_by(ProviderRecord.kind))).all()
    # the post and its idempotency entry, in the gateway's own table, and one record per call
    assert dict(rows) == {"post": 1, "idempotency": 1, "publish_call": 2}


async def test_threads_chain_each_part_to_the_one_before(runtime, now):
    ctx = context(runtime)
    result = await Sandbox().publish(ctx, request(thread=(ThreadPart("two"), ThreadPart("three")), reply_to="sb_earlier"))
    assert len(result.thread_post_ids) == 2
    first = await ctx.store.get("post", result.platform_post_id)
    second = await ctx.store.get("post", result.thread_post_ids[0])
    third = await ctx.store.get("post", result.thread_post_ids[1])
    assert first["reply_to"] == "sb_earlier"
    assert (second["text"], second["reply_to"]) == ("two", result.platform_post_id)
    assert (third["text"], third["reply_to"]) == ("three", result.thread_post_ids[0])


async def test_metrics_grow_deterministically_and_stop_at_delete(runtime, now):
    ctx = context(runtime)
    post_id = (await Sandbox().publish(ctx, request())).platform_post_id
    (at_publish,) = await Sandbox().fetch_metrics(ctx, [post_id])
    assert at_publish.views == 0 and at_publish.quotes is None and at_publish.video_watch_seconds is None  # not reported, not zero
    now["at"] = FIXED_NOW + timedelta(minutes=10)
    (later,) = await Sandbox().fetch_metrics(ctx, [post_id])
    now["at"] = FIXED_NOW + timedelta(minutes=20)
    (latest,) = await Sandbox().fetch_metrics(ctx, [post_id])
    assert 0 < later.views < latest.views
    assert latest.views == 2 * later.views  # linear in the minutes since publishing
    assert later.likes == later.views // 20 and later.reach == later.views * 7 // 10 and later.reposts == later.views // 200
    assert (await Sandbox().fetch_metrics(ctx, [post_id]))[0] == latest  # same time, same figures
    await Sandbox().delete(ctx, post_id)
    await Sandbox().delete(ctx, post_id)  # deleting twice is fine
    assert await Sandbox().fetch_metrics(ctx, [post_id, "sb_unknown"]) == []


async def test_account_metrics_grow_with_the_hours_and_count_live_posts(runtime, now):
    ctx = context(runtime)
    before = await Sandbox().fetch_account_metrics(ctx)
    assert before.posts == 0 and before.followers is not None and before.following is not None
    post_id = (await Sandbox().publish(ctx, request())).platform_post_id
    now["at"] = FIXED_NOW + timedelta(hours=3)
    after = await Sandbox().fetch_account_metrics(ctx)
    assert (after.posts, after.followers - before.followers, after.following) == (1, 3, before.following)
    await Sandbox().delete(ctx, post_id)
    assert (await Sandbox().fetch_account_metrics(ctx)).posts == 0


async def test_failure_count_fails_that_many_calls_then_succeeds(runtime, now):
    ctx = context(runtime, failing("transient", "2"))
    for _ in range(2):
        with pytest.raises(TransientError):
            await Sandbox().publish(ctx, request())
    assert (await Sandbox().publish(ctx, request())).platform_post_id
    # Other operations count their own failures.
    with pytest.raises(TransientError):
        await Sandbox().fetch_metrics(ctx, [])


async def test_failure_modes_are_per_account(runtime, now):
    broken = context(runtime, failing("rate_limited"), account_id="acct_broken")
    healthy = context(runtime, {"handle": "ok"}, account_id="acct_healthy")
    with pytest.raises(RateLimited) as raised:
        await Sandbox().publish(broken, request())
    assert raised.value.retry_after == 30
    assert (await Sandbox().publish(healthy, request())).platform_post_id
    assert await broken.store.get("idempotency", "tgt_1") is None  # nothing published on the broken account


async def test_unconfirmed_publishes_and_reconcile_finds_it(runtime, now):
    ctx = context(runtime, failing("unconfirmed"))
    with pytest.raises(Unconfirmed):
        await Sandbox().publish(ctx, request())
    found = await Sandbox().reconcile(ctx, request())
    assert found is not None and (await ctx.store.get("post", found.platform_post_id))["text"] == "Hello sandbox"
    assert await Sandbox().reconcile(ctx, request(key="tgt_never_sent")) is None


async def test_slow_mode_waits_then_succeeds(runtime, now):
    waited = []

    async def record_sleep(seconds):
        waited.append(seconds)

    ctx = context(runtime, failing("slow", "1"))
    ctx = type(ctx)(**{**ctx.__dict__, "sleep": record_sleep})
    assert (await Sandbox().publish(ctx, request())).platform_post_id
    assert (await Sandbox().publish(ctx, request(key="tgt_2"))).platform_post_id
    assert waited == [SLOW_SECONDS]


async def test_connect_names_the_account():
    profile = await Sandbox().connect(None, {"handle": "demo", "failure_mode": "auth_expired"})
    assert (profile.external_id, profile.handle) == ("sandbox:demo", "demo")


async def test_ads_campaigns_and_insights(runtime, now):
    ctx = context(runtime)
    ads = Sandbox().ads
    usd = AdAccountRef("sba_usd", "USD")
    assert [a.currency for a in await ads.list_ad_accounts(ctx)] == ["USD", "JPY", "KWD"]
    campaign = await ads.create_object(ctx, usd, AdSpec("campaign", "Launch", objective="traffic", daily_budget=Money(2000, "USD"), status="active"))
    assert campaign.daily_budget == Money(2000, "USD")
    assert [c.external_id for c in await ads.list_objects(ctx, usd, "campaign")] == [campaign.external_id]
    ad_set = await ads.create_object(ctx, usd, AdSpec("ad_set", "Readers", parent_id=campaign.external_id, bid=Money(45, "USD")))
    assert [s.external_id for s in await ads.list_objects(ctx, usd, "ad_set", campaign.external_id)] == [ad_set.external_id]
    now["at"] = FIXED_NOW + timedelta(days=2)
    today = now["at"].date()
    insights = await ads.fetch_insights(ctx, usd, "campaign", campaign.external_id, date(2026, 1, 1), today + timedelta(days=5))
    assert [i.day for i in insights] == [FIXED_NOW.date() + timedelta(days=n) for n in range(3)]
    assert all(i.spend.amount_minor <= 2000 and i.spend.currency == "USD" and i.clicks == i.impressions // 50 for i in insights)
    assert all(i.reach is None for i in insights)
    assert insights == await ads.fetch_insights(ctx, usd, "campaign", campaign.external_id, date(2026, 1, 1), today)
    paused = await ads.set_status(ctx, usd, "campaign", campaign.external_id, "paused")
    assert (paused.status, paused.effective_status) == ("paused", "PAUSED")
    now["at"] = FIXED_NOW + timedelta(days=6)
    assert len(await ads.fetch_insights(ctx, usd, "campaign", campaign.external_id, date(2026, 1, 1), now["at"].date())) == 3
    with pytest.raises(Rejected):
        await ads.fetch_insights(ctx, usd, "campaign", "sbc_missing", today, today)
    with pytest.raises(Rejected) as refused:
        await ads.create_object(ctx, usd, AdSpec("campaign", "Yen", daily_budget=Money(500, "JPY")))
    assert refused.value.code == "CURRENCY_MISMATCH"
