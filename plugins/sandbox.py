"""The sandbox: a local platform that needs no credentials and no network.

It publishes into the gateway's own database (through ``ProviderContext.store``), supports
threads, replies and delete, reports metrics that grow deterministically with the time since
publishing, and runs a small ads platform. It is the embedded default for the demo and examples.

Every engine path can be shown on it: an account's ``failure_mode`` credential makes its calls
fail the way real platforms do, ``failure_count`` times before succeeding (0 = always):

| failure_mode | what a call does |
|---|---|
| ``rate_limited`` | raises ``RateLimited(retry_after=30)`` |
| ``transient`` | raises ``TransientError`` (as a 503 would) |
| ``auth_expired`` | raises ``AuthExpired`` |
| ``rejected`` | raises ``Rejected("SANDBOX_REJECTED", …)`` |
| ``slow`` | waits ``SLOW_SECONDS`` first, then succeeds |
| ``unconfirmed`` | publishing stores the post, then raises ``Unconfirmed``: ``reconcile`` finds it |

``connect`` never fails, so an account can be connected in any mode. ``unconfirmed`` only
concerns publishing; the other modes apply to publish, delete, metrics and the ads calls.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from providers import (
    AccountProfile,
    AdCampaignRecord,
    AdCampaignSpec,
    AdInsight,
    AuthExpired,
    Capabilities,
    CredentialField,
    Limits,
    AccountMetricSnapshot,
    MetricSnapshot,
    MetricsSpec,
    Money,
    Provider,
    ProviderContext,
    PublishRequest,
    PublishResult,
    Quota,
    RateLimited,
    Rejected,
    SettingField,
    TransientError,
    Unconfirmed,
    hookimpl,
)

FAILURE_MODES = ("none", "rate_limited", "transient", "auth_expired", "rejected", "slow", "unconfirmed")
RETRY_AFTER_SECONDS = 30
SLOW_SECONDS = 3.0
DEFAULT_HANDLE = "sandbox"
POST_URL = "https://sandbox.socialgate.invalid/@{handle}/{post_id}"  # .invalid: never resolves
MB = 1024 * 1024

POSTS = "post"
BY_IDEMPOTENCY_KEY = "idempotency"
FAILURES = "failures"
AD_CAMPAIGNS = "ad_campaign"


def _handle(ctx: ProviderContext) -> str:
    return ctx.credential("handle") or DEFAULT_HANDLE


async def _injected_failure(ctx: ProviderContext, operation: str) -> str | None:
    """The failure mode this call must show, or None when it should succeed; counts failures per operation."""
    mode = ctx.credential("failure_mode") or "none"
    if mode == "none" or (mode == "unconfirmed" and operation != "publish"):
        return None
    allowed_failures = int(ctx.credential("failure_count") or "0")
    counter = await ctx.store.get(FAILURES, operation) or {"count": 0}
    if allowed_failures and counter["count"] >= allowed_failures:
        return None
    await ctx.store.put(FAILURES, operation, {"count": counter["count"] + 1})
    ctx.log.info("sandbox failing a call on purpose", extra={"failure_mode": mode, "operation": operation})
    return mode


async def _act_out(ctx: ProviderContext, mode: str | None) -> None:
    """Wait or raise as ``mode`` says (``unconfirmed`` is acted out by ``publish`` itself)."""
    if mode == "slow":
        await ctx.sleep(SLOW_SECONDS)
    elif mode == "rate_limited":
        raise RateLimited(RETRY_AFTER_SECONDS, "sandbox rate limit (failure_mode=rate_limited)", http_status=429)
    elif mode == "transient":
        raise TransientError("sandbox unavailable (failure_mode=transient)", code="SANDBOX_UNAVAILABLE", http_status=503)
    elif mode == "auth_expired":
        raise AuthExpired("sandbox token expired (failure_mode=auth_expired)", code="SANDBOX_TOKEN_EXPIRED", http_status=401)
    elif mode == "rejected":
        raise Rejected("SANDBOX_REJECTED", "the sandbox rejects this call (failure_mode=rejected)", http_status=400)


async def _fail_if_configured(ctx: ProviderContext, operation: str) -> None:
    await _act_out(ctx, await _injected_failure(ctx, operation))


def _post_id(idempotency_key: str, part: int) -> str:
    # Derived from the idempotency key, so a retried publish lands on the same post, as on
    # platforms that deduplicate.
    return "sb_" + hashlib.sha256(f"{idempotency_key}#{part}".encode()).hexdigest()[:20]


class SandboxAds:
    """A tiny ads platform: campaigns in the store, daily insights derived from their ids."""

    async def create_campaign(self, ctx: ProviderContext, spec: AdCampaignSpec) -> AdCampaignRecord:
        await _fail_if_configured(ctx, "ads")
        external_id = "sbc_" + hashlib.sha256(f"{spec.name}|{ctx.now().isoformat()}".encode()).hexdigest()[:16]
        record = {
            "name": spec.name,
            "objective": spec.objective,
            "status": spec.status,
            "daily_budget": {"amount_cents": spec.daily_budget.amount_cents, "currency": spec.daily_budget.currency},
            "active_since": ctx.now().date().isoformat() if spec.status == "active" else None,
            "stopped_on": None,
        }
        await ctx.store.put(AD_CAMPAIGNS, external_id, record)
        return _campaign(external_id, record)

    async def set_campaign_status(self, ctx: ProviderContext, external_id: str, status: str) -> AdCampaignRecord:
        await _fail_if_configured(ctx, "ads")
        record = await self._get(ctx, external_id)
        today = ctx.now().date().isoformat()
        if status == "active" and record["status"] != "active":
            record["active_since"], record["stopped_on"] = today, None
        elif status != "active" and record["status"] == "active":
            record["stopped_on"] = today
        record["status"] = status
        await ctx.store.put(AD_CAMPAIGNS, external_id, record)
        return _campaign(external_id, record)

    async def list_campaigns(self, ctx: ProviderContext) -> list[AdCampaignRecord]:
        await _fail_if_configured(ctx, "ads")
        return [_campaign(key, value) for key, value in await ctx.store.list(AD_CAMPAIGNS, limit=1000)]

    async def fetch_insights(self, ctx: ProviderContext, external_id: str, start: date, end: date) -> list[AdInsight]:
        await _fail_if_configured(ctx, "ads")
        record = await self._get(ctx, external_id)
        if record["active_since"] is None:
            return []
        first = max(start, date.fromisoformat(record["active_since"]))
        last = min(end, date.fromisoformat(record["stopped_on"]) if record["stopped_on"] else ctx.now().date())
        budget = Money(**record["daily_budget"])
        insights = []
        day = first
        while day <= last:
            impressions = 1000 + zlib.crc32(f"{external_id}|{day}".encode()) % 500
            clicks = impressions // 50
            spend = min(budget.amount_cents, clicks * 45)  # 45 cents a click, never over budget
            insights.append(AdInsight(external_id, day, impressions, clicks, Money(spend, budget.currency), clicks // 10))
            day += timedelta(days=1)
        return insights

    async def _get(self, ctx: ProviderContext, external_id: str) -> dict[str, Any]:
        record = await ctx.store.get(AD_CAMPAIGNS, external_id)
        if record is None:
            raise Rejected("NOT_FOUND", f"no sandbox ad campaign {external_id}", http_status=404)
        return record


def _campaign(external_id: str, record: dict[str, Any]) -> AdCampaignRecord:
    return AdCampaignRecord(external_id, record["name"], record["objective"], record["status"], Money(**record["daily_budget"]))


class Sandbox(Provider):
    id = "sandbox"
    name = "Sandbox"
    description = "A local platform for demos and tests: publishes into the gateway's database."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, reconcile=True, ads=True)
    limits = Limits(
        max_text_length=5000,
        max_media=4,
        media_kinds=frozenset({"image", "gif", "video"}),
        max_media_bytes={"image": 10 * MB, "gif": 15 * MB, "video": 200 * MB},
        max_media_duration_ms={"video": 10 * 60 * 1000},
        max_thread_parts=25,
        quotas=(Quota(count=1000, period_seconds=3600, description="generous, so demos never hit it"),),
    )
    auth = (
        CredentialField("handle", "Handle", required=False, pattern=r"[A-Za-z0-9_.-]{1,64}", help="Shown in post URLs."),
        CredentialField(
            "failure_mode", "Failure mode", required=False, kind="choice", choices=FAILURE_MODES, default="none",
            help="Make this account's calls fail the way real platforms do.",
        ),
        CredentialField(
            "failure_count", "Failures before success", required=False, kind="integer", default="0",
            help="How many calls fail before they succeed; 0 = always fail.",
        ),
    )
    settings = (SettingField("visibility", "Visibility", type="choice", choices=("public", "private"), default="public"),)
    ads = SandboxAds()
    # Video watch time and quotes stay unreported, so demos show a null beside the figures.
    metrics = MetricsSpec(
        post=("views", "reach", "likes", "comments", "shares", "reposts", "saves", "clicks"),
        account=("followers", "following", "posts"),
        batch_size=100,
        lookback_days=90,
        min_interval_seconds=60,
    )

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        handle = credentials.get("handle") or DEFAULT_HANDLE
        return AccountProfile(external_id=f"sandbox:{handle}", handle=handle, display_name=f"Sandbox @{handle}")

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        failure = await _injected_failure(ctx, "publish")
        await _act_out(ctx, failure)
        existing = await self.reconcile(ctx, request)
        if existing is not None:
            return existing
        now = ctx.now().isoformat()
        parts = [(request.text, request.media)] + [(part.text, part.media) for part in request.thread]
        ids = [_post_id(request.idempotency_key, index) for index in range(len(parts))]
        for index, (text, media) in enumerate(parts):
            await ctx.store.put(
                POSTS,
                ids[index],
                {
                    "text": text,
                    "media": [{"kind": m.kind, "url": m.url, "alt_text": m.alt_text} for m in media],
                    "settings": dict(request.settings),
                    "reply_to": request.reply_to if index == 0 else ids[index - 1],
                    "published_at": now,
                    "deleted_at": None,
                },
            )
        await ctx.store.put(BY_IDEMPOTENCY_KEY, request.idempotency_key, {"post_ids": ids})
        if failure == "unconfirmed":
            raise Unconfirmed("the sandbox published and then dropped the answer (failure_mode=unconfirmed)")
        return self._result(ctx, ids)

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        found = await ctx.store.get(BY_IDEMPOTENCY_KEY, request.idempotency_key)
        return None if found is None else self._result(ctx, found["post_ids"])

    def _result(self, ctx: ProviderContext, ids: list[str]) -> PublishResult:
        return PublishResult(
            platform_post_id=ids[0],
            url=POST_URL.format(handle=_handle(ctx), post_id=ids[0]),
            raw={"ids": ids},
            thread_post_ids=tuple(ids[1:]),
        )

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        await _fail_if_configured(ctx, "delete")
        post = await ctx.store.get(POSTS, platform_post_id)
        if post is not None and post["deleted_at"] is None:
            post["deleted_at"] = ctx.now().isoformat()
            await ctx.store.put(POSTS, platform_post_id, post)

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        await _fail_if_configured(ctx, "metrics")
        now = ctx.now()
        snapshots = []
        for post_id in platform_post_ids:
            post = await ctx.store.get(POSTS, post_id)
            if post is None or post["deleted_at"] is not None:
                continue
            snapshots.append(_metrics(post_id, datetime.fromisoformat(post["published_at"]), now))
        return snapshots

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        await _fail_if_configured(ctx, "metrics")
        return await _account_metrics(ctx)


def _metrics(post_id: str, published_at: datetime, now: datetime) -> MetricSnapshot:
    """Figures that grow linearly with the minutes since publishing, at a pace set by the post id.

    Quotes and video watch time stay None: the sandbox, like most platforms for a text post, does
    not report them — a null the API must carry through, never a zero.
    """
    minutes = max(0, int((now - published_at).total_seconds() // 60))
    pace = 8 + zlib.crc32(post_id.encode()) % 7
    views = pace * 5 * minutes
    return MetricSnapshot(
        platform_post_id=post_id,
        captured_at=now,
        views=views,
        reach=views * 7 // 10,
        likes=views // 20,
        comments=views // 150,
        shares=views // 300,
        reposts=views // 200,
        saves=views // 250,
        clicks=views // 40,
        raw={"minutes_since_publish": minutes, "pace": pace},
    )


async def _account_metrics(ctx: ProviderContext) -> AccountMetricSnapshot:
    """Followers grow by one an hour from a base set by the handle; posts counts what was published."""
    now = ctx.now()
    posts = [value for _, value in await ctx.store.list(POSTS, limit=10_000) if value.get("deleted_at") is None]
    base = 100 + zlib.crc32(_handle(ctx).encode()) % 900
    hours = int(now.timestamp() // 3600) % 10_000
    return AccountMetricSnapshot(captured_at=now, followers=base + hours, following=base // 3, posts=len(posts))


@hookimpl
def register_providers() -> list[Provider]:
    return [Sandbox()]
