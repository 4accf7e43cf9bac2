"""Discord webhook provider, replayed against Discord's real webhook request and response shapes."""

import asyncio
import json

from plugins.discord import Discord
from providers import AuthExpired, DraftMedia, PostDraft, PublishMedia, PublishRequest, RateLimited, Rejected, TransientError
from providers.calls import BytesSource
from providers.store import MemoryProviderStore
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from providers.validation import publish_checked
from tests.providers.multipart import field_names, form_parts

HOOK = "https://discord.com/api/webhooks/1234567890123456789/AbCdEf-ghIJkl_MNopQRstuVWxyz0123456789abcdefGHIJKLmnopQRSTUVwxyz01"
CREDENTIALS = {"webhook_url": HOOK}
GUILD, CHANNEL = "1100000000000000001", "1200000000000000002"
WEBHOOK = {
    "application_id": None, "avatar": "a1b2c3", "channel_id": CHANNEL, "guild_id": GUILD, "id": "1234567890123456789",
    "name": "Release notes", "type": 1, "token": "AbCdEf-secret",
}
provider = Discord()


def message(message_id="1300000000000000003", channel_id=CHANNEL, **fields):
    """A message object as ``?wait=true`` returns it."""
    return {
        "id": message_id, "type": 0, "content": fields.pop("content", "Release 2.0 is out"), "channel_id": channel_id,
        "author": {"bot": True, "id": WEBHOOK["id"], "username": "Release notes", "avatar": "a1b2c3", "discriminator": "0000"},
        "attachments": [], "embeds": [], "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False,
        "tts": False, "timestamp": "2026-01-15T12:00:00.000000+00:00", "edited_timestamp": None, "flags": 0,
        "components": [], "webhook_id": WEBHOOK["id"], **fields,
    }


def run(operation, steps, store=None):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=CREDENTIALS, store=store))
    return outcome.result, outcome.error, outcome.sent


class TestDiscordConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Release 2.0 is out @everyone", idempotency_key="tgt_conformance0000000000001")
    success = [reply(200, json=message())]
    expected_post_id = "1300000000000000003"
    error_cases = [
        ErrorCase(
            "429 with retry_after",
            [reply(429, json={"message": "You are being rate limited.", "retry_after": 0.529, "global": False}, headers={"Retry-After": "1"})],
            RateLimited, code="RATE_LIMITED", retry_after=0.529,
        ),
        ErrorCase(
            "429 global", [reply(429, json={"message": "You are being rate limited.", "retry_after": 12.5, "global": True})],
            RateLimited, code="GLOBAL_RATE_LIMITED", retry_after=12.5,
        ),
        ErrorCase("400 empty", [reply(400, json={"code": 50006, "message": "Cannot send an empty message"})], Rejected, code="EMPTY_MESSAGE"),
        ErrorCase(
            "400 invalid form body",
            [reply(400, json={"code": 50035, "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}, "message": "Invalid Form Body"})],
            Rejected, code="INVALID_FORM_BODY",
        ),
        ErrorCase("413 too large", [reply(413, json={"code": 40005, "message": "Request entity too large"})], Rejected, code="PAYLOAD_TOO_LARGE"),
        ErrorCase("404 unknown webhook", [reply(404, json={"message": "Unknown Webhook", "code": 10015})], AuthExpired, code="UNKNOWN_WEBHOOK"),
        ErrorCase("401 invalid token", [reply(401, json={"message": "Invalid Webhook Token", "code": 50027})], AuthExpired, code="INVALID_WEBHOOK_TOKEN"),
        ErrorCase("502 from the edge", [reply(502, text="<html><title>502 Bad Gateway</title></html>", headers={"Content-Type": "text/html"})], TransientError),
        ErrorCase("500 JSON", [reply(500, json={"message": "500: Internal Server Error", "code": 0})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("content holds 2,000 characters", PostDraft(text="a" * 2001), "TEXT_TOO_LONG"),
        RejectedDraft("a message holds 10 files", PostDraft(text="", media=(DraftMedia("image", "image/png", 100),) * 11), "TOO_MANY_MEDIA"),
        RejectedDraft(
            "25 MiB per message in all",
            PostDraft(text="", media=(DraftMedia("video", "video/mp4", 15 * 1024 * 1024), DraftMedia("image", "image/png", 11 * 1024 * 1024))),
            "MEDIA_TOO_LARGE",
        ),
        RejectedDraft("a webhook cannot reply", PostDraft(text="a", thread=("b",)), "THREADS_NOT_SUPPORTED"),
    ]
    platform_accepts = [PostDraft(text="🎉" * 2000), PostDraft(text="", media=(DraftMedia("image", "image/png", 25 * 1024 * 1024),))]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", HOOK + "?wait=true")
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {"content": "Release 2.0 is out @everyone", "allowed_mentions": {"parse": []}}


def test_connect_reads_the_webhook_and_the_message_url_names_its_guild():
    store = MemoryProviderStore()
    profile, error, sent = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [reply(200, json=WEBHOOK)], store=store)
    assert error is None
    assert (sent[0].method, str(sent[0].url)) == ("GET", HOOK)
    assert (profile.external_id, profile.handle, profile.account_type) == ("1234567890123456789", "Release notes", "webhook")
    assert profile.avatar_url == "https://cdn.discordapp.com/avatars/1234567890123456789/a1b2c3.png"
    assert "token" not in profile.raw

    request = PublishRequest(text="hi", idempotency_key="tgt_1")
    result, error, _ = run(lambda ctx: publish_checked(provider, ctx, request), [reply(200, json=message())], store=store)
    assert result.url == f"https://discord.com/channels/{GUILD}/{CHANNEL}/1300000000000000003"


def test_connect_refuses_a_deleted_webhook():
    _, error, _ = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [reply(404, json={"message": "Unknown Webhook", "code": 10015})])
    assert isinstance(error, AuthExpired) and error.code == "UNKNOWN_WEBHOOK"


def test_images_are_uploaded_as_attachments_with_their_alt_text():
    png = PublishMedia(kind="image", mime_type="image/png", size_bytes=4, url="https://gw.example/m/1", source=BytesSource(b"\x89PNG"), alt_text="A chart")
    clip = PublishMedia(kind="video", mime_type="video/mp4", size_bytes=3, url="https://gw.example/m/2", source=BytesSource(b"mp4"), filename="demo.mp4")
    request = PublishRequest(
        text="Charts", idempotency_key="tgt_1", media=(png, clip),
        settings={"username": "Release bot", "allow_mentions": True, "suppress_embeds": True},
    )
    _, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [reply(200, json=message())])
    assert error is None
    (upload,) = sent
    assert str(upload.url) == HOOK + "?wait=true"
    assert field_names(upload) == ["payload_json", "files[0]", "files[1]"]
    parts = form_parts(upload)
    assert json.loads(parts["payload_json"].text) == {
        "content": "Charts", "username": "Release bot", "flags": 4,
        "allowed_mentions": {"parse": ["users", "roles", "everyone"]},
        "attachments": [
            {"id": 0, "filename": "file0.png", "description": "A chart"},
            {"id": 1, "filename": "demo.mp4", "description": ""},
        ],
    }
    assert (parts["files[0]"].filename, parts["files[0]"].content_type, parts["files[0]"].content) == ("file0.png", "image/png", b"\x89PNG")
    assert (parts["files[1]"].filename, parts["files[1]"].content) == ("demo.mp4", b"mp4")


def test_a_forum_post_is_deleted_inside_its_thread():
    store = MemoryProviderStore()
    request = PublishRequest(text="Changelog", idempotency_key="tgt_1", settings={"thread_name": "v2.0"})
    forum_message = message("1400000000000000004", channel_id="1400000000000000004", position=0)
    result, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [reply(200, json=forum_message)], store=store)
    assert error is None and result.url is None  # the guild is unknown until connect recorded it
    assert json.loads(sent[0].content)["thread_name"] == "v2.0"
    _, error, sent = run(lambda ctx: provider.delete(ctx, "1400000000000000004"), [reply(204)], store=store)
    assert error is None
    assert (sent[0].method, str(sent[0].url)) == ("DELETE", f"{HOOK}/messages/1400000000000000004?thread_id=1400000000000000004")


def test_delete_maps_discord_answers():
    _, error, sent = run(lambda ctx: provider.delete(ctx, "1300000000000000003"), [reply(204)])
    assert error is None and (sent[0].method, str(sent[0].url)) == ("DELETE", f"{HOOK}/messages/1300000000000000003")
    _, error, _ = run(lambda ctx: provider.delete(ctx, "1"), [reply(404, json={"message": "Unknown Message", "code": 10008})])
    assert error is None  # already gone
    _, error, _ = run(lambda ctx: provider.delete(ctx, "1"), [reply(404, json={"message": "Unknown Webhook", "code": 10015})])
    assert isinstance(error, AuthExpired)
    _, error, _ = run(lambda ctx: provider.delete(ctx, "1"), [reply(429, json={"message": "You are being rate limited.", "retry_after": 2, "global": False})])
    assert isinstance(error, RateLimited) and error.retry_after == 2


def test_invalid_form_body_names_the_field():
    body = {"code": 50035, "errors": {"embeds": {"0": {"description": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}]}}}}, "message": "Invalid Form Body"}
    _, error, _ = run(lambda ctx: provider.publish(ctx, PublishRequest(text="x", idempotency_key="k")), [reply(400, json=body)])
    assert isinstance(error, Rejected)
    assert error.message == "Invalid Form Body; embeds.0.description: Must be 4096 or fewer in length."


def test_the_webhook_pattern_takes_discord_urls_only():
    field = provider.auth[0]
    assert field.problem_with(HOOK) is None
    assert field.problem_with(HOOK.replace("discord.com", "discordapp.com")) is None
    assert field.problem_with(HOOK.replace("/api/", "/api/v10/")) is None
    assert field.problem_with(HOOK.replace("discord.com", "discord.com.evil.example")) is not None
    assert field.problem_with("https://hooks.slack.com/services/T0/B0/x") is not None
