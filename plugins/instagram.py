"""Instagram professional accounts, through either login Meta offers, publishing with containers.

| | ``instagram`` (Instagram Login) | ``instagram_business`` (Facebook Login) |
|---|---|---|
| host | ``graph.instagram.com`` | ``graph.facebook.com`` |
| token | 60-day user token (``ig_exchange_token``), refreshed with ``ig_refresh_token`` once ≥ 24 h old | the linked Page's token (from ``/me/accounts``), which does not expire |
| account | ``GET /me?fields=user_id,username`` | the first granted Page with an ``instagram_business_account`` |

Publishing is the same on both hosts: ``POST /{ig-user-id}/media`` makes a container
(``image_url``; ``video_url`` + ``media_type=REELS``; ``media_type=STORIES``; children with
``is_carousel_item=true`` then ``media_type=CAROUSEL&children=a,b``), Meta fetches the media from
its public URL, ``GET /{container}?fields=status_code`` says ``IN_PROGRESS``, ``FINISHED``,
``ERROR`` or ``EXPIRED``, and ``POST /{ig-user-id}/media_publish?creation_id=`` makes the post.
An image is usually finished at the first look and is published in the same call; a video answers
``Processing`` and ``poll`` publishes the container once it is ``FINISHED``. ``ERROR``/``EXPIRED``
fail the target with Meta's reason, and nothing was published.

Every publish first reads ``content_publishing_limit`` (50 posts per moving 24 h, also declared
as a ``Quota``) and answers ``RateLimited`` instead of creating a container Meta would refuse.
Media is required. Deleting through the API is not offered (Meta documents none).
Insights: ``views, reach, likes, comments, saved, shares`` in one call, then one call per metric
when Meta refuses the set (a story has no ``likes``); a metric Meta does not report stays None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from plugins.meta_graph import (
    FACEBOOK_AUTHORIZE_URL,
    FACEBOOK_GRAPH,
    FACEBOOK_TOKEN_URL,
    INSIGHTS_KEPT_DAYS,
    INSTAGRAM_GRAPH,
    age,
    call,
    comment,
    facebook_user_token,
    insights,
    managed_pages,
    page_token_set,
    raise_for,
    recent_match,
)
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
    ProviderError,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    RateLimited,
    Rejected,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.http import json_object, send
from providers.oauth import token_set_from
from providers.validation import Issue, PostDraft

PUBLISH_LIMIT = 50  # posts per moving 24 h (Meta "IG User Media Publish"; older docs said 25)
DAY = 86_400
MAX_CAROUSEL = 10
MAX_CAPTION = 2200
MAX_HASHTAGS = 30
HASHTAG = re.compile(r"(?<![\w&/])#\w")  # a '#' that starts a word, not one inside a URL or an entity
CONTAINER_CHECK = timedelta(seconds=20)
# A container Meta has not finished within a day has expired anyway (status EXPIRED).
CONTAINER_DEADLINE = timedelta(hours=24)
# While the publishing limit is reached: Meta does not say when the oldest post leaves the window.
LIMIT_WAIT = 3600.0
REFRESH_AFTER = timedelta(hours=24)  # an Instagram token can be refreshed once it is 24 h old
METRICS = ("views", "reach", "likes", "comments", "saved", "shares")
FIGURE = {"views": "views", "reach": "reach", "likes": "likes", "comments": "comments", "saved": "saves", "shares": "shares"}
MEDIA_FIELDS = "id,caption,permalink,timestamp"

INSTAGRAM_LOGIN_SCOPES = (
    "instagram_business_basic", "instagram_business_content_publish", "instagram_business_manage_comments",
    "instagram_business_manage_insights",
)
FACEBOOK_LOGIN_SCOPES = (
    "instagram_basic", "instagram_content_publish", "instagram_manage_comments", "instagram_manage_insights",
    "pages_show_list", "pages_read_engagement", "business_management",
)
INSTAGRAM_AUTHORIZE_URL = "https://www.instagram.com/oauth/authorize"
INSTAGRAM_TOKEN_URL = "https://api.instagram.com/oauth/access_token"
INSTAGRAM_HOST = "https://graph.instagram.com"  # its token endpoints take no version


class _Instagram(Provider):
    """Containers, the publishing limit, first comments and insights, on whichever host ``GRAPH`` names."""

    GRAPH: ClassVar[str]
    capabilities = Capabilities(metrics=True, reconcile=True, first_comment=True, processing=True)
    limits = Limits(
        max_text_length=MAX_CAPTION,
        max_media=MAX_CAROUSEL,
        media_kinds=frozenset({"image", "video"}),
        media_required=True,
        quotas=(Quota(PUBLISH_LIMIT, DAY, description="50 API-published posts per moving 24 hours (content_publishing_limit)"),),
    )
    settings = (
        SettingField("placement", "Where it appears", type="choice", choices=("feed", "story"), default="feed",
                     help="feed: a photo, a reel (a video) or a carousel (2-10 items); story: one photo or video for 24 hours."),
        SettingField("first_comment", "First comment", help="Posted under the post once it is live (not on stories)."),
        SettingField("share_to_feed", "Show the reel in the feed too", type="boolean", default=True),
    )
    metrics = MetricsSpec(post=tuple(FIGURE.values()), account=("followers", "following", "posts"), batch_size=1,
                          lookback_days=INSIGHTS_KEPT_DAYS, min_interval_seconds=3600)

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        if draft.settings.get("placement") == "story" and len(draft.media) > 1:
            issues.append(Issue(("media",), "TOO_MANY_MEDIA", "a story holds one photo or video"))
        hashtags = len(HASHTAG.findall(draft.text))
        if hashtags > MAX_HASHTAGS:
            issues.append(Issue(("text",), "TOO_MANY_HASHTAGS", f"Instagram takes at most {MAX_HASHTAGS} hashtags; this has {hashtags}"))
        return issues

    def _user(self, ctx: ProviderContext) -> str:
        user = ctx.credential("ig_user_id")
        if not user:
            raise Rejected("ACCOUNT_NOT_SELECTED", "the account's credentials name no Instagram account: connect it again")
        return user

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        user = self._user(ctx)
        with ctx.preparing():
            await self._check_publishing_limit(ctx, user)
            container = await self._container(ctx, user, request)
        return await self.poll(ctx, request, {"container": container})

    async def _check_publishing_limit(self, ctx: ProviderContext, user: str) -> None:
        body = await call(ctx, "GET", f"{self.GRAPH}/{user}/content_publishing_limit", params={"fields": "quota_usage,config"})
        rows = body.get("data") or [{}]
        used = reported(rows[0].get("quota_usage"))
        total = reported((rows[0].get("config") or {}).get("quota_total")) or PUBLISH_LIMIT
        if used is not None and used >= total:
            raise RateLimited(LIMIT_WAIT, f"this account published {used} of its {total} posts in the last 24 hours", code="PUBLISHING_LIMIT")

    async def _container(self, ctx: ProviderContext, user: str, request: PublishRequest) -> str:
        url = f"{self.GRAPH}/{user}/media"
        if request.settings.get("placement") == "story":
            return await self._create(ctx, url, {**_media_fields(request.media[0], "STORIES")})
        if len(request.media) == 1:
            media = request.media[0]
            form = {**_media_fields(media, "REELS" if media.kind == "video" else None), "caption": request.text}
            if media.kind == "video":
                form["share_to_feed"] = "true" if request.settings.get("share_to_feed", True) else "false"
            return await self._create(ctx, url, form)
        children = [
            await self._create(ctx, url, {**_media_fields(media, "VIDEO" if media.kind == "video" else None), "is_carousel_item": "true"})
            for media in request.media
        ]
        return await self._create(ctx, url, {"media_type": "CAROUSEL", "children": ",".join(children), "caption": request.text})

    async def _create(self, ctx: ProviderContext, url: str, form: Mapping[str, str]) -> str:
        return str((await call(ctx, "POST", url, data=dict(form)))["id"])

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """Look at the container: publish it when ``FINISHED``, wait while ``IN_PROGRESS``, fail on ``ERROR``/``EXPIRED``."""
        container = str(handle["container"])
        with ctx.preparing():  # reading the container's status publishes nothing: cut short, it is a plain retry
            body = await call(ctx, "GET", f"{self.GRAPH}/{container}", params={"fields": "status_code,status"})
        state = body.get("status_code")
        if state in ("ERROR", "EXPIRED"):
            reason = body.get("status") or f"the container is {state}"
            raise Rejected(f"CONTAINER_{state}", str(reason)[:500], raw=body)
        if state == "PUBLISHED":
            raise Unconfirmed("the container was already published; the post must be found, not published again", raw=body)
        if state != "FINISHED":
            return Processing({"container": container}, check_after=CONTAINER_CHECK, stage="container", deadline=CONTAINER_DEADLINE)
        user = self._user(ctx)
        published = await call(ctx, "POST", f"{self.GRAPH}/{user}/media_publish", data={"creation_id": container}, publishes=True)
        media_id = str(published["id"])
        raw: dict[str, Any] = {"media_publish": published}
        try:
            details = await call(ctx, "GET", f"{self.GRAPH}/{media_id}", params={"fields": "permalink"})
        except ProviderError as error:  # published already: the link is a nicety, and a retry would post twice
            details = {"error": error.code}
        raw["media"] = details
        first = request.settings.get("first_comment")
        if first and request.settings.get("placement") != "story":
            raw["first_comment"] = await comment(ctx, f"{self.GRAPH}/{media_id}/comments", str(first))
        permalink = details.get("permalink")
        return PublishResult(platform_post_id=media_id, url=permalink if isinstance(permalink, str) else None, raw=raw)

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The account's newest media, looking for this post's caption."""
        row = await recent_match(ctx, f"{self.GRAPH}/{self._user(ctx)}/media", MEDIA_FIELDS, "caption", request.text)
        return None if row is None else PublishResult(platform_post_id=str(row["id"]), url=row.get("permalink"), raw=row)

    # -- metrics ---------------------------------------------------------------------------

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        snapshots = []
        for media_id in platform_post_ids:
            url = f"{self.GRAPH}/{media_id}/insights"
            values, raw = await insights(ctx, url, {"all": ",".join(METRICS)})
            if "all" in raw and "data" not in raw["all"]:  # Meta refused the set: ask for each metric alone
                more, each = await insights(ctx, url, {metric: metric for metric in METRICS})
                values, raw = more, {**raw, **each}
            figures = {FIGURE[name]: reported(values.get(name)) for name in METRICS}
            snapshots.append(MetricSnapshot(platform_post_id=media_id, captured_at=ctx.now(), raw=raw, **figures))
        return snapshots

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """The account's ``followers_count``, ``follows_count`` and ``media_count``."""
        me = await call(ctx, "GET", f"{self.GRAPH}/{self._user(ctx)}", params={"fields": "followers_count,follows_count,media_count"})
        return AccountMetricSnapshot(
            captured_at=ctx.now(), followers=reported(me.get("followers_count")), following=reported(me.get("follows_count")),
            posts=reported(me.get("media_count")), raw=me,
        )


def _media_fields(media: PublishMedia, media_type: str | None) -> dict[str, str]:
    form = {"video_url" if media.kind == "video" else "image_url": media.url}
    if media_type:
        form["media_type"] = media_type
    return form


class InstagramLogin(_Instagram):
    id = "instagram"
    name = "Instagram"
    approval = "Meta App Review: Advanced Access to instagram_business_basic, instagram_business_content_publish, instagram_business_manage_comments and instagram_business_manage_insights, with Business Verification; until then only accounts with a role on the app can connect."
    description = "Posts to an Instagram professional account through Instagram Login (graph.instagram.com)."
    GRAPH = INSTAGRAM_GRAPH
    auth = OAuth2Spec(authorize_url=INSTAGRAM_AUTHORIZE_URL, token_url=INSTAGRAM_TOKEN_URL, scopes=INSTAGRAM_LOGIN_SCOPES, scope_separator=",")

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """Code → short-lived token (1 h) → long-lived token (60 days, ``ig_exchange_token``)."""
        form = {"client_id": client_id, "client_secret": client_secret, "grant_type": "authorization_code", "redirect_uri": redirect_uri, "code": code}
        response = await send(ctx, "POST", INSTAGRAM_TOKEN_URL, data=form, headers={"Accept": "application/json"})
        raise_for(response)
        body = json_object(response) or {}
        short = (body.get("data") or [body])[0]  # older answers are the object itself, newer ones wrap it in "data"
        user_id = str(short.get("user_id") or "")
        if not short.get("access_token") or not user_id:
            raise Rejected("INVALID_TOKEN_RESPONSE", "Instagram answered the code exchange without an access token and user id")
        params = {"grant_type": "ig_exchange_token", "client_secret": client_secret, "access_token": str(short.get("access_token") or "")}
        return self._long_lived(ctx, await _token_answer(ctx, f"{INSTAGRAM_HOST}/access_token", params), user_id)

    def _long_lived(self, ctx: ProviderContext, body: Mapping[str, Any], user_id: str) -> TokenSet:
        """The long-lived token is also what refreshes it: stored as the refresh token so the gateway refreshes it."""
        tokens = token_set_from(body, ctx, {"ig_user_id": user_id, "issued_at": ctx.now().isoformat()})
        return TokenSet(access_token=tokens.access_token, refresh_token=tokens.access_token, expires_at=tokens.expires_at,
                        scopes=tokens.scopes, extra=tokens.extra)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """``ig_refresh_token``: a new 60-day token, for a token at least 24 h old and still valid."""
        token_age = age(ctx, ctx.credential("issued_at"))
        if token_age is not None and token_age < REFRESH_AFTER:
            raise AuthExpired("Instagram refused a token younger than 24 hours, which cannot be refreshed yet: connect again",
                              code="REFRESH_TOO_EARLY")
        params = {"grant_type": "ig_refresh_token", "access_token": ctx.credential("access_token") or ""}
        return self._long_lived(ctx, await _token_answer(ctx, f"{INSTAGRAM_HOST}/refresh_access_token", params), self._user(ctx))

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        me = await call(ctx, "GET", f"{INSTAGRAM_GRAPH}/me", token=credentials.get("access_token", ""),
                        params={"fields": "user_id,username,name,profile_picture_url,account_type"})
        user_id = str(me.get("user_id") or me["id"])
        return AccountProfile(external_id=user_id, handle=me.get("username") or user_id, display_name=me.get("name", ""),
                              account_type=str(me.get("account_type") or "business").lower(), avatar_url=me.get("profile_picture_url"), raw=me)



async def _token_answer(ctx: ProviderContext, url: str, params: Mapping[str, str]) -> dict[str, Any]:
    """A token endpoint of graph.instagram.com, asked as Meta documents it (the token in the query)."""
    response = await send(ctx, "GET", url, params=dict(params))
    raise_for(response)
    return json_object(response) or {}


class InstagramBusiness(_Instagram):
    id = "instagram_business"
    name = "Instagram (Facebook Login)"
    approval = "Meta App Review: Advanced Access to instagram_basic, instagram_content_publish, instagram_manage_comments, instagram_manage_insights, pages_show_list, pages_read_engagement and business_management, with Business Verification; until then only accounts with a role on the app can connect."
    description = "Posts to an Instagram professional account linked to a Facebook Page, through Facebook Login."
    GRAPH = FACEBOOK_GRAPH
    auth = OAuth2Spec(
        authorize_url=FACEBOOK_AUTHORIZE_URL, token_url=FACEBOOK_TOKEN_URL, scopes=FACEBOOK_LOGIN_SCOPES, scope_separator=",", refreshable=False
    )

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """Long-lived user token → the granted Pages → the first one with a linked Instagram account; its Page token."""
        user = await facebook_user_token(ctx, code=code, redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret)
        pages = await managed_pages(ctx, user.access_token, "id,name,access_token,instagram_business_account{id,username}")
        linked = [page for page in pages if (page.get("instagram_business_account") or {}).get("id")]
        if not linked:
            raise Rejected("NO_INSTAGRAM_ACCOUNT", "none of the granted Facebook Pages has an Instagram professional account linked")
        page = linked[0]
        return page_token_set(page, user, {"page_id": str(page["id"]), "ig_user_id": str(page["instagram_business_account"]["id"])})

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        user = credentials.get("ig_user_id")
        if not user:
            raise Rejected("ACCOUNT_NOT_SELECTED", "the credentials name no Instagram account (ig_user_id)")
        me = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/{user}", token=credentials.get("access_token", ""),
                        params={"fields": "id,username,name,profile_picture_url"})
        return AccountProfile(external_id=str(me["id"]), handle=me.get("username") or str(me["id"]), display_name=me.get("name", ""),
                              account_type="business", avatar_url=me.get("profile_picture_url"), raw=me)


@hookimpl
def register_providers() -> list[Provider]:
    return [InstagramLogin(), InstagramBusiness()]
