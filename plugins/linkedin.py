"""LinkedIn through the versioned Posts API: a member's feed (``linkedin``) and an organization page (``linkedin_page``).

Both publish with ``POST /rest/posts`` (``LinkedIn-Version`` and ``X-Restli-Protocol-Version``
headers on every REST call), take images through the Images API, delete, and read statistics;
they differ in the author URN, the OAuth scopes, how the account is named and where the figures
come from:

| | ``linkedin`` (member) | ``linkedin_page`` (organization) |
|---|---|---|
| author | ``urn:li:person:{id}`` — ``sub`` of ``GET /v2/userinfo`` (OpenID Connect) | ``urn:li:organization:{id}`` |
| scopes | ``w_member_social openid profile`` | ``w_organization_social r_organization_social rw_organization_admin`` |
| statistics | ``memberCreatorPostAnalytics`` (needs ``r_member_postAnalytics``) | ``organizationalEntityShareStatistics`` |

Which page: the code exchange lists the organizations the member administers
(``GET /rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED``) and records
the first one as the ``organization_id`` credential, which refreshes keep. Credentials that
already name an ``organization_id`` (another page the member administers) keep it; ``connect``
checks the member really administers it.

Errors: 401 → ``AuthExpired``; 429 → ``RateLimited``; 400/403/422 ``{"message":…, "status":…}``
(with ``errorDetails.inputErrors[].code`` such as ``DUPLICATE_POST``, or ``code`` such as
``ACCESS_DENIED``) → ``Rejected`` in LinkedIn's words; 5xx → ``TransientError``.

A video or a document (PDF, PowerPoint, Word) is a post of its own: it is uploaded first
(``/rest/videos?action=initializeUpload``, one PUT per ``uploadInstructions`` part, each part's
``ETag`` sent back with ``action=finalizeUpload``; ``/rest/documents?action=initializeUpload``
and one PUT), then LinkedIn processes it. ``publish`` answers ``Processing`` with the asset's
URN; ``poll`` reads ``GET /rest/videos/{urn}`` (or ``/rest/documents/{urn}``) and posts once its
``status`` is ``AVAILABLE``; ``PROCESSING_FAILED`` is ``Rejected``: nothing was posted.

``reconcile`` reads the author's latest posts (``GET /rest/posts?q=author``) and finds the one
whose commentary is the one sent, created within the last day: the Posts API takes no
idempotency key, so the text (as escaped) is what identifies it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    AuthExpired,
    Capabilities,
    Issue,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    OAuth2Spec,
    PostDraft,
    Processing,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import request_tokens
from providers.text import find_urls

LINKEDIN_VERSION = "202601"  # the Posts API version we speak (YYYYMM); LinkedIn sunsets each after about a year
API = "https://api.linkedin.com"
AUTHORIZE_URL = "https://www.linkedin.com/oauth/v2/authorization"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
USERINFO_URL = f"{API}/v2/userinfo"
POST_URL = "https://www.linkedin.com/feed/update/{urn}"
MEMBER_SCOPES = ("w_member_social", "openid", "profile")
PAGE_SCOPES = ("w_organization_social", "r_organization_social", "rw_organization_admin")

MAX_IMAGES = 20  # MS Learn "MultiImage API": a multi-image post holds 2 to 20 images
MB = 1024 * 1024
# MS Learn "Videos API": 75 KB to 500 MB, 3 s to 30 min; "Documents API": up to 100 MB.
MAX_VIDEO_BYTES = 500 * MB
MAX_DOCUMENT_BYTES = 100 * MB
# Assets LinkedIn must process before a post may use them, and the path each is read from.
ASSETS = {"video": "videos", "document": "documents"}
ASSET_CHECK = timedelta(seconds=10)  # LinkedIn gives no advice; a short video is usually AVAILABLE within seconds
RECONCILE_WINDOW = timedelta(hours=24)
RECONCILE_PAGE = 20
# Member post analytics: one call per figure (MS Learn "Member Post Statistics").
# LinkedIn's impressions are the vocabulary's views; a reshare is a repost.
MEMBER_METRICS = {"IMPRESSION": "views", "MEMBERS_REACHED": "reach", "RESHARE": "reposts", "REACTION": "likes", "COMMENT": "comments"}
# organizationalEntityShareStatistics takes many posts per call; we send at most this many.
PAGE_METRICS_BATCH = 50
# Organic statistics cover a rolling 12 months (MS Learn "Organization Share Statistics").
LOOKBACK_DAYS = 365

# The "little text format" reserves these in commentary; unescaped, LinkedIn drops or truncates text.
RESERVED = frozenset("\\|{}@[]()<>#*_~")
# What the little format means on purpose, left as written: a mention of a member or a page,
# and a hashtag (a '#' directly followed by a word).
_LITTLE_MENTION = re.compile(r"@\[[^\]\n]+\]\(urn:li:(?:person|organization):[A-Za-z0-9_-]+\)")
_HASHTAG = re.compile(r"#\w")


def escape_commentary(text: str) -> str:
    """``text`` as plain text in LinkedIn's little format: every reserved character backslash-escaped.

    Left as written: links (escaping inside them breaks LinkedIn's auto-linking), explicit
    mentions ``@[Name](urn:li:person:…)``, and the ``#`` that starts a hashtag, so hashtags stay
    clickable.
    """
    keep = [m.span() for m in _LITTLE_MENTION.finditer(text)]
    keep += [span for span in find_urls(text) if not any(a <= span[0] < b for a, b in keep)]
    out = []
    cursor = 0
    for start, end in sorted(keep):
        out.append(_escape_plain(text[cursor:start]))
        out.append(text[start:end])
        cursor = end
    out.append(_escape_plain(text[cursor:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return "".join(
        "\\" + char if char in RESERVED and not (char == "#" and _HASHTAG.match(text, index)) else char
        for index, char in enumerate(text)
    )


class _LinkedIn(Provider):
    """What the member and page providers share: the REST calls, images, delete, errors."""

    AUTHOR_PREFIX: ClassVar[str]
    capabilities = Capabilities(delete=True, metrics=True, reconcile=True, processing=True)
    limits = Limits(
        max_text_length=3000,
        max_media=MAX_IMAGES,
        media_kinds=frozenset({"image", "video", "document"}),
        max_media_bytes={"video": MAX_VIDEO_BYTES, "document": MAX_DOCUMENT_BYTES},
        max_media_duration_ms={"video": 30 * 60 * 1000},
        max_thread_parts=1,
        quotas=(Quota(count=150, period_seconds=86_400, description="about 150 posts a day per account (Ayrshare; unverified officially)"),),
    )

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id, "client_secret": client_secret}
        tokens = await request_tokens(ctx, TOKEN_URL, form, refreshing=False)
        return await self._with_identity(ctx, tokens)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """Only apps approved for programmatic refresh get refresh tokens; refreshing does not extend their 365 days."""
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("LinkedIn issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id, "client_secret": client_secret}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=True, extra=self._identity_credentials(ctx))

    async def _with_identity(self, ctx: ProviderContext, tokens: TokenSet) -> TokenSet:
        """The fresh tokens, with whatever the provider must remember about whose they are."""
        return tokens

    def _identity_credentials(self, ctx: ProviderContext) -> dict[str, str]:
        """Credentials a refresh must carry over (the tokens change, the identity does not)."""
        return {}

    async def _author(self, ctx: ProviderContext) -> str:
        """The URN the account's posts are published as; the member and page providers each say whose."""
        raise NotImplementedError(f"{type(self).__name__} must say whose feed it posts to")

    def _visibility(self, request: PublishRequest) -> str:
        return "PUBLIC"

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """A video or a document is a post's only attachment (images may be up to 20)."""
        assets = [m for m in draft.media if m.kind in ASSETS]
        if assets and len(draft.media) > 1:
            return [Issue(("media",), "MEDIA_COMBINATION", f"LinkedIn posts a {assets[0].kind} on its own, without other media")]
        return []

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        author = await self._author(ctx)
        if request.media and request.media[0].kind in ASSETS:
            media = request.media[0]
            with ctx.preparing():  # uploads post nothing: running out of time here is a plain retry
                urn = await _upload_asset(ctx, author, media)
            handle = {"asset": urn, "kind": media.kind, "title": media.filename or media.kind.title()}
            return Processing(handle=handle, check_after=ASSET_CHECK, stage="uploaded")
        images = [await _upload_image(ctx, author, media) for media in request.media]
        content: dict[str, Any] | None = None
        if len(images) == 1:
            content = {"media": images[0]}
        elif images:
            content = {"multiImage": {"images": images}}
        return await self._create_post(ctx, author, request, content)

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """Read the asset's status; post once it is ``AVAILABLE``."""
        urn, kind = str(handle["asset"]), str(handle["kind"])
        with ctx.preparing():  # a status read posts nothing
            response = await send(ctx, "GET", f"{API}/rest/{ASSETS[kind]}/{_encoded(urn)}", headers=_rest_headers(ctx))
            _raise_for(response)
        status = str(response.json().get("status", ""))
        if status == "PROCESSING_FAILED":
            raise Rejected("MEDIA_PROCESSING_FAILED", f"LinkedIn could not process the {kind} {urn}", raw=response.json())
        if status != "AVAILABLE":  # PROCESSING, or WAITING_UPLOAD while LinkedIn assembles the parts
            return Processing(handle=handle, check_after=ASSET_CHECK, stage=status.lower() or "processing")
        content = {"media": {"title": str(handle.get("title") or kind.title()), "id": urn}}
        try:
            return await self._create_post(ctx, await self._author(ctx), request, content)
        except Rejected as error:
            # A check cut short after LinkedIn took the post (the worker died) is made again, and
            # LinkedIn refuses the same post twice: it is there, so find it rather than fail it.
            if error.code != "DUPLICATE_POST" or (found := await self.reconcile(ctx, request)) is None:
                raise
            return found

    async def _create_post(self, ctx: ProviderContext, author: str, request: PublishRequest, content: dict[str, Any] | None) -> PublishResult:
        body: dict[str, Any] = {
            "author": author,
            "commentary": escape_commentary(request.text),
            "visibility": self._visibility(request),
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": bool(request.settings.get("disable_reshare", False)),
        }
        if content:
            body["content"] = content
        response = await send(ctx, "POST", f"{API}/rest/posts", json=body, headers=_rest_headers(ctx), publishes=True)
        _raise_for(response)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise Unconfirmed(f"LinkedIn answered {response.status_code} without the post's x-restli-id")
        return PublishResult(platform_post_id=urn, url=POST_URL.format(urn=urn), raw={"x-restli-id": urn})

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The author's post created in the last day whose commentary is the one this request sends."""
        author = await self._author(ctx)
        query = f"author={_encoded(author)}&q=author&count={RECONCILE_PAGE}&sortBy=LAST_MODIFIED"
        headers = {**_rest_headers(ctx), "X-RestLi-Method": "FINDER"}
        response = await send(ctx, "GET", f"{API}/rest/posts?{query}", headers=headers)
        _raise_for(response)
        wanted = escape_commentary(request.text)
        since_ms = (ctx.now() - RECONCILE_WINDOW).timestamp() * 1000
        for post in response.json().get("elements", []):
            if post.get("commentary") == wanted and (post.get("createdAt") or 0) >= since_ms and post.get("id"):
                return PublishResult(platform_post_id=post["id"], url=POST_URL.format(urn=post["id"]), raw=post)
        return None

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        response = await send(ctx, "DELETE", f"{API}/rest/posts/{_encoded(platform_post_id)}", headers=_rest_headers(ctx))
        if response.status_code == 404:
            return  # already gone
        _raise_for(response)


class LinkedInMember(_LinkedIn):
    id = "linkedin"
    name = "LinkedIn"
    approval = "The Share on LinkedIn and Sign In with LinkedIn using OpenID Connect products, added to the app self-serve (w_member_social, openid, profile); reading member post analytics needs the Community Management API, granted after LinkedIn's review."
    description = "Posts to a LinkedIn member's feed."
    AUTHOR_PREFIX = "urn:li:person:"
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=MEMBER_SCOPES)
    # One memberCreatorPostAnalytics call per figure and post: small batches.
    metrics = MetricsSpec(post=tuple(MEMBER_METRICS.values()), batch_size=10, lookback_days=LOOKBACK_DAYS, min_interval_seconds=3600)
    settings = (
        SettingField("visibility", "Visibility", type="choice", choices=("PUBLIC", "CONNECTIONS"), default="PUBLIC"),
        SettingField("disable_reshare", "Disable resharing", type="boolean", default=False),
    )

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        me = await _userinfo(ctx, credentials.get("access_token", ""))
        return AccountProfile(
            external_id=me["sub"], handle=me.get("name") or me["sub"], display_name=me.get("name", ""), avatar_url=me.get("picture"), raw=me
        )

    async def _author(self, ctx: ProviderContext) -> str:
        """``urn:li:person:{sub}``: the person id from the credentials, the store, or ``/v2/userinfo`` once."""
        person = ctx.credential("person_id") or ((await ctx.store.get("identity", "me")) or {}).get("person_id")
        if not person:
            person = (await _userinfo(ctx, ctx.credential("access_token") or ""))["sub"]
            await ctx.store.put("identity", "me", {"person_id": person})
        return self.AUTHOR_PREFIX + person

    def _visibility(self, request: PublishRequest) -> str:
        return str(request.settings.get("visibility", "PUBLIC"))

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """One ``memberCreatorPostAnalytics`` call per figure and post; clicks and saves are not reported."""
        snapshots = []
        for urn in platform_post_ids:
            figures: dict[str, int | None] = {}
            raw = {}
            for query_type, figure in MEMBER_METRICS.items():
                query = f"q=entity&entity=({_entity_key(urn)}:{_encoded(urn)})&queryType={query_type}&aggregation=TOTAL"
                response = await send(ctx, "GET", f"{API}/rest/memberCreatorPostAnalytics?{query}", headers=_rest_headers(ctx))
                _raise_for(response)
                raw[query_type] = body = response.json()
                figures[figure] = sum(e.get("count", 0) for e in body.get("elements", [])) if body.get("elements") else None
            snapshots.append(MetricSnapshot(platform_post_id=urn, captured_at=ctx.now(), raw=raw, **figures))
        return snapshots


class LinkedInPage(_LinkedIn):
    id = "linkedin_page"
    name = "LinkedIn Page"
    approval = "LinkedIn's review for the Community Management API (w_organization_social, r_organization_social, rw_organization_admin; the app's company page verified, Development then Standard tier); the member must administer the Page."
    description = "Posts to a LinkedIn organization page the member administers."
    AUTHOR_PREFIX = "urn:li:organization:"
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=PAGE_SCOPES)
    metrics = MetricsSpec(
        post=("views", "reach", "likes", "comments", "reposts", "clicks"),
        account=("followers",),
        batch_size=PAGE_METRICS_BATCH,
        lookback_days=LOOKBACK_DAYS,
        min_interval_seconds=3600,
    )
    settings = (SettingField("disable_reshare", "Disable resharing", type="boolean", default=False),)

    async def _with_identity(self, ctx: ProviderContext, tokens: TokenSet) -> TokenSet:
        """Record which page the account posts to: the first organization the member administers."""
        organizations = await _administered_organizations(ctx, tokens.access_token)
        if not organizations:
            raise Rejected("NO_ADMINISTERED_ORGANIZATION", "this LinkedIn member administers no organization page")
        return TokenSet(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=tokens.expires_at,
            scopes=tokens.scopes, token_type=tokens.token_type, extra={**tokens.extra, "organization_id": organizations[0]},
        )

    def _identity_credentials(self, ctx: ProviderContext) -> dict[str, str]:
        organization = ctx.credential("organization_id")
        return {"organization_id": organization} if organization else {}

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        token = credentials.get("access_token", "")
        organizations = await _administered_organizations(ctx, token)
        chosen = credentials.get("organization_id") or (organizations[0] if organizations else "")
        if chosen not in organizations:
            raise Rejected("NOT_AN_ADMINISTRATOR", f"this LinkedIn member does not administer organization {chosen or '(none)'}")
        response = await send(ctx, "GET", f"{API}/rest/organizations/{chosen}", headers=_rest_headers(ctx, token))
        _raise_for(response)
        page = response.json()
        return AccountProfile(
            external_id=chosen, handle=page.get("vanityName") or chosen, display_name=page.get("localizedName", ""),
            account_type="organization", raw=page,
        )

    async def _author(self, ctx: ProviderContext) -> str:
        organization = ctx.credential("organization_id")
        if not organization:
            raise Rejected("ORGANIZATION_NOT_SELECTED", "the account's credentials name no organization page: connect the page again")
        return self.AUTHOR_PREFIX + organization

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """``organizationalEntityShareStatistics`` for all the posts at once; saves are not reported."""
        if not platform_post_ids:
            return []
        organization = await self._author(ctx)
        query = f"q=organizationalEntity&organizationalEntity={_encoded(organization)}"
        for key in ("share", "ugcPost"):
            urns = [urn for urn in platform_post_ids if _entity_key(urn) == key]
            if urns:
                query += f"&{key}s=List({','.join(_encoded(u) for u in urns)})"
        response = await send(ctx, "GET", f"{API}/rest/organizationalEntityShareStatistics?{query}", headers=_rest_headers(ctx))
        _raise_for(response)
        snapshots = []
        for element in response.json().get("elements", []):
            urn = element.get("share") or element.get("ugcPost")
            totals = element.get("totalShareStatistics") or {}
            snapshots.append(
                MetricSnapshot(
                    platform_post_id=urn,
                    captured_at=ctx.now(),
                    views=reported(totals.get("impressionCount")),
                    reach=reported(totals.get("uniqueImpressionsCount")),
                    likes=reported(totals.get("likeCount")),
                    comments=reported(totals.get("commentCount")),
                    reposts=reported(totals.get("shareCount")),
                    clicks=reported(totals.get("clickCount")),
                    raw=element,
                )
            )
        return snapshots


    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """``networkSizes`` of the organization with ``COMPANY_FOLLOWED_BY_MEMBER``: the page's followers."""
        organization = await self._author(ctx)
        url = f"{API}/rest/networkSizes/{_encoded(organization)}?edgeType=COMPANY_FOLLOWED_BY_MEMBER"
        response = await send(ctx, "GET", url, headers=_rest_headers(ctx))
        _raise_for(response)
        body = response.json()
        return AccountMetricSnapshot(captured_at=ctx.now(), followers=reported(body.get("firstDegreeSize")), raw=body)


# -- requests ------------------------------------------------------------------------------


def _rest_headers(ctx: ProviderContext, token: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token if token is not None else ctx.credential('access_token') or ''}",
        "LinkedIn-Version": LINKEDIN_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }


def _encoded(urn: str) -> str:
    """A URN as one Rest.li path segment or query value: every reserved character percent-encoded."""
    return urllib.parse.quote(urn, safe="")


def _entity_key(urn: str) -> str:
    """``share`` or ``ugcPost``: the kind of post a URN names (``urn:li:share:…``, ``urn:li:ugcPost:…``)."""
    return "ugcPost" if urn.startswith("urn:li:ugcPost:") else "share"


async def _userinfo(ctx: ProviderContext, token: str) -> dict[str, Any]:
    response = await send(ctx, "GET", USERINFO_URL, headers={"Authorization": f"Bearer {token}"})
    _raise_for(response)
    return response.json()


async def _administered_organizations(ctx: ProviderContext, token: str) -> list[str]:
    """Ids of the organizations whose ADMINISTRATOR role the member holds, in LinkedIn's order."""
    query = "q=roleAssignee&role=ADMINISTRATOR&state=APPROVED"
    response = await send(ctx, "GET", f"{API}/rest/organizationAcls?{query}", headers=_rest_headers(ctx, token))
    _raise_for(response)
    prefix = LinkedInPage.AUTHOR_PREFIX
    return [e["organization"][len(prefix) :] for e in response.json().get("elements", []) if str(e.get("organization", "")).startswith(prefix)]


async def _upload_image(ctx: ProviderContext, owner: str, media: PublishMedia) -> dict[str, str]:
    """Register an image upload, PUT the bytes to LinkedIn's upload URL; the post's reference to it."""
    init = {"initializeUploadRequest": {"owner": owner}}
    response = await send(ctx, "POST", f"{API}/rest/images?action=initializeUpload", json=init, headers=_rest_headers(ctx))
    _raise_for(response)
    value = response.json()["value"]
    headers = {"Authorization": f"Bearer {ctx.credential('access_token') or ''}", "Content-Type": "application/octet-stream"}
    uploaded = await send(ctx, "PUT", value["uploadUrl"], content=await media.source.read(), headers=headers)
    _raise_for(uploaded)
    image = {"id": value["image"]}
    if media.alt_text:
        image["altText"] = media.alt_text
    return image


async def _upload_asset(ctx: ProviderContext, owner: str, media: PublishMedia) -> str:
    """Upload a video (initialize, one PUT per part, finalize with the parts' ETags) or a document (initialize, PUT); its URN."""
    path = ASSETS[media.kind]
    request: dict[str, Any] = {"owner": owner}
    if media.kind == "video":
        request |= {"fileSizeBytes": media.size_bytes, "uploadCaptions": False, "uploadThumbnail": False}
    response = await send(ctx, "POST", f"{API}/rest/{path}?action=initializeUpload", json={"initializeUploadRequest": request}, headers=_rest_headers(ctx))
    _raise_for(response)
    value = response.json()["value"]
    put_headers = {"Authorization": f"Bearer {ctx.credential('access_token') or ''}", "Content-Type": "application/octet-stream"}
    if media.kind == "document":
        uploaded = await send(ctx, "PUT", value["uploadUrl"], content=await media.source.read(), headers=put_headers)
        _raise_for(uploaded)
        return str(value["document"])
    instructions = value["uploadInstructions"]
    part_size = instructions[0]["lastByte"] - instructions[0]["firstByte"] + 1
    etags = []
    chunks = media.source.chunks(part_size)
    for instruction in instructions:
        chunk = await anext(chunks)
        uploaded = await send(ctx, "PUT", instruction["uploadUrl"], content=chunk, headers=put_headers)
        _raise_for(uploaded)
        etags.append(uploaded.headers.get("etag", ""))
    finalize = {"finalizeUploadRequest": {"video": value["video"], "uploadToken": value.get("uploadToken", ""), "uploadedPartIds": etags}}
    response = await send(ctx, "POST", f"{API}/rest/videos?action=finalizeUpload", json=finalize, headers=_rest_headers(ctx))
    _raise_for(response)
    return str(value["video"])


def _raise_for(response: httpx.Response) -> None:
    """Map a LinkedIn answer to the SDK's errors, with LinkedIn's ``message`` and most specific code."""
    if response.is_success:
        return
    body = json_object(response) or {}
    inputs = (body.get("errorDetails") or {}).get("inputErrors") or []
    codes = [e["code"] for e in inputs if isinstance(e, dict) and e.get("code")]
    code = codes[0] if codes else body.get("code")
    raise_for_response(response, code=str(code) if code else None, message=body.get("message"))


@hookimpl
def register_providers() -> list[Provider]:
    return [LinkedInMember(), LinkedInPage()]
