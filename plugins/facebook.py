"""Facebook Pages through the Graph API: text, links, photos, video, a first comment, delete, insights.

- The account is one Page. Facebook Login hands back a user token; it is traded for a long-lived
  one (``fb_exchange_token``) and ``GET /me/accounts`` lists the Pages the user granted, each with
  a Page token that (read this way) does not expire. The gateway's connection flow makes one
  account per OAuth handshake, so the account is the first granted Page: to connect another,
  run the connection again and grant only that Page in Meta's Page picker.
- Text and links: ``POST /{page-id}/feed {message, link}`` → ``{"id": "{page-id}_{post-id}"}``.
- Photos: each is uploaded unpublished (``POST /{page-id}/photos {url, published: false}``), then
  one feed post carries them all (``attached_media[i] = {"media_fbid": id}``).
- Video: ``POST /{page-id}/videos {file_url, description}``; Facebook fetches and transcodes it for
  minutes, so publish answers ``Processing`` and ``poll`` reads ``GET /{video-id}?fields=status``
  until ``video_status`` is ``ready`` (``error`` fails the target with Meta's reason).
- Insights (Graph v23+ names, after Meta's 2025 renames: no ``impressions``): ``post_media_view``
  (views), ``post_total_media_view_unique`` (reach), ``post_reactions_by_type_total`` (likes),
  ``post_clicks`` (clicks), each in its own call, because one metric Meta refuses fails the whole
  call; comments and shares are counted on the post itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from plugins.meta_graph import (
    FACEBOOK_AUTHORIZE_URL,
    FACEBOOK_GRAPH,
    FACEBOOK_TOKEN_URL,
    INSIGHTS_KEPT_DAYS,
    call,
    comment,
    facebook_user_token,
    insights,
    managed_pages,
    page_token_set,
    recent_match,
)
from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    Capabilities,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    OAuth2Spec,
    Processing,
    Provider,
    ProviderContext,
    PublishRequest,
    PublishResult,
    Rejected,
    SettingField,
    TokenSet,
    hookimpl,
    reported,
)
from providers.validation import Issue, PostDraft

SCOPES = (
    "pages_show_list", "pages_manage_posts", "pages_read_engagement", "pages_manage_engagement",
    "pages_read_user_engagement", "read_insights", "publish_video",
)
MAX_TEXT = 63_206  # PZ/facebook (unverified officially)
MAX_PHOTOS = 10
# One call per metric group: Meta refuses the whole call when one metric is invalid for the post.
INSIGHT_GROUPS = {
    "views": "post_media_view",
    "reach": "post_total_media_view_unique",
    "likes": "post_reactions_by_type_total",
    "clicks": "post_clicks",
}
VIDEO_CHECK = timedelta(seconds=30)
POST_FIELDS = "id,message,permalink_url,created_time"


class FacebookPage(Provider):
    id = "facebook"
    name = "Facebook Page"
    approval = "Meta App Review: Advanced Access to pages_show_list, pages_manage_posts, pages_read_engagement, pages_manage_engagement, pages_read_user_engagement, read_insights and publish_video, with Business Verification; until then only people with a role on the app can connect their Pages."
    description = "Posts to a Facebook Page (Graph API, Facebook Login; one account per Page)."
    capabilities = Capabilities(delete=True, metrics=True, reconcile=True, first_comment=True, processing=True)
    limits = Limits(
        max_text_length=MAX_TEXT,
        max_media=MAX_PHOTOS,
        media_kinds=frozenset({"image", "video"}),
        max_media_per_kind={"video": 1},
    )
    auth = OAuth2Spec(
        authorize_url=FACEBOOK_AUTHORIZE_URL, token_url=FACEBOOK_TOKEN_URL, scopes=SCOPES, scope_separator=",", refreshable=False
    )
    settings = (
        SettingField("link", "Link to share", help="A URL Facebook previews under the text (text posts only)."),
        SettingField("first_comment", "First comment", help="Posted under the post by the Page once it is live."),
    )
    metrics = MetricsSpec(
        post=("views", "reach", "likes", "comments", "shares", "clicks"), account=("followers",), batch_size=1,
        lookback_days=INSIGHTS_KEPT_DAYS, min_interval_seconds=3600,
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        kinds = {media.kind for media in draft.media}
        if {"video", "image"} <= kinds:
            return [Issue(("media",), "MEDIA_MIX_NOT_SUPPORTED", "a Facebook post carries photos or one video, not both")]
        if draft.media and draft.settings.get("link"):
            return [Issue(("settings", "link"), "SETTING_INVALID", "a link is shared in a text post, without photos or video")]
        return []

    # -- OAuth -----------------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        user = await facebook_user_token(ctx, code=code, redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret)
        pages = await managed_pages(ctx, user.access_token, "id,name,access_token")
        if not pages:
            raise Rejected("NO_PAGE_GRANTED", "the Facebook user granted this app no Page: connect again and pick a Page")
        return page_token_set(pages[0], user, {"page_id": str(pages[0]["id"])})

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        page_id = credentials.get("page_id") or "me"
        page = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/{page_id}", token=credentials.get("access_token", ""),
                          params={"fields": "id,name,username,link"})
        return AccountProfile(
            external_id=str(page["id"]), handle=page.get("username") or page.get("name") or str(page["id"]),
            display_name=page.get("name", ""), account_type="page", raw=page,
        )

    # -- publishing ------------------------------------------------------------------------

    def _page(self, ctx: ProviderContext) -> str:
        page = ctx.credential("page_id")
        if not page:
            raise Rejected("PAGE_NOT_SELECTED", "the account's credentials name no Page: connect the Page again")
        return page

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        page = self._page(ctx)
        videos = [m for m in request.media if m.kind == "video"]
        if videos:
            form = {"file_url": videos[0].url, "description": request.text}
            video = await call(ctx, "POST", f"{FACEBOOK_GRAPH}/{page}/videos", data=form, publishes=True)
            # Published once transcoded: a failure from here on must not be retried by posting again.
            return Processing({"video_id": str(video["id"])}, check_after=VIDEO_CHECK, stage="transcoding", published=True)
        form: dict[str, str] = {"message": request.text}
        with ctx.preparing():
            for index, photo in enumerate(request.media):
                uploaded = await call(ctx, "POST", f"{FACEBOOK_GRAPH}/{page}/photos", data={"url": photo.url, "published": "false"})
                form[f"attached_media[{index}]"] = json.dumps({"media_fbid": str(uploaded["id"])})
        if request.settings.get("link"):
            form["link"] = str(request.settings["link"])
        post = await call(ctx, "POST", f"{FACEBOOK_GRAPH}/{page}/feed", params={"fields": "id,permalink_url"}, data=form, publishes=True)
        return await self._published(ctx, request, str(post["id"]), post.get("permalink_url"), post)

    async def _published(self, ctx: ProviderContext, request: PublishRequest, post_id: str, url: Any, raw: Any) -> PublishResult:
        extra: dict[str, Any] = {"post": raw}
        if request.settings.get("first_comment"):
            extra["first_comment"] = await comment(ctx, f"{FACEBOOK_GRAPH}/{post_id}/comments", str(request.settings["first_comment"]))
        return PublishResult(platform_post_id=post_id, url=url if isinstance(url, str) else None, raw=extra)

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """Read the video's ``status``: ``ready`` and published is the post, ``error``/``expired`` (or a
        phase in error) Meta's refusal, anything else another wait.

        The post id is the Page's id and the video's ``post_id`` (unverified in Meta's reference;
        the video's own id stands in when Meta leaves it out, and reads and deletes the same video).
        """
        video_id = str(handle["video_id"])
        video = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/{video_id}", params={"fields": "status,permalink_url,post_id"})
        status = video.get("status") or {}
        state = status.get("video_status")
        phases = [status.get(name) or {} for name in ("uploading_phase", "processing_phase", "publishing_phase")]
        if state in ("error", "expired") or any(phase.get("status") == "error" for phase in phases):
            errors = [error for phase in phases for error in phase.get("errors") or [] if isinstance(error, dict)]
            reason = (errors[0].get("message") if errors else None) or f"Facebook could not process the video ({state})"
            raise Rejected("VIDEO_PROCESSING_FAILED", str(reason)[:500], raw=status)
        if state == "ready" and phases[2].get("status", "complete") == "complete":
            post_id = f"{self._page(ctx)}_{video['post_id']}" if video.get("post_id") else video_id
            url = video.get("permalink_url")
            if isinstance(url, str) and url.startswith("/"):
                url = "https://www.facebook.com" + url
            return await self._published(ctx, request, post_id, url, video)
        return Processing(dict(handle), check_after=VIDEO_CHECK, stage="transcoding", published=True)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        try:
            await call(ctx, "DELETE", f"{FACEBOOK_GRAPH}/{platform_post_id}")
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise  # already gone is success; anything else is not

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The Page's newest posts, looking for this one's text (Meta takes no idempotency key)."""
        row = await recent_match(ctx, f"{FACEBOOK_GRAPH}/{self._page(ctx)}/posts", POST_FIELDS, "message", request.text)
        return None if row is None else PublishResult(platform_post_id=str(row["id"]), url=row.get("permalink_url"), raw=row)

    # -- metrics ---------------------------------------------------------------------------

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        snapshots = []
        for post_id in platform_post_ids:
            values, raw = await insights(ctx, f"{FACEBOOK_GRAPH}/{post_id}/insights", INSIGHT_GROUPS)
            post = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/{post_id}", params={"fields": "shares,comments.limit(0).summary(true)"})
            raw["post"] = post
            reactions = values.get("post_reactions_by_type_total")
            snapshots.append(
                MetricSnapshot(
                    platform_post_id=post_id,
                    captured_at=ctx.now(),
                    views=reported(values.get("post_media_view")),
                    reach=reported(values.get("post_total_media_view_unique")),
                    likes=sum(v for v in reactions.values() if isinstance(v, int)) if isinstance(reactions, dict) else None,
                    clicks=reported(values.get("post_clicks")),
                    comments=reported(((post.get("comments") or {}).get("summary") or {}).get("total_count")),
                    # A post nobody shared has no ``shares`` field at all: that is a measured zero.
                    shares=reported((post.get("shares") or {}).get("count", 0)),
                    raw=raw,
                )
            )
        return snapshots


    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """The Page's ``followers_count`` (Meta's 2025 renames retired ``fan_count``-style "likes" of a Page)."""
        page = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/{self._page(ctx)}", params={"fields": "followers_count"})
        return AccountMetricSnapshot(captured_at=ctx.now(), followers=reported(page.get("followers_count")), raw=page)


@hookimpl
def register_providers() -> list[Provider]:
    return [FacebookPage()]
