"""YouTube through the Data API v3: a video (a Short when asked) with its title, tags, privacy and thumbnail.

Uploads are resumable: ``POST /upload/youtube/v3/videos?uploadType=resumable`` with the video's
metadata opens a session whose URI comes back in ``Location``; the bytes go in ``PUT`` chunks
(multiples of 256 KiB) with ``Content-Range``, each answered ``308 Resume Incomplete`` with the
``Range`` the server holds, the last one with the video. A dropped connection (or a 5xx) is not
the end: ``PUT`` with ``Content-Range: bytes */{size}`` asks the server what it has (a ``308`` and
its ``Range``, or the finished video) and the upload resumes from there. The session URI is kept
in ``ctx.store`` under the post's idempotency key, so a retried publish resumes the same upload,
or finds it finished, instead of uploading a second video.

After the upload the video exists but YouTube still processes it: publish answers ``Processing``
(``published=True``) and ``poll`` reads ``videos.list?part=status,processingDetails`` until
``processingStatus`` is ``succeeded``; ``failed``/``terminated`` and a ``rejected``/``failed``
``uploadStatus`` are ``Rejected`` with YouTube's reason.

Quota: a project has 10,000 units a day and an upload costs 1,600, declared as an app-wide
``Quota`` so the gateway holds uploads back before YouTube refuses; a ``quotaExceeded`` answer is
``RateLimited`` until midnight Pacific time, when YouTube resets it. Projects YouTube has not
audited can only upload private videos.

Errors: ``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}`` — 401 →
``AuthExpired``; ``quotaExceeded``/``uploadLimitExceeded`` → ``RateLimited`` until midnight
Pacific, ``rateLimitExceeded``/``userRateLimitExceeded`` and 429 → ``RateLimited``; 5xx →
``TransientError``; the rest ``Rejected`` under YouTube's ``reason`` (``INVALID_TITLE``…).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

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
    TextUnit,
    TokenSet,
    TransientError,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.http import json_object, send
from providers.oauth import request_tokens
from providers.validation import Issue, PostDraft

API = "https://www.googleapis.com/youtube/v3"
UPLOAD_URL = "https://www.googleapis.com/upload/youtube/v3/videos"
THUMBNAIL_URL = "https://www.googleapis.com/upload/youtube/v3/thumbnails/set"
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
# Upload and manage (delete, read statistics) the channel's videos.
SCOPES = ("https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.force-ssl")

CHUNK_UNIT = 256 * 1024  # every chunk but the last is a multiple of this (Google "Resumable uploads")
CHUNK = 32 * CHUNK_UNIT  # 8 MiB
MAX_RESUMES = 5
SESSIONS = "youtube_upload"  # ctx.store kind: idempotency key → the resumable session's URI
DAILY_UNITS = 10_000
UPLOAD_UNITS = 1_600
PACIFIC = ZoneInfo("America/Los_Angeles")
SHORTS_MAX_MS = 180_000  # Shorts run up to three minutes (since October 2024)
MAX_TITLE = 100
MAX_TAGS_LENGTH = 500
DAILY_LIMITS = {"quotaExceeded", "uploadLimitExceeded"}
RATE_LIMITS = {"rateLimitExceeded", "userRateLimitExceeded"}
STATISTICS = {"viewCount": "views", "likeCount": "likes", "commentCount": "comments"}
_ANGLE = re.compile(r"[<>]")


def seconds_until_pacific_midnight(now: datetime) -> float:
    """How long until YouTube's quota day ends: midnight in America/Los_Angeles (DST included)."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=PACIFIC)
    return (midnight - now).total_seconds()


def _raise_for(ctx: ProviderContext, response: httpx.Response) -> None:
    """The typed error a Google API error body stands for (nothing on a success)."""
    if response.is_success:
        return
    error = (json_object(response) or {}).get("error")
    error = error if isinstance(error, dict) else {}
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    reason = next((r for r in reasons if r), None)
    # YouTube's reasons are camelCase words (quotaExceeded → QUOTA_EXCEEDED).
    word = re.sub(r"(?<!^)(?=[A-Z])", "_", reason).upper() if reason else str(error.get("status") or f"HTTP_{response.status_code}")
    message = re.sub(r"<[^>]+>", "", str(error.get("message") or response.reason_phrase))[:500]
    status = response.status_code
    if status == 401:
        raise AuthExpired(message, code=word, http_status=status, raw=error)
    if reason in DAILY_LIMITS:
        raise RateLimited(seconds_until_pacific_midnight(ctx.now()), message, code=word, http_status=status, raw=error)
    if reason in RATE_LIMITS or status == 429:
        raise RateLimited(None, message, code=word, http_status=status, raw=error)
    if status >= 500:
        raise TransientError(message, code=word, http_status=status, raw=error)
    raise Rejected(word, message, http_status=status, raw=error)


def _auth(ctx: ProviderContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.credential('access_token')}"}


def _title(request: PublishRequest | PostDraft) -> str:
    """The ``title`` setting, else the text's first line (cut to fit); a Short's title says #Shorts."""
    explicit = str(request.settings.get("title") or "").strip()
    base = explicit or request.text.strip().split("\n", 1)[0].strip()
    suffix = " #Shorts" if request.settings.get("shorts") and "#shorts" not in base.lower() else ""
    room = MAX_TITLE - len(suffix)
    if not explicit and len(base) > room:
        base = base[: room - 1].rstrip() + "\u2026"
    return (base + suffix).strip()


def _tags(value: Any) -> list[str]:
    return [tag.strip() for tag in str(value or "").split(",") if tag.strip()]


def _tags_length(tags: Sequence[str]) -> int:
    """YouTube's count for the 500: commas between tags count, and a tag with a space counts its quotes."""
    return sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(0, len(tags) - 1)


class YouTube(Provider):
    id = "youtube"
    name = "YouTube"
    approval = "Google OAuth verification of the sensitive youtube.upload and youtube.force-ssl scopes, and a YouTube API audit: unverified projects created after 2020-07-28 upload private videos only; the daily quota is 10,000 units (1,600 an upload) until Google grants more."
    description = "Videos and Shorts on a YouTube channel (Data API v3, resumable uploads)."
    capabilities = Capabilities(delete=True, metrics=True, processing=True, reconcile=True)
    limits = Limits(
        max_text_length=5000,  # the description, counted in bytes
        text_unit=TextUnit.UTF8_BYTES,
        max_media=2,
        media_kinds=frozenset({"video", "image"}),
        max_media_per_kind={"video": 1, "image": 1},
        max_media_bytes={"video": 256 * 1024**3, "image": 2 * 1024**2},
        media_required=True,
        quotas=(Quota(
            count=DAILY_UNITS, period_seconds=86_400, scope="app", cost=UPLOAD_UNITS,
            description="10,000 Data API units a day per project; an upload costs 1,600 (delete 50, a thumbnail 50, reads 1)",
        ),),
    )
    auth = OAuth2Spec(
        authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES,
        extra_authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
    )
    settings = (
        SettingField("title", "Title (at most 100 characters; default: the text's first line)"),
        SettingField("privacy", "Privacy", type="choice", choices=("public", "unlisted", "private"), default="public",
                     help="Projects YouTube has not audited can only upload private videos."),
        SettingField("publish_at", "Publish at (ISO 8601 with offset; the video stays private until then)"),
        SettingField("tags", "Tags, comma-separated (500 characters in all)"),
        SettingField("category_id", "Category id", default="22"),
        SettingField("made_for_kids", "Made for kids", type="boolean", default=False),
        SettingField("shorts", "A Short (vertical or square, at most 3 minutes)", type="boolean", default=False),
        SettingField("notify_subscribers", "Notify subscribers", type="boolean", default=True),
    )
    metrics = MetricsSpec(post=tuple(STATISTICS.values()), account=("followers", "posts"), batch_size=50, min_interval_seconds=3600)

    # -- OAuth ----------------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {"code": code, "client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, "grant_type": "authorization_code"}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=False)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("Google issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
        form = {"client_id": client_id, "client_secret": client_secret, "refresh_token": refresh, "grant_type": "refresh_token"}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=True)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        headers = {"Authorization": f"Bearer {credentials.get('access_token', '')}"}
        response = await send(ctx, "GET", f"{API}/channels", params={"part": "snippet", "mine": "true"}, headers=headers)
        _raise_for(ctx, response)
        items = (json_object(response) or {}).get("items") or []
        if not items:
            raise Rejected("NO_CHANNEL", "this Google account has no YouTube channel: create one, then connect again")
        channel = items[0]
        snippet = channel.get("snippet") or {}
        return AccountProfile(
            external_id=channel["id"], handle=snippet.get("customUrl") or channel["id"], display_name=snippet.get("title", ""),
            account_type="channel", avatar_url=((snippet.get("thumbnails") or {}).get("default") or {}).get("url"), raw=channel,
        )

    # -- validation -------------------------------------------------------------------------------

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """What YouTube refuses that limits cannot say: no video, a bad title, tags, schedule or Short."""
        issues = []
        videos = [m for m in draft.media if m.kind == "video"]
        if not videos:
            issues.append(Issue(("media",), "VIDEO_REQUIRED", "a YouTube post is a video (an image is only its thumbnail)"))
        title = _title(draft)
        if not title:
            issues.append(Issue(("settings", "title"), "TITLE_REQUIRED", "a video needs a title: set one, or start the text with it"))
        elif len(title) > MAX_TITLE:
            issues.append(Issue(("settings", "title"), "TITLE_TOO_LONG", f"a title is at most {MAX_TITLE} characters, not {len(title)}"))
        if _ANGLE.search(title) or _ANGLE.search(draft.text):
            issues.append(Issue(("text",), "ANGLE_BRACKETS_NOT_ALLOWED", "YouTube refuses < and > in titles and descriptions"))
        tags = _tags(draft.settings.get("tags"))
        if _tags_length(tags) > MAX_TAGS_LENGTH:
            issues.append(Issue(("settings", "tags"), "TAGS_TOO_LONG", f"tags are at most {MAX_TAGS_LENGTH} characters in all, not {_tags_length(tags)}"))
        issues += _schedule_issues(draft.settings)
        if draft.settings.get("shorts") and videos:
            video = videos[0]
            if video.duration_ms is not None and video.duration_ms > SHORTS_MAX_MS:
                issues.append(Issue(("media", "0"), "SHORT_TOO_LONG", f"a Short is at most 3 minutes, not {video.duration_ms / 1000:g} s"))
            if video.width and video.height and video.width > video.height:
                issues.append(Issue(("media", "0"), "SHORT_NOT_VERTICAL", "a Short is vertical or square, not landscape"))
        return issues

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> Processing:
        video = next(m for m in request.media if m.kind == "video")
        kept = await ctx.store.get(SESSIONS, request.idempotency_key)
        answer: dict[str, Any] | None = None
        session = kept.get("session") if kept and kept.get("size") == video.size_bytes else None
        offset = 0
        if session:
            state = await self._session_state(ctx, session, video.size_bytes, request.idempotency_key)
            if state is None:
                session = None
            elif isinstance(state, dict):
                answer = state
            else:
                offset = state
        if answer is None:
            if not session:
                with ctx.preparing():
                    session = await self._open_session(ctx, request, video)
                await ctx.store.put(SESSIONS, request.idempotency_key, {"session": session, "size": video.size_bytes})
            answer = await self._upload(ctx, session, video, offset, request.idempotency_key)
        video_id = str(answer["id"])
        handle: dict[str, Any] = {"video_id": video_id, "shorts": bool(request.settings.get("shorts"))}
        thumbnail = next((m for m in request.media if m.kind == "image"), None)
        if thumbnail is not None:
            handle["thumbnail"] = await self._set_thumbnail(ctx, video_id, thumbnail)
        return Processing(handle, timedelta(seconds=30), stage="transcoding", published=True)

    def _metadata(self, request: PublishRequest) -> dict[str, Any]:
        settings = request.settings
        snippet: dict[str, Any] = {"title": _title(request), "description": request.text, "categoryId": str(settings.get("category_id") or "22")}
        if _tags(settings.get("tags")):
            snippet["tags"] = _tags(settings.get("tags"))
        status: dict[str, Any] = {"privacyStatus": settings.get("privacy") or "public", "selfDeclaredMadeForKids": bool(settings.get("made_for_kids"))}
        if settings.get("publish_at"):
            status["publishAt"] = datetime.fromisoformat(str(settings["publish_at"])).isoformat()
        return {"snippet": snippet, "status": status}

    async def _open_session(self, ctx: ProviderContext, request: PublishRequest, video: PublishMedia) -> str:
        params = {"uploadType": "resumable", "part": "snippet,status"}
        if request.settings.get("notify_subscribers") is False:
            params["notifySubscribers"] = "false"
        headers = {
            **_auth(ctx), "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Length": str(video.size_bytes), "X-Upload-Content-Type": video.mime_type,
        }
        response = await send(ctx, "POST", UPLOAD_URL, params=params, json=self._metadata(request), headers=headers)
        _raise_for(ctx, response)
        location = response.headers.get("Location")
        if not location:
            raise TransientError("YouTube opened no upload session (no Location header)", code="NO_UPLOAD_SESSION")
        return location

    async def _upload(self, ctx: ProviderContext, session: str, video: PublishMedia, offset: int, key: str) -> dict[str, Any]:
        """Send the bytes from ``offset``; after a dropped connection, resume where the server's ``Range`` says."""
        total = video.size_bytes
        for _attempt in range(MAX_RESUMES + 1):
            dropped: ProviderError | None = None
            async for start, piece in _slices(video, offset):
                end = start + len(piece) - 1
                headers = {**_auth(ctx), "Content-Range": f"bytes {start}-{end}/{total}"}
                try:
                    final = end == total - 1
                    with nullcontext() if final else ctx.preparing():
                        response = await send(ctx, "PUT", session, content=piece, headers=headers, publishes=final)
                except (TransientError, Unconfirmed) as error:
                    dropped = error
                    break
                if response.status_code >= 500:
                    dropped = TransientError(f"YouTube answered {response.status_code} to a chunk", code=f"HTTP_{response.status_code}")
                    break
                if response.status_code == 308:
                    offset = _next_byte(response)
                    if offset != end + 1:
                        break  # the server kept less than was sent: go on from what it has
                    continue
                if response.status_code in (404, 410):
                    await ctx.store.delete(SESSIONS, key)
                    raise TransientError("the upload session expired: the upload starts over", code="UPLOAD_SESSION_EXPIRED")
                _raise_for(ctx, response)
                return json_object(response) or {}
            if dropped is not None:
                try:
                    state = await self._session_state(ctx, session, total, key)
                except (TransientError, Unconfirmed):
                    raise dropped from None
                if state is None:
                    raise TransientError("the upload session expired: the upload starts over", code="UPLOAD_SESSION_EXPIRED")
                if isinstance(state, dict):
                    return state
                offset = state
        raise TransientError(f"the upload did not finish after {MAX_RESUMES} resumes", code="UPLOAD_INCOMPLETE")

    async def _session_state(self, ctx: ProviderContext, session: str, total: int, key: str) -> int | dict[str, Any] | None:
        """What the server holds: the next byte to send, the finished video, or None when the session is gone."""
        headers = {**_auth(ctx), "Content-Range": f"bytes */{total}"}
        # Asking posts nothing, and the kept session makes a retry find what this would have found.
        with ctx.preparing():
            response = await send(ctx, "PUT", session, content=b"", headers=headers)
        if response.status_code == 308:
            return _next_byte(response)
        if response.status_code in (404, 410):
            await ctx.store.delete(SESSIONS, key)
            return None
        _raise_for(ctx, response)
        return json_object(response) or {}

    async def _set_thumbnail(self, ctx: ProviderContext, video_id: str, image: PublishMedia) -> str:
        """Set the custom thumbnail; the video exists already, so a refusal is reported, not raised."""
        params = {"videoId": video_id, "uploadType": "media"}
        try:
            data = await image.source.read()
            response = await send(ctx, "POST", THUMBNAIL_URL, params=params, content=data, headers={**_auth(ctx), "Content-Type": image.mime_type})
            _raise_for(ctx, response)
        except ProviderError as error:
            ctx.log.warning("YouTube refused the thumbnail of %s: %s", video_id, error.code)
            return error.code
        return "set"

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        video_id = str(handle["video_id"])
        response = await send(ctx, "GET", f"{API}/videos", params={"part": "status,processingDetails", "id": video_id}, headers=_auth(ctx))
        _raise_for(ctx, response)
        items = (json_object(response) or {}).get("items") or []
        if not items:
            raise Rejected("VIDEO_GONE", f"YouTube no longer has video {video_id} (deleted or removed while processing)")
        video = items[0]
        status = video.get("status") or {}
        details = video.get("processingDetails") or {}
        upload = status.get("uploadStatus")
        if upload in ("rejected", "failed", "deleted"):
            reason = status.get("rejectionReason") or status.get("failureReason") or upload
            raise Rejected(f"UPLOAD_{str(upload).upper()}", f"YouTube {upload} the video: {reason}", raw=video)
        processing = details.get("processingStatus")
        if processing in ("failed", "terminated"):
            reason = details.get("processingFailureReason") or processing
            raise Rejected("PROCESSING_FAILED", f"YouTube could not process the video: {reason}", raw=video)
        if processing == "succeeded" or upload == "processed":
            page = "shorts/" if handle.get("shorts") else "watch?v="
            return PublishResult(video_id, f"https://www.youtube.com/{page}{video_id}", raw=video)
        left = reported((details.get("processingProgress") or {}).get("timeLeftMs"))
        wait = timedelta(seconds=min(600, max(15, (left or 30_000) / 1000)))
        return Processing(handle, wait, stage="transcoding", published=True)

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """A lost answer to the last chunk: the kept session says whether the upload finished."""
        video = next(m for m in request.media if m.kind == "video")
        kept = await ctx.store.get(SESSIONS, request.idempotency_key)
        if not kept:
            return None
        state = await self._session_state(ctx, str(kept["session"]), video.size_bytes, request.idempotency_key)
        if not isinstance(state, dict):
            return None
        video_id = str(state["id"])
        page = "shorts/" if request.settings.get("shorts") else "watch?v="
        return PublishResult(video_id, f"https://www.youtube.com/{page}{video_id}", raw=state)

    # -- delete and metrics ------------------------------------------------------------------

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        response = await send(ctx, "DELETE", f"{API}/videos", params={"id": platform_post_id}, headers=_auth(ctx))
        if response.status_code == 404:
            return  # videoNotFound: already gone
        _raise_for(ctx, response)

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        params = {"part": "statistics", "id": ",".join(platform_post_ids)}
        response = await send(ctx, "GET", f"{API}/videos", params=params, headers=_auth(ctx))
        _raise_for(ctx, response)
        return [
            MetricSnapshot(
                platform_post_id=item["id"], captured_at=ctx.now(), raw=item,
                # Counters are strings, and absent when the owner hides them (likes, comments off).
                **{ours: reported((item.get("statistics") or {}).get(theirs)) for theirs, ours in STATISTICS.items()},
            )
            for item in (json_object(response) or {}).get("items") or []
        ]

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        response = await send(ctx, "GET", f"{API}/channels", params={"part": "statistics", "mine": "true"}, headers=_auth(ctx))
        _raise_for(ctx, response)
        items = (json_object(response) or {}).get("items") or [{}]
        statistics = items[0].get("statistics") or {}
        return AccountMetricSnapshot(
            captured_at=ctx.now(), followers=reported(statistics.get("subscriberCount")), posts=reported(statistics.get("videoCount")), raw=items[0],
        )


def _schedule_issues(settings: Mapping[str, Any]) -> list[Issue]:
    """``publish_at`` must be a moment (ISO 8601 with its offset) on a private video."""
    value = settings.get("publish_at")
    if value is None:
        return []
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return [Issue(("settings", "publish_at"), "PUBLISH_AT_INVALID", "publish_at is an ISO 8601 time with its offset (2026-03-01T09:00:00+01:00)")]
    if when.tzinfo is None:
        return [Issue(("settings", "publish_at"), "PUBLISH_AT_INVALID", "publish_at needs its UTC offset")]
    if (settings.get("privacy") or "public") != "private":
        return [Issue(("settings", "privacy"), "PUBLISH_AT_NEEDS_PRIVATE", "YouTube schedules only private videos: set privacy to private")]
    return []


def _next_byte(response: httpx.Response) -> int:
    """The first byte the server still needs, from a 308's ``Range: bytes=0-N`` (none: it has nothing)."""
    match = re.fullmatch(r"bytes=0-(\d+)", response.headers.get("Range", "").strip())
    return int(match.group(1)) + 1 if match else 0


async def _slices(video: PublishMedia, offset: int) -> AsyncIterator[tuple[int, bytes]]:
    """``(start, bytes)`` chunks of ``CHUNK`` bytes from ``offset`` (a multiple of 256 KiB but the last)."""
    position = 0
    buffer = b""
    async for piece in video.source.chunks(CHUNK):
        if position + len(piece) <= offset:
            position += len(piece)
            continue
        buffer += piece[max(0, offset - position):] if not buffer else piece
        position += len(piece)
        while len(buffer) >= CHUNK:
            yield offset, buffer[:CHUNK]
            offset, buffer = offset + CHUNK, buffer[CHUNK:]
    if buffer:
        yield offset, buffer


@hookimpl
def register_providers() -> list[Provider]:
    return [YouTube()]
