"""Dribbble through API v2: a shot is one image, a title, a description and tags.

- **Auth**: OAuth (``public upload`` scopes); Dribbble issues no refresh token and its tokens do
  not expire. Only accounts Dribbble lets upload (``can_upload_shot``) can be connected.
- **Image rules** Dribbble enforces, checked before any call: exactly 400×300 or 800×600
  pixels, GIF/JPG/PNG, at most 8 MB. ``check_draft`` refuses other dimensions when the
  gateway knows them; ``publish`` refuses an image whose dimensions it was not told.
- **Publishing** is ``POST /v2/shots`` as multipart (``image``, ``title``, ``description``,
  ``tags[]`` ≤ 12, ``team_id``, ``low_profile``). Dribbble answers **202 Accepted** with no body;
  the shot's id is the last segment of ``Location``, and the shot appears once processed.
- **Reconcile** looks for the title among the user's newest shots (``GET /v2/user/shots``)
  published since the shot was first sent.
- **Errors**: 422 ``{"message": "Validation failed.", "errors": [{"attribute", "message"}]}``
  → ``Rejected`` (``INVALID_{ATTRIBUTE}``); 429 waits until ``X-RateLimit-Reset`` (a Unix time;
  60 requests a minute); 401 ``AuthExpired``; 5xx ``TransientError``.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from typing import Any

import httpx

from providers import (
    AccountProfile,
    Capabilities,
    Issue,
    Limits,
    OAuth2Spec,
    PostDraft,
    Provider,
    ProviderContext,
    PublishRequest,
    PublishResult,
    Rejected,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import request_tokens

API = "https://api.dribbble.com/v2"
AUTHORIZE_URL = "https://dribbble.com/oauth/authorize"
TOKEN_URL = "https://dribbble.com/oauth/token"
SHOT_URL = "https://dribbble.com/shots/{id}"
SIZES = ((400, 300), (800, 600))
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_TAGS = 12
RECENT_SHOTS = 30
SENT = "shot_sent"  # ctx.store kind: idempotency key → when the shot was first uploaded
CLOCK_SKEW = timedelta(minutes=2)  # how far before our upload time Dribbble's published_at may be


def tags_of(value: Any) -> list[str]:
    """The ``tags`` setting (comma-separated) as Dribbble's list of tags."""
    return [tag.strip() for tag in str(value or "").split(",") if tag.strip()]


def dimension_problem(width: int | None, height: int | None) -> str | None:
    """Why an image of these dimensions cannot be a shot, or None when it can."""
    if width is None or height is None:
        return "Dribbble needs the image's dimensions (exactly 400×300 or 800×600) and they are not known."
    if (width, height) not in SIZES:
        return f"The image is {width}×{height}; a Dribbble shot must be exactly 400×300 or 800×600 pixels."
    return None


def _reset_in(response: httpx.Response, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (a Unix time), or None when absent."""
    try:
        return max(0.0, float(response.headers["X-RateLimit-Reset"]) - now)
    except (KeyError, ValueError):
        return None


def raise_for_dribbble(response: httpx.Response, now: float) -> None:
    if response.is_success:
        return
    body = json_object(response) or {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    message = "; ".join(f"{e.get('attribute')} {e.get('message')}" for e in errors) or body.get("message")
    code = None
    if response.status_code == 422:
        code = f"INVALID_{str(errors[0].get('attribute', 'shot')).upper()}" if errors else "VALIDATION_ERROR"
    elif response.status_code in (403, 404):
        code = {403: "FORBIDDEN", 404: "NOT_FOUND"}[response.status_code]
    raise_for_response(response, code=code, message=str(message) if message else None, retry_after=_reset_in(response, now))


async def _call(ctx: ProviderContext, method: str, path: str, *, token: str | None = None, publishes: bool = False, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token if token is not None else ctx.credential('access_token') or ''}"}
    response = await send(ctx, method, API + path, headers=headers, publishes=publishes, **kwargs)
    raise_for_dribbble(response, ctx.now().timestamp())
    return response


class Dribbble(Provider):
    id = "dribbble"
    name = "Dribbble"
    approval = "None: any application registered at dribbble.com/account/applications; the connected account must be one that may upload shots."
    description = "Uploads shots (one 400×300 or 800×600 image with a title and tags) to Dribbble."
    capabilities = Capabilities(delete=True, reconcile=True)
    limits = Limits(
        max_media=1,
        media_kinds=frozenset({"image", "gif"}),
        max_media_bytes={"image": MAX_IMAGE_BYTES, "gif": MAX_IMAGE_BYTES},
        media_required=True,
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=("public", "upload"), refreshable=False)
    settings = (
        SettingField("title", "Title", required=True),
        SettingField("tags", "Tags", help=f"Comma-separated, at most {MAX_TAGS}."),
        SettingField("team_id", "Team", help="The id of a team to post the shot for."),
        SettingField("low_profile", "Low profile", type="boolean", default=False, help="Keep the shot off the popular pages."),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        tags = tags_of(draft.settings.get("tags"))
        if len(tags) > MAX_TAGS:
            issues.append(Issue(("settings", "tags"), "TOO_MANY_TAGS", f"{len(tags)} tags; Dribbble allows at most {MAX_TAGS}."))
        title = draft.settings.get("title")
        if isinstance(title, str) and not title.strip():
            issues.append(Issue(("settings", "title"), "SETTING_REQUIRED", "A Dribbble shot needs a title."))
        for index, media in enumerate(draft.media):
            known = media.width is not None and media.height is not None
            problem = dimension_problem(media.width, media.height) if known else None
            if problem:
                issues.append(Issue(("media", str(index)), "IMAGE_DIMENSIONS_NOT_SUPPORTED", problem))
        return issues

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {"client_id": client_id, "client_secret": client_secret, "code": code, "redirect_uri": redirect_uri}
        return await request_tokens(ctx, TOKEN_URL, form, refreshing=False)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        me = (await _call(ctx, "GET", "/user", token=credentials.get("access_token", ""))).json()
        if me.get("can_upload_shot") is False:
            raise Rejected("CANNOT_UPLOAD_SHOTS", f"Dribbble does not let {me.get('login')} upload shots yet.")
        return AccountProfile(
            external_id=str(me["id"]), handle=str(me["login"]), display_name=me.get("name") or me["login"],
            account_type=str(me.get("type", "User")).lower(), avatar_url=me.get("avatar_url"), raw=me,
        )

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        image = request.media[0]
        problem = dimension_problem(image.width, image.height)
        if problem:
            raise Rejected("IMAGE_DIMENSIONS_NOT_SUPPORTED", problem)
        fields: dict[str, Any] = {"title": str(request.settings["title"]), "description": request.text}
        tags = tags_of(request.settings.get("tags"))
        if tags:
            fields["tags[]"] = tags  # Rails' form arrays: one tags[] field per tag
        if request.settings.get("team_id"):
            fields["team_id"] = str(request.settings["team_id"])
        fields["low_profile"] = "true" if request.settings.get("low_profile") else "false"
        filename = image.filename or ("shot.gif" if image.kind == "gif" else "shot.png")
        files = {"image": (filename, await image.source.read(), image.mime_type)}
        if await ctx.store.get(SENT, request.idempotency_key) is None:
            await ctx.store.put(SENT, request.idempotency_key, {"at": ctx.now().isoformat()})
        response = await _call(ctx, "POST", "/shots", data=fields, files=files, publishes=True)
        location = response.headers.get("Location", "")
        shot_id = urllib.parse.urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if not shot_id.isdigit():
            raise Unconfirmed(f"Dribbble answered {response.status_code} without the shot's Location")
        return PublishResult(platform_post_id=shot_id, url=SHOT_URL.format(id=shot_id), raw={"location": location})

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The newest of the user's recent shots with this post's title published since it was first sent.

        None without a call when nothing was ever sent; an older shot with the same title is another shot.
        """
        sent = await ctx.store.get(SENT, request.idempotency_key)
        if sent is None:
            return None
        earliest = datetime.fromisoformat(sent["at"]) - CLOCK_SKEW
        shots = (await _call(ctx, "GET", "/user/shots", params={"per_page": RECENT_SHOTS})).json()
        title = str(request.settings["title"])
        for shot in shots:
            published = shot.get("published_at")
            if shot.get("title") == title and published and datetime.fromisoformat(published.replace("Z", "+00:00")) >= earliest:
                return PublishResult(platform_post_id=str(shot["id"]), url=shot.get("html_url") or SHOT_URL.format(id=shot["id"]), raw=shot)
        return None

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        try:
            await _call(ctx, "DELETE", f"/shots/{platform_post_id}")
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise


@hookimpl
def register_providers() -> list[Provider]:
    return [Dribbble()]
