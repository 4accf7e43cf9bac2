"""Slack (bot token, Web API) through the conformance kit, replaying Slack's real request and response shapes."""

import asyncio
import json
import urllib.parse

from plugins.slack import Slack, text_blocks
from providers import AuthExpired, DraftMedia, PostDraft, PublishMedia, PublishRequest, RateLimited, Rejected, ThreadPart, TransientError
from providers.calls import BytesSource
from providers.store import MemoryProviderStore
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply

TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CREDENTIALS = {"access_token": TOKEN, "token_type": "bot", "team_id": "T9TK3CUKW"}
KEY = "tgt_conformance0000000000001"
CHANNEL = "C123ABC456"
provider = Slack()


def posted(ts="1503435956.000247", channel=CHANNEL, thread_ts=None):
    """``chat.postMessage``'s answer."""
    message = {"text": "Release 2.0 is out", "bot_id": "B123ABC456", "type": "message", "subtype": "bot_message", "ts": ts}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return {"ok": True, "channel": channel, "ts": ts, "message": message}


def permalink(ts="1503435956.000247"):
    return {"ok": True, "channel": CHANNEL, "permalink": f"https://gate.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"}


def refused(word, **extra):
    return reply(200, json={"ok": False, "error": word, **extra})


def run(operation, steps, credentials=CREDENTIALS, store=None):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials, store=store))
    return outcome.result, outcome.error, outcome.sent


def form(request):
    return {k: v[0] for k, v in urllib.parse.parse_qs(request.content.decode()).items()}


class TestSlackConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Release *2.0* is out", idempotency_key=KEY, settings={"channel": CHANNEL})
    success = [reply(200, json=posted()), reply(200, json=permalink())]
    expected_post_id = f"{CHANNEL}:1503435956.000247"
    expected_url = f"https://gate.slack.com/archives/{CHANNEL}/p1503435956000247"
    error_cases = [
        ErrorCase("429 over the tier", [reply(429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"})], RateLimited, retry_after=30),
        ErrorCase("invalid_auth in a 200", [refused("invalid_auth")], AuthExpired, code="INVALID_AUTH"),
        ErrorCase("token_revoked in a 200", [refused("token_revoked")], AuthExpired, code="TOKEN_REVOKED"),
        ErrorCase("channel_not_found in a 200", [refused("channel_not_found")], Rejected, code="CHANNEL_NOT_FOUND"),
        ErrorCase("is_archived", [refused("is_archived")], Rejected, code="IS_ARCHIVED"),
        ErrorCase("msg_blocks_too_long", [refused("msg_blocks_too_long")], Rejected, code="MSG_BLOCKS_TOO_LONG"),
        ErrorCase(
            "invalid_blocks with Slack's reason",
            [refused("invalid_blocks", errors=["failed to match all allowed schemas [json-pointer:/blocks/0]"], response_metadata={"messages": ["[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0]"]})],
            Rejected, code="INVALID_BLOCKS",
        ),
        ErrorCase("internal_error in a 200", [refused("internal_error")], TransientError),
        ErrorCase("503", [reply(503, text="<html>Slack is down</html>", headers={"Content-Type": "text/html"})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("40,000 characters", PostDraft(text="a" * 40_001, settings={"channel": CHANNEL}), "TEXT_TOO_LONG"),
        RejectedDraft("the channel is required", PostDraft(text="hi"), "SETTING_REQUIRED"),
        RejectedDraft("blocks are a JSON array", PostDraft(text="hi", settings={"channel": CHANNEL, "blocks": '{"type": "section"}'}), "SETTING_INVALID"),
        RejectedDraft("50 blocks", PostDraft(text="hi", settings={"channel": CHANNEL, "blocks": json.dumps([{"type": "divider"}] * 51)}), "TOO_MANY_BLOCKS"),
        RejectedDraft("PNG, JPEG or GIF", PostDraft(text="hi", media=(DraftMedia("image", "image/webp", 1),), settings={"channel": CHANNEL}), "MEDIA_TYPE_NOT_SUPPORTED"),
        RejectedDraft("no videos", PostDraft(text="hi", media=(DraftMedia("video", "video/mp4", 1),), settings={"channel": CHANNEL}), "MEDIA_KIND_NOT_SUPPORTED"),
    ]
    platform_accepts = [
        PostDraft(text="a" * 40_000, settings={"channel": CHANNEL, "blocks": json.dumps([{"type": "divider"}] * 49)}, media=(DraftMedia("image", "image/jpeg", 1),)),
        PostDraft(text="", media=(DraftMedia("gif", "image/gif", 1), DraftMedia("image", "image/png", 1)), settings={"channel": CHANNEL}),
    ]

    def check_published_requests(self, sent):
        post, link = sent
        assert (post.method, str(post.url)) == ("POST", "https://slack.com/api/chat.postMessage")
        assert post.headers["authorization"] == f"Bearer {TOKEN}" and post.headers["content-type"] == "application/json"
        assert json.loads(post.content) == {
            "channel": CHANNEL, "text": "Release *2.0* is out", "unfurl_links": True,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Release *2.0* is out"}}],
        }
        assert str(link.url) == f"https://slack.com/api/chat.getPermalink?channel={CHANNEL}&message_ts=1503435956.000247"


def publish(request):
    return lambda ctx: provider.publish(ctx, request)


def test_a_thread_replies_under_the_first_message_and_resumes_after_a_failure():
    store = MemoryProviderStore()
    request = PublishRequest(text="1/3", idempotency_key="tgt_t", thread=(ThreadPart("2/3"), ThreadPart("3/3")), settings={"channel": CHANNEL})
    steps = [
        reply(200, json=posted("1.000100")), reply(200, json=permalink("1.000100")),
        reply(200, json=posted("1.000200", thread_ts="1.000100")), reply(200, json=permalink("1.000200")),
        reply(429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"}),
    ]
    _, error, sent = run(publish(request), steps, store=store)
    assert isinstance(error, RateLimited)
    assert [json.loads(r.content).get("thread_ts") for r in sent if r.url.path.endswith("postMessage")] == [None, "1.000100", "1.000100"]
    result, error, sent = run(publish(request), [reply(200, json=posted("1.000300", thread_ts="1.000100")), reply(200, json=permalink("1.000300"))], store=store)
    assert error is None
    assert json.loads(sent[0].content)["thread_ts"] == "1.000100"  # under the first message, not the second
    assert json.loads(sent[0].content)["text"] == "3/3"
    assert (result.platform_post_id, result.thread_post_ids) == (f"{CHANNEL}:1.000100", (f"{CHANNEL}:1.000200", f"{CHANNEL}:1.000300"))


def test_a_reply_to_an_earlier_post_or_the_thread_ts_setting_goes_into_that_thread():
    request = PublishRequest(text="follow-up", idempotency_key=KEY, reply_to=f"{CHANNEL}:1.000100", settings={"channel": CHANNEL})
    _, error, sent = run(publish(request), [reply(200, json=posted("1.000900")), reply(200, json=permalink())])
    assert error is None and json.loads(sent[0].content)["thread_ts"] == "1.000100"
    request = PublishRequest(text="follow-up", idempotency_key=KEY, settings={"channel": CHANNEL, "thread_ts": "1.000500"})
    _, error, sent = run(publish(request), [reply(200, json=posted("1.000901")), reply(200, json=permalink())])
    assert error is None and json.loads(sent[0].content)["thread_ts"] == "1.000500"


def test_an_image_is_uploaded_the_v2_way_and_shown_in_an_image_block():
    photo = PublishMedia(kind="image", mime_type="image/png", size_bytes=4, url="https://gw.example/m/1", source=BytesSource(b"\x89PNG"), alt_text="A chart", filename="chart.png")
    request = PublishRequest(text="Numbers", idempotency_key=KEY, media=(photo,), settings={"channel": CHANNEL, "unfurl_links": False})
    steps = [
        reply(200, json={"ok": True, "upload_url": "https://files.slack.com/upload/v1/CwABAAAAXAoAAZnKg", "file_id": "F07ABCD1234"}),
        reply(200, text="OK - 4"),
        reply(200, json={"ok": True, "files": [{"id": "F07ABCD1234", "title": "chart.png"}]}),
        reply(200, json=posted()), reply(200, json=permalink()),
    ]
    _, error, sent = run(publish(request), steps)
    assert error is None
    assert [(r.method, str(r.url).split("?")[0]) for r in sent] == [
        ("POST", "https://slack.com/api/files.getUploadURLExternal"), ("POST", "https://files.slack.com/upload/v1/CwABAAAAXAoAAZnKg"),
        ("POST", "https://slack.com/api/files.completeUploadExternal"), ("POST", "https://slack.com/api/chat.postMessage"),
        ("GET", "https://slack.com/api/chat.getPermalink"),
    ]
    assert form(sent[0]) == {"filename": "chart.png", "length": "4", "alt_txt": "A chart"}
    assert sent[1].content == b"\x89PNG"
    complete = form(sent[2])
    assert json.loads(complete["files"]) == [{"id": "F07ABCD1234", "title": "chart.png"}] and "channel_id" not in complete  # private until shown
    body = json.loads(sent[3].content)
    assert body["unfurl_links"] is False
    assert body["blocks"][-1] == {"type": "image", "slack_file": {"id": "F07ABCD1234"}, "alt_text": "A chart"}


def test_custom_blocks_replace_the_generated_ones_and_long_text_is_split_into_sections():
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Release"}}, {"type": "divider"}]
    request = PublishRequest(text="fallback", idempotency_key=KEY, settings={"channel": CHANNEL, "blocks": json.dumps(blocks)})
    _, error, sent = run(publish(request), [reply(200, json=posted()), reply(200, json=permalink())])
    assert error is None and json.loads(sent[0].content)["blocks"] == blocks and json.loads(sent[0].content)["text"] == "fallback"
    text = ("x" * 2000 + "\n") * 3
    sections = text_blocks(text)
    assert [len(b["text"]["text"]) for b in sections] == [2001, 2001, 2001] and "".join(b["text"]["text"] for b in sections) == text
    assert [len(b["text"]["text"]) for b in text_blocks("y" * 7000)] == [3000, 3000, 1000]


def test_a_public_channel_the_bot_is_not_in_is_joined_and_the_message_sent_again():
    request = PublishRequest(text="hi", idempotency_key=KEY, settings={"channel": CHANNEL})
    steps = [refused("not_in_channel"), reply(200, json={"ok": True, "channel": {"id": CHANNEL, "name": "general"}}), reply(200, json=posted()), reply(200, json=permalink())]
    result, error, sent = run(publish(request), steps)
    assert error is None and result.platform_post_id == f"{CHANNEL}:1503435956.000247"
    assert str(sent[1].url) == "https://slack.com/api/conversations.join" and json.loads(sent[1].content) == {"channel": CHANNEL}
    _, error, _ = run(publish(request), [refused("not_in_channel"), refused("method_not_supported_for_channel_type")])
    assert isinstance(error, Rejected) and error.code == "METHOD_NOT_SUPPORTED_FOR_CHANNEL_TYPE"


def test_a_lost_permalink_does_not_fail_a_posted_message():
    request = PublishRequest(text="hi", idempotency_key=KEY, settings={"channel": CHANNEL})
    result, error, _ = run(publish(request), [reply(200, json=posted()), refused("internal_error")])
    assert error is None and result.platform_post_id == f"{CHANNEL}:1503435956.000247" and result.url is None


def test_channels_are_the_channel_settings_choices_across_pages():
    page1 = {"ok": True, "channels": [{"id": "C012AB3CD", "name": "general", "is_channel": True, "is_private": False, "is_archived": False, "is_member": True}],
             "response_metadata": {"next_cursor": "dGVhbTpDMDYxRkE1UEI="}}
    page2 = {"ok": True, "channels": [{"id": "G0AKFJBEU", "name": "leads", "is_channel": False, "is_group": True, "is_private": True, "is_archived": False, "is_member": False}],
             "response_metadata": {"next_cursor": ""}}
    choices, error, sent = run(lambda ctx: provider.setting_choices(ctx, "channel"), [reply(200, json=page1), reply(200, json=page2)])
    assert error is None
    assert [(c.value, c.label, dict(c.extra)) for c in choices] == [
        ("C012AB3CD", "#general", {"is_private": False, "is_member": True}), ("G0AKFJBEU", "#leads", {"is_private": True, "is_member": False}),
    ]
    query = urllib.parse.parse_qs(sent[1].url.query.decode())
    assert query == {"types": ["public_channel,private_channel"], "exclude_archived": ["true"], "limit": ["200"], "cursor": ["dGVhbTpDMDYxRkE1UEI="]}


def test_oauth_v2_installs_a_bot_and_connect_names_the_workspace():
    url = provider.auth.authorization_url(client_id="123.456", redirect_uri="https://gw.example/cb", state="s")
    assert url.startswith("https://slack.com/oauth/v2/authorize?")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["scope"] == ["channels:read,groups:read,chat:write,channels:join,files:write"]
    access = {"ok": True, "access_token": TOKEN, "token_type": "bot", "scope": "channels:read,groups:read,chat:write,channels:join,files:write",
              "bot_user_id": "U0KRQLJ9H", "app_id": "A0KRD7HC3", "team": {"name": "Gate Team", "id": "T9TK3CUKW"}, "enterprise": None,
              "authed_user": {"id": "U1234", "scope": "", "access_token": "xoxp-1234", "token_type": "user"}}
    tokens, error, sent = run(
        lambda ctx: provider.exchange_code(ctx, code="c0de", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="123.456", client_secret="s3cret"),
        [reply(200, json=access)], credentials={},
    )
    assert error is None and tokens.access_token == TOKEN and tokens.refresh_token is None and tokens.expires_at is None
    assert (tokens.extra["team_id"], tokens.extra["bot_user_id"]) == ("T9TK3CUKW", "U0KRQLJ9H")
    assert form(sent[0]) == {"code": "c0de", "redirect_uri": "https://gw.example/cb", "client_id": "123.456", "client_secret": "s3cret"}
    assert "xoxp-1234" not in json.dumps(tokens.to_credentials())  # the installing user's token is not kept
    _, error, _ = run(
        lambda ctx: provider.exchange_code(ctx, code="used", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="1", client_secret="s"),
        [refused("invalid_code")], credentials={},
    )
    assert isinstance(error, Rejected) and error.code == "INVALID_CODE"
    _, error, sent = run(lambda ctx: provider.refresh_token(ctx, client_id="1", client_secret="s"), [])
    assert isinstance(error, AuthExpired) and sent == []  # no token rotation: nothing to refresh with
    me = {"ok": True, "url": "https://gate-team.slack.com/", "team": "Gate Team", "user": "socialgate", "team_id": "T9TK3CUKW", "user_id": "U0KRQLJ9H", "bot_id": "B0KRQLJ9H"}
    profile, error, sent = run(lambda ctx: provider.connect(ctx, tokens.to_credentials()), [reply(200, json=me)])
    assert error is None and (profile.external_id, profile.handle, profile.account_type) == ("T9TK3CUKW:B0KRQLJ9H", "gate-team.slack.com", "workspace")
    assert (str(sent[0].url), sent[0].headers["authorization"]) == ("https://slack.com/api/auth.test", f"Bearer {TOKEN}")


def test_delete_and_a_message_already_gone():
    _, error, sent = run(lambda ctx: provider.delete(ctx, f"{CHANNEL}:1503435956.000247"), [reply(200, json={"ok": True, "channel": CHANNEL, "ts": "1503435956.000247"})])
    assert error is None and str(sent[0].url) == "https://slack.com/api/chat.delete"
    assert json.loads(sent[0].content) == {"channel": CHANNEL, "ts": "1503435956.000247"}
    _, error, _ = run(lambda ctx: provider.delete(ctx, f"{CHANNEL}:1"), [refused("message_not_found")])
    assert error is None
    _, error, _ = run(lambda ctx: provider.delete(ctx, f"{CHANNEL}:1"), [refused("cant_delete_message")])
    assert isinstance(error, Rejected) and error.code == "CANT_DELETE_MESSAGE"


def test_the_plugin_is_registered_under_its_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.slack

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["slack"] == "plugins.slack"
    assert [p.id for p in plugins.slack.register_providers()] == ["slack"]
