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
concerns publishing; the other modes apply to publish, poll, delete, metrics and the ads calls.

Media that takes the platform time to process is shown the same way: with ``processing_polls``
at N (0 = off), ``publish`` counts an upload and answers ``Processing`` (stage ``uploaded``, then
``transcoding`` at each check; checked again after ``processing_seconds``), and the post exists after the Nth ``poll``; with
``processing_outcome`` ``error`` the Nth poll finds the media failed instead
(``Rejected("SANDBOX_PROCESSING_FAILED")``, as a container in ERROR). Every upload is counted
in the store (``uploads``), so a test can show a post was uploaded once however often polled.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    AdAccountInfo,
    AdAccountRef,
    AdChanges,
    AdInsight,
    AdLevel,
    AdObject,
    AdSpec,
    AdStatus,
    AuthExpired,
    Capabilities,
    CredentialField,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    Money,
    Processing,
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
from providers.ads import PARENT_LEVEL, merge_platform_fields

FAILURE_MODES = ("none", "rate_limited", "transient", "auth_expired", "rejected", "slow", "unconfirmed")
PROCESSING_OUTCOMES = ("published", "error")
DEFAULT_PROCESSING_SECONDS = 30
RETRY_AFTER_SECONDS = 30
SLOW_SECONDS = 3.0
DEFAULT_HANDLE = "sandbox"
POST_URL = "https://sandbox.socialgate.invalid/@{handle}/{post_id}"  # .invalid: never resolves
MB = 1024 * 1024

POSTS = "post"
BY_IDEMPOTENCY_KEY = "idempotency"
FAILURES = "failures"
UPLOADS = "uploads"  # per idempotency key: how many uploads, and how many polls since the last
# One record per publish call, keyed "<idempotency key>/<call>": how many times the platform was
# asked to publish a target, which tests check is never twice (a record per call, not a counter,
# so concurrent calls cannot hide each other).
PUBLISH_CALLS = "publish_call"
AD_OBJECTS = "ad_object"
SANDBOX_MONEY_FIELDS = frozenset({"budget", "bid_amount", "amount_minor"})


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


def _processing_polls(ctx: ProviderContext) -> int:
    return int(ctx.credential("processing_polls") or "0")


def _processing(ctx: ProviderContext, upload: str, stage: str = "transcoding") -> Processing:
    seconds = int(ctx.credential("processing_seconds") or DEFAULT_PROCESSING_SECONDS)
    return Processing(handle={"upload": upload}, check_after=timedelta(seconds=seconds), stage=stage)


def _post_id(idempotency_key: str, part: int) -> str:
    # Derived from the idempotency key, so a retried publish lands on the same post, as on
    # platforms that deduplicate.
    return "sb_" + hashlib.sha256(f"{idempotency_key}#{part}".encode()).hexdigest()[:20]


class SandboxAds:
    """A tiny ads platform: three ad accounts (USD, JPY, KWD), objects in the store, daily
    insights derived from their ids. Money is stored as the integer minor units it is given."""

    ACCOUNTS = (
        AdAccountInfo("sba_usd", "Sandbox ads (USD)", "USD", "UTC"),
        AdAccountInfo("sba_jpy", "Sandbox ads (JPY)", "JPY", "Asia/Tokyo"),
        AdAccountInfo("sba_kwd", "Sandbox ads (KWD)", "KWD", "Asia/Kuwait"),
    )

    async def list_ad_accounts(self, ctx: ProviderContext) -> list[AdAccountInfo]:
        await _fail_if_configured(ctx, "ads")
        return list(self.ACCOUNTS)

    async def list_objects(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, parent_id: str | None = None) -> list[AdObject]:
        await _fail_if_configured(ctx, "ads")
        records = await ctx.store.list(AD_OBJECTS, limit=1000)
        return [
            _ad_object(key, value) for key, value in records
            if value["account"] == account.external_id and value["level"] == level and parent_id in (None, value["parent_id"])
        ]

    async def get_object(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str) -> AdObject:
        await _fail_if_configured(ctx, "ads")
        return _ad_object(external_id, await self._get(ctx, account, level, external_id))

    async def create_object(self, ctx: ProviderContext, account: AdAccountRef, spec: AdSpec) -> AdObject:
        await _fail_if_configured(ctx, "ads")
        if spec.parent_id is not None:
            parent_level = PARENT_LEVEL[spec.level]
            assert parent_level is not None
            await self._get(ctx, account, parent_level, spec.parent_id)
        for money in (spec.daily_budget, spec.bid):
            if money is not None and money.currency != account.currency:
                raise Rejected("CURRENCY_MISMATCH", f"this ad account counts money in {account.currency}, not {money.currency}", http_status=400)
        prefix = {"campaign": "sbc_", "ad_set": "sbs_", "ad": "sbad_"}[spec.level]
        external_id = prefix + hashlib.sha256(f"{spec.level}|{spec.name}|{ctx.now().isoformat()}|{spec.parent_id}".encode()).hexdigest()[:16]
        record = {
            "account": account.external_id,
            "level": spec.level,
            "name": spec.name,
            "parent_id": spec.parent_id,
            "objective": spec.objective,
            "status": spec.status,
            "daily_budget": _money_record(spec.daily_budget),
            "bid": _money_record(spec.bid),
            "starts_at": spec.starts_at.isoformat() if spec.starts_at else None,
            "ends_at": spec.ends_at.isoformat() if spec.ends_at else None,
            "active_since": ctx.now().date().isoformat() if spec.status == "active" else None,
            "stopped_on": None,
        }
        merge_platform_fields(record, spec, SANDBOX_MONEY_FIELDS)  # refuses what would bypass Money, as real platforms' adapters do
        record["platform_fields"] = dict(spec.platform_fields)
        await ctx.store.put(AD_OBJECTS, external_id, record)
        return _ad_object(external_id, record)

    async def update_object(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, changes: AdChanges
    ) -> AdObject:
        await _fail_if_configured(ctx, "ads")
        record = await self._get(ctx, account, level, external_id)
        for name, value in changes.as_dict().items():
            if isinstance(value, Money):
                if value.currency != account.currency:
                    raise Rejected("CURRENCY_MISMATCH", f"this ad account counts money in {account.currency}", http_status=400)
                record[name] = _money_record(value)
            else:
                record[name] = value.isoformat() if isinstance(value, datetime) else value
        await ctx.store.put(AD_OBJECTS, external_id, record)
        return _ad_object(external_id, record)

    async def set_status(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, status: AdStatus
    ) -> AdObject:
        await _fail_if_configured(ctx, "ads")
        record = await self._get(ctx, account, level, external_id)
        if record["status"] == "deleted":
            raise Rejected("SANDBOX_DELETED", "a deleted sandbox ad object cannot change status", http_status=400)
        today = ctx.now().date().isoformat()
        if status == "active" and record["status"] != "active":
            record["active_since"], record["stopped_on"] = today, None
        elif status != "active" and record["status"] == "active":
            record["stopped_on"] = today
        record["status"] = status
        await ctx.store.put(AD_OBJECTS, external_id, record)
        return _ad_object(external_id, record)

    async def fetch_insights(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, start: date, end: date
    ) -> list[AdInsight]:
        await _fail_if_configured(ctx, "ads")
        record = await self._get(ctx, account, level, external_id)
        if record["active_since"] is None:
            return []
        first = max(start, date.fromisoformat(record["active_since"]))
        last = min(end, date.fromisoformat(record["stopped_on"]) if record["stopped_on"] else ctx.now().date())
        budget = record["daily_budget"]
        cap = budget["amount_minor"] if budget else None
        insights = []
        day = first
        while day <= last:
            impressions = 1000 + zlib.crc32(f"{external_id}|{day}".encode()) % 500
            clicks = impressions // 50
            spend = clicks * 45 if cap is None else min(cap, clicks * 45)  # 45 minor units a click, never over budget
            # Reach is not reported, as many platforms leave it out of daily breakdowns: None, not 0.
            insights.append(AdInsight(level, external_id, day, impressions, clicks, Money(spend, account.currency), None, clicks // 10))
            day += timedelta(days=1)
        return insights

    async def _get(self, ctx: ProviderContext, account: AdAccountRef, level: str, external_id: str) -> dict[str, Any]:
        record = await ctx.store.get(AD_OBJECTS, external_id)
        if record is None or record["account"] != account.external_id or record["level"] != level:
            raise Rejected("NOT_FOUND", f"no sandbox {level} {external_id[:40]}", http_status=404)
        return record


def _money_record(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else {"amount_minor": money.amount_minor, "currency": money.currency}


def _ad_object(external_id: str, record: dict[str, Any]) -> AdObject:
    def money(name: str) -> Money | None:
        value = record.get(name)
        return None if value is None else Money(int(value["amount_minor"]), value["currency"])

    def when(name: str) -> datetime | None:
        return datetime.fromisoformat(record[name]) if record.get(name) else None

    status = record["status"]
    return AdObject(
        level=record["level"], external_id=external_id, name=record["name"], status=status,
        effective_status={"active": "RUNNING", "paused": "PAUSED"}.get(status, status.upper()),
        parent_id=record["parent_id"], objective=record["objective"], daily_budget=money("daily_budget"), bid=money("bid"),
        starts_at=when("starts_at"), ends_at=when("ends_at"), raw=record,
    )


class Sandbox(Provider):
    id = "sandbox"
    name = "Sandbox"
    approval = "None: the sandbox talks to no platform."
    description = "A local platform for demos and tests: publishes into the gateway's database."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, reconcile=True, ads=True, processing=True)
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
        CredentialField(
            "processing_polls", "Processing polls", required=False, kind="integer", default="0",
            help="Publishing answers 'still processing' and the post exists after this many checks; 0 = at once.",
        ),
        CredentialField(
            "processing_seconds", "Seconds between checks", required=False, kind="integer", default=str(DEFAULT_PROCESSING_SECONDS),
            help="How long the sandbox asks the gateway to wait before each check while processing.",
        ),
        CredentialField(
            "processing_outcome", "Processing outcome", required=False, kind="choice", choices=PROCESSING_OUTCOMES, default="published",
            help="'error': the last check finds the media failed, as a platform's container in ERROR.",
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

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        await ctx.store.put(PUBLISH_CALLS, f"{request.idempotency_key}/{uuid.uuid4().hex}", {"at": ctx.now().isoformat()})
        failure = await _injected_failure(ctx, "publish")
        await _act_out(ctx, failure)
        existing = await self.reconcile(ctx, request)
        if existing is not None:
            return existing
        if _processing_polls(ctx):
            uploads = await ctx.store.get(UPLOADS, request.idempotency_key) or {"uploads": 0}
            await ctx.store.put(UPLOADS, request.idempotency_key, {"uploads": uploads["uploads"] + 1, "polls": 0})
            return _processing(ctx, request.idempotency_key, "uploaded")
        return await self._store_post(ctx, request, failure)

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """One check on an upload: still transcoding until the Nth, then the post (or the media's failure)."""
        await _fail_if_configured(ctx, "poll")
        existing = await self.reconcile(ctx, request)  # a check cut short after the post went out finds it
        if existing is not None:
            return existing
        upload = await ctx.store.get(UPLOADS, str(handle.get("upload")))
        if upload is None:
            raise Rejected("SANDBOX_UPLOAD_NOT_FOUND", "the sandbox has no such upload", http_status=404)
        upload["polls"] += 1
        await ctx.store.put(UPLOADS, str(handle["upload"]), upload)
        if upload["polls"] < _processing_polls(ctx):
            return _processing(ctx, str(handle["upload"]))
        if ctx.credential("processing_outcome") == "error":
            raise Rejected("SANDBOX_PROCESSING_FAILED", "the sandbox could not process the media (processing_outcome=error)", http_status=400)
        return await self._store_post(ctx, request, None)

    async def _store_post(self, ctx: ProviderContext, request: PublishRequest, failure: str | None) -> PublishResult:
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
