"""Mastodon (and compatible servers) through the client API of the account's own instance.

- **Credentials**: the instance URL and an access token. The OAuth route (``register_app``,
  ``oauth_spec``, ``exchange_code`` below) ends in the same two values, so ``connect`` and
  ``publish`` never care how the token was obtained. The app is registered per instance
  (``POST /api/v1/apps``): there is no global client id, which is why ``auth`` is a form and not
  an ``OAuth2Spec`` (whose URLs are fixed).
- **Limits are per instance.** ``limits`` declares Mastodon's defaults (500 characters, 4
  attachments, 16 MiB images, 99 MiB videos) so every draft is checked before scheduling.
  ``connect`` reads the instance's own figures from ``/api/v2/instance`` into ``ctx.store``, and
  ``publish`` refuses (``Rejected``, codes ``INSTANCE_…``) a post that fits the defaults but not
  the instance, before uploading anything. An instance allowing more than the defaults still gets
  the defaults: declarations are static, and the smaller figure is the safe one.
- **Publishing**: media goes up first (``POST /api/v2/media``; a 202 means processing, polled on
  ``GET /api/v1/media/{id}`` with ``ctx.sleep`` until it has a URL), then ``POST /api/v1/statuses``
  with an ``Idempotency-Key`` (the target's key; ``key#n`` for thread part n). Thread parts reply
  to the part before (``in_reply_to_id``) through ``publish_thread``, so a retry resumes.
- **Reconcile** replays the publish under the same keys. Mastodon keeps a key for an hour and
  answers a replayed POST with the status it created, so the replay returns the post if it exists
  and publishes it exactly once if it does not. After 50 minutes (a margin under that hour)
  a replay could publish twice, so reconcile answers None and a person decides. (Searching the
  account's statuses instead would mean matching rendered HTML against the text: fragile.)
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Issue,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    OAuth2Spec,
    PostDraft,
    PostedPart,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Rejected,
    SettingField,
    TokenSet,
    TransientError,
    hookimpl,
    publish_thread,
    reported,
)
from providers.http import raise_for_response, send
from providers.text import find_urls

MB = 1024 * 1024
DEFAULTS = {
    "max_characters": 500,
    "max_media_attachments": 4,
    "characters_reserved_per_url": 23,
    "image_size_limit": 16 * MB,
    "video_size_limit": 99 * MB,
}
SCOPES = ("read:accounts", "read:statuses", "write:statuses", "write:media")
INSTANCE = "instance"  # ctx.store kind: "limits" → the instance's own figures, read at connect
UPLOADS = "upload"  # ctx.store kind: "{key}#{part}#{n}" → a media id already uploaded for that slot
SENT = "status_sent"  # ctx.store kind: idempotency key → when its first status POST went out
IDEMPOTENCY_WINDOW = timedelta(minutes=50)  # Mastodon keeps an Idempotency-Key for 60 minutes
MEDIA_POLL_SECONDS = (1, 1, 2, 3, 5, 5, 10, 10, 15, 15, 30, 30)  # about two minutes in all
INSTANCE_URL = r"https://[A-Za-z0-9.-]+(?::\d+)?/?"
REMOTE_MENTION = re.compile(r"(?<![\w/])@(\w+)@[\w.-]+\w")
VIDEO_LIKE = {"video", "gif"}  # Mastodon turns GIFs into looping videos


def instance_base(instance_url: str) -> str:
    """``https://host`` without a trailing slash: every API path is appended to it."""
    return instance_url.rstrip("/")


def mastodon_length(text: str, url_length: int = 23) -> int:
    """The length Mastodon counts: every URL as ``url_length``, a remote ``@user@domain`` as ``@user``."""
    text = REMOTE_MENTION.sub(lambda m: "@" + m[1], text)
    spans = find_urls(text)
    return len(text) - sum(end - start for start, end in spans) + url_length * len(spans)


def rate_limit_reset(response: httpx.Response, now: datetime) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (an ISO 8601 time), or None when absent or unreadable."""
    value = response.headers.get("X-RateLimit-Reset")
    if not value:
        return None
    try:
        reset = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (reset - now).total_seconds())


def raise_for_mastodon(response: httpx.Response, now: datetime) -> None:
    """Map a Mastodon answer (``{"error": "..."}``) to a typed error; quiet on 2xx."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    said = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if status == 403:
        # Missing scopes, a suspended or disabled account: every later call fails alike until reconnected.
        raise AuthExpired(f"Mastodon refused the account's token: {said or 'forbidden'}", code="FORBIDDEN", http_status=status, raw=body)
    code = None
    if status == 422:
        code = "TEXT_TOO_LONG" if said and "character limit" in said else "UNPROCESSABLE_CONTENT"
    elif status == 404:
        code = "NOT_FOUND"
    raise_for_response(response, code=code, message=said, retry_after=rate_limit_reset(response, now) if status == 429 else None)


def _auth(ctx: ProviderContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.credential('access_token')}"}


async def _call(ctx: ProviderContext, method: str, path: str, *, publishes: bool = False, **kwargs: Any) -> httpx.Response:
    """One authenticated API call on the account's instance; non-2xx answers raise typed errors."""
    headers = {**_auth(ctx), **kwargs.pop("headers", {})}
    url = instance_base(ctx.credential("instance_url") or "") + path
    response = await send(ctx, method, url, headers=headers, publishes=publishes, **kwargs)
    raise_for_mastodon(response, ctx.now())
    return response


METRICS_BATCH = 40  # GET /api/v1/statuses takes at most 40 id[]


class Mastodon(Provider):
    id = "mastodon"
    name = "Mastodon"
    approval = "None: each instance registers the app on the fly (POST /api/v1/apps); an instance's own rules may still restrict automated posting."
    description = "Posts statuses, threads and media to a Mastodon account on any instance."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, reconcile=True)
    # Only what the instance has seen; no views. quotes_count exists from Mastodon 4.5 on.
    metrics = MetricsSpec(
        post=("likes", "comments", "reposts", "quotes"),
        account=("followers", "following", "posts"),
        batch_size=METRICS_BATCH,
        min_interval_seconds=300,
    )
    limits = Limits(
        max_text_length=DEFAULTS["max_characters"],
        max_media=DEFAULTS["max_media_attachments"],
        media_kinds=frozenset({"image", "gif", "video"}),
        max_media_bytes={"image": DEFAULTS["image_size_limit"], "gif": DEFAULTS["image_size_limit"], "video": DEFAULTS["video_size_limit"]},
        max_thread_parts=25,  # our cap: Mastodon itself does not limit reply chains
    )
    auth = (
        CredentialField("instance_url", "Instance", kind="url", pattern=INSTANCE_URL, help="Your server, e.g. https://mastodon.social"),
        CredentialField(
            "access_token", "Access token", secret=True,
            help="Preferences → Development → New application, scopes read:accounts read:statuses write:statuses write:media.",
        ),
    )
    settings = (
        SettingField("visibility", "Visibility", type="choice", choices=("public", "unlisted", "private", "direct"), default="public"),
        SettingField("spoiler_text", "Content warning", help="Shown instead of the text until the reader opens it."),
        SettingField("language", "Language", help="ISO 639 code of the text, e.g. en or de."),
        SettingField("sensitive", "Sensitive media", type="boolean", default=False),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        if len(draft.media) > 1 and any(m.kind in VIDEO_LIKE for m in draft.media):
            issues.append(Issue(("media",), "MEDIA_COMBINATION_NOT_SUPPORTED", "Mastodon attaches a video or GIF only on its own, without other media."))
        language = draft.settings.get("language")
        if isinstance(language, str) and language and not re.fullmatch(r"[a-z]{2,3}", language):
            issues.append(Issue(("settings", "language"), "SETTING_INVALID", "Language must be an ISO 639 code such as en or de."))
        return issues

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Whose token this is (``verify_credentials``), and the instance's own limits (kept for ``publish``)."""
        scoped = dataclasses.replace(ctx, credentials=credentials)  # the submitted values, not yet stored ones
        account = (await _call(scoped, "GET", "/api/v1/accounts/verify_credentials")).json()
        host = urllib.parse.urlsplit(credentials["instance_url"]).hostname or ""
        try:
            instance = (await _call(scoped, "GET", "/api/v2/instance")).json()
        except Rejected:  # before Mastodon 4.0 there is no v2 instance: the defaults stay in force
            ctx.log.info("no /api/v2/instance on %s; using Mastodon's default limits", host)
        else:
            host = instance.get("domain") or host
            await ctx.store.put(INSTANCE, "limits", instance_limits(instance))
        return AccountProfile(
            external_id=str(account["id"]),
            handle=f"@{account['acct']}@{host}",  # verify_credentials is always a local account: acct has no domain
            display_name=account.get("display_name") or account.get("username", ""),
            avatar_url=account.get("avatar"),
            raw=account,
        )

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        problems = instance_problems(request, await ctx.store.get(INSTANCE, "limits") or DEFAULTS)
        if problems:
            raise Rejected(problems[0].code, " ".join(p.message for p in problems), raw=problems)
        if await ctx.store.get(SENT, request.idempotency_key) is None:
            await ctx.store.put(SENT, request.idempotency_key, {"first_sent_at": ctx.now().isoformat()})

        async def post_part(index: int, text: str, media: tuple[PublishMedia, ...], reply_to: str | None) -> PostedPart:
            media_ids = [await self._upload(ctx, f"{request.idempotency_key}#{index}#{n}", item) for n, item in enumerate(media)]
            key = request.idempotency_key if index == 0 else f"{request.idempotency_key}#{index}"
            body = status_body(text, media_ids, reply_to, request.settings)
            status = (await _call(ctx, "POST", "/api/v1/statuses", json=body, headers={"Idempotency-Key": key}, publishes=True)).json()
            return PostedPart(str(status["id"]), status.get("url"), status)

        return await publish_thread(ctx, request, post_part)

    async def _upload(self, ctx: ProviderContext, slot: str, media: PublishMedia) -> str:
        """The id of ``media`` on the instance, processed; an upload kept from an earlier attempt is reused."""
        kept = await ctx.store.get(UPLOADS, slot)
        if kept is not None:
            return str(kept["id"])
        filename = media.filename or "upload"
        response = await _call(
            ctx, "POST", "/api/v2/media",
            files={"file": (filename, await media.source.read(), media.mime_type)}, data={"description": media.alt_text},
        )
        attachment = response.json()
        media_id = str(attachment["id"])
        await ctx.store.put(UPLOADS, slot, {"id": media_id})
        if response.status_code == 202 or attachment.get("url") is None:
            await self._wait_until_processed(ctx, media_id)
        return media_id

    async def _wait_until_processed(self, ctx: ProviderContext, media_id: str) -> None:
        """Poll until the instance has processed the upload (206 while processing, 200 with a URL when done)."""
        for delay in MEDIA_POLL_SECONDS:
            await ctx.sleep(delay)
            response = await _call(ctx, "GET", f"/api/v1/media/{media_id}")
            if response.status_code == 200 and response.json().get("url"):
                return
        raise TransientError(
            f"the instance is still processing media {media_id} after {sum(MEDIA_POLL_SECONDS)} s", code="MEDIA_PROCESSING",
        )

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        sent = await ctx.store.get(SENT, request.idempotency_key)
        if sent is None:
            return None  # no status was ever sent for this key
        if ctx.now() - datetime.fromisoformat(sent["first_sent_at"]) > IDEMPOTENCY_WINDOW:
            ctx.log.warning("Mastodon may have forgotten idempotency key %s; not replaying", request.idempotency_key)
            return None
        return await self.publish(ctx, request)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        try:
            await _call(ctx, "DELETE", f"/api/v1/statuses/{platform_post_id}")
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise  # a status that is not found is already gone

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """``GET /api/v1/statuses?id[]=…`` (Mastodon 4.3+): the statuses the instance still has, in one call."""
        if not platform_post_ids:
            return []
        params = [("id[]", post_id) for post_id in platform_post_ids]
        try:
            statuses = (await _call(ctx, "GET", "/api/v1/statuses", params=params)).json()
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise
            statuses = await _statuses_one_by_one(ctx, platform_post_ids)  # an instance older than 4.3
        return [
            MetricSnapshot(
                platform_post_id=str(status["id"]), captured_at=ctx.now(), likes=reported(status.get("favourites_count")),
                comments=reported(status.get("replies_count")), reposts=reported(status.get("reblogs_count")),
                quotes=reported(status.get("quotes_count")), raw=status,
            )
            for status in statuses
        ]

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """``verify_credentials``: the account's followers, follows and statuses."""
        account = (await _call(ctx, "GET", "/api/v1/accounts/verify_credentials")).json()
        return AccountMetricSnapshot(
            captured_at=ctx.now(), followers=reported(account.get("followers_count")),
            following=reported(account.get("following_count")), posts=reported(account.get("statuses_count")),
        )


async def _statuses_one_by_one(ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``GET /api/v1/statuses/:id`` for each id; a deleted status is left out."""
    found = []
    for post_id in platform_post_ids:
        try:
            found.append((await _call(ctx, "GET", f"/api/v1/statuses/{post_id}")).json())
        except Rejected as error:
            if error.code != "NOT_FOUND":
                raise
    return found


def status_body(text: str, media_ids: list[str], reply_to: str | None, settings: Any) -> dict[str, Any]:
    """The JSON of ``POST /api/v1/statuses``: only the fields that are set."""
    body: dict[str, Any] = {"status": text, "visibility": settings.get("visibility", "public")}
    if media_ids:
        body["media_ids"] = media_ids
    if reply_to:
        body["in_reply_to_id"] = reply_to
    for name in ("spoiler_text", "language"):
        if settings.get(name):
            body[name] = settings[name]
    if settings.get("sensitive"):
        body["sensitive"] = True
    return body


def instance_limits(instance: dict[str, Any]) -> dict[str, int]:
    """The figures of ``/api/v2/instance`` that decide what a status may hold (defaults where absent)."""
    configuration = instance.get("configuration") or {}
    statuses, media = configuration.get("statuses") or {}, configuration.get("media_attachments") or {}
    found = {**statuses, **media}
    return {name: int(found[name]) if isinstance(found.get(name), int) else default for name, default in DEFAULTS.items()}


def instance_problems(request: PublishRequest, limits: dict[str, int]) -> list[Issue]:
    """What the account's instance would refuse although the declared defaults allow it."""
    issues = []
    parts = [(request.text, request.media, ("text",))] + [
        (part.text, part.media, ("thread", str(i))) for i, part in enumerate(request.thread)
    ]
    for text, media, where in parts:
        length = mastodon_length(text, limits["characters_reserved_per_url"])
        if length > limits["max_characters"]:
            issues.append(Issue(where, "INSTANCE_TEXT_TOO_LONG", f"The text is {length} characters; this instance allows at most {limits['max_characters']}."))
        if len(media) > limits["max_media_attachments"]:
            issues.append(Issue(where, "INSTANCE_TOO_MANY_MEDIA", f"{len(media)} attachments; this instance allows at most {limits['max_media_attachments']}."))
        for item in media:
            cap = limits["video_size_limit"] if item.kind == "video" else limits["image_size_limit"]
            if item.size_bytes > cap:
                issues.append(Issue(where, "INSTANCE_MEDIA_TOO_LARGE", f"A {item.kind} of {item.size_bytes} bytes; this instance takes at most {cap}."))
    return issues


# -- OAuth with dynamic app registration ---------------------------------------------------------


def oauth_spec(instance_url: str, scopes: tuple[str, ...] = SCOPES) -> OAuth2Spec:
    """The authorization-code flow of one instance (PKCE S256: Mastodon 4.3+ checks it, older ones ignore it)."""
    base = instance_base(instance_url)
    return OAuth2Spec(authorize_url=f"{base}/oauth/authorize", token_url=f"{base}/oauth/token", scopes=scopes, pkce=True, refreshable=False)


async def register_app(
    ctx: ProviderContext, instance_url: str, redirect_uri: str, *, scopes: tuple[str, ...] = SCOPES,
    client_name: str = "socialgate", website: str | None = None,
) -> tuple[str, str]:
    """Register the gateway as an app on ``instance_url`` (``POST /api/v1/apps``): ``(client_id, client_secret)``.

    Do it once per instance and keep the pair: every instance is its own authorization server.
    """
    body = {"client_name": client_name, "redirect_uris": redirect_uri, "scopes": " ".join(scopes)}
    if website:
        body["website"] = website
    response = await send(ctx, "POST", instance_base(instance_url) + "/api/v1/apps", json=body)
    raise_for_mastodon(response, ctx.now())
    app = response.json()
    return str(app["client_id"]), str(app["client_secret"])


async def exchange_code(
    ctx: ProviderContext, instance_url: str, *, code: str, redirect_uri: str, client_id: str, client_secret: str,
    code_verifier: str | None, scopes: tuple[str, ...] = SCOPES,
) -> TokenSet:
    """Trade the authorization code for a token; its credentials are the form's (``instance_url``, ``access_token``)."""
    base = instance_base(instance_url)
    form = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": client_id, "client_secret": client_secret, "scope": " ".join(scopes),
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    response = await send(ctx, "POST", base + "/oauth/token", data=form)
    if response.status_code in (400, 401):  # RFC 6749 §5.2: the code or the client was refused
        error = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        raise Rejected(str(error.get("error", "invalid_grant")).upper(), str(error.get("error_description") or "the instance refused the code"), http_status=response.status_code)
    raise_for_mastodon(response, ctx.now())
    token = response.json()
    return TokenSet(
        access_token=token["access_token"], token_type=token.get("token_type", "Bearer"),
        scopes=tuple(str(token.get("scope", "")).split()), extra={"instance_url": base},
    )


@hookimpl
def register_providers() -> list[Provider]:
    return [Mastodon()]
