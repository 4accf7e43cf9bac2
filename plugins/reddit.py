"""Reddit through its OAuth API: self, link, image and video posts to a subreddit.

- **Submitting** is ``POST https://oauth.reddit.com/api/submit`` (a form, ``api_type=json``) with
  ``sr``, ``title``, ``kind`` and ``text`` (self), ``url`` (link, image, video), ``flair_id``/
  ``flair_text``, ``nsfw`` and ``spoiler``. The kind follows the post: a video (with an image as
  its poster, which Reddit requires) is ``video``, an image is ``image``, a ``url`` setting makes a
  ``link`` post, anything else is a ``self`` post whose text is the post's text.
- **Errors come back as HTTP 200** with ``json.errors`` (``[["SUBREDDIT_NOEXIST", "…", "sr"]]``):
  each is mapped to the taxonomy (``RATELIMIT`` → ``RateLimited`` with Reddit's
  ``json.ratelimit`` seconds; ``USER_REQUIRED`` → ``AuthExpired``; the rest ``Rejected`` under
  Reddit's own word).
- **Media** goes up first: ``POST /api/media/asset.json`` leases an upload slot on Reddit's S3
  bucket, the bytes go there, and the post's ``url`` is the uploaded file. Reddit answers a media
  submission without the post's id (only a websocket to follow processing), so the provider
  answers ``Processing`` (already ``published``) and ``poll`` lists the account's submissions
  (``GET /user/{name}/submitted``) until the post is there. ``reconcile`` does the same search,
  for posts made since the submission was first sent (an older post with the same title is
  another post).
- **User-Agent**: Reddit throttles generic agents; every call says
  ``server:socialgate:1 (by /u/{account})``.
- **Pacing**: every answer's ``X-Ratelimit-Remaining``/``-Reset`` are read; when nothing remains,
  the next call is refused before sending (``RateLimited`` until the window resets), and a 429
  waits ``X-Ratelimit-Reset`` seconds.
- **Flair** is the ``flair_id`` setting, whose choices depend on the subreddit: ask the account's
  choices for ``flair_id:{subreddit}`` (``GET /r/{sr}/api/link_flair_v2``).
- **Metrics**: ``GET /api/info?id=t3_…`` (up to 100 posts): upvotes as likes, comments, and the
  score in ``extra``. Reddit reports no views.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from providers import (
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
    RateLimited,
    Rejected,
    SettingChoice,
    SettingField,
    TokenSet,
    hookimpl,
    reported,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import request_tokens

API = "https://oauth.reddit.com"
AUTHORIZE_URL = "https://www.reddit.com/api/v1/authorize"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
# identity: who; submit: post; flair: flair templates; read: /api/info; history: the user's
# submissions (reconcile); edit: /api/del.
SCOPES = ("identity", "submit", "flair", "read", "history", "edit")
SITE = "https://www.reddit.com"
USER_AGENT = "server:socialgate:1 (by /u/{username})"
USER_AGENT_ANONYMOUS = "server:socialgate:1 (self-hosted social publishing gateway)"  # before the username is known
MAX_TITLE = 300
MAX_SELFTEXT = 40_000
SUBREDDIT = re.compile(r"(?:/?r/)?([A-Za-z0-9][A-Za-z0-9_]{0,20})")
PACE = "pace"  # ctx.store kind: "until" → when Reddit's rate-limit window reopens
SUBMITTED = "submitted"  # ctx.store kind: idempotency key → when its submission was first sent
FIND_WINDOW = timedelta(minutes=2)  # how far before our submission time a listed post may date (clock skew)
MEDIA_CHECK = timedelta(seconds=20)
METRICS_BATCH = 100  # /api/info takes up to 100 fullnames
# Reddit's error words and the typed errors they become (the rest are Rejected under their word).
AUTH_ERRORS = {"USER_REQUIRED", "INVALID_USER"}


def subreddit_name(value: str) -> str | None:
    """``pics`` from ``pics``, ``r/pics`` or ``/r/pics``; None when it cannot be a subreddit name."""
    match = SUBREDDIT.fullmatch(value.strip())
    return match[1] if match else None


def raise_for_reddit_errors(body: Mapping[str, Any], response: httpx.Response) -> None:
    """Raise for ``json.errors`` of an HTTP 200 answer (``[[word, message, field], …]``); quiet when empty."""
    answer = body.get("json") or {}
    errors = [e for e in answer.get("errors") or [] if isinstance(e, list) and e]
    if not errors:
        return
    word, message = str(errors[0][0]), str(errors[0][1]) if len(errors[0]) > 1 else str(errors[0][0])
    said = "; ".join(f"{e[0]}: {e[1]}" if len(e) > 1 else str(e[0]) for e in errors)
    if word == "RATELIMIT":
        wait = answer.get("ratelimit")
        raise RateLimited(float(wait) if isinstance(wait, int | float) else None, message, code=word, http_status=response.status_code, raw=body)
    if word in AUTH_ERRORS:
        raise AuthExpired(said, code=word, http_status=response.status_code, raw=body)
    raise Rejected(word, said, http_status=response.status_code, raw=body)


def _reset_seconds(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["X-Ratelimit-Reset"]))
    except (KeyError, ValueError):
        return None


async def _pace(ctx: ProviderContext, response: httpx.Response) -> None:
    """Remember when the window reopens if this answer used the last request it allowed."""
    try:
        remaining = float(response.headers["X-Ratelimit-Remaining"])
    except (KeyError, ValueError):
        return
    reset = _reset_seconds(response)
    if remaining < 1 and reset is not None:
        await ctx.store.put(PACE, "until", {"at": (ctx.now() + timedelta(seconds=reset)).isoformat()})


async def _wait_for_window(ctx: ProviderContext) -> None:
    """``RateLimited`` (nothing sent) while a window Reddit said was used up has not reset."""
    record = await ctx.store.get(PACE, "until")
    if record is None:
        return
    left = (datetime.fromisoformat(record["at"]) - ctx.now()).total_seconds()
    if left > 0:
        raise RateLimited(left, "Reddit's rate-limit window is used up until it resets", code="RATE_LIMIT_WINDOW")
    await ctx.store.delete(PACE, "until")


def _user_agent(ctx: ProviderContext, username: str | None = None) -> str:
    username = username or ctx.credential("username")
    return USER_AGENT.format(username=username) if username else USER_AGENT_ANONYMOUS


async def _call(ctx: ProviderContext, method: str, path: str, *, publishes: bool = False, token: str | None = None,
                username: str | None = None, **kwargs: Any) -> httpx.Response:
    """One call on oauth.reddit.com, paced, with the account's token and a descriptive User-Agent."""
    await _wait_for_window(ctx)
    headers = {"Authorization": f"bearer {token or ctx.credential('access_token') or ''}", "User-Agent": _user_agent(ctx, username)}
    response = await send(ctx, method, API + path, headers=headers, publishes=publishes, **kwargs)
    await _pace(ctx, response)
    if not response.is_success:
        body = json_object(response) or {}
        message = body.get("message") or body.get("error")
        code = {403: "FORBIDDEN", 404: "NOT_FOUND"}.get(response.status_code)
        raise_for_response(response, code=code, message=str(message) if message else None, retry_after=_reset_seconds(response))
    return response


def submit_kind(request: PublishRequest) -> str:
    if any(m.kind == "video" for m in request.media):
        return "video"
    if request.media:
        return "image"
    return "link" if request.settings.get("url") else "self"


class Reddit(Provider):
    id = "reddit"
    name = "Reddit"
    approval = "Reddit's Data API terms: a registered app with a unique User-Agent may use the free tier non-commercially; commercial use needs Reddit's approval and an agreement with Reddit."
    description = "Submits text, link, image and video posts to a subreddit as the connected Reddit user."
    capabilities = Capabilities(delete=True, metrics=True, reconcile=True, processing=True)
    limits = Limits(
        max_text_length=MAX_SELFTEXT,
        max_media=2,  # one image, or one video and the image Reddit shows as its poster
        media_kinds=frozenset({"image", "video"}),
        max_media_per_kind={"video": 1},
        max_media_bytes={"image": 20 * 1024 * 1024, "video": 1024 * 1024 * 1024},
    )
    metrics = MetricsSpec(post=("likes", "comments"), batch_size=METRICS_BATCH, min_interval_seconds=600)
    auth = OAuth2Spec(
        authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, extra_authorize_params={"duration": "permanent"},
    )
    settings = (
        SettingField("subreddit", "Subreddit", required=True, help="Where to post, e.g. r/socialgate or socialgate."),
        SettingField("title", "Title", required=True, help=f"Up to {MAX_TITLE} characters."),
        SettingField("url", "Link", help="Makes a link post to this http(s) URL (ignored when media is attached)."),
        SettingField(
            "flair_id", "Flair", choices_from_account=True,
            help="A link flair template id; its choices depend on the subreddit: ask for flair_id:<subreddit>.",
        ),
        SettingField("flair_text", "Flair text", help="Text for an editable flair."),
        SettingField("nsfw", "NSFW", type="boolean", default=False),
        SettingField("spoiler", "Spoiler", type="boolean", default=False),
        SettingField("send_replies", "Inbox replies", type="boolean", default=True),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        subreddit, title, url = (draft.settings.get(n) for n in ("subreddit", "title", "url"))
        if isinstance(subreddit, str) and subreddit_name(subreddit) is None:
            issues.append(Issue(("settings", "subreddit"), "SETTING_INVALID", f"{subreddit!r} is not a subreddit name."))
        if isinstance(title, str) and not title.strip():
            issues.append(Issue(("settings", "title"), "SETTING_REQUIRED", "Reddit posts need a title."))
        if isinstance(title, str) and len(title) > MAX_TITLE:
            issues.append(Issue(("settings", "title"), "TITLE_TOO_LONG", f"The title is {len(title)} characters; Reddit allows at most {MAX_TITLE}."))
        if isinstance(url, str) and url and not re.match(r"https?://[^\s/]+", url):
            issues.append(Issue(("settings", "url"), "SETTING_INVALID", "The link must be an absolute http(s) URL."))
        kinds = [m.kind for m in draft.media]
        if "video" in kinds and sorted(kinds) != ["image", "video"]:
            issues.append(Issue(("media",), "VIDEO_POSTER_REQUIRED", "A Reddit video needs exactly one image beside it, shown as its poster."))
        elif "video" not in kinds and len(kinds) > 1:
            issues.append(Issue(("media",), "TOO_MANY_MEDIA", f"{len(kinds)} images; Reddit posts one image (galleries are not supported)."))
        return issues

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """Trade the code (HTTP Basic client auth), then record the username the User-Agent names."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        tokens = await request_tokens(ctx, TOKEN_URL, form, refreshing=False, basic_auth=(client_id, client_secret))
        me = await _me(ctx, tokens.access_token)
        return TokenSet(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=tokens.expires_at,
            scopes=tokens.scopes, token_type=tokens.token_type, extra={**tokens.extra, "username": me["name"]},
        )

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("Reddit issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
        username = ctx.credential("username")
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        return await request_tokens(
            ctx, TOKEN_URL, form, refreshing=True, basic_auth=(client_id, client_secret), extra={"username": username} if username else None,
        )

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        me = await _me(ctx, credentials.get("access_token", ""), credentials.get("username"))
        return AccountProfile(
            external_id=f"t2_{me['id']}", handle=f"u/{me['name']}", display_name=me["name"],
            avatar_url=(me.get("icon_img") or "").split("?")[0] or None, raw=me,
        )

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        """Link flair templates of a subreddit: ``setting`` is ``flair_id:{subreddit}``."""
        name, _, qualifier = setting.partition(":")
        if name != "flair_id":
            raise Rejected("UNKNOWN_SETTING", f"Reddit lists no choices for {name!r}")
        subreddit = subreddit_name(qualifier) if qualifier else None
        if subreddit is None:
            raise Rejected("SUBREDDIT_REQUIRED", "Flair depends on the subreddit: ask for flair_id:<subreddit>, e.g. flair_id:socialgate.")
        templates = (await _call(ctx, "GET", f"/r/{subreddit}/api/link_flair_v2")).json()
        return [
            SettingChoice(str(t["id"]), t.get("text", ""), {"subreddit": subreddit, "text_editable": bool(t.get("text_editable")), "mod_only": bool(t.get("mod_only"))})
            for t in templates if isinstance(t, dict) and t.get("id")
        ]

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        kind = submit_kind(request)
        form = self._form(request, kind)
        if kind in ("image", "video"):
            with ctx.preparing():
                video = next((m for m in request.media if m.kind == "video"), None)
                image = next(m for m in request.media if m.kind == "image")
                form["url"] = await _upload(ctx, video or image)
                if video is not None:
                    form["video_poster_url"] = await _upload(ctx, image)
        submitted_at = ctx.now()
        if await ctx.store.get(SUBMITTED, request.idempotency_key) is None:
            await ctx.store.put(SUBMITTED, request.idempotency_key, {"at": submitted_at.isoformat()})
        response = await _call(ctx, "POST", "/api/submit", data=form, publishes=True)
        body = json_object(response) or {}
        raise_for_reddit_errors(body, response)
        data = (body.get("json") or {}).get("data") or {}
        if data.get("name"):
            return PublishResult(platform_post_id=str(data["name"]), url=data.get("url"), raw=body)
        # A media post: Reddit names no id until it has processed the upload; find it in the listing.
        handle = {"subreddit": form["sr"], "title": form["title"], "submitted_at": submitted_at.isoformat()}
        return Processing(handle=handle, check_after=MEDIA_CHECK, stage="processing", published=True, deadline=timedelta(hours=2))

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        found = await self._find(ctx, str(handle["subreddit"]), str(handle["title"]), datetime.fromisoformat(handle["submitted_at"]))
        if found is not None:
            return found
        return Processing(handle=dict(handle), check_after=MEDIA_CHECK, stage="processing", published=True, deadline=timedelta(hours=2))

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The account's submission to the subreddit with this title made since this post was first sent, if any.

        Nothing was ever sent for this post when no submission time is recorded: None, without a call.
        """
        sent = await ctx.store.get(SUBMITTED, request.idempotency_key)
        if sent is None:
            return None
        form = self._form(request, submit_kind(request))
        return await self._find(ctx, form["sr"], form["title"], datetime.fromisoformat(sent["at"]))

    async def _find(self, ctx: ProviderContext, subreddit: str, title: str, since: datetime) -> PublishResult | None:
        """The newest of the user's submissions (first page) to ``subreddit`` titled ``title``, made since ``since``."""
        username = ctx.credential("username") or (await _me(ctx, ctx.credential("access_token") or ""))["name"]
        listing = (await _call(ctx, "GET", f"/user/{username}/submitted", params={"sort": "new", "limit": 25, "raw_json": 1})).json()
        earliest = (since - FIND_WINDOW).timestamp()
        for child in (listing.get("data") or {}).get("children", []):
            post = child.get("data") or {}
            if str(post.get("subreddit", "")).lower() != subreddit.lower() or post.get("title") != title:
                continue
            if float(post.get("created_utc") or 0) < earliest:
                continue
            return PublishResult(platform_post_id=str(post["name"]), url=SITE + str(post.get("permalink", "")), raw=post)
        return None

    def _form(self, request: PublishRequest, kind: str) -> dict[str, str]:
        settings = request.settings
        form = {
            "api_type": "json", "sr": subreddit_name(str(settings["subreddit"])) or str(settings["subreddit"]), "title": str(settings["title"]),
            "kind": kind, "resubmit": "true", "sendreplies": _flag(settings.get("send_replies", True)),
            "nsfw": _flag(settings.get("nsfw", False)), "spoiler": _flag(settings.get("spoiler", False)),
        }
        if kind == "self":
            form["text"] = request.text
        elif kind == "link":
            form["url"] = str(settings["url"])
        for name in ("flair_id", "flair_text"):
            if settings.get(name):
                form[name] = str(settings[name])
        return form

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        """``POST /api/del``; Reddit answers 200 for a post already deleted too."""
        await _call(ctx, "POST", "/api/del", data={"id": _fullname(platform_post_id)})

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        if not platform_post_ids:
            return []
        ids = ",".join(_fullname(p) for p in platform_post_ids)
        listing = (await _call(ctx, "GET", "/api/info", params={"id": ids, "raw_json": 1})).json()
        snapshots = []
        for child in (listing.get("data") or {}).get("children", []):
            post = child.get("data") or {}
            snapshots.append(MetricSnapshot(
                platform_post_id=str(post["name"]), captured_at=ctx.now(), likes=reported(post.get("ups")),
                comments=reported(post.get("num_comments")), extra={"score": reported(post.get("score"))}, raw=post,
            ))
        return snapshots


def _flag(value: Any) -> str:
    return "true" if value else "false"


def _fullname(post_id: str) -> str:
    return post_id if post_id.startswith("t3_") else f"t3_{post_id}"


async def _me(ctx: ProviderContext, token: str, username: str | None = None) -> dict[str, Any]:
    return (await _call(ctx, "GET", "/api/v1/me", token=token, username=username)).json()


async def _upload(ctx: ProviderContext, media: PublishMedia) -> str:
    """Lease an upload slot (``/api/media/asset.json``), send the bytes to Reddit's bucket; the file's URL."""
    filename = media.filename or ("video.mp4" if media.kind == "video" else "image.png")
    lease = (await _call(ctx, "POST", "/api/media/asset.json", data={"filepath": filename, "mimetype": media.mime_type})).json()
    args = lease["args"]
    fields = {f["name"]: f["value"] for f in args["fields"]}
    action = "https:" + args["action"] if str(args["action"]).startswith("//") else str(args["action"])
    uploaded = await send(ctx, "POST", action, data=fields, files={"file": (filename, await media.source.read(), media.mime_type)})
    raise_for_response(uploaded, code="MEDIA_UPLOAD_FAILED" if uploaded.status_code < 500 else None)
    return f"{action}/{fields['key']}"


@hookimpl
def register_providers() -> list[Provider]:
    return [Reddit()]
