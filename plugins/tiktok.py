"""TikTok through the Content Posting API: videos and photo posts, posted directly or sent to the inbox.

Every publish first asks ``POST /v2/post/publish/creator_info/query/`` what this creator allows
now: the privacy levels offered (also the choices of the ``privacy_level`` setting, through
``setting_choices``), whether comments, duets and stitches are off, and the longest video they
may post. A post that does not fit is refused before anything is uploaded.

Then, by the ``mode`` setting:

- ``direct``: ``/v2/post/publish/video/init/`` with ``post_info`` (caption, privacy, toggles)
  posts the video on the profile; photos go through ``/v2/post/publish/content/init/`` with
  ``media_type: PHOTO`` and ``post_mode: DIRECT_POST``.
- ``inbox``: ``/v2/post/publish/inbox/video/init/`` (photos: ``post_mode: MEDIA_UPLOAD``) sends
  a draft the creator finishes in the TikTok app; it is done once TikTok says SEND_TO_USER_INBOX.

Videos are sent as ``FILE_UPLOAD`` (``PUT`` to the ``upload_url`` in chunks with
``Content-Range``, see ``chunk_plan``) or, with ``source: pull_from_url``, as ``PULL_FROM_URL``
(TikTok fetches the public URL; its domain must be verified for the app). Photos are always
pulled. TikTok then processes the post: publish answers ``Processing`` with the ``publish_id``
and ``poll`` reads ``/v2/post/publish/status/fetch/`` (PROCESSING_UPLOAD, PROCESSING_DOWNLOAD →
still processing; PUBLISH_COMPLETE, SEND_TO_USER_INBOX → done; FAILED → ``Rejected`` with
TikTok's ``fail_reason``, or ``TransientError`` for its ``internal`` failures).

An app TikTok has not audited may only post ``SELF_ONLY`` (visible to the creator alone): until
``SOCIALGATE_TIKTOK_AUDITED=true`` says the app passed the audit, validation refuses any other
privacy level and ``setting_choices`` offers only that one.

Errors: every answer carries ``{"error": {"code", "message", "log_id"}}``, ``"ok"`` on success,
with HTTP 200 or a 4xx/5xx: ``access_token_invalid`` → ``AuthExpired``;
``rate_limit_exceeded`` and ``spam_risk_too_many_posts`` → ``RateLimited``; ``internal_error``
and 5xx → ``TransientError``; the rest ``Rejected`` under TikTok's word, upper-cased.

Tokens: access tokens live 24 h, refresh tokens 365 days (``refresh_token_expires_at``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import httpx

from providers import (
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
    SettingChoice,
    SettingField,
    TextUnit,
    TokenSet,
    TransientError,
    hookimpl,
    reported,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import token_set_from
from providers.validation import Issue, PostDraft

API = "https://open.tiktokapis.com"
AUTHORIZE_URL = "https://www.tiktok.com/v2/auth/authorize/"
TOKEN_URL = f"{API}/v2/oauth/token/"
CREATOR_INFO_URL = f"{API}/v2/post/publish/creator_info/query/"
STATUS_URL = f"{API}/v2/post/publish/status/fetch/"
INIT_URLS = {"direct": f"{API}/v2/post/publish/video/init/", "inbox": f"{API}/v2/post/publish/inbox/video/init/"}
PHOTO_INIT_URL = f"{API}/v2/post/publish/content/init/"
VIDEO_QUERY_URL = f"{API}/v2/video/query/"
SCOPES = ("user.info.basic", "video.publish", "video.upload", "video.list")
JSON = "application/json; charset=UTF-8"

MB = 1024 * 1024
# Media Transfer Guide: chunks of 5 to 64 MB (the last may hold up to 128 MB), 1 to 1000 of them;
# a video under 64 MB may go whole, and one under 5 MB must.
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
CHUNK = 10 * MB
MAX_CHUNKS = 1000
MAX_PHOTOS = 35
PRIVATE = "SELF_ONLY"
CHECK_AFTER = timedelta(seconds=15)
AUDITED_VARIABLE = "SOCIALGATE_TIKTOK_AUDITED"
STILL_PROCESSING = {"PROCESSING_UPLOAD": "uploading", "PROCESSING_DOWNLOAD": "downloading"}
RATE_LIMITS = {"rate_limit_exceeded", "spam_risk_too_many_posts"}
# video/query's counters, in the vocabulary.
VIDEO_FIELDS = {"view_count": "views", "like_count": "likes", "comment_count": "comments", "share_count": "shares"}


def chunk_plan(video_size: int) -> tuple[int, int]:
    """``(chunk_size, total_chunk_count)`` as TikTok counts them for a video of ``video_size`` bytes.

    Up to 64 MB the video goes in one chunk. Above, chunks are ``CHUNK`` bytes and their count is
    ``video_size // CHUNK`` (rounded down): the remainder rides in the last chunk, which so stays
    under twice the chunk size (TikTok allows it up to 128 MB).
    """
    if video_size <= 0:
        raise ValueError("a video has at least one byte")
    if video_size <= MAX_CHUNK:
        return video_size, 1
    count = video_size // CHUNK
    if count > MAX_CHUNKS:
        raise ValueError(f"a video of {video_size} bytes needs more than {MAX_CHUNKS} chunks")
    return CHUNK, count


def chunk_ranges(video_size: int) -> list[tuple[int, int]]:
    """The ``(first, last)`` byte of each chunk, inclusive, as ``Content-Range`` names them."""
    size, count = chunk_plan(video_size)
    starts = [index * size for index in range(count)]
    return [(start, (starts[i + 1] if i + 1 < count else video_size) - 1) for i, start in enumerate(starts)]


async def _pieces(media: PublishMedia, ranges: Sequence[tuple[int, int]]) -> AsyncIterator[bytes]:
    """The file's bytes cut along ``ranges`` (the last range takes the remainder)."""
    buffer = b""
    stream = media.source.chunks(ranges[0][1] - ranges[0][0] + 1)
    try:
        for first, last in ranges:
            want = last - first + 1
            while len(buffer) < want:
                piece = await anext(stream, b"")
                if not piece:
                    raise Rejected("MEDIA_SIZE_MISMATCH", f"the video has fewer bytes than the {media.size_bytes} it was said to have")
                buffer += piece
            yield buffer[:want]
            buffer = buffer[want:]
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _raise_for(response: httpx.Response) -> dict[str, Any]:
    """The answer's ``data``, or the typed error its ``error.code`` (and HTTP status) stand for."""
    body = json_object(response) or {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    word = str(error.get("code") or ("ok" if response.is_success else ""))
    if response.is_success and word == "ok":
        return body.get("data") or {}
    message = str(error.get("message") or response.reason_phrase)[:500]
    status = response.status_code
    if word == "access_token_invalid":
        raise AuthExpired(message, code="ACCESS_TOKEN_INVALID", http_status=status, raw=error)
    if word in RATE_LIMITS:
        raise RateLimited(None, message, code=word.upper(), http_status=status, raw=error)
    if word == "internal_error":
        raise TransientError(message, code="INTERNAL_ERROR", http_status=status, raw=error)
    if word:
        if status >= 500:
            raise TransientError(message, code=word.upper(), http_status=status, raw=error)
        raise Rejected(word.upper(), message, http_status=status, raw=error)
    raise_for_response(response)
    raise Rejected("UNEXPECTED_ANSWER", f"TikTok answered {status} without its error envelope")


def _audited() -> bool:
    return os.environ.get(AUDITED_VARIABLE, "").strip().lower() in ("1", "true", "yes")


class TikTok(Provider):
    id = "tiktok"
    name = "TikTok"
    approval = "TikTok must approve the Content Posting API for the app, then audit it: until the audit, posts are SELF_ONLY (private) and at most 5 users a day can post."
    description = "Videos and photo posts on a TikTok profile, posted directly or sent to the creator's inbox (Content Posting API)."
    capabilities = Capabilities(metrics=True, processing=True)
    limits = Limits(
        max_text_length=2200,  # a caption, in UTF-16 runes (a photo post's description may run to 4,000: held to this too)
        text_unit=TextUnit.UTF16_UNITS,
        max_media=MAX_PHOTOS,
        media_kinds=frozenset({"image", "video"}),
        max_media_per_kind={"video": 1},
        max_media_bytes={"image": 20 * MB, "video": 4 * 1024 * MB},
        media_required=True,
        quotas=(Quota(count=6, period_seconds=60, description="6 post inits a minute per creator token (TikTok 'Direct Post')"),),
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, scope_separator=",", client_id_param="client_key")
    settings = (
        SettingField("privacy_level", "Who can see it (required for a direct post)", choices_from_account=True,
                     help="One of the creator's privacy_level_options; an unaudited app may only post SELF_ONLY."),
        SettingField("mode", "Post directly, or send a draft to the creator's inbox", type="choice", choices=("direct", "inbox"), default="direct"),
        SettingField("source", "How TikTok gets the video", type="choice", choices=("file_upload", "pull_from_url"), default="file_upload"),
        SettingField("title", "Photo post title (at most 90 characters)"),
        SettingField("disable_comment", "Turn comments off", type="boolean", default=False),
        SettingField("disable_duet", "Turn duets off", type="boolean", default=False),
        SettingField("disable_stitch", "Turn stitches off", type="boolean", default=False),
        SettingField("brand_organic", "Promotes the creator's own brand", type="boolean", default=False),
        SettingField("brand_content", "Paid partnership (branded content)", type="boolean", default=False),
        SettingField("video_cover_timestamp_ms", "Cover frame (milliseconds into the video)", type="integer"),
    )
    metrics = MetricsSpec(post=tuple(VIDEO_FIELDS.values()), batch_size=20, min_interval_seconds=900)

    def __init__(self, *, audited: bool | None = None) -> None:
        # Whether TikTok audited this app: read from the environment unless a test says.
        self.audited = _audited() if audited is None else audited

    # -- OAuth ----------------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {"client_key": client_id, "client_secret": client_secret, "code": code, "grant_type": "authorization_code", "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return await self._tokens(ctx, form, refreshing=False)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("TikTok issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
        form = {"client_key": client_id, "client_secret": client_secret, "grant_type": "refresh_token", "refresh_token": refresh}
        return await self._tokens(ctx, form, refreshing=True)

    async def _tokens(self, ctx: ProviderContext, form: Mapping[str, str], *, refreshing: bool) -> TokenSet:
        """TikTok's token endpoint: a refusal is ``{"error", "error_description", "log_id"}``, even with HTTP 200."""
        response = await send(ctx, "POST", TOKEN_URL, data=dict(form), headers={"Accept": "application/json"})
        body = json_object(response) or {}
        error = body.get("error")
        if response.is_success and not error:
            extra = {"open_id": str(body.get("open_id") or "")}
            if isinstance(body.get("refresh_expires_in"), int):
                extra["refresh_token_expires_at"] = (ctx.now() + timedelta(seconds=body["refresh_expires_in"])).isoformat()
            return token_set_from(body, ctx, extra)
        if response.status_code >= 500 or response.status_code == 429:
            raise_for_response(response)
        word = str(error or f"HTTP_{response.status_code}").upper()
        message = str(body.get("error_description") or word)
        if refreshing:
            raise AuthExpired(f"TikTok refused the refresh token: {message}", code=word, http_status=response.status_code)
        raise Rejected(word, message, http_status=response.status_code)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        headers = {"Authorization": f"Bearer {credentials.get('access_token', '')}"}
        params = {"fields": "open_id,union_id,avatar_url,display_name"}
        user = _raise_for(await send(ctx, "GET", f"{API}/v2/user/info/", params=params, headers=headers)).get("user") or {}
        return AccountProfile(
            external_id=str(user["open_id"]), handle=user.get("display_name") or str(user["open_id"]),
            display_name=user.get("display_name", ""), avatar_url=user.get("avatar_url"), raw=user,
        )

    # -- what the creator may post ------------------------------------------------------------

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """TikTok's rules the limits cannot say: one video or only photos; SELF_ONLY until audited."""
        issues = []
        kinds = {media.kind for media in draft.media}
        if kinds == {"image", "video"}:
            issues.append(Issue(("media",), "MEDIA_COMBINATION_NOT_SUPPORTED", "a TikTok post is one video or up to 35 photos, not both"))
        privacy = draft.settings.get("privacy_level")
        direct = draft.settings.get("mode", "direct") == "direct"  # an inbox draft's privacy is chosen in the app
        if direct and privacy is None:
            issues.append(Issue(
                ("settings", "privacy_level"), "SETTING_REQUIRED",
                "TikTok wants the creator to choose who sees a direct post: set privacy_level to one of the account's choices",
            ))
        if direct and not self.audited and isinstance(privacy, str) and privacy != PRIVATE:
            issues.append(Issue(
                ("settings", "privacy_level"), "PRIVACY_LEVEL_NOT_ALLOWED",
                f"this app is not audited by TikTok, which lets it post only {PRIVATE} (set {AUDITED_VARIABLE}=true once it is)",
            ))
        if privacy == PRIVATE and draft.settings.get("brand_content"):
            issues.append(Issue(("settings", "brand_content"), "BRANDED_CONTENT_PRIVATE", "branded content cannot be SELF_ONLY"))
        title = draft.settings.get("title")
        if isinstance(title, str) and len(title) > 90:
            issues.append(Issue(("settings", "title"), "TITLE_TOO_LONG", f"a photo post title is at most 90 characters, not {len(title)}"))
        return issues

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        if setting != "privacy_level":
            return []
        creator = await self._creator(ctx)
        offered = [level for level in creator.get("privacy_level_options") or [] if self.audited or level == PRIVATE]
        extra = {"max_video_post_duration_sec": creator.get("max_video_post_duration_sec")}
        return [SettingChoice(level, level.replace("_", " ").capitalize(), extra) for level in offered]

    async def _creator(self, ctx: ProviderContext) -> dict[str, Any]:
        return _raise_for(await send(ctx, "POST", CREATOR_INFO_URL, headers=_headers(ctx)))

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> Processing:
        settings = request.settings
        with ctx.preparing():
            creator = await self._creator(ctx)
        mode = str(settings.get("mode") or "direct")
        privacy = str(settings.get("privacy_level"))
        if mode == "direct" and privacy not in (creator.get("privacy_level_options") or []):
            offered = ", ".join(creator.get("privacy_level_options") or [])
            raise Rejected("PRIVACY_LEVEL_NOT_OFFERED", f"this creator can post {offered}, not {privacy}")
        if request.media[0].kind == "image":
            publish_id = await self._init_photos(ctx, request, creator, mode)
        else:
            publish_id = await self._send_video(ctx, request, creator, mode)
        handle = {"publish_id": publish_id, "mode": mode, "username": creator.get("creator_username") or ""}
        return Processing(handle, CHECK_AFTER, stage="uploading")

    def _post_info(self, request: PublishRequest, creator: Mapping[str, Any], *, photo: bool) -> dict[str, Any]:
        settings = request.settings
        info: dict[str, Any] = {
            # What the creator turned off in the app stays off (TikTok's UX guidelines).
            "disable_comment": bool(settings.get("disable_comment")) or bool(creator.get("comment_disabled")),
            "brand_organic_toggle": bool(settings.get("brand_organic")),
            "brand_content_toggle": bool(settings.get("brand_content")),
        }
        if settings.get("privacy_level") is not None:  # an inbox draft's is chosen in the app
            info = {"privacy_level": settings["privacy_level"], **info}
        if photo:
            info["title"] = settings.get("title") or ""
            info["description"] = request.text
            return info
        info["title"] = request.text
        info["disable_duet"] = bool(settings.get("disable_duet")) or bool(creator.get("duet_disabled"))
        info["disable_stitch"] = bool(settings.get("disable_stitch")) or bool(creator.get("stitch_disabled"))
        if settings.get("video_cover_timestamp_ms") is not None:
            info["video_cover_timestamp_ms"] = settings["video_cover_timestamp_ms"]
        return info

    async def _init_photos(self, ctx: ProviderContext, request: PublishRequest, creator: Mapping[str, Any], mode: str) -> str:
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST" if mode == "direct" else "MEDIA_UPLOAD",
            "post_info": self._post_info(request, creator, photo=True),
            "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": [m.url for m in request.media]},
        }
        response = await send(ctx, "POST", PHOTO_INIT_URL, json=body, headers=_headers(ctx), publishes=True)
        return str(_raise_for(response)["publish_id"])

    async def _send_video(self, ctx: ProviderContext, request: PublishRequest, creator: Mapping[str, Any], mode: str) -> str:
        video = request.media[0]
        longest = creator.get("max_video_post_duration_sec")
        if video.duration_ms is not None and isinstance(longest, int) and video.duration_ms > longest * 1000:
            raise Rejected("VIDEO_TOO_LONG", f"this creator may post videos of at most {longest} s, not {video.duration_ms / 1000:g} s")
        body: dict[str, Any] = {} if mode == "inbox" else {"post_info": self._post_info(request, creator, photo=False)}
        if request.settings.get("source") == "pull_from_url":
            body["source_info"] = {"source": "PULL_FROM_URL", "video_url": video.url}
            response = await send(ctx, "POST", INIT_URLS[mode], json=body, headers=_headers(ctx), publishes=True)
            return str(_raise_for(response)["publish_id"])
        size, count = chunk_plan(video.size_bytes)
        body["source_info"] = {"source": "FILE_UPLOAD", "video_size": video.size_bytes, "chunk_size": size, "total_chunk_count": count}
        # Nothing is posted until the last chunk arrives: a lost answer before it is safe to retry.
        with ctx.preparing():
            data = _raise_for(await send(ctx, "POST", INIT_URLS[mode], json=body, headers=_headers(ctx)))
        await _upload(ctx, str(data["upload_url"]), video)
        return str(data["publish_id"])

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        publish_id = str(handle["publish_id"])
        response = await send(ctx, "POST", STATUS_URL, json={"publish_id": publish_id}, headers=_headers(ctx))
        data = _raise_for(response)
        status = data.get("status")
        if status in STILL_PROCESSING:
            return Processing(handle, CHECK_AFTER, stage=STILL_PROCESSING[status])
        if status == "FAILED":
            reason = str(data.get("fail_reason") or "unknown")
            if reason == "internal":
                raise TransientError("TikTok failed the post on its side: it can be sent again", code="TIKTOK_INTERNAL", raw=data)
            raise Rejected(reason.upper(), f"TikTok could not post it: {reason}", raw=data)
        if status == "SEND_TO_USER_INBOX":
            return PublishResult(publish_id, None, raw=data)  # a draft in the creator's inbox: they finish it in the app
        if status == "PUBLISH_COMPLETE":
            ids = data.get("publicaly_available_post_id") or []  # (sic) TikTok's spelling
            if not ids:  # SELF_ONLY posts, and public ones still in moderation, name no post id
                return PublishResult(publish_id, None, raw=data)
            post_id = str(ids[0])
            username = handle.get("username")
            url = f"https://www.tiktok.com/@{username}/video/{post_id}" if username else None
            return PublishResult(post_id, url, raw=data)
        # A status this provider does not know yet: keep checking rather than start over and post twice.
        ctx.log.warning("TikTok answered an unknown publish status %r for %s", status, publish_id)
        return Processing(handle, CHECK_AFTER, stage="processing")

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        params = {"fields": "id," + ",".join(VIDEO_FIELDS)}
        body = {"filters": {"video_ids": list(platform_post_ids)}}
        data = _raise_for(await send(ctx, "POST", VIDEO_QUERY_URL, params=params, json=body, headers=_headers(ctx)))
        return [
            MetricSnapshot(
                platform_post_id=str(video["id"]), captured_at=ctx.now(), raw=video,
                **{ours: reported(video.get(theirs)) for theirs, ours in VIDEO_FIELDS.items()},
            )
            for video in data.get("videos") or []
        ]


def _headers(ctx: ProviderContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.credential('access_token')}", "Content-Type": JSON}


async def _upload(ctx: ProviderContext, upload_url: str, video: PublishMedia) -> None:
    """PUT each chunk with its ``Content-Range``; the last one hands the video to TikTok to post."""
    ranges = chunk_ranges(video.size_bytes)
    index = 0
    async for piece in _pieces(video, ranges):
        first, last = ranges[index]
        index += 1
        headers = {"Content-Type": video.mime_type, "Content-Range": f"bytes {first}-{last}/{video.size_bytes}"}
        final = index == len(ranges)
        with nullcontext() if final else ctx.preparing():
            response = await send(ctx, "PUT", upload_url, content=piece, headers=headers, publishes=final)
        raise_for_response(response)


@hookimpl
def register_providers() -> list[Provider]:
    return [TikTok()]
