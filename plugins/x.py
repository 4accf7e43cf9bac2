"""X (Twitter) through API v2: posts, threads, chunked media upload, delete, metrics, reconcile.

Auth is OAuth 2.0 authorization code with PKCE (X requires S256) and ``offline.access`` so X
issues refresh tokens; access tokens live two hours and X rotates the refresh token on every
refresh. Confidential clients authenticate at the token endpoint with HTTP Basic
(``client_id:client_secret``); public clients send only ``client_id`` in the form.

What X answers, and what each answer becomes:

| answer | raised |
|---|---|
| 429 with ``x-rate-limit-reset`` (epoch seconds) | ``RateLimited`` until that moment (or the 24-hour window's reset when that one ran out) |
| 401 ``{"title":"Unauthorized",…}`` | ``AuthExpired`` |
| 403 ``{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}`` | ``Rejected("DUPLICATE_CONTENT", …)`` |
| 400 ``{"errors":[{"message":…}],"title":"Invalid Request","type":"https://api.twitter.com/2/problems/invalid-request",…}`` | ``Rejected("INVALID_REQUEST", <the messages>)`` |
| 5xx | ``TransientError`` |
| no answer after ``POST /2/tweets`` was sent | ``Unconfirmed`` (``reconcile`` looks for the post) |
| the gateway's deadline while uploading media or checking its status | nothing was posted (``ctx.preparing()``): the gateway retries |
| FINALIZE's ``processing_info`` ``pending``/``in_progress`` | ``Processing`` (checked again after ``check_after_secs``; ``poll`` asks STATUS, then posts) |
| STATUS or FINALIZE ``processing_info.state`` ``failed`` | ``Rejected("MEDIA_PROCESSING_FAILED", …)``: nothing was posted |

The account's X user id and username come from ``GET /2/users/me``: ``connect`` names the
account with it, and publishing looks it up once per account (for the post URL and for
``reconcile``) and keeps it in ``ctx.store`` — unless the credentials already carry
``user_id`` and ``username``.
"""

from __future__ import annotations

import html
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    Capabilities,
    Issue,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    OAuth2Spec,
    PostDraft,
    PostedPart,
    Processing,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    TextUnit,
    TokenSet,
    Unconfirmed,
    hookimpl,
    publish_thread,
    reported,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import request_tokens
from providers.text import find_urls
from providers.threads import THREAD_PROGRESS

API = "https://api.x.com/2"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = "https://api.x.com/2/oauth2/token"
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
POST_URL = "https://x.com/{username}/status/{post_id}"

MB = 1024 * 1024
UPLOAD_CHUNK_BYTES = 4 * MB  # X's own sample appends 4 MB segments; at most 1,000 segments
MEDIA_CATEGORIES = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}
ALT_TEXT_KINDS = ("image", "gif")  # X takes alt text for images and GIFs only
MAX_ALT_TEXT = 1000
PROCESSING = ("pending", "in_progress")

METRICS_BATCH = 100  # GET /2/tweets takes at most 100 ids
PRIVATE_METRICS_DAYS = 30  # non-public and organic metrics exist only for posts under 30 days old
TWITTER_EPOCH_MS = 1288834974657  # snowflake ids carry their creation time after this epoch

RECONCILE_WINDOW = timedelta(hours=24)
RECONCILE_PAGE = 100  # the most a timeline page holds; reconcile reads one page

IDENTITY = "identity"  # ctx.store kind: the account's X user id and username


class X(Provider):
    id = "x"
    name = "X"
    approval = "A paid X API access level (Basic or above, or pay-per-use credits): the Free tier's monthly write cap is far below a scheduler's needs."
    description = "Posts, threads and media on X (Twitter) through API v2 with OAuth 2.0."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, reconcile=True, processing=True)
    limits = Limits(
        max_text_length=280,
        text_unit=TextUnit.X_WEIGHTED,
        max_media=4,
        media_kinds=frozenset({"image", "gif", "video"}),
        # docs.x.com "Media upload endpoints" / "Best practices"
        max_media_bytes={"image": 5 * MB, "gif": 15 * MB, "video": 512 * MB},
        max_media_per_kind={"image": 4, "gif": 1, "video": 1},
        max_thread_parts=25,  # our cap: every part is a separate POST against the 200/15 min quota
        quotas=(
            Quota(count=200, period_seconds=15 * 60, description="POST /2/tweets: 200 per 15 minutes per user"),
            Quota(count=300, period_seconds=3 * 3600, description="POST /2/tweets: 300 per 3 hours per user per app, shared with reposts"),
        ),
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, pkce=True)
    # views (impression_count) and clicks (url_link_clicks) are private figures: null after 30 days.
    metrics = MetricsSpec(
        post=("views", "likes", "comments", "reposts", "quotes", "saves", "clicks"),
        account=("followers", "following", "posts"),
        batch_size=METRICS_BATCH,
        min_interval_seconds=900,
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """X takes up to four images, or one GIF, or one video — never a mix."""
        kinds = {media.kind for media in draft.media}
        if len(draft.media) > 1 and kinds & {"gif", "video"}:
            return [Issue(("media",), "MEDIA_COMBINATION_NOT_SUPPORTED", "X takes up to 4 images, or 1 GIF, or 1 video, never a mix.")]
        return []

    # -- OAuth -------------------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        if not code_verifier:
            raise Rejected("PKCE_REQUIRED", "X requires PKCE: the code exchange needs the code_verifier")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": client_id,
        }
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=False, basic_auth=_client_auth(client_id, client_secret))

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """X rotates refresh tokens: the answer's new one replaces the old, which stops working."""
        form = {"grant_type": "refresh_token", "refresh_token": ctx.credential("refresh_token") or "", "client_id": client_id}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=True, basic_auth=_client_auth(client_id, client_secret))

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        body = await _get_json(ctx, f"{API}/users/me", token=credentials.get("access_token", ""), params={"user.fields": "profile_image_url"})
        user = body["data"]
        return AccountProfile(
            external_id=user["id"],
            handle=user["username"],
            display_name=user.get("name", ""),
            avatar_url=user.get("profile_image_url"),
            raw=body,
        )

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        return await self._post_thread(ctx, request)

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """Ask STATUS about the part's media X was still processing; once all succeeded, post the thread on from that part."""
        part_media = _parts_media(request)[handle["part"]]
        pending, wait = [], 0.0
        with ctx.preparing():  # status checks post nothing: running out of time here is a plain retry
            for media_id, item in handle["pending"]:
                status = await _get_json(ctx, f"{API}/media/upload", params={"command": "STATUS", "media_id": media_id})
                info = status["data"].get("processing_info")
                if (check_after := _still_processing(media_id, info)) is not None:
                    pending.append([media_id, item])
                    wait = max(wait, check_after)
                else:
                    await _set_alt_text(ctx, media_id, part_media[item])
        if pending:
            return _processing({**handle, "pending": pending}, wait)
        try:
            return await self._post_thread(ctx, request, ready=(handle["part"], list(handle["media_ids"])))
        except Rejected as error:
            # A check cut short after X took the post (the worker died) is made again, and X refuses
            # the same post twice: it is there, so find it rather than fail a published post.
            if error.code != "DUPLICATE_CONTENT" or (found := await self.reconcile(ctx, request)) is None:
                raise
            return found

    async def _post_thread(self, ctx: ProviderContext, request: PublishRequest, ready: tuple[int, list[str]] | None = None) -> PublishResult | Processing:
        """Post the thread (``publish_thread``: parts X confirmed are not sent again); a part whose
        video X still processes stops it, answered as ``Processing`` with that part's media ids.
        ``ready``: a part whose media ids are processed already (from ``poll``)."""
        _, username = await _identity(ctx)

        async def post_part(index: int, text: str, media: tuple[PublishMedia, ...], reply_to: str | None) -> PostedPart:
            if ready is not None and index == ready[0]:
                media_ids = ready[1]
            else:
                with ctx.preparing():  # uploads post nothing: running out of time here is a plain retry
                    media_ids = await _upload_part(ctx, index, media)
            body: dict[str, Any] = {"text": text}
            if media_ids:
                body["media"] = {"media_ids": media_ids}
            if reply_to:
                body["reply"] = {"in_reply_to_tweet_id": reply_to}
            response = await send(ctx, "POST", f"{API}/tweets", json=body, headers=_bearer(ctx), publishes=True)
            _raise_for(response, ctx)
            answer = response.json()
            post_id = (answer.get("data") or {}).get("id")
            if not post_id:
                raise Unconfirmed(f"X accepted the post but named no id: {response.text[:500]}")
            return PostedPart(post_id, POST_URL.format(username=username, post_id=post_id), answer)

        try:
            return await publish_thread(ctx, request, post_part)
        except _StillProcessing as still:
            return _processing(still.handle, still.check_after)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        response = await send(ctx, "DELETE", f"{API}/tweets/{urllib.parse.quote(platform_post_id, safe='')}", headers=_bearer(ctx))
        if response.status_code == 404:
            return  # already gone
        _raise_for(response, ctx)
        if response.json().get("data", {}).get("deleted") is not True:
            raise Rejected("NOT_DELETED", f"X did not delete post {platform_post_id}: {response.text[:500]}")

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """Public figures for every post; impressions and link clicks from the private ones while X keeps them (30 days)."""
        now = ctx.now()
        recent = [i for i in platform_post_ids if _is_recent(i, now)]
        older = [i for i in platform_post_ids if not _is_recent(i, now)]
        snapshots: list[MetricSnapshot] = []
        for ids, fields in ((recent, "public_metrics,non_public_metrics,organic_metrics"), (older, "public_metrics")):
            for start in range(0, len(ids), METRICS_BATCH):
                batch = ids[start : start + METRICS_BATCH]
                body = await _get_json(ctx, f"{API}/tweets", params={"ids": ",".join(batch), "tweet.fields": fields})
                snapshots += [_snapshot(post, now) for post in body.get("data", [])]
        return snapshots

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """``GET /2/users/me?user.fields=public_metrics``: followers, following and posts (tweet_count)."""
        user = (await _get_json(ctx, f"{API}/users/me", params={"user.fields": "public_metrics"})).get("data") or {}
        public = user.get("public_metrics") or {}
        return AccountMetricSnapshot(
            captured_at=ctx.now(),
            followers=reported(public.get("followers_count")),
            following=reported(public.get("following_count")),
            posts=reported(public.get("tweet_count")),
            extra={"listed": reported(public.get("listed_count"))},
            raw=public,
        )

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """Find the posts of ``request`` among the account's recent posts; None when they are not all there.

        Parts a thread already confirmed are taken from ``ctx.store``; each other part is looked
        for, in order, among the account's posts of the last 24 hours (one timeline page, 100
        posts), as a post with the same text replying to the part before. Limits: X shortens
        every link to t.co, so links are compared as "some link" and an attached media's trailing
        t.co link is ignored; a post outside that page or window is not found; an identical
        earlier post in the window would be taken for ours (X itself refuses such duplicates).
        Parts found are recorded, so a publish after ``None`` resumes after them.
        """
        user_id, username = await _identity(ctx)
        progress = await ctx.store.get(THREAD_PROGRESS, request.idempotency_key) or {"parts": []}
        found = list(progress["parts"])
        texts = [request.text] + [part.text for part in request.thread]
        if len(found) < len(texts):
            timeline = await _recent_posts(ctx, user_id)
            for text in texts[len(found) :]:
                parent = found[-1]["post_id"] if found else request.reply_to
                match = next((p for p in timeline if _same_text(p["text"], text) and _replies_to(p) == parent), None)
                if match is None:
                    break
                found.append({"post_id": match["id"], "url": POST_URL.format(username=username, post_id=match["id"])})
            if found and len(texts) > 1:
                await ctx.store.put(THREAD_PROGRESS, request.idempotency_key, {"parts": found})
        if len(found) < len(texts):
            return None
        return PublishResult(
            platform_post_id=found[0]["post_id"],
            url=found[0]["url"],
            raw={"reconciled": found},
            thread_post_ids=tuple(part["post_id"] for part in found[1:]),
        )


# -- requests ------------------------------------------------------------------------------


def _client_auth(client_id: str, client_secret: str) -> tuple[str, str] | None:
    """HTTP Basic for confidential clients (those with a secret); public clients send none."""
    return (client_id, client_secret) if client_secret else None


def _bearer(ctx: ProviderContext, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token if token is not None else ctx.credential('access_token') or ''}"}


async def _get_json(ctx: ProviderContext, url: str, *, params: dict[str, str], token: str | None = None) -> dict[str, Any]:
    response = await send(ctx, "GET", url, params=params, headers=_bearer(ctx, token))
    _raise_for(response, ctx)
    return response.json()


async def _identity(ctx: ProviderContext) -> tuple[str, str]:
    """The account's X user id and username: from the credentials, the store, or ``GET /2/users/me`` once."""
    user_id, username = ctx.credential("user_id"), ctx.credential("username")
    if user_id and username:
        return user_id, username
    known = await ctx.store.get(IDENTITY, "me")
    if known is None:
        user = (await _get_json(ctx, f"{API}/users/me", params={}))["data"]
        known = {"user_id": user["id"], "username": user["username"]}
        await ctx.store.put(IDENTITY, "me", known)
    return known["user_id"], known["username"]


class _StillProcessing(Exception):
    """A part's media X is still processing: the thread stops before that part, and publish answers ``Processing``."""

    def __init__(self, handle: dict[str, Any], check_after: float) -> None:
        super().__init__("X is still processing media")
        self.handle, self.check_after = handle, check_after


def _processing(handle: Mapping[str, Any], check_after: float) -> Processing:
    # X's media ids expire (``expires_after_secs``, a day): the gateway's default deadline matches.
    return Processing(handle=dict(handle), check_after=timedelta(seconds=max(1.0, check_after)), stage="transcoding")


def _parts_media(request: PublishRequest) -> list[tuple[PublishMedia, ...]]:
    return [request.media, *(part.media for part in request.thread)]


async def _upload_part(ctx: ProviderContext, index: int, media: tuple[PublishMedia, ...]) -> list[str]:
    """Upload a part's media; their ids, or ``_StillProcessing`` when X must process some first."""
    media_ids: list[str] = []
    pending: list[list[Any]] = []
    wait = 0.0
    for item, attachment in enumerate(media):
        media_id, info = await _upload(ctx, attachment)
        media_ids.append(media_id)
        if (check_after := _still_processing(media_id, info)) is not None:
            pending.append([media_id, item])
            wait = max(wait, check_after)
        else:
            await _set_alt_text(ctx, media_id, attachment)
    if pending:
        raise _StillProcessing({"part": index, "media_ids": media_ids, "pending": pending}, wait)
    return media_ids


async def _upload(ctx: ProviderContext, media: PublishMedia) -> tuple[str, dict[str, Any] | None]:
    """Upload one attachment in chunks (initialize, append…, finalize); its media id and ``processing_info``."""
    init = {"media_type": media.mime_type, "total_bytes": media.size_bytes, "media_category": MEDIA_CATEGORIES[media.kind]}
    response = await send(ctx, "POST", f"{API}/media/upload/initialize", json=init, headers=_bearer(ctx))
    _raise_for(response, ctx)
    media_id = response.json()["data"]["id"]
    segment = 0
    async for chunk in media.source.chunks(UPLOAD_CHUNK_BYTES):
        response = await send(
            ctx, "POST", f"{API}/media/upload/{media_id}/append",
            data={"segment_index": str(segment)}, files={"media": ("blob", chunk, "application/octet-stream")}, headers=_bearer(ctx),
        )
        _raise_for(response, ctx)
        segment += 1
    response = await send(ctx, "POST", f"{API}/media/upload/{media_id}/finalize", headers=_bearer(ctx))
    _raise_for(response, ctx)
    return media_id, response.json()["data"].get("processing_info")


async def _set_alt_text(ctx: ProviderContext, media_id: str, media: PublishMedia) -> None:
    """X takes alt text once the media is processed, for images and GIFs only."""
    if media.alt_text and media.kind in ALT_TEXT_KINDS:
        metadata = {"id": media_id, "metadata": {"alt_text": {"text": media.alt_text[:MAX_ALT_TEXT]}}}
        response = await send(ctx, "POST", f"{API}/media/metadata", json=metadata, headers=_bearer(ctx))
        _raise_for(response, ctx)


def _still_processing(media_id: str, info: dict[str, Any] | None) -> float | None:
    """Seconds X asks to wait (``check_after_secs``) while it processes the media; None once it is done.

    Media X failed to process was never posted: ``Rejected``, never ``Unconfirmed``.
    """
    if info is not None and info.get("state") in PROCESSING:
        return float(info.get("check_after_secs") or 1)
    if info is not None and info.get("state") == "failed":
        error = info.get("error") or {}
        message = f"X could not process media {media_id}: {error.get('message') or error.get('name') or 'failed'}"
        raise Rejected("MEDIA_PROCESSING_FAILED", message, raw=info)
    return None


async def _recent_posts(ctx: ProviderContext, user_id: str) -> list[dict[str, Any]]:
    since = (ctx.now() - RECONCILE_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"max_results": str(RECONCILE_PAGE), "start_time": since, "exclude": "retweets", "tweet.fields": "created_at,referenced_tweets"}
    return (await _get_json(ctx, f"{API}/users/{user_id}/tweets", params=params)).get("data", [])


# -- answers -------------------------------------------------------------------------------


def _raise_for(response: httpx.Response, ctx: ProviderContext) -> None:
    """Map an X answer to the SDK's errors, in X's own words (problem ``detail`` or ``errors[].message``)."""
    if response.is_success:
        return
    body = json_object(response) or {}
    messages = [e["message"] for e in body.get("errors", []) if isinstance(e, dict) and e.get("message")]
    message = "; ".join(messages) or body.get("detail") or body.get("title")
    raise_for_response(response, code=_error_code(body, message), message=message, retry_after=_rate_limit_wait(response, ctx.now()))


def _error_code(body: dict[str, Any], message: str | None) -> str | None:
    if message and "duplicate content" in message:
        return "DUPLICATE_CONTENT"
    problem = str(body.get("type") or "")
    if problem.startswith("https://api.twitter.com/2/problems/"):
        return problem.rsplit("/", 1)[-1].replace("-", "_").upper()
    title = body.get("title")
    return title.upper().replace(" ", "_") if isinstance(title, str) and title else None


def _rate_limit_wait(response: httpx.Response, now: datetime) -> float | None:
    """Seconds until X lifts the limit that ran out: the 15-minute window, or a 24-hour one at 0 remaining."""
    resets = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        reset = response.headers.get(f"{prefix}-reset")
        remaining = response.headers.get(f"{prefix}-remaining")
        if reset and reset.isdigit() and (prefix == "x-rate-limit" or remaining == "0"):
            resets.append(int(reset))
    if not resets:
        return None
    return max(0.0, max(resets) - now.timestamp())


def _is_recent(post_id: str, now: datetime) -> bool:
    """Whether the post is young enough for X's private metrics (its snowflake id carries its time)."""
    if not post_id.isdigit():
        return False
    created_ms = (int(post_id) >> 22) + TWITTER_EPOCH_MS
    return now.timestamp() * 1000 - created_ms < PRIVATE_METRICS_DAYS * 86_400_000


def _snapshot(post: dict[str, Any], now: datetime) -> MetricSnapshot:
    """Public figures always (views from the public impression_count when the organic one is gone);
    link and profile clicks only from the private figures X sends for posts under 30 days."""
    public = post.get("public_metrics") or {}
    private = post.get("non_public_metrics") or {}
    organic = post.get("organic_metrics") or {}
    return MetricSnapshot(
        platform_post_id=post["id"],
        captured_at=now,
        views=reported(organic.get("impression_count", private.get("impression_count", public.get("impression_count")))),
        likes=reported(public.get("like_count")),
        comments=reported(public.get("reply_count")),
        reposts=reported(public.get("retweet_count")),
        quotes=reported(public.get("quote_count")),
        saves=reported(public.get("bookmark_count")),
        clicks=reported(private.get("url_link_clicks")),
        extra={"user_profile_clicks": reported(private.get("user_profile_clicks"))},
        raw=post,
    )


def _comparable(text: str) -> str:
    """Text as X stores it and as we sent it, made comparable: entities decoded, links made alike."""
    text = unicodedata.normalize("NFC", html.unescape(text)).strip()
    for start, end in reversed(find_urls(text)):
        text = text[:start] + "\x00" + text[end:]
    return text.rstrip("\x00 \n")


def _same_text(theirs: str, ours: str) -> bool:
    return _comparable(theirs) == _comparable(ours)


def _replies_to(post: dict[str, Any]) -> str | None:
    return next((ref["id"] for ref in post.get("referenced_tweets", []) if ref.get("type") == "replied_to"), None)


@hookimpl
def register_providers() -> list[Provider]:
    return [X()]
