"""Threads (Meta) through the Threads API at ``graph.threads.net``: text, images, video, carousels, threads.

Every post is a *container* first: ``POST /{user-id}/threads`` (``media_type`` TEXT, IMAGE,
VIDEO or CAROUSEL with ``children`` made of ``is_carousel_item`` containers) answers its id, Meta
fetches and processes the media, and ``POST /{user-id}/threads_publish?creation_id=`` makes it a
post. A container is checked once right away (``GET /{container}?fields=status,error_message``):
a FINISHED one (text usually is) is published in the same call; an IN_PROGRESS one is handed back
as ``Processing`` and ``poll`` checks it again later, so no worker waits on Meta's transcoder.
ERROR and EXPIRED containers published nothing: ``Rejected`` (``CONTAINER_ERROR`` with Meta's
``error_message``, ``CONTAINER_EXPIRED``).

A thread is a chain of replies (``reply_to_id``): each part is published before the next part's
container is made, because it must name its parent. What is published is kept in the handle and
in ``ctx.store`` (``providers.threads``' record), so neither a poll on another worker nor a retry
after a failure posts a part twice.

Length: 500, counted as Meta counts them — an emoji counts its UTF-8 bytes
(``TextUnit.EMOJI_UTF8_BYTES``). Quotas: 250 posts per 24 h per profile (replies, the parts of a
thread after the first, have a cap of 1,000 of their own), and 100 deletes a day, which
``delete`` also keeps count of itself (the answer would be a refusal).

Tokens: the code exchange gives a one-hour token, traded at once for a 60-day one
(``th_exchange_token``); a long-lived token is refreshed with itself (``th_refresh_token``), so it
is also kept as the account's ``refresh_token`` for the gateway's refresh chore.

Errors, calls, insights and finding a post again by its text are the Graph API's, shared with
the other Meta plugins in ``plugins.meta_graph`` (190 → ``AuthExpired``, 4/17/32/613 →
``RateLimited``, 1/2 and 5xx → ``TransientError``, the rest ``Rejected`` as ``META_{code}_{subcode}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from plugins.meta_graph import call, insight_value, insights, raise_for, recent_match
from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    AuthExpired,
    Capabilities,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    OAuth2Spec,
    Processing,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    RateLimited,
    Rejected,
    TextUnit,
    TokenSet,
    TransientError,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.http import json_object, send
from providers.oauth import request_tokens, token_set_from
from providers.threads import THREAD_PROGRESS

GRAPH = "https://graph.threads.net"
API = f"{GRAPH}/v1.0"
AUTHORIZE_URL = "https://threads.net/oauth/authorize"
TOKEN_URL = f"{GRAPH}/oauth/access_token"
SCOPES = ("threads_basic", "threads_content_publish", "threads_manage_replies", "threads_manage_insights", "threads_delete")

MAX_CAROUSEL = 20
# Meta's advice is to give a container about 30 seconds before checking it again.
CHECK_AFTER = timedelta(seconds=30)
DELETES_PER_DAY = 100
DELETE_LOG = "threads_deletes"  # ctx.store kind: the times of the account's recent deletes
# Threads' post insights, in the vocabulary: a reply is a comment.
POST_METRICS = {"views": "views", "likes": "likes", "replies": "comments", "reposts": "reposts", "quotes": "quotes", "shares": "shares"}


def _media_fields(media: PublishMedia) -> dict[str, str]:
    if media.kind == "video":
        return {"media_type": "VIDEO", "video_url": media.url}
    return {"media_type": "IMAGE", "image_url": media.url}


class Threads(Provider):
    id = "threads"
    name = "Threads"
    approval = "Meta App Review of the Threads use case: Advanced Access to threads_basic, threads_content_publish, threads_manage_replies, threads_manage_insights and threads_delete; until then only the app's Threads testers can connect."
    description = "Posts, carousels and threads on a Threads profile (Meta's Threads API)."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, processing=True, reconcile=True)
    limits = Limits(
        max_text_length=500,
        text_unit=TextUnit.EMOJI_UTF8_BYTES,
        max_media=MAX_CAROUSEL,
        media_kinds=frozenset({"image", "video"}),
        max_media_bytes={"image": 8 * 1024 * 1024, "video": 1024 * 1024 * 1024},
        max_media_duration_ms={"video": 5 * 60 * 1000},
        max_thread_parts=20,
        quotas=(
            # Replies (each thread part after the first) have a cap of their own, 1,000, which a
            # count of publishes cannot express; the 250 binds first while threads have at most 5 parts.
            Quota(count=250, period_seconds=86_400, description="250 API-published posts per 24 h per profile (and 1,000 replies)"),
            Quota(count=DELETES_PER_DAY, period_seconds=86_400, description="100 deletes per 24 h per profile", operation="delete"),
        ),
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, scope_separator=",")
    metrics = MetricsSpec(post=tuple(POST_METRICS.values()), account=("followers",), batch_size=1, min_interval_seconds=3600)

    # -- OAuth ----------------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """The code → a one-hour token → at once a 60-day token, and whose it is (``user_id``)."""
        form = {"client_id": client_id, "client_secret": client_secret, "grant_type": "authorization_code", "redirect_uri": redirect_uri, "code": code}
        short = await request_tokens(ctx, TOKEN_URL, form, refreshing=False)
        params = {"grant_type": "th_exchange_token", "client_secret": client_secret, "access_token": short.access_token}
        response = await send(ctx, "GET", f"{GRAPH}/access_token", params=params)
        raise_for(response)
        long_lived = json_object(response) or {}
        me = await self.connect(ctx, {"access_token": str(long_lived.get("access_token", ""))})
        return self._long_lived(ctx, long_lived, me.external_id, short.scopes)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """A long-lived token (at least a day old) refreshed with itself; a refusal means reconnecting."""
        token = ctx.credential("refresh_token") or ctx.credential("access_token")
        if not token:
            raise AuthExpired("no Threads token to refresh: connect the account again", code="NO_REFRESH_TOKEN")
        response = await send(ctx, "GET", f"{GRAPH}/refresh_access_token", params={"grant_type": "th_refresh_token", "access_token": token})
        if 400 <= response.status_code < 500 and response.status_code != 429:
            message = str(((json_object(response) or {}).get("error") or {}).get("message") or "refused")
            raise AuthExpired(f"Threads refused to refresh the token: {message}", code="REFRESH_REFUSED", http_status=response.status_code)
        raise_for(response)
        return self._long_lived(ctx, json_object(response) or {}, ctx.credential("user_id") or "", ())

    def _long_lived(self, ctx: ProviderContext, body: Mapping[str, Any], user_id: str, scopes: tuple[str, ...]) -> TokenSet:
        tokens = token_set_from(body, ctx, {"user_id": user_id} if user_id else {})
        # Meta refreshes a long-lived token with itself: keep it where the refresh chore looks.
        return TokenSet(tokens.access_token, tokens.access_token, tokens.expires_at, scopes, tokens.token_type, tokens.extra)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        fields = "id,username,name,threads_profile_picture_url"
        me = await call(ctx, "GET", f"{API}/me", token=credentials.get("access_token", ""), params={"fields": fields})
        return AccountProfile(
            external_id=str(me["id"]), handle=me.get("username") or str(me["id"]), display_name=me.get("name", ""),
            avatar_url=me.get("threads_profile_picture_url"), raw=me,
        )

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        progress = await ctx.store.get(THREAD_PROGRESS, request.idempotency_key) or {}
        return await self._advance(ctx, request, {"posted": list(progress.get("parts", [])), "container": None})

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        return await self._advance(ctx, request, {"posted": list(handle.get("posted", [])), "container": handle.get("container")})

    async def _advance(self, ctx: ProviderContext, request: PublishRequest, state: dict[str, Any]) -> PublishResult | Processing:
        """Take the thread as far as Meta lets it now: publish each finished container in turn."""
        parts = [(request.text, request.media)] + [(part.text, part.media) for part in request.thread]
        posted: list[dict[str, Any]] = state["posted"][: len(parts)]
        container: str | None = state["container"]
        user = ctx.credential("user_id") or "me"
        while len(posted) < len(parts):
            with ctx.preparing():  # a container is not a post: running out of time here is a plain retry
                if container is None:
                    text, media = parts[len(posted)]
                    reply_to = posted[-1]["post_id"] if posted else request.reply_to
                    container = await self._create_container(ctx, user, text, media, reply_to)
                status = await call(ctx, "GET", f"{API}/{container}", params={"fields": "status,error_message"})
            word = status.get("status")
            if word == "IN_PROGRESS":
                stage = "container" if not posted else f"container of part {len(posted) + 1}"
                return Processing({"posted": posted, "container": container}, CHECK_AFTER, stage=stage, published=bool(posted))
            if word in ("ERROR", "EXPIRED"):
                raise Rejected(f"CONTAINER_{word}", f"Threads gave up on the post's media: {status.get('error_message') or word}", raw=status)
            if word == "PUBLISHED":  # an earlier publish of this container went through, its answer lost
                raise Unconfirmed(f"the Threads container {container} is already published")
            if word != "FINISHED":  # a status Meta adds later: keep checking rather than guess
                ctx.log.warning("Threads answered an unknown container status %r for %s", word, container)
                return Processing({"posted": posted, "container": container}, CHECK_AFTER, stage="container", published=bool(posted))
            posted.append(await self._publish_container(ctx, user, container))
            container = None
            if len(parts) > 1:
                await ctx.store.put(THREAD_PROGRESS, request.idempotency_key, {"parts": posted})
        first = posted[0]
        return PublishResult(first["post_id"], first.get("url"), raw=posted, thread_post_ids=tuple(p["post_id"] for p in posted[1:]))

    async def _create_container(
        self, ctx: ProviderContext, user: str, text: str, media: Sequence[PublishMedia], reply_to: str | None
    ) -> str:
        fields: dict[str, str] = {"media_type": "TEXT"}
        if len(media) == 1:
            fields = _media_fields(media[0])
        elif media:
            children = []
            for item in media:
                child = await call(ctx, "POST", f"{API}/{user}/threads", data={**_media_fields(item), "is_carousel_item": "true"})
                children.append(str(child["id"]))
            fields = {"media_type": "CAROUSEL", "children": ",".join(children)}
        if text:
            fields["text"] = text
        if reply_to:
            fields["reply_to_id"] = reply_to
        created = await call(ctx, "POST", f"{API}/{user}/threads", data=fields)
        return str(created["id"])

    async def _publish_container(self, ctx: ProviderContext, user: str, container: str) -> dict[str, Any]:
        published = await call(ctx, "POST", f"{API}/{user}/threads_publish", data={"creation_id": container}, publishes=True)
        post_id = published.get("id")
        if not post_id:
            raise Unconfirmed(f"Threads published container {container} without saying the post's id")
        try:
            url = (await call(ctx, "GET", f"{API}/{post_id}", params={"fields": "permalink"})).get("permalink")
        except (TransientError, RateLimited, Rejected) as error:  # the post exists: only its link is missing
            ctx.log.warning("Threads post %s published, its permalink unread: %s", post_id, error.code)
            url = None
        return {"post_id": str(post_id), "url": url}

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """A lost answer to ``threads_publish``: the post, if one of the profile's latest 25 from the
        last day has its text. Meta keeps no idempotency key; a thread is left to a person."""
        if request.thread:
            return None
        user = ctx.credential("user_id") or "me"
        post = await recent_match(ctx, f"{API}/{user}/threads", "id,permalink,text,timestamp", "text", request.text)
        if post is None or not post.get("timestamp"):
            return None
        if datetime.strptime(str(post["timestamp"]), "%Y-%m-%dT%H:%M:%S%z") < ctx.now() - timedelta(days=1):
            return None  # the newest post with this text is older than this one can be: another post
        return PublishResult(str(post["id"]), post.get("permalink"), raw=post)

    # -- delete and metrics ------------------------------------------------------------------

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        """``DELETE /{id}``, at most 100 a day: past that, wait for the oldest to leave the window."""
        now = ctx.now()
        window = [t for t in ((await ctx.store.get(DELETE_LOG, "recent")) or {}).get("times", []) if datetime.fromisoformat(t) > now - timedelta(days=1)]
        if len(window) >= DELETES_PER_DAY:
            wait = (datetime.fromisoformat(min(window)) + timedelta(days=1) - now).total_seconds()
            raise RateLimited(wait, "Threads allows 100 deletes per 24 hours", code="DELETE_QUOTA")
        try:
            await call(ctx, "DELETE", f"{API}/{platform_post_id}")
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise
            return  # already gone
        await ctx.store.put(DELETE_LOG, "recent", {"times": [*window, now.isoformat()]})

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        snapshots = []
        for post_id in platform_post_ids:
            values, raw = await insights(ctx, f"{API}/{post_id}/insights", {"post": ",".join(POST_METRICS)})
            figures = {ours: reported(values.get(theirs)) for theirs, ours in POST_METRICS.items()}
            snapshots.append(MetricSnapshot(platform_post_id=post_id, captured_at=ctx.now(), raw=raw, **figures))
        return snapshots

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        user = ctx.credential("user_id") or "me"
        body = await call(ctx, "GET", f"{API}/{user}/threads_insights", params={"metric": "followers_count"})
        values = {row.get("name"): insight_value(row) for row in body.get("data", []) if isinstance(row, dict)}
        return AccountMetricSnapshot(captured_at=ctx.now(), followers=reported(values.get("followers_count")), raw=body)


@hookimpl
def register_providers() -> list[Provider]:
    return [Threads()]
