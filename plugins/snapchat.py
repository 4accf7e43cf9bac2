"""Snapchat through the Public Profile API: Stories, Saved Stories and Spotlight on a public profile.

**Snap must allow-list the app first**: the Public Profile API is closed to apps Snap has not
approved (make the OAuth app in Snap Business Manager and send its client ID to your Snap
contact), which ``approval`` says. Until then every call answers 401/403.

OAuth 2 (``snapchat-profile-api`` scope); the code exchange lists the user's public profiles
(``GET /v1/me/public_profiles``) and records the first (``profile_id``), which refreshes keep.

Media is **encrypted before upload**: a fresh AES-256-CBC key (32 bytes) and IV (16 bytes) per
file, PKCS#7 padding (``providers.encryption``). ``POST /v1/public_profiles/{id}/media {type, name, key,
iv}`` (key and IV in base64) answers the ``media_id`` and the ``add_path`` to upload to; the
ciphertext goes up in multipart parts of at most 32 MB (``action=ADD``, ``part_number``,
``file``), then ``action=FINALIZE``. The container lives 24 hours.

One media item per post, no text-only posts. ``placement`` says where it goes:

| placement | request | text |
|---|---|---|
| ``SAVED_STORY`` (default; permanent) | ``POST …/saved_stories {saved_stories: [{snap_sources: [{media_id}], title}]}`` | the title, at most 45 characters |
| ``STORY`` (24 hours) | ``POST …/stories {media_id}`` | none: a Story carries no text |
| ``SPOTLIGHT`` (reviewed by Snap) | ``POST …/spotlights {media_id, description, locale}`` | the description, at most 160 characters with hashtags; video of 5–60 s |

Answers use Snap's envelope: ``request_status`` ``SUCCESS``/``ERROR`` with ``display_message``,
``debug_message`` and ``request_id``, and the created objects as a list of
``{sub_request_status, <object>}``. Paths and envelopes below the media upload are from Snap's
Public Profile API pages and third-party integrations, not all confirmed in an official reference.

There is no public URL per story and no documented delete or per-story lookup, so the provider
neither deletes nor reconciles. Metrics: the profile's subscribers (``followers``) from
``GET /v1/public_profiles/{id}/stats?assetType=PROFILE`` (the window must lie in the past 90 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    Capabilities,
    Issue,
    Limits,
    MetricsSpec,
    OAuth2Spec,
    PostDraft,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Rejected,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.encryption import EncryptedMedia
from providers.http import bearer, json_object, raise_for_response, send
from providers.oauth import code_form, refresh_tokens, request_tokens, with_extra

API = "https://businessapi.snapchat.com/v1"
AUTHORIZE_URL = "https://accounts.snapchat.com/login/oauth2/authorize"
TOKEN_URL = "https://accounts.snapchat.com/login/oauth2/access_token"
SCOPE = "snapchat-profile-api"

PART_BYTES = 32 * 1024 * 1024  # the largest part Snap takes
PLACEMENTS = ("SAVED_STORY", "STORY", "SPOTLIGHT")
MAX_DESCRIPTION = 160  # a Spotlight description, hashtags included
MAX_TITLE = 45  # a Saved Story's title
MIN_VIDEO_MS = {"STORY": 5_000, "SPOTLIGHT": 5_000}
MAX_VIDEO_MS = 60_000
STATS_WINDOW = timedelta(days=89)  # Snap answers for the past 90 days only


def raise_for_snap(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful answer; Snap's errors (HTTP or ``request_status: ERROR``) as the SDK's."""
    body = json_object(response) or {}
    message = body.get("display_message") or body.get("debug_message")
    if not response.is_success:
        raise_for_response(response, message=str(message) if message else None)
    if body.get("request_status") == "ERROR":
        raise Rejected("REQUEST_ERROR", str(message or "Snap refused the request"), http_status=response.status_code, raw=body)
    return body


def created(body: Mapping[str, Any], plural: str, kind: str) -> dict[str, Any]:
    """The ``kind`` object of Snap's envelope ``{plural: [{sub_request_status, kind: {...}}]}``; a refused one is ``Rejected``."""
    entries = body.get(plural) or []
    entry = entries[0] if entries and isinstance(entries[0], dict) else {}
    if entry.get("sub_request_status") == "ERROR":
        reason = entry.get("sub_request_error_reason") or "Snap refused it"
        raise Rejected("SUB_REQUEST_ERROR", str(reason), raw=dict(body))
    found = entry.get(kind)
    return found if isinstance(found, dict) else {}


class Snapchat(Provider):
    id = "snapchat"
    name = "Snapchat"
    description = "Posts Stories, Saved Stories and Spotlight videos to a Snapchat public profile."
    approval = "Snap must allow-list the OAuth app for the Public Profile API (send its client ID to your Snap contact)."
    capabilities = Capabilities(metrics=True)
    limits = Limits(
        max_text_length=MAX_DESCRIPTION,
        max_media=1,
        media_kinds=frozenset({"image", "video"}),
        max_media_duration_ms={"video": MAX_VIDEO_MS},
        media_required=True,
        max_thread_parts=1,
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=(SCOPE,))
    metrics = MetricsSpec(account=("followers",), min_interval_seconds=86_400)  # stats are daily
    settings = (
        SettingField("placement", "Where", type="choice", choices=PLACEMENTS, default="SAVED_STORY"),
        SettingField("locale", "Spotlight locale", default="en_US", help="The Spotlight description's locale, e.g. en_US."),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        placement = draft.settings.get("placement", "SAVED_STORY")
        issues = []
        if placement == "STORY" and draft.text.strip():
            issues.append(Issue(("text",), "TEXT_NOT_SUPPORTED", "A Snapchat Story carries no text: clear it for Snapchat, or post a Saved Story or Spotlight."))
        if placement == "SAVED_STORY" and len(draft.text) > MAX_TITLE:
            issues.append(Issue(("text",), "TEXT_TOO_LONG", f"A Saved Story's title is at most {MAX_TITLE} characters; this one has {len(draft.text)}."))
        for index, media in enumerate(draft.media):
            if placement == "SPOTLIGHT" and media.kind != "video":
                issues.append(Issue(("media", str(index)), "MEDIA_KIND_NOT_SUPPORTED", "Spotlight takes a video only."))
            shortest = MIN_VIDEO_MS.get(placement)
            if media.kind == "video" and shortest and media.duration_ms is not None and media.duration_ms < shortest:
                issues.append(Issue(("media", str(index)), "MEDIA_TOO_SHORT", f"A {placement.lower()} video lasts at least {shortest // 1000} s."))
        return issues

    # -- connecting -----------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        tokens = await request_tokens(ctx, TOKEN_URL, code_form(code=code, redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret), refreshing=False)
        profiles = await _public_profiles(ctx, tokens.access_token)
        if not profiles:
            raise Rejected("NO_PUBLIC_PROFILE", "this Snapchat user has no public profile")
        return with_extra(tokens, profile_id=str(profiles[0]["id"]))

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        return await refresh_tokens(ctx, TOKEN_URL, client_id=client_id, client_secret=client_secret, platform="Snap", keep=("profile_id",))

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """The public profile the credentials name (or the user's first), checked against the user's profiles."""
        profiles = await _public_profiles(ctx, credentials.get("access_token", ""))
        wanted = credentials.get("profile_id") or (str(profiles[0]["id"]) if profiles else "")
        found = next((p for p in profiles if str(p.get("id")) == wanted), None)
        if found is None:
            raise Rejected("PROFILE_NOT_OWNED", f"this Snapchat user has no public profile {wanted or '(none)'}")
        handle = found.get("snap_user_name") or found.get("display_name") or wanted
        return AccountProfile(external_id=wanted, handle=str(handle), display_name=str(found.get("display_name") or ""), account_type="profile", raw=found)

    # -- publishing ---------------------------------------------------------------------------

    def _profile(self, ctx: ProviderContext) -> str:
        profile = ctx.credential("profile_id")
        if not profile:
            raise Rejected("PROFILE_NOT_SELECTED", "the account's credentials name no public profile: connect it again")
        return f"{API}/public_profiles/{profile}"

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        placement = str(request.settings.get("placement") or "SAVED_STORY")
        profile = self._profile(ctx)
        with ctx.preparing():
            media_id = await self._upload(ctx, profile, request.media[0], request.idempotency_key)
        if placement == "STORY":
            path, body, kind = "stories", {"media_id": media_id}, "story"
        elif placement == "SPOTLIGHT":
            path, kind = "spotlights", "spotlight"
            body = {"media_id": media_id, "description": request.text, "locale": str(request.settings.get("locale") or "en_US")}
        else:
            path, kind = "saved_stories", "saved_story"
            story: dict[str, Any] = {"snap_sources": [{"media_id": media_id}]}
            if request.text:
                story["title"] = request.text
            body = {"saved_stories": [story]}
        response = await send(ctx, "POST", f"{profile}/{path}", json=body, headers=bearer(ctx), publishes=True)
        answer = raise_for_snap(response)
        post = created(answer, path, kind)
        if not post.get("id"):
            raise Unconfirmed(f"Snap answered {response.status_code} without the {kind}'s id")
        return PublishResult(platform_post_id=str(post["id"]), url=None, raw={"placement": placement, "id": post["id"], "media_id": media_id})

    async def _upload(self, ctx: ProviderContext, profile: str, media: PublishMedia, name: str) -> str:
        """Encrypt the file, create the media container, send the ciphertext in ≤32 MB parts, finalize."""
        sealed = EncryptedMedia()
        container = {"type": "VIDEO" if media.kind == "video" else "IMAGE", "name": name, **sealed.declaration()}
        response = await send(ctx, "POST", f"{profile}/media", json=container, headers=bearer(ctx))
        answer = raise_for_snap(response)
        media_id = str(answer.get("media_id") or "")
        if not media_id:
            raise Rejected("NO_MEDIA_ID", "Snap created no media container", raw=answer)
        add_url = _absolute(answer.get("add_path")) or f"{profile}/media/{media_id}/multipart-upload-v2"
        finalize_url = _absolute(answer.get("finalize_path")) or add_url
        pending = b""
        part = 0

        async def send_part(data: bytes) -> None:
            nonlocal part
            part += 1
            form = {"action": "ADD", "part_number": str(part)}
            uploaded = await send(ctx, "POST", add_url, data=form, files={"file": ("media.bin", data, "application/octet-stream")}, headers=bearer(ctx))
            raise_for_snap(uploaded)

        async for chunk in media.source.chunks(PART_BYTES):
            pending += sealed.update(chunk)
            while len(pending) >= PART_BYTES:
                await send_part(pending[:PART_BYTES])
                pending = pending[PART_BYTES:]
        pending += sealed.finalize()
        while pending:
            await send_part(pending[:PART_BYTES])
            pending = pending[PART_BYTES:]
        # A form of one field, still multipart like the parts (a file tuple without a filename is a plain field).
        finalized = await send(ctx, "POST", finalize_url, files=[("action", (None, b"FINALIZE"))], headers=bearer(ctx))
        raise_for_snap(finalized)
        return media_id

    # -- metrics ------------------------------------------------------------------------------

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """The profile's subscribers, from its lifetime stats."""
        now = ctx.now()
        params = {
            "assetType": "PROFILE", "granularity": "LIFETIME", "fields": "subscribers",
            "startTime": (now - STATS_WINDOW).strftime("%Y-%m-%dT00:00:00Z"), "endTime": now.strftime("%Y-%m-%dT00:00:00Z"),
        }
        response = await send(ctx, "GET", f"{self._profile(ctx)}/stats", params=params, headers=bearer(ctx))
        answer = raise_for_snap(response)
        stats = created(answer, "lifetime_stats", "lifetime_stat").get("stats") or {}
        return AccountMetricSnapshot(captured_at=now, followers=reported(stats.get("subscribers")), raw=answer)


def _absolute(path: Any) -> str | None:
    """Snap's ``add_path``/``finalize_path``, which may be a full URL or a path on the API host."""
    if not path:
        return None
    text = str(path)
    return text if text.startswith("https://") else "https://businessapi.snapchat.com" + ("" if text.startswith("/") else "/") + text



async def _public_profiles(ctx: ProviderContext, token: str) -> list[dict[str, Any]]:
    response = await send(ctx, "GET", f"{API}/me/public_profiles", headers=bearer(ctx, token))
    answer = raise_for_snap(response)
    return [entry["public_profile"] for entry in answer.get("public_profiles") or [] if isinstance(entry.get("public_profile"), dict)]


@hookimpl
def register_providers() -> list[Provider]:
    return [Snapchat()]
