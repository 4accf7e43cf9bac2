"""Mastodon provider, replayed against the Mastodon client API's real request and response shapes."""

import asyncio
import json
import urllib.parse
from datetime import timedelta

from plugins.mastodon import Mastodon, exchange_code, mastodon_length, oauth_spec, register_app
from providers import AuthExpired, DraftMedia, PostDraft, PublishMedia, PublishRequest, RateLimited, Rejected, ThreadPart, TransientError
from providers.calls import BytesSource
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from providers.validation import publish_checked
from tests.providers.multipart import form_parts

INSTANCE = "https://mastodon.social"
CREDENTIALS = {"instance_url": INSTANCE, "access_token": "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"}
KEY = "tgt_conformance0000000000001"
provider = Mastodon()


def status(status_id="113801234567890123", text="Release 2.0 is out", **fields):
    """A Status as ``POST /api/v1/statuses`` and ``GET /api/v1/statuses/:id`` return it."""
    return {
        "id": status_id, "created_at": "2026-01-15T12:00:00.000Z", "in_reply_to_id": None, "in_reply_to_account_id": None,
        "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
        "uri": f"https://mastodon.social/users/gate/statuses/{status_id}", "url": f"https://mastodon.social/@gate/{status_id}",
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "content": f"<p>{text}</p>",
        "account": {"id": "109382", "username": "gate", "acct": "gate"}, "media_attachments": [], "mentions": [], "tags": [],
        **fields,
    }


def attachment(media_id="22348641", url=None):
    return {
        "id": media_id, "type": "image", "url": url, "preview_url": f"https://files.mastodon.social/m/{media_id}/small.png",
        "remote_url": None, "text_url": None, "meta": {"focus": {"x": 0.0, "y": 0.0}}, "description": "A chart", "blurhash": "UFBWY:8_0Jxv",
    }


ACCOUNT = {
    "id": "109382", "username": "gate", "acct": "gate", "display_name": "Socialgate", "locked": False, "bot": False,
    "url": "https://mastodon.social/@gate", "avatar": "https://files.mastodon.social/accounts/avatars/109/382/original/a.png",
    "followers_count": 10, "following_count": 2, "statuses_count": 40, "source": {"privacy": "public", "language": "en"},
}


def instance(max_characters=500, **media):
    return {
        "domain": "mastodon.social", "title": "Mastodon", "version": "4.3.2",
        "configuration": {
            "urls": {"streaming": "wss://streaming.mastodon.social"},
            "statuses": {"max_characters": max_characters, "max_media_attachments": 4, "characters_reserved_per_url": 23},
            "media_attachments": {
                "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "video/mp4"],
                "image_size_limit": 16777216, "image_matrix_limit": 33177600, "video_size_limit": 103809024,
                "video_frame_rate_limit": 120, "video_matrix_limit": 8294400, **media,
            },
        },
    }


def run(operation, steps, store=None):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=CREDENTIALS, store=store))
    return outcome.result, outcome.error, outcome.sent


def publish(request):
    return lambda ctx: publish_checked(provider, ctx, request)


class TestMastodonConformance(ProviderConformance):
    metrics_ids = ["1001", "1002"]
    metrics_success = [reply(200, json=[status("1001", favourites_count=12, reblogs_count=3, replies_count=2, quotes_count=1), status("1002")])]
    expected_metrics = {"1001": {"likes": 12, "reposts": 3, "comments": 2, "quotes": 1}, "1002": {"likes": 0, "reposts": 0, "comments": 0}}
    # Before 4.5 a Status has no quotes_count: quotes stay unknown, not 0.
    metrics_omitting = [reply(200, json=[status("1001", favourites_count=12)])]
    omitted_figure = ("1001", "quotes")
    account_metrics_success = [reply(200, json=ACCOUNT)]
    expected_account_metrics = {"followers": 10, "following": 2, "posts": 40}
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Release 2.0 is out", idempotency_key=KEY)
    success = [reply(200, json=status())]
    expected_post_id = "113801234567890123"
    expected_url = "https://mastodon.social/@gate/113801234567890123"
    error_cases = [
        ErrorCase(
            "429 with a reset time",
            [reply(429, json={"error": "Too many requests"}, headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-01-15T12:05:00.000Z"})],
            RateLimited, retry_after=300,
        ),
        ErrorCase("401 revoked token", [reply(401, json={"error": "The access token is invalid"})], AuthExpired),
        ErrorCase("403 missing scope", [reply(403, json={"error": "This action is outside the authorized scopes"})], AuthExpired, code="FORBIDDEN"),
        ErrorCase(
            "422 character limit",
            [reply(422, json={"error": "Validation failed: Text character limit of 500 exceeded"})], Rejected, code="TEXT_TOO_LONG",
        ),
        ErrorCase("422 other", [reply(422, json={"error": "Validation failed: Text can't be blank"})], Rejected, code="UNPROCESSABLE_CONTENT"),
        ErrorCase("404 reply target gone", [reply(404, json={"error": "Record not found"})], Rejected, code="NOT_FOUND"),
        ErrorCase("503", [reply(503, text="<html>503 Service Unavailable</html>", headers={"Content-Type": "text/html"})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("500 characters by default", PostDraft(text="a" * 501), "TEXT_TOO_LONG"),
        RejectedDraft("4 attachments", PostDraft(text="", media=(DraftMedia("image", "image/png", 100),) * 5), "TOO_MANY_MEDIA"),
        RejectedDraft(
            "a video goes alone",
            PostDraft(text="", media=(DraftMedia("video", "video/mp4", 100), DraftMedia("image", "image/png", 100))),
            "MEDIA_COMBINATION_NOT_SUPPORTED",
        ),
        RejectedDraft("16 MiB images", PostDraft(text="", media=(DraftMedia("image", "image/png", 16 * 1024 * 1024 + 1),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("99 MiB videos", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 99 * 1024 * 1024 + 1),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("no documents", PostDraft(text="", media=(DraftMedia("document", "application/pdf", 100),)), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("a language code", PostDraft(text="hi", settings={"language": "english"}), "SETTING_INVALID"),
    ]
    platform_accepts = [PostDraft(text="a", media=(DraftMedia("image", "image/png", 100),) * 4), PostDraft(text="hallo", settings={"language": "de"})]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://mastodon.social/api/v1/statuses")
        assert request.headers["authorization"] == "Bearer " + CREDENTIALS["access_token"]
        assert request.headers["idempotency-key"] == KEY
        assert json.loads(request.content) == {"status": "Release 2.0 is out", "visibility": "public"}


def test_connect_names_the_account_and_keeps_the_instance_limits_for_publish():
    store = MemoryProviderStore()
    profile, error, sent = run(
        lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [reply(200, json=ACCOUNT), reply(200, json=instance(max_characters=300))], store=store,
    )
    assert error is None
    assert [(r.method, str(r.url)) for r in sent] == [
        ("GET", "https://mastodon.social/api/v1/accounts/verify_credentials"), ("GET", "https://mastodon.social/api/v2/instance"),
    ]
    assert all(r.headers["authorization"] == "Bearer " + CREDENTIALS["access_token"] for r in sent)
    assert (profile.external_id, profile.handle, profile.display_name) == ("109382", "@gate@mastodon.social", "Socialgate")

    # 301 characters fit the declared 500 but not this instance's 300: refused before any request.
    _, error, sent = run(publish(PublishRequest(text="a" * 301, idempotency_key="tgt_1")), [], store=store)
    assert isinstance(error, Rejected) and error.code == "INSTANCE_TEXT_TOO_LONG" and sent == []
    assert "301 characters" in error.message and "at most 300" in error.message
    # Mastodon counts a URL as 23 characters, so a long link still fits.
    text = "a" * 270 + " https://example.com/" + "p" * 60
    result, error, sent = run(publish(PublishRequest(text=text, idempotency_key="tgt_2")), [reply(200, json=status())], store=store)
    assert error is None and json.loads(sent[0].content)["status"] == text


def test_connect_to_an_instance_without_v2_keeps_the_defaults():
    store = MemoryProviderStore()
    credentials = {"instance_url": "https://old.example/", "access_token": "t"}
    outcome = asyncio.run(call_scripted(
        provider, [reply(200, json=ACCOUNT), reply(404, json={"error": "Record not found"})],
        lambda ctx: provider.connect(ctx, credentials), store=store,
    ))
    assert outcome.error is None and outcome.result.handle == "@gate@old.example"
    assert str(outcome.sent[0].url) == "https://old.example/api/v1/accounts/verify_credentials"
    assert asyncio.run(store.list("instance")) == []


def test_media_is_uploaded_polled_until_processed_and_attached():
    photo = PublishMedia(kind="image", mime_type="image/png", size_bytes=4, url="https://gw.example/m/1", source=BytesSource(b"\x89PNG"), alt_text="A chart", filename="chart.png")
    request = PublishRequest(
        text="Charts", idempotency_key="tgt_1", media=(photo,),
        settings={"visibility": "unlisted", "spoiler_text": "numbers", "language": "en", "sensitive": True},
    )
    steps = [
        reply(202, json=attachment()),
        reply(206, json=attachment()),
        reply(200, json=attachment(url="https://files.mastodon.social/media_attachments/files/22348641/original/chart.png")),
        reply(200, json=status(text="Charts")),
    ]
    _, error, sent = run(publish(request), steps)
    assert error is None
    assert [(r.method, str(r.url)) for r in sent] == [
        ("POST", "https://mastodon.social/api/v2/media"),
        ("GET", "https://mastodon.social/api/v1/media/22348641"),
        ("GET", "https://mastodon.social/api/v1/media/22348641"),
        ("POST", "https://mastodon.social/api/v1/statuses"),
    ]
    parts = form_parts(sent[0])
    assert parts["description"].text == "A chart"
    assert (parts["file"].filename, parts["file"].content_type, parts["file"].content) == ("chart.png", "image/png", b"\x89PNG")
    assert json.loads(sent[3].content) == {
        "status": "Charts", "visibility": "unlisted", "media_ids": ["22348641"], "spoiler_text": "numbers", "language": "en", "sensitive": True,
    }


def test_media_still_processing_is_transient_and_the_retry_reuses_the_upload():
    store = MemoryProviderStore()
    request = PublishRequest(text="clip", idempotency_key="tgt_1", media=(PublishMedia(
        kind="video", mime_type="video/mp4", size_bytes=3, url="https://gw.example/m/2", source=BytesSource(b"mp4"),
    ),))
    _, error, sent = run(publish(request), [reply(202, json=attachment())] + [reply(206, json=attachment())] * 12, store=store)
    assert isinstance(error, TransientError) and error.code == "MEDIA_PROCESSING"
    assert len(sent) == 13  # one upload, twelve polls, then it gives up
    _, error, sent = run(publish(request), [reply(200, json=status())], store=store)
    assert error is None
    assert [str(r.url) for r in sent] == ["https://mastodon.social/api/v1/statuses"]  # no second upload
    assert json.loads(sent[0].content)["media_ids"] == ["22348641"]


def test_a_thread_replies_part_to_part_with_a_key_per_part():
    request = PublishRequest(text="1/3", idempotency_key="tgt_t", thread=(ThreadPart("2/3"), ThreadPart("3/3")), reply_to="113700000000000000")
    steps = [reply(200, json=status("1001")), reply(200, json=status("1002")), reply(200, json=status("1003"))]
    result, error, sent = run(publish(request), steps)
    assert error is None
    assert [r.headers["idempotency-key"] for r in sent] == ["tgt_t", "tgt_t#1", "tgt_t#2"]
    assert [json.loads(r.content).get("in_reply_to_id") for r in sent] == ["113700000000000000", "1001", "1002"]
    assert (result.platform_post_id, result.thread_post_ids) == ("1001", ("1002", "1003"))


def test_reconcile_replays_under_the_same_key_only_while_mastodon_remembers_it():
    store = MemoryProviderStore()
    request = PublishRequest(text="Release 2.0 is out", idempotency_key=KEY)
    found, error, sent = run(lambda ctx: provider.reconcile(ctx, request), [], store=store)
    assert (found, error, sent) == (None, None, [])  # nothing was ever sent for this key

    asyncio.run(store.put("status_sent", KEY, {"first_sent_at": (FIXED_NOW - timedelta(minutes=10)).isoformat()}))
    found, error, sent = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=status())], store=store)
    assert error is None and found.platform_post_id == "113801234567890123"
    assert sent[0].headers["idempotency-key"] == KEY  # Mastodon answers a replay with the status it created

    asyncio.run(store.put("status_sent", KEY, {"first_sent_at": (FIXED_NOW - timedelta(minutes=55)).isoformat()}))
    found, error, sent = run(lambda ctx: provider.reconcile(ctx, request), [], store=store)
    assert (found, error, sent) == (None, None, [])  # the key may be forgotten: a person decides


def test_delete_and_metrics():
    _, error, sent = run(lambda ctx: provider.delete(ctx, "1001"), [reply(200, json=status("1001", text=""))])
    assert error is None and (sent[0].method, str(sent[0].url)) == ("DELETE", "https://mastodon.social/api/v1/statuses/1001")
    _, error, _ = run(lambda ctx: provider.delete(ctx, "1001"), [reply(404, json={"error": "Record not found"})])
    assert error is None  # already gone

    # One batched GET /api/v1/statuses?id[]=…; the deleted 1002 is simply absent from the answer.
    steps = [reply(200, json=[status("1001", favourites_count=12, reblogs_count=3, replies_count=2, quotes_count=1)])]
    snapshots, error, sent = run(lambda ctx: provider.fetch_metrics(ctx, ["1001", "1002"]), steps)
    assert error is None
    assert [str(r.url) for r in sent] == ["https://mastodon.social/api/v1/statuses?id%5B%5D=1001&id%5B%5D=1002"]
    assert sent[0].headers["authorization"] == f"Bearer {CREDENTIALS['access_token']}"
    (snapshot,) = snapshots
    assert (snapshot.platform_post_id, snapshot.likes, snapshot.reposts, snapshot.comments, snapshot.quotes) == ("1001", 12, 3, 2, 1)
    assert (snapshot.views, snapshot.shares) == (None, None)
    assert snapshot.captured_at == FIXED_NOW


def test_metrics_fall_back_to_one_status_at_a_time_before_mastodon_4_3():
    steps = [
        reply(404, json={"error": "Record not found"}),
        reply(200, json=status("1001", favourites_count=12)),
        reply(404, json={"error": "Record not found"}),
    ]
    snapshots, error, sent = run(lambda ctx: provider.fetch_metrics(ctx, ["1001", "1002"]), steps)
    assert error is None
    assert [str(r.url) for r in sent][1:] == ["https://mastodon.social/api/v1/statuses/1001", "https://mastodon.social/api/v1/statuses/1002"]
    assert [(s.platform_post_id, s.likes, s.quotes) for s in snapshots] == [("1001", 12, None)]  # no quotes_count before 4.5


def test_oauth_registers_an_app_and_trades_the_code_for_the_form_credentials():
    app = {
        "id": "563419", "name": "socialgate", "website": None, "scopes": ["read:accounts", "read:statuses", "write:statuses", "write:media"],
        "redirect_uri": "https://gw.example/oauth/mastodon/callback", "redirect_uris": ["https://gw.example/oauth/mastodon/callback"],
        "client_id": "TWhM-tNSuncnqN7DBJmoyeLnk6K3iJJ71KKXxgL1hPM", "client_secret": "ZEaFUFmF0umgBX1qKJDjaU99Q31lDkOU8NutzTOoliw",
        "client_secret_expires_at": 0, "vapid_key": "BCk-QqERU0q-CfYZjcuB6lnyyOYfJ2AifKqfeGIm7Z-HiTU5T9eTG5GxVA0_OH5mMlI4UkkDTpaZwozy0TzdZ2M=",
    }
    callback = "https://gw.example/oauth/mastodon/callback"
    outcome = asyncio.run(call_scripted(provider, [reply(200, json=app)], lambda ctx: register_app(ctx, "https://mastodon.social/", callback)))
    assert outcome.result == (app["client_id"], app["client_secret"])
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", "https://mastodon.social/api/v1/apps")
    assert json.loads(request.content) == {
        "client_name": "socialgate", "redirect_uris": callback, "scopes": "read:accounts read:statuses write:statuses write:media",
    }

    spec = oauth_spec("https://mastodon.social")
    url = spec.authorization_url(client_id=app["client_id"], redirect_uri=callback, state="st4te", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert url.startswith("https://mastodon.social/oauth/authorize?")
    assert urllib.parse.parse_qs(url.split("?", 1)[1])["scope"] == ["read:accounts read:statuses write:statuses write:media"]
    assert (spec.token_url, spec.pkce, spec.refreshable) == ("https://mastodon.social/oauth/token", True, False)

    token = {"access_token": CREDENTIALS["access_token"], "token_type": "Bearer", "scope": "read:accounts read:statuses write:statuses write:media", "created_at": 1768478400}
    outcome = asyncio.run(call_scripted(provider, [reply(200, json=token)], lambda ctx: exchange_code(
        ctx, "https://mastodon.social", code="qDFUEaYrRK5c-HNmTCJbAzazwLRInJ7VHFat0wcMgCU", redirect_uri=callback,
        client_id=app["client_id"], client_secret=app["client_secret"], code_verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    )))
    assert outcome.error is None
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", "https://mastodon.social/oauth/token")
    assert urllib.parse.parse_qs(request.content.decode()) == {
        "grant_type": ["authorization_code"], "code": ["qDFUEaYrRK5c-HNmTCJbAzazwLRInJ7VHFat0wcMgCU"], "redirect_uri": [callback],
        "client_id": [app["client_id"]], "client_secret": [app["client_secret"]],
        "scope": ["read:accounts read:statuses write:statuses write:media"], "code_verifier": ["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"],
    }
    credentials = outcome.result.to_credentials()
    assert {k: credentials[k] for k in ("instance_url", "access_token")} == CREDENTIALS

    refused = {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."}
    outcome = asyncio.run(call_scripted(provider, [reply(400, json=refused)], lambda ctx: exchange_code(
        ctx, INSTANCE, code="used", redirect_uri=callback, client_id="c", client_secret="s", code_verifier=None,
    )))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "INVALID_GRANT"
    assert "code_verifier" not in urllib.parse.parse_qs(outcome.sent[0].content.decode())


def test_mastodon_counts_links_and_remote_mentions_its_own_way():
    assert mastodon_length("plain text") == 10
    assert mastodon_length("see https://example.com/" + "x" * 100) == len("see ") + 23
    assert mastodon_length("hi @alice@example.social!") == len("hi @alice!")
    assert mastodon_length("mail me: bob@example.com") == len("mail me: bob@example.com")  # an address is neither
