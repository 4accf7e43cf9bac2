"""Pinterest through API v5: image, multi-image and video pins on one of the account's boards.

- **Boards** are the ``board_id`` setting, whose choices come from the account
  (``GET /v5/boards``, ``boards:read``), so a user picks one of their own boards by name.
- **Publishing** is ``POST /v5/pins`` with a ``media_source``: ``image_url`` for one image,
  ``multiple_image_urls`` for 2 to 5 (a carousel), ``video_id`` for a video. Pinterest fetches
  images from the gateway's public media URL itself.
- **Video** takes minutes: ``POST /v5/media`` registers an upload and answers a pre-signed upload
  URL with its form fields; the bytes go there (multipart, ``file`` last); the provider then
  answers ``Processing`` and ``poll`` reads ``GET /v5/media/{id}`` until ``succeeded`` (the pin is
  created then) or ``failed`` (``Rejected``: nothing was published). The upload runs inside
  ``ctx.preparing()``: nothing is public before the pin is created.
- **Limits**: description 500 characters (the post's text), title 100 (``title`` setting),
  link 2,048 (``link`` setting), at most 5 images or one video; a pin needs media.
- **Analytics**: ``GET /v5/pins/{id}/analytics`` only answers for the last 90 days. Its
  ``daily_metrics`` carry a ``data_status`` per day; a day that is not ``READY`` has no figures
  (null, never 0), and a figure no ready day reports stays None.
- **Errors**: ``{"code": n, "message": "…"}`` by HTTP status: 401 ``AuthExpired``, 429
  ``RateLimited`` (Retry-After), 5xx ``TransientError``, other 4xx ``Rejected`` in Pinterest's words.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

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
    Rejected,
    SettingChoice,
    SettingField,
    TokenSet,
    hookimpl,
    reported,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import request_tokens

API = "https://api.pinterest.com/v5"
AUTHORIZE_URL = "https://www.pinterest.com/oauth/"
TOKEN_URL = f"{API}/oauth/token"
SCOPES = ("boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read")
PIN_URL = "https://www.pinterest.com/pin/{id}/"
MAX_TITLE = 100
MAX_DESCRIPTION = 500
MAX_LINK = 2048
MAX_IMAGES = 5
BOARDS_PAGE = 250  # the largest page_size /v5/boards takes
LOOKBACK_DAYS = 90
# Pinterest's analytics names and the figures they become; OUTBOUND_CLICK has no vocabulary word.
PIN_METRICS = {"IMPRESSION": "views", "SAVE": "saves", "PIN_CLICK": "clicks"}
EXTRA_METRICS = {"OUTBOUND_CLICK": "outbound_clicks"}
MEDIA_CHECK = timedelta(seconds=30)  # how soon to look at a video again


def raise_for_pinterest(response: httpx.Response) -> None:
    """Map a Pinterest v5 answer (``{"code", "message"}``) to a typed error; quiet on 2xx."""
    if response.is_success:
        return
    body = json_object(response) or {}
    message = body.get("message")
    code = {404: "NOT_FOUND", 403: "FORBIDDEN", 400: "INVALID_PARAMETERS"}.get(response.status_code)
    raise_for_response(response, code=code, message=str(message) if message else None)


async def _call(ctx: ProviderContext, method: str, path: str, *, publishes: bool = False, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ctx.credential('access_token') or ''}", **kwargs.pop("headers", {})}
    response = await send(ctx, method, API + path, headers=headers, publishes=publishes, **kwargs)
    raise_for_pinterest(response)
    return response


def _http_url(value: str) -> bool:
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def day_figures(day: Mapping[str, Any]) -> dict[str, int | None]:
    """One entry of ``daily_metrics`` as figures: all None unless Pinterest says the day is ``READY``."""
    metrics = (day.get("metrics") or {}) if day.get("data_status") == "READY" else {}
    names = {**PIN_METRICS, **EXTRA_METRICS}
    return {figure: reported(metrics.get(name)) for name, figure in names.items()}


def summed(days: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    """The figures of the ready days added up; a figure no ready day reports stays None."""
    totals: dict[str, int | None] = {figure: None for figure in (*PIN_METRICS.values(), *EXTRA_METRICS.values())}
    for day in days:
        for figure, value in day_figures(day).items():
            if value is not None:
                totals[figure] = (totals[figure] or 0) + value
    return totals


class Pinterest(Provider):
    id = "pinterest"
    name = "Pinterest"
    approval = "Pinterest must upgrade the app from Trial to Standard access (a review with a video of the integration); with Trial access writes go only to the sandbox API."
    description = "Pins images, carousels and videos to one of the account's Pinterest boards."
    capabilities = Capabilities(delete=True, metrics=True, processing=True)
    limits = Limits(
        max_text_length=MAX_DESCRIPTION,
        max_media=MAX_IMAGES,
        media_kinds=frozenset({"image", "video"}),
        max_media_per_kind={"video": 1},
        media_required=True,
    )
    metrics = MetricsSpec(
        post=tuple(PIN_METRICS.values()), account=("followers", "following", "posts"),
        batch_size=10, lookback_days=LOOKBACK_DAYS, min_interval_seconds=3600,
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, scope_separator=",")
    settings = (
        SettingField("board_id", "Board", required=True, choices_from_account=True, help="The board the pin is saved to."),
        SettingField("title", "Title", help=f"Up to {MAX_TITLE} characters."),
        SettingField("link", "Link", help=f"Where the pin leads: an http(s) URL of up to {MAX_LINK} characters."),
        SettingField("cover_image_url", "Video cover", help="An image URL for a video pin's cover; the first frame when unset."),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        title, link = draft.settings.get("title"), draft.settings.get("link")
        if isinstance(title, str) and len(title) > MAX_TITLE:
            issues.append(Issue(("settings", "title"), "TITLE_TOO_LONG", f"The title is {len(title)} characters; Pinterest allows at most {MAX_TITLE}."))
        if isinstance(link, str) and len(link) > MAX_LINK:
            issues.append(Issue(("settings", "link"), "LINK_TOO_LONG", f"The link is {len(link)} characters; Pinterest allows at most {MAX_LINK}."))
        elif isinstance(link, str) and link and not _http_url(link):
            issues.append(Issue(("settings", "link"), "SETTING_INVALID", "The link must be an absolute http(s) URL."))
        kinds = {m.kind for m in draft.media}
        if "video" in kinds and len(draft.media) > 1:
            issues.append(Issue(("media",), "MEDIA_COMBINATION_NOT_SUPPORTED", "A video pin holds one video and nothing else."))
        return issues

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=False, basic_auth=(client_id, client_secret))

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("Pinterest issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=True, basic_auth=(client_id, client_secret))

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        headers = {"Authorization": f"Bearer {credentials.get('access_token', '')}"}
        response = await send(ctx, "GET", f"{API}/user_account", headers=headers)
        raise_for_pinterest(response)
        me = response.json()
        return AccountProfile(
            external_id=str(me.get("id") or me["username"]), handle=me["username"],
            display_name=me.get("business_name") or me["username"], account_type=str(me.get("account_type", "user")).lower(),
            avatar_url=me.get("profile_image"), raw=me,
        )

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        """The account's boards, every page of ``GET /v5/boards`` (followed by its ``bookmark``)."""
        if setting != "board_id":
            raise Rejected("UNKNOWN_SETTING", f"Pinterest lists no choices for {setting!r}")
        choices: list[SettingChoice] = []
        params: dict[str, Any] = {"page_size": BOARDS_PAGE}
        while True:
            body = (await _call(ctx, "GET", "/boards", params=params)).json()
            for board in body.get("items", []):
                choices.append(SettingChoice(str(board["id"]), board.get("name", ""), {"privacy": board.get("privacy", "")}))
            if not body.get("bookmark"):
                return choices
            params = {"page_size": BOARDS_PAGE, "bookmark": body["bookmark"]}

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        if request.media and request.media[0].kind == "video":
            with ctx.preparing():
                media_id = await _upload_video(ctx, request.media[0])
            return Processing(handle={"media_id": media_id}, check_after=MEDIA_CHECK, stage="transcoding")
        return await self._create_pin(ctx, request, _image_source(request.media))

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        media_id = str(handle["media_id"])
        media = (await _call(ctx, "GET", f"/media/{media_id}")).json()
        status = media.get("status")
        if status == "succeeded":
            source: dict[str, Any] = {"source_type": "video_id", "media_id": media_id}
            cover = request.settings.get("cover_image_url")
            if cover:
                source["cover_image_url"] = cover
            else:
                source["cover_image_key_frame_time"] = 0
            return await self._create_pin(ctx, request, source)
        if status == "failed":
            raise Rejected("MEDIA_PROCESSING_FAILED", f"Pinterest could not process video {media_id}", raw=media)
        return Processing(handle={"media_id": media_id}, check_after=MEDIA_CHECK, stage=str(status or "processing"))

    async def _create_pin(self, ctx: ProviderContext, request: PublishRequest, source: dict[str, Any]) -> PublishResult:
        body: dict[str, Any] = {"board_id": request.settings["board_id"], "description": request.text, "media_source": source}
        for name in ("title", "link"):
            if request.settings.get(name):
                body[name] = request.settings[name]
        if request.media and request.media[0].alt_text:
            body["alt_text"] = request.media[0].alt_text[:500]
        pin = (await _call(ctx, "POST", "/pins", json=body, publishes=True)).json()
        return PublishResult(platform_post_id=str(pin["id"]), url=PIN_URL.format(id=pin["id"]), raw=pin)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        try:
            await _call(ctx, "DELETE", f"/pins/{platform_post_id}")
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise  # a pin that is not found is already gone

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """One ``/v5/pins/{id}/analytics`` per pin over the last 90 days (the most Pinterest answers for)."""
        today = ctx.now().date()
        params = {
            "start_date": (today - timedelta(days=LOOKBACK_DAYS - 1)).isoformat(), "end_date": today.isoformat(),
            "metric_types": ",".join((*PIN_METRICS, *EXTRA_METRICS)),
        }
        snapshots = []
        for pin_id in platform_post_ids:
            try:
                body = (await _call(ctx, "GET", f"/pins/{pin_id}/analytics", params=params)).json()
            except Rejected as error:
                if error.code == "NOT_FOUND":
                    continue  # deleted: no snapshot
                raise
            totals = summed((body.get("all") or {}).get("daily_metrics") or [])
            extra = {figure: totals.pop(figure) for figure in EXTRA_METRICS.values()}
            snapshots.append(MetricSnapshot(platform_post_id=pin_id, captured_at=ctx.now(), extra=extra, raw=body, **totals))
        return snapshots

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        me = (await _call(ctx, "GET", "/user_account")).json()
        return AccountMetricSnapshot(
            captured_at=ctx.now(), followers=reported(me.get("follower_count")), following=reported(me.get("following_count")),
            posts=reported(me.get("pin_count")), raw=me,
        )


def _image_source(media: Sequence[PublishMedia]) -> dict[str, Any]:
    if len(media) == 1:
        return {"source_type": "image_url", "url": media[0].url}
    return {"source_type": "multiple_image_urls", "items": [{"url": item.url} for item in media]}


async def _upload_video(ctx: ProviderContext, video: PublishMedia) -> str:
    """Register a video upload, send its bytes to the pre-signed URL; the media id Pinterest polls on."""
    registered = (await _call(ctx, "POST", "/media", json={"media_type": "video"})).json()
    fields = {str(k): str(v) for k, v in (registered.get("upload_parameters") or {}).items()}
    files = {"file": (video.filename or "video.mp4", await video.source.read(), video.mime_type)}
    uploaded = await send(ctx, "POST", registered["upload_url"], data=fields, files=files)
    raise_for_response(uploaded, code="MEDIA_UPLOAD_FAILED" if uploaded.status_code < 500 else None)
    return str(registered["media_id"])


@hookimpl
def register_providers() -> list[Provider]:
    return [Pinterest()]
