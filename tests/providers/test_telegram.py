"""Telegram Bot API provider, replayed against the Bot API's real request and response shapes."""

import asyncio
import json

import httpx

from plugins.telegram import Telegram
from providers import AuthExpired, DraftMedia, PostDraft, PublishRequest, RateLimited, Rejected, ThreadPart, TransientError
from providers.store import MemoryProviderStore
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, sample_media
from providers.validation import publish_checked
from tests.providers.multipart import form_parts

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "@socialgate_news"
CREDENTIALS = {"bot_token": TOKEN, "chat_id": CHAT}
API = f"https://api.telegram.org/bot{TOKEN}/"
CHANNEL = {"id": -1001234567890, "title": "socialgate news", "username": "socialgate_news", "type": "channel"}
provider = Telegram()


def message(message_id, **fields):
    """A Message as the Bot API returns it for a channel post."""
    return {"message_id": message_id, "sender_chat": CHANNEL, "chat": CHANNEL, "date": 1768478400, **fields}


def ok(result):
    return reply(200, json={"ok": True, "result": result})


def bot_error(status, description, **parameters):
    body = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return reply(status, json=body)


def run(operation, steps, credentials=CREDENTIALS, store=None):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials, store=store))
    return outcome.result, outcome.error, outcome.sent


class TestTelegramConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Release 2.0 is out", idempotency_key="tgt_conformance0000000000001")
    success = [ok(message(42, text="Release 2.0 is out"))]
    expected_post_id = "42"
    expected_url = "https://t.me/socialgate_news/42"
    error_cases = [
        ErrorCase("429 flood wait", [bot_error(429, "Too Many Requests: retry after 5", retry_after=5)], RateLimited, retry_after=5),
        ErrorCase("401 revoked token", [bot_error(401, "Unauthorized")], AuthExpired, code="AUTH_EXPIRED"),
        ErrorCase("403 kicked", [bot_error(403, "Forbidden: bot was kicked from the channel chat")], AuthExpired, code="BOT_FORBIDDEN"),
        ErrorCase("403 not a member", [bot_error(403, "Forbidden: bot is not a member of the channel chat")], AuthExpired, code="BOT_FORBIDDEN"),
        ErrorCase("400 chat not found", [bot_error(400, "Bad Request: chat not found")], AuthExpired, code="CHAT_NOT_FOUND"),
        ErrorCase(
            "400 upgraded group",
            [bot_error(400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1009876543210)],
            AuthExpired, code="CHAT_MIGRATED",
        ),
        ErrorCase(
            "400 bad markup",
            [bot_error(400, "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 8")],
            Rejected, code="INVALID_MARKUP",
        ),
        ErrorCase("400 too long", [bot_error(400, "Bad Request: message is too long")], Rejected, code="TEXT_TOO_LONG"),
        ErrorCase("400 other", [bot_error(400, "Bad Request: wrong parameter action in request")], Rejected, code="BAD_REQUEST"),
        ErrorCase("502 bad gateway", [bot_error(502, "Bad Gateway")], TransientError),
        ErrorCase("500 HTML page", [reply(500, text="<html>Internal Server Error</html>")], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("a message holds 4,096 characters", PostDraft(text="a" * 4097), "TEXT_TOO_LONG"),
        RejectedDraft(
            "a caption holds 1,024 characters",
            PostDraft(text="a" * 1025, media=(DraftMedia("image", "image/jpeg", 50_000),)),
            "CAPTION_TOO_LONG",
        ),
        RejectedDraft("an album holds 10 items", PostDraft(text="", media=(DraftMedia("image", "image/jpeg", 1000),) * 11), "TOO_MANY_MEDIA"),
        RejectedDraft("photos upload up to 10 MB", PostDraft(text="", media=(DraftMedia("image", "image/jpeg", 10 * 1024 * 1024 + 1),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("no PDFs in an album", PostDraft(text="", media=(DraftMedia("document", "application/pdf", 1000),)), "MEDIA_KIND_NOT_SUPPORTED"),
    ]
    platform_accepts = [
        PostDraft(text="a" * 1024, media=(DraftMedia("image", "image/jpeg", 1000),)),
        PostDraft(text="a" * 4096),
    ]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", API + "sendMessage")
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {"chat_id": "@socialgate_news", "text": "Release 2.0 is out"}


def test_settings_become_bot_api_options_and_numeric_chats_numbers():
    request = PublishRequest(
        text="<b>Bold</b> https://example.com", idempotency_key="tgt_1",
        settings={"parse_mode": "HTML", "disable_link_preview": True, "disable_notification": True},
    )
    private = {"bot_token": TOKEN, "chat_id": "-1001234567890"}
    chat = dict(CHANNEL, username=None)
    result, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [ok(dict(message(7), chat=chat))], credentials=private)
    assert error is None
    assert json.loads(sent[0].content) == {
        "chat_id": -1001234567890, "text": "<b>Bold</b> https://example.com", "parse_mode": "HTML",
        "disable_notification": True, "link_preview_options": {"is_disabled": True},
    }
    assert result.url == "https://t.me/c/1234567890/7"  # a private channel: a members-only link


def test_one_photo_is_uploaded_with_its_caption():
    photo = sample_media("image")
    request = PublishRequest(text="A caption", idempotency_key="tgt_1", media=(photo,), settings={"parse_mode": "MarkdownV2"})
    result, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [ok(message(43, caption="A caption"))])
    assert error is None and result.platform_post_id == "43"
    (request_sent,) = sent
    assert str(request_sent.url) == API + "sendPhoto"
    parts = form_parts(request_sent)
    assert {name: part.text for name, part in parts.items() if name != "photo"} == {
        "chat_id": "@socialgate_news", "caption": "A caption", "parse_mode": "MarkdownV2",
    }
    assert (parts["photo"].filename, parts["photo"].content_type, parts["photo"].content) == ("file0", "image/png", b"\0" * 1024)


def test_an_album_goes_out_as_one_media_group_and_deletes_as_one():
    store = MemoryProviderStore()
    request = PublishRequest(
        text="Three shots", idempotency_key="tgt_album",
        media=(sample_media("image"), sample_media("video"), sample_media("image")), settings={"disable_notification": True},
    )
    answer = ok([message(50, caption="Three shots", media_group_id="1370"), message(51, media_group_id="1370"), message(52, media_group_id="1370")])
    result, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [answer], store=store)
    assert error is None
    assert (result.platform_post_id, result.url) == ("50", "https://t.me/socialgate_news/50")
    parts = form_parts(sent[0])
    assert str(sent[0].url) == API + "sendMediaGroup"
    assert parts["chat_id"].text == "@socialgate_news" and parts["disable_notification"].text == "true"
    assert json.loads(parts["media"].text) == [
        {"type": "photo", "media": "attach://file0", "caption": "Three shots"},
        {"type": "video", "media": "attach://file1"},
        {"type": "photo", "media": "attach://file2"},
    ]
    assert [parts[f"file{i}"].content_type for i in range(3)] == ["image/png", "video/mp4", "image/png"]

    _, error, sent = run(lambda ctx: provider.delete(ctx, "50"), [ok(True)], store=store)
    assert error is None
    assert (str(sent[0].url), json.loads(sent[0].content)) == (
        API + "deleteMessages", {"chat_id": "@socialgate_news", "message_ids": [50, 51, 52]},
    )


def test_a_thread_chains_replies_and_a_retry_resumes_where_it_stopped():
    store = MemoryProviderStore()
    request = PublishRequest(
        text="1/3", idempotency_key="tgt_thread", thread=(ThreadPart("2/3"), ThreadPart("3/3")), reply_to="40",
    )
    _, error, sent = run(
        lambda ctx: publish_checked(provider, ctx, request),
        [ok(message(60)), bot_error(429, "Too Many Requests: retry after 3", retry_after=3)],
        store=store,
    )
    assert isinstance(error, RateLimited) and error.retry_after == 3
    assert [json.loads(r.content).get("reply_parameters") for r in sent] == [{"message_id": 40}, {"message_id": 60}]

    result, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [ok(message(61)), ok(message(62))], store=store)
    assert error is None
    assert [json.loads(r.content)["text"] for r in sent] == ["2/3", "3/3"]  # 1/3 is not sent twice
    assert [json.loads(r.content)["reply_parameters"] for r in sent] == [{"message_id": 60}, {"message_id": 61}]
    assert (result.platform_post_id, result.thread_post_ids) == ("60", ("61", "62"))


def test_a_thread_part_with_media_keeps_to_the_caption_limit_before_anything_is_sent():
    part = ThreadPart("b" * 1025, media=(sample_media("image"),))
    request = PublishRequest(text="first", idempotency_key="tgt_1", thread=(part,))
    _, error, sent = run(lambda ctx: publish_checked(provider, ctx, request), [])
    assert isinstance(error, Rejected) and error.code == "CAPTION_TOO_LONG" and sent == []
    assert "Thread part 2" in error.message


def test_delete_sends_delete_message_and_explains_the_48_hour_rule():
    _, error, sent = run(lambda ctx: provider.delete(ctx, "42"), [ok(True)])
    assert error is None
    assert (sent[0].method, str(sent[0].url), json.loads(sent[0].content)) == (
        "POST", API + "deleteMessage", {"chat_id": "@socialgate_news", "message_id": 42},
    )
    _, error, _ = run(lambda ctx: provider.delete(ctx, "42"), [bot_error(400, "Bad Request: message can't be deleted")])
    assert isinstance(error, Rejected) and error.code == "MESSAGE_CANT_BE_DELETED" and "48 hours" in error.message
    _, error, _ = run(lambda ctx: provider.delete(ctx, "42"), [bot_error(400, "Bad Request: message to delete not found")])
    assert error is None  # already gone


def test_connect_checks_token_chat_and_posting_rights():
    bot = {"id": 987654321, "is_bot": True, "first_name": "Gate", "username": "socialgate_bot"}
    admin = {"status": "administrator", "user": bot, "can_post_messages": True, "can_delete_messages": True}
    steps = [ok(bot), ok(CHANNEL), ok(admin)]
    outcome = asyncio.run(call_scripted(provider, steps, lambda ctx: provider.connect(ctx, dict(CREDENTIALS))))
    assert outcome.error is None
    profile = outcome.result
    assert (profile.external_id, profile.handle, profile.display_name, profile.account_type) == (
        "-1001234567890", "@socialgate_news", "socialgate news", "channel",
    )
    assert [str(r.url) for r in outcome.sent] == [API + "getMe", API + "getChat", API + "getChatMember"]
    assert json.loads(outcome.sent[2].content) == {"chat_id": "@socialgate_news", "user_id": 987654321}

    member = {"status": "member", "user": bot}
    outcome = asyncio.run(call_scripted(provider, [ok(bot), ok(CHANNEL), ok(member)], lambda ctx: provider.connect(ctx, dict(CREDENTIALS))))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "BOT_CANNOT_POST"

    outcome = asyncio.run(call_scripted(provider, [bot_error(401, "Unauthorized")], lambda ctx: provider.connect(ctx, dict(CREDENTIALS))))
    assert isinstance(outcome.error, AuthExpired)


def test_the_token_never_appears_in_an_error():
    for step in (bot_error(401, "Unauthorized"), httpx.ConnectError("refused"), bot_error(400, "Bad Request: chat not found")):
        _, error, _ = run(lambda ctx: publish_checked(provider, ctx, PublishRequest(text="x", idempotency_key="k")), [step])
        assert error is not None and TOKEN not in str(error) and TOKEN not in repr(error)
