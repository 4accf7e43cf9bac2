"""Discord through a channel webhook: the webhook URL is the whole credential.

- ``POST {webhook}?wait=true`` so Discord answers with the created message (its id); without
  ``wait`` it answers 204 and the post could never be linked, deleted or found again.
- Mentions are off unless the post's ``allow_mentions`` setting says otherwise
  (``allowed_mentions: {"parse": []}``): a pasted "@everyone" must not ping a whole server.
- Media is uploaded as attachments (multipart ``payload_json`` + ``files[n]``, alt text as the
  attachment's ``description``) rather than embedded by URL: the gateway's media URL may not be
  public, and embeds of remote images break when that URL goes away. Up to 10 files, 25 MiB in all.
- No threads: a webhook cannot reply to a message, and follow-up messages that are not replies
  are not a thread. In a forum channel, the ``thread_name`` setting opens a new forum post.
- No idempotency key and no way to list a channel through a webhook: no ``reconcile``. No metrics.
- An unknown webhook (404, code 10015) or an invalid token (401, 50027) is ``AuthExpired``: the
  webhook was deleted, so the account must be connected again with a new one.
"""

from __future__ import annotations

import json
import mimetypes
import re
from typing import Any

import httpx

from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Issue,
    Limits,
    PostDraft,
    Provider,
    ProviderContext,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
    hookimpl,
)
from providers.http import raise_for_response, send

WEBHOOK_URL = re.compile(
    r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/(?P<id>\d+)/(?P<token>[A-Za-z0-9_-]+)"
)
MAX_CONTENT = 2000
MAX_FILES = 10
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # per message, all files together (servers without boosts)
WEBHOOK = "webhook"  # ctx.store kind: "self" → the webhook's guild and channel, recorded at connect
THREADS = "message_thread"  # ctx.store kind: message id → the forum thread it opened
SUPPRESS_EMBEDS = 1 << 2  # message flag: no link previews

# Discord's JSON error codes and the stable words they become.
ERROR_CODES = {
    10008: "UNKNOWN_MESSAGE",
    10015: "UNKNOWN_WEBHOOK",
    40005: "PAYLOAD_TOO_LARGE",
    50006: "EMPTY_MESSAGE",
    50027: "INVALID_WEBHOOK_TOKEN",
    50035: "INVALID_FORM_BODY",
}
DEAD_WEBHOOK = {"UNKNOWN_WEBHOOK", "INVALID_WEBHOOK_TOKEN"}


def _form_errors(errors: Any, path: str = "") -> list[str]:
    """Discord's nested 50035 ``errors`` object as ``field.path: message`` lines."""
    if not isinstance(errors, dict):
        return []
    lines = [f"{path or 'body'}: {e.get('message')}" for e in errors.get("_errors", []) if isinstance(e, dict)]
    for key, value in errors.items():
        if key != "_errors":
            lines += _form_errors(value, f"{path}.{key}" if path else str(key))
    return lines


def raise_for_discord(response: httpx.Response) -> None:
    """Raise the typed error a Discord answer stands for (``{"code", "message", "retry_after", "errors"}``)."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise_for_response(response)
        return
    word = ERROR_CODES.get(body.get("code")) or (f"DISCORD_{body['code']}" if body.get("code") else None)
    message = "; ".join([str(body.get("message") or response.reason_phrase)] + _form_errors(body.get("errors")))
    if word in DEAD_WEBHOOK:
        raise AuthExpired(f"The Discord webhook no longer works ({message}); connect a new one.", code=word, http_status=response.status_code, raw=body)
    retry_after = body.get("retry_after")
    if response.status_code == 429:
        word = "GLOBAL_RATE_LIMITED" if body.get("global") else "RATE_LIMITED"
    raise_for_response(response, code=word, message=message, retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None)


def _filename(index: int, filename: str, mime_type: str) -> str:
    """The attachment's name: Discord shows a file inline only when its extension says it is an image or video."""
    if filename:
        return filename
    extension = mimetypes.guess_extension(mime_type) or ""
    return f"file{index}{extension}"


class Discord(Provider):
    id = "discord"
    name = "Discord (webhook)"
    approval = "None: a channel webhook, made by anyone with Manage Webhooks in that server."
    description = "Posts messages to one Discord channel through its webhook URL: text and attached images or videos."
    capabilities = Capabilities(delete=True)
    limits = Limits(
        max_text_length=MAX_CONTENT,
        max_media=MAX_FILES,
        media_kinds=frozenset({"image", "gif", "video"}),
        max_media_bytes={"image": MAX_UPLOAD_BYTES, "gif": MAX_UPLOAD_BYTES, "video": MAX_UPLOAD_BYTES},
        quotas=(Quota(count=30, period_seconds=60, description="Discord: 30 webhook messages a minute per channel"),),
    )
    auth = (
        CredentialField(
            "webhook_url", "Webhook URL", secret=True, kind="url", pattern=WEBHOOK_URL.pattern,
            help="Channel settings → Integrations → Webhooks → Copy Webhook URL.",
        ),
    )
    settings = (
        SettingField("username", "Post as", help="Shown instead of the webhook's name for this message."),
        SettingField("allow_mentions", "Allow mentions", type="boolean", default=False,
                     help="Let @everyone, @here, roles and users in the text ping people."),
        SettingField("suppress_embeds", "No link previews", type="boolean", default=False),
        SettingField("thread_name", "Forum post title", help="Forum channels only: the title of the new forum post."),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        total = sum(item.size_bytes for item in draft.media)
        if total <= MAX_UPLOAD_BYTES:
            return []
        megabytes = MAX_UPLOAD_BYTES // (1024 * 1024)
        return [Issue(("media",), "MEDIA_TOO_LARGE", f"The attachments add up to {total / 1024 / 1024:.1f} MB; Discord takes at most {megabytes} MB per message.")]

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Read the webhook (``GET`` on its URL needs no other auth) and remember its guild and channel."""
        response = await send(ctx, "GET", credentials["webhook_url"])
        raise_for_discord(response)
        webhook = response.json()
        await ctx.store.put(WEBHOOK, "self", {"guild_id": webhook.get("guild_id"), "channel_id": webhook.get("channel_id")})
        avatar = webhook.get("avatar")
        return AccountProfile(
            external_id=str(webhook["id"]),
            handle=webhook.get("name") or f"webhook-{webhook['id']}",
            display_name=webhook.get("name") or "",
            account_type="webhook",
            avatar_url=f"https://cdn.discordapp.com/avatars/{webhook['id']}/{avatar}.png" if avatar else None,
            raw={key: value for key, value in webhook.items() if key != "token"},  # the token is the secret
        )

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        payload = self.payload(request)
        url = (ctx.credential("webhook_url") or "") + "?wait=true"
        if request.media:
            payload["attachments"] = [
                {"id": i, "filename": _filename(i, m.filename, m.mime_type), "description": m.alt_text}
                for i, m in enumerate(request.media)
            ]
            files = [
                (f"files[{i}]", (_filename(i, m.filename, m.mime_type), await m.source.read(), m.mime_type))
                for i, m in enumerate(request.media)
            ]
            response = await send(ctx, "POST", url, data={"payload_json": json.dumps(payload)}, files=files, publishes=True)
        else:
            response = await send(ctx, "POST", url, json=payload, publishes=True)
        raise_for_discord(response)
        message = response.json()
        if request.settings.get("thread_name"):
            await ctx.store.put(THREADS, str(message["id"]), {"thread_id": str(message["channel_id"])})
        webhook = await ctx.store.get(WEBHOOK, "self") or {}
        link = (
            f"https://discord.com/channels/{webhook['guild_id']}/{message['channel_id']}/{message['id']}"
            if webhook.get("guild_id") else None
        )
        return PublishResult(platform_post_id=str(message["id"]), url=link, raw=message)

    def payload(self, request: PublishRequest) -> dict[str, Any]:
        """The JSON message: content, who may be mentioned, and the optional settings that are set."""
        settings = request.settings
        payload: dict[str, Any] = {
            "content": request.text,
            "allowed_mentions": {"parse": ["users", "roles", "everyone"] if settings.get("allow_mentions") else []},
        }
        for name in ("username", "thread_name"):
            if settings.get(name):
                payload[name] = settings[name]
        if settings.get("suppress_embeds"):
            payload["flags"] = SUPPRESS_EMBEDS
        return payload

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        thread = await ctx.store.get(THREADS, platform_post_id)
        params = {"thread_id": thread["thread_id"]} if thread else None
        url = f"{ctx.credential('webhook_url')}/messages/{platform_post_id}"
        response = await send(ctx, "DELETE", url, params=params)
        try:
            raise_for_discord(response)
        except Rejected as error:
            if error.code != "UNKNOWN_MESSAGE":
                raise  # an unknown message is already gone: deleting it again succeeds
        await ctx.store.delete(THREADS, platform_post_id)


@hookimpl
def register_providers() -> list[Provider]:
    return [Discord()]
