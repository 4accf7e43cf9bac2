"""Telegram through the Bot API: a bot token and the chat (channel, group) it posts to.

- Text alone goes out with ``sendMessage`` (4,096 characters); one photo or video with
  ``sendPhoto``/``sendVideo`` and the text as its caption; 2–10 with ``sendMediaGroup``, the
  caption on the first item. Media is uploaded (multipart), never passed as a URL: the gateway's
  media URL may not be reachable from Telegram's servers.
- A caption holds only 1,024 characters. A post with media and a longer text is refused at
  validation (``check_draft``: ``CAPTION_TOO_LONG``) rather than split into a photo and a
  separate text message: one post stays one message (or one album) that deletes as a whole.
- Threads are replies: each part is sent with ``reply_parameters`` naming the part before, via
  ``publish_thread``, so a retry resumes after the last part Telegram confirmed.
- An album is several messages; their ids are kept in ``ctx.store`` so ``delete`` removes them
  all (``deleteMessages``). Telegram lets a bot delete only messages younger than 48 hours.
- The Bot API has no idempotency key and a bot cannot read a channel's history, so there is no
  ``reconcile``: a lost answer stays ``Unconfirmed`` for a person to check. Bots get no metrics.
- A 403 (bot kicked, blocked, not a member), "chat not found" and a group upgraded to a
  supergroup all raise ``AuthExpired``: no post to that chat can succeed until someone re-adds
  the bot or reconnects the account with the new chat id, which is what ``token_expired`` asks.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import httpx

from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Issue,
    Limits,
    PostDraft,
    PostedPart,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
    hookimpl,
    publish_thread,
)
from providers.http import raise_for_response, send

API = "https://api.telegram.org/bot{token}/{method}"
BOT_TOKEN = r"\d+:[A-Za-z0-9_-]{30,}"
CHAT_ID = r"@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d+"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALBUM = 10
MB = 1024 * 1024
ALBUMS = "album"  # ctx.store kind: first message id → every message id of an album
PARSE_MODES = ("none", "HTML", "MarkdownV2")
UPLOAD_METHOD = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video")}

# Bad Request descriptions, as the Bot API words them, and the stable code each becomes.
BAD_REQUESTS = (
    ("message can't be deleted", "MESSAGE_CANT_BE_DELETED"),
    ("message to delete not found", "MESSAGE_NOT_FOUND"),
    ("can't parse entities", "INVALID_MARKUP"),
    ("message is too long", "TEXT_TOO_LONG"),
    ("message caption is too long", "CAPTION_TOO_LONG"),
    ("message to be replied not found", "REPLY_TARGET_NOT_FOUND"),
    ("chat not found", "CHAT_NOT_FOUND"),
)
# Answers meaning the account, not the post, is broken: reconnecting (or re-adding the bot) is the fix.
ACCOUNT_PROBLEMS = {"CHAT_NOT_FOUND", "CHAT_MIGRATED", "BOT_FORBIDDEN"}


def _caption_issue(text: str, where: tuple[str, ...]) -> Issue | None:
    if len(text) <= MAX_CAPTION:
        return None
    return Issue(
        where,
        "CAPTION_TOO_LONG",
        f"With media the text is a caption: {len(text)} characters; Telegram allows at most {MAX_CAPTION}.",
    )


def _chat_id(value: str) -> int | str:
    """Numeric chat ids go out as numbers, ``@channel`` names as strings, as the Bot API documents."""
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def message_url(chat: dict[str, Any], message_id: int) -> str | None:
    """``t.me/{username}/{id}`` for public chats, ``t.me/c/{id}/{id}`` for private supergroups and
    channels (members only); None for basic groups and private chats, which have no links."""
    if chat.get("username"):
        return f"https://t.me/{chat['username']}/{message_id}"
    chat_id = str(chat.get("id", ""))
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return None


def raise_for_bot_api(response: httpx.Response) -> NoReturn:
    """Map a Bot API error (``{"ok": false, "error_code", "description", "parameters"}``) to a typed error."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    description = str(body.get("description") or response.text[:500] or response.reason_phrase)
    parameters = body.get("parameters") or {}
    status = response.status_code
    if "migrate_to_chat_id" in parameters:
        new_id = parameters["migrate_to_chat_id"]
        raise AuthExpired(
            f"The group became a supergroup with chat id {new_id}; reconnect the account with that id.",
            code="CHAT_MIGRATED", http_status=status, raw=body,
        )
    code = next((word for phrase, word in BAD_REQUESTS if phrase in description.lower()), None) if status == 400 else None
    if status == 403:
        code = "BOT_FORBIDDEN"
    if code in ACCOUNT_PROBLEMS:
        raise AuthExpired(f"{description} — add the bot to the chat again or reconnect the account.", code=code, http_status=status, raw=body)
    retry_after = parameters.get("retry_after")
    raise_for_response(
        response,
        code=code or ("BAD_REQUEST" if status == 400 else None),
        message=description,
        retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None,
    )
    # raise_for_response returns only on a 2xx, and a 2xx lands here only without "ok": true.
    raise Rejected("UNEXPECTED_ANSWER", f"Telegram answered {status} without a result: {description}", http_status=status, raw=body)


class Telegram(Provider):
    id = "telegram"
    name = "Telegram"
    approval = "None: a bot from @BotFather, made an administrator of the channel or group it posts to."
    description = "Posts to a Telegram channel or group as a bot (Bot API): text, photos, videos and albums."
    capabilities = Capabilities(threads=True, delete=True)
    limits = Limits(
        max_text_length=MAX_TEXT,
        max_media=MAX_ALBUM,
        media_kinds=frozenset({"image", "video"}),
        # Bot API uploads: photos up to 10 MB, other files up to 50 MB.
        max_media_bytes={"image": 10 * MB, "video": 50 * MB},
        max_thread_parts=25,  # our cap: Telegram has no threads, only chains of replies
        quotas=(Quota(count=20, period_seconds=60, description="Telegram: about 20 messages a minute in a group, 1 a second in one chat"),),
    )
    auth = (
        CredentialField("bot_token", "Bot token", secret=True, pattern=BOT_TOKEN, help="From @BotFather, e.g. 123456789:AA…"),
        CredentialField(
            "chat_id", "Chat", pattern=CHAT_ID,
            help="@channelname of a public channel, or the numeric id (-100…) of a channel or group. The bot must be able to post there.",
        ),
    )
    settings = (
        SettingField("parse_mode", "Formatting", type="choice", choices=PARSE_MODES, default="none",
                     help="How Telegram reads markup in the text; lengths are counted on the text as written."),
        SettingField("disable_link_preview", "No link preview", type="boolean", default=False),
        SettingField("disable_notification", "Send silently", type="boolean", default=False),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        issue = _caption_issue(draft.text, ("text",)) if draft.media else None
        return [issue] if issue else []

    async def _call(self, ctx: ProviderContext, method: str, *, publishes: bool = False, token: str | None = None, **kwargs: Any) -> Any:
        """One Bot API method; its ``result`` on success, a typed error otherwise."""
        url = API.format(token=token or ctx.credential("bot_token"), method=method)
        response = await send(ctx, "POST", url, publishes=publishes, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        raise_for_bot_api(response)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Check the token (``getMe``), the chat (``getChat``) and that the bot may post there (``getChatMember``)."""
        token, chat_id = credentials["bot_token"], _chat_id(credentials["chat_id"])
        bot = await self._call(ctx, "getMe", token=token)
        chat = await self._call(ctx, "getChat", token=token, json={"chat_id": chat_id})
        member = await self._call(ctx, "getChatMember", token=token, json={"chat_id": chat_id, "user_id": bot["id"]})
        if not _may_post(chat, member):
            raise Rejected(
                "BOT_CANNOT_POST",
                f"@{bot.get('username', 'the bot')} cannot post in {chat.get('title') or chat_id}: "
                "make it an administrator with the right to post messages.",
            )
        title = chat.get("title") or " ".join(filter(None, (chat.get("first_name"), chat.get("last_name"))))
        return AccountProfile(
            external_id=str(chat["id"]),
            handle=f"@{chat['username']}" if chat.get("username") else str(chat["id"]),
            display_name=title,
            account_type="channel" if chat.get("type") == "channel" else "group" if "group" in str(chat.get("type")) else "user",
            raw={"bot": bot, "chat": chat},
        )

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        for index, part in enumerate(request.thread):
            issue = _caption_issue(part.text, ("thread", str(index))) if part.media else None
            if issue:
                raise Rejected(issue.code, f"Thread part {index + 2}: {issue.message}", raw=[issue])
        options = self._options(request)

        async def post_part(index: int, text: str, media: tuple[PublishMedia, ...], reply_to: str | None) -> PostedPart:
            messages = await self._send_part(ctx, text, media, reply_to, options)
            first = messages[0]
            if len(messages) > 1:
                await ctx.store.put(ALBUMS, str(first["message_id"]), {"message_ids": [m["message_id"] for m in messages]})
            return PostedPart(str(first["message_id"]), message_url(first["chat"], first["message_id"]), messages if len(messages) > 1 else first)

        return await publish_thread(ctx, request, post_part)

    def _options(self, request: PublishRequest) -> dict[str, Any]:
        """The Bot API fields the post's settings add to each message (``send_message``-only ones included)."""
        options: dict[str, Any] = {}
        parse_mode = request.settings.get("parse_mode", "none")
        if parse_mode != "none":
            options["parse_mode"] = parse_mode
        if request.settings.get("disable_notification", False):
            options["disable_notification"] = True
        if request.settings.get("disable_link_preview", False):
            options["link_preview_options"] = {"is_disabled": True}
        return options

    async def _send_part(
        self, ctx: ProviderContext, text: str, media: tuple[PublishMedia, ...], reply_to: str | None, options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Send one part as a message, a single photo/video, or an album; the messages Telegram created."""
        chat_id = _chat_id(ctx.credential("chat_id") or "")
        reply = {"reply_parameters": {"message_id": int(reply_to)}} if reply_to else {}
        if not media:
            body = {"chat_id": chat_id, "text": text, **options, **reply}
            return [await self._call(ctx, "sendMessage", publishes=True, json=body)]
        fields: dict[str, Any] = {"chat_id": chat_id, **reply}
        if options.get("disable_notification"):
            fields["disable_notification"] = True
        caption = {"caption": text, **({"parse_mode": options["parse_mode"]} if "parse_mode" in options else {})} if text else {}
        files = {f"file{i}": (m.filename or f"file{i}", await m.source.read(), m.mime_type) for i, m in enumerate(media)}
        if len(media) == 1:
            method, field = UPLOAD_METHOD[media[0].kind]
            return [await self._call(ctx, method, publishes=True, data=_form({**fields, **caption}), files={field: files["file0"]})]
        items = [
            {"type": "photo" if m.kind == "image" else "video", "media": f"attach://file{i}", **(caption if i == 0 else {})}
            for i, m in enumerate(media)
        ]
        return await self._call(ctx, "sendMediaGroup", publishes=True, data=_form({**fields, "media": items}), files=files)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        chat_id = _chat_id(ctx.credential("chat_id") or "")
        album = await ctx.store.get(ALBUMS, platform_post_id)
        try:
            if album is not None:
                await self._call(ctx, "deleteMessages", json={"chat_id": chat_id, "message_ids": album["message_ids"]})
            else:
                await self._call(ctx, "deleteMessage", json={"chat_id": chat_id, "message_id": int(platform_post_id)})
        except Rejected as error:
            if error.code == "MESSAGE_NOT_FOUND":
                return  # already gone
            if error.code == "MESSAGE_CANT_BE_DELETED":
                raise Rejected(
                    error.code,
                    "Telegram refused to delete the message: a bot may delete only messages younger than 48 hours, "
                    "and in a channel only with the right to delete messages.",
                    http_status=error.http_status, raw=error.raw,
                ) from error
            raise
        await ctx.store.delete(ALBUMS, platform_post_id)


def _form(fields: dict[str, Any]) -> dict[str, str]:
    """Multipart form fields: objects and lists as JSON, booleans as ``true``, the rest as text."""
    return {
        name: json.dumps(value) if isinstance(value, (dict, list)) else ("true" if value is True else str(value))
        for name, value in fields.items()
    }


def _may_post(chat: dict[str, Any], member: dict[str, Any]) -> bool:
    """Whether the bot, as this chat member, can post: channel posting needs an admin with ``can_post_messages``."""
    status = member.get("status")
    if chat.get("type") == "channel":
        return status == "creator" or (status == "administrator" and member.get("can_post_messages") is True)
    if status == "restricted":
        return member.get("can_send_messages") is True
    return status in ("creator", "administrator", "member")


@hookimpl
def register_providers() -> list[Provider]:
    return [Telegram()]
