"""Slack through the Web API with a bot token (OAuth v2): messages, threads and images in a channel.

The example plugin in ``examples/provider-plugin`` posts through an incoming webhook, which
answers a bare ``ok``: no message id, so nothing can be threaded, linked or deleted. This one
installs a bot (``https://slack.com/oauth/v2/authorize`` → ``oauth.v2.access``) and uses the Web API:

- **Channel** is a setting whose choices come from the account (``conversations.list``, public
  and private channels the bot can see). A public channel the bot is not in is joined once
  (``conversations.join``) when Slack answers ``not_in_channel``, and the message is sent again.
- **Messages**: ``chat.postMessage`` with ``blocks`` (the text as ``mrkdwn`` sections of at most
  3,000 characters, then one ``image`` block per image) and the text as the notification
  fallback; a ``blocks`` setting (Block Kit JSON) replaces the generated blocks. The post's id is
  ``{channel}:{ts}``; its URL comes from ``chat.getPermalink``.
- **Threads**: thread parts are replies under the first message (``thread_ts`` = the first
  message's ts, never a reply's); a post replying to an earlier one, or the ``thread_ts``
  setting, puts the whole post in that thread.
- **Images**: ``files.getUploadURLExternal`` (name, length, alt text) → the bytes POSTed to the
  returned URL → ``files.completeUploadExternal`` without a channel (the file stays private),
  then the message shows it in an ``image`` block (``slack_file: {id}``). ``files.upload`` is
  closed to new apps and was sunset on 2025-11-12.
- **Errors**: the Web API answers HTTP 200 ``{"ok": false, "error": "…"}``; token words
  (``invalid_auth``, ``token_revoked``…) are ``AuthExpired``, ``ratelimited`` is ``RateLimited``,
  Slack's own failures (``internal_error``…) ``TransientError``, the rest ``Rejected`` under
  Slack's word upper-cased. A method over its rate tier answers 429 with ``Retry-After``.
- ``chat.delete`` removes a message; one already gone (``message_not_found``) counts as deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    Issue,
    Limits,
    OAuth2Spec,
    PostDraft,
    PostedPart,
    Provider,
    ProviderContext,
    ProviderError,
    PublishMedia,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    SettingChoice,
    SettingField,
    TokenSet,
    TransientError,
    hookimpl,
    publish_thread,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import token_set_from

API = "https://slack.com/api"
AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
TOKEN_URL = f"{API}/oauth.v2.access"
SCOPES = ("channels:read", "groups:read", "chat:write", "channels:join", "files:write")
MAX_TEXT = 40_000  # Slack truncates a message's text beyond this
MAX_SECTION = 3_000  # characters in one section block's text
MAX_BLOCKS = 50
MAX_IMAGES = 10  # our cap: each image is a block, and a message holds 50
CHANNELS_PAGE = 200
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})  # what an image block's slack_file shows
THREAD_ROOT = "thread_root"  # ctx.store kind: idempotency key → the thread the post's parts go under
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "no_permission", "missing_scope"})
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def raise_for_slack(response: httpx.Response) -> dict[str, Any]:
    """The Web API answer as a dict, or the typed error it stands for (HTTP status, then ``ok``/``error``)."""
    raise_for_response(response)
    body = json_object(response) or {}
    if body.get("ok"):
        return body
    word = str(body.get("error") or "unknown_error")
    detail = "; ".join(str(m) for m in (body.get("response_metadata") or {}).get("messages", []))
    message = f"Slack refused the call: {word}" + (f" ({detail})" if detail else "")
    if word in AUTH_ERRORS:
        raise AuthExpired(message, code=word.upper(), http_status=response.status_code, raw=body)
    if word == "ratelimited":
        raise RateLimited(None, message, code="RATELIMITED", http_status=response.status_code, raw=body)
    if word in TRANSIENT_ERRORS:
        raise TransientError(message, code=word.upper(), http_status=response.status_code, raw=body)
    raise Rejected(word.upper(), message, http_status=response.status_code, raw=body)


async def _call(ctx: ProviderContext, method: str, *, token: str | None = None, publishes: bool = False, **kwargs: Any) -> dict[str, Any]:
    """One Web API method: JSON bodies for writes (``json=``), a form or query otherwise."""
    headers = {"Authorization": f"Bearer {token if token is not None else ctx.credential('access_token') or ''}"}
    verb = "GET" if "params" in kwargs else "POST"
    response = await send(ctx, verb, f"{API}/{method}", headers=headers, publishes=publishes, **kwargs)
    return raise_for_slack(response)


def message_id(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def split_message_id(post_id: str) -> tuple[str, str]:
    channel, _, ts = post_id.partition(":")
    if not channel or not ts:
        raise Rejected("INVALID_MESSAGE_ID", f"{post_id!r} is not a Slack message id (channel:ts)")
    return channel, ts


def text_blocks(text: str) -> list[dict[str, Any]]:
    """The text as ``mrkdwn`` section blocks of at most 3,000 characters, split at line ends where possible."""
    blocks = []
    rest = text
    while rest.strip():
        piece = rest[:MAX_SECTION]
        if len(rest) > MAX_SECTION and "\n" in piece:
            piece = piece[: piece.rindex("\n") + 1]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
        rest = rest[len(piece):]
    return blocks


def _custom_blocks(value: Any) -> list[Any] | None:
    """The ``blocks`` setting parsed: a JSON array of block objects, or None when it is not one."""
    try:
        blocks = json.loads(value)
    except (TypeError, ValueError):
        return None
    return blocks if isinstance(blocks, list) and all(isinstance(b, dict) and "type" in b for b in blocks) else None


class Slack(Provider):
    id = "slack"
    name = "Slack"
    approval = "A workspace admin installs the app (or approves it where the workspace requires app approval); other workspaces need the app's public distribution turned on, not a Marketplace review."
    description = "Posts messages, threads and images to a Slack channel as an installed bot."
    capabilities = Capabilities(threads=True, delete=True)
    limits = Limits(
        max_text_length=MAX_TEXT,
        max_media=MAX_IMAGES,
        media_kinds=frozenset({"image", "gif"}),
        max_media_bytes={"image": 1024**3, "gif": 1024**3},  # Slack's file size cap: 1 GB
        max_thread_parts=25,  # our cap; Slack does not limit replies
    )
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, scope_separator=",")
    settings = (
        SettingField("channel", "Channel", required=True, choices_from_account=True, help="The channel id (C…/G…) to post to."),
        SettingField("thread_ts", "Reply in thread", help="The ts of a message whose thread the post goes into."),
        SettingField("blocks", "Blocks", help="Block Kit JSON (an array of blocks) used instead of the generated ones."),
        SettingField("unfurl_links", "Link previews", type="boolean", default=True),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issues = []
        blocks = draft.settings.get("blocks")
        if isinstance(blocks, str) and blocks:
            parsed = _custom_blocks(blocks)
            if parsed is None:
                issues.append(Issue(("settings", "blocks"), "SETTING_INVALID", "Blocks must be a JSON array of Block Kit objects."))
            elif len(parsed) + len(draft.media) > MAX_BLOCKS:
                issues.append(Issue(("settings", "blocks"), "TOO_MANY_BLOCKS", f"{len(parsed) + len(draft.media)} blocks; Slack allows at most {MAX_BLOCKS} in a message."))
        elif len(text_blocks(draft.text)) + len(draft.media) > MAX_BLOCKS:
            issues.append(Issue(("text",), "TOO_MANY_BLOCKS", f"The text and images need more than Slack's {MAX_BLOCKS} blocks."))
        for index, media in enumerate(draft.media):
            if media.mime_type not in IMAGE_TYPES:
                issues.append(Issue(("media", str(index)), "MEDIA_TYPE_NOT_SUPPORTED", f"Slack shows PNG, JPEG and GIF images in a message, not {media.mime_type}."))
        return issues

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """``oauth.v2.access``: the bot token, and the workspace it belongs to."""
        form = {"code": code, "redirect_uri": redirect_uri, "client_id": client_id, "client_secret": client_secret}
        body = await _oauth(ctx, form, refreshing=False)
        team = body.get("team") or {}
        extra = {"team_id": str(team.get("id", "")), "team_name": str(team.get("name", "")), "bot_user_id": str(body.get("bot_user_id", ""))}
        return token_set_from(body, ctx, extra)

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """Only apps with token rotation get refresh tokens (their bot tokens last 12 hours)."""
        refresh = ctx.credential("refresh_token")
        if not refresh:
            raise AuthExpired("Slack issued no refresh token (token rotation is off): reinstall the app", code="NO_REFRESH_TOKEN")
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id, "client_secret": client_secret}
        body = await _oauth(ctx, form, refreshing=True)
        keep = {name: ctx.credential(name) or "" for name in ("team_id", "team_name", "bot_user_id")}
        return token_set_from(body, ctx, keep)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        me = await _call(ctx, "auth.test", token=credentials.get("access_token", ""))
        return AccountProfile(
            external_id=f"{me['team_id']}:{me.get('bot_id') or me['user_id']}", handle=str(me.get("url") or me["team"]).removeprefix("https://").rstrip("/"),
            display_name=f"{me.get('user', 'bot')} in {me['team']}", account_type="workspace", raw=me,
        )

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        """Public and private channels the bot can see, every page of ``conversations.list``, archived ones left out."""
        if setting != "channel":
            raise Rejected("UNKNOWN_SETTING", f"Slack lists no choices for {setting!r}")
        choices = []
        params = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": str(CHANNELS_PAGE)}
        while True:
            body = await _call(ctx, "conversations.list", params=params)
            for channel in body.get("channels", []):
                extra = {"is_private": bool(channel.get("is_private")), "is_member": bool(channel.get("is_member"))}
                choices.append(SettingChoice(str(channel["id"]), "#" + str(channel.get("name", channel["id"])), extra))
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return choices
            params = {**params, "cursor": cursor}

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        channel = str(request.settings["channel"])

        async def post_part(index: int, text: str, media: tuple[PublishMedia, ...], reply_to: str | None) -> PostedPart:
            thread = await self._thread_for(ctx, request, index, channel)
            with ctx.preparing():
                files = [await _upload(ctx, item) for item in media]
            blocks = _custom_blocks(request.settings.get("blocks")) if index == 0 and request.settings.get("blocks") else text_blocks(text)
            blocks = blocks + [{"type": "image", "slack_file": {"id": file_id}, "alt_text": alt or "image"} for file_id, alt in files]
            body: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": bool(request.settings.get("unfurl_links", True))}
            if thread:
                body["thread_ts"] = thread
            posted = await self._post(ctx, body)
            ts = str(posted["ts"])
            if index == 0 and request.thread:
                await ctx.store.put(THREAD_ROOT, request.idempotency_key, {"ts": thread or ts})
            return PostedPart(message_id(str(posted.get("channel") or channel), ts), await _permalink(ctx, channel, ts), posted)

        return await publish_thread(ctx, request, post_part)

    async def _thread_for(self, ctx: ProviderContext, request: PublishRequest, index: int, channel: str) -> str | None:
        """The ``thread_ts`` of a part: the thread the post joins, or for a later part the first message's thread."""
        if index > 0:
            root = await ctx.store.get(THREAD_ROOT, request.idempotency_key)
            if root is not None:
                return str(root["ts"])
        if request.reply_to:
            return split_message_id(request.reply_to)[1]
        return str(request.settings["thread_ts"]) if request.settings.get("thread_ts") else None

    async def _post(self, ctx: ProviderContext, body: dict[str, Any]) -> dict[str, Any]:
        """``chat.postMessage``; a public channel the bot is not in yet is joined and the message sent again."""
        try:
            return await _call(ctx, "chat.postMessage", json=body, publishes=True)
        except Rejected as error:
            if error.code != "NOT_IN_CHANNEL":
                raise
        await _call(ctx, "conversations.join", json={"channel": body["channel"]})
        return await _call(ctx, "chat.postMessage", json=body, publishes=True)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        channel, ts = split_message_id(platform_post_id)
        try:
            await _call(ctx, "chat.delete", json={"channel": channel, "ts": ts})
        except Rejected as error:
            if error.code != "MESSAGE_NOT_FOUND":
                raise


async def _oauth(ctx: ProviderContext, form: Mapping[str, str], *, refreshing: bool) -> dict[str, Any]:
    """``oauth.v2.access`` refusals come as ``{"ok": false, "error": "invalid_code"}``: AuthExpired on a refresh."""
    response = await send(ctx, "POST", TOKEN_URL, data=dict(form))
    try:
        return raise_for_slack(response)
    except Rejected as error:
        if refreshing:
            raise AuthExpired(f"Slack refused the refresh token: {error.code.lower()}", code=error.code, http_status=error.http_status) from None
        raise


async def _permalink(ctx: ProviderContext, channel: str, ts: str) -> str | None:
    """``chat.getPermalink``; the message is already posted, so a failure here only leaves the URL unknown."""
    try:
        return str((await _call(ctx, "chat.getPermalink", params={"channel": channel, "message_ts": ts}))["permalink"])
    except ProviderError as error:
        ctx.log.warning("no permalink for %s:%s (%s)", channel, ts, error.code)
        return None


async def _upload(ctx: ProviderContext, media: PublishMedia) -> tuple[str, str]:
    """Upload one image the v2 way and complete it privately; its file id and alt text."""
    data = await media.source.read()
    filename = media.filename or ("image.gif" if media.kind == "gif" else "image.png")
    form = {"filename": filename, "length": str(len(data))}
    if media.alt_text:
        form["alt_txt"] = media.alt_text
    target = await _call(ctx, "files.getUploadURLExternal", data=form)
    uploaded = await send(ctx, "POST", str(target["upload_url"]), content=data, headers={"Content-Type": "application/octet-stream"})
    raise_for_response(uploaded, code="FILE_UPLOAD_FAILED" if uploaded.status_code < 500 else None)
    file_id = str(target["file_id"])
    # As slack_sdk sends it: a form whose ``files`` field is a JSON array.
    await _call(ctx, "files.completeUploadExternal", data={"files": json.dumps([{"id": file_id, "title": filename}])})
    return file_id, media.alt_text


@hookimpl
def register_providers() -> list[Provider]:
    return [Slack()]
