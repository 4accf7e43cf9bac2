"""The X provider against X's real request and answer shapes (docs.x.com, xdevplatform samples, reported errors)."""

import asyncio
import base64
import dataclasses
import json
import urllib.parse
from datetime import timedelta

import httpx
import pytest

from plugins.x import TOKEN_URL, UPLOAD_CHUNK_BYTES, X
from providers import (
    AuthExpired,
    BytesSource,
    DraftMedia,
    PostDraft,
    Processing,
    PublishMedia,
    PublishRequest,
    RateLimited,
    Rejected,
    ThreadPart,
    TransientError,
    validate_draft,
)
from providers.store import MemoryProviderStore
from providers.testing import (
    FIXED_NOW,
    ErrorCase,
    ProviderConformance,
    RejectedDraft,
    ScriptedTransport,
    call_scripted,
    make_context,
    publish_scripted,
    reply,
    sample_media,
)
from providers.threads import THREAD_PROGRESS
from tests.providers.multipart import form_parts

provider = X()
CREDENTIALS = {"access_token": "xat-123", "user_id": "2244994945", "username": "XDevelopers"}
NOW = int(FIXED_NOW.timestamp())
TWEET_ID = "1445880548472328192"
CREATED = {"data": {"edit_history_tweet_ids": [TWEET_ID], "id": TWEET_ID, "text": "Hello world!"}}
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank", "title": "Forbidden", "status": 403}
INVALID = {
    "errors": [{"parameters": {"reply.in_reply_to_tweet_id": ["abc"]}, "message": "The `reply.in_reply_to_tweet_id` query parameter value [abc] is not valid"}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}
NOT_ENROLLED = {
    "client_id": "24076425",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
TOO_MANY = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}


def limited(**headers):
    return reply(429, json=TOO_MANY, headers=headers)


RECENT_ID = "2011370200888246272"  # a snowflake from 2026-01-14, a day before the kit's clock
RECENT_PUBLIC = {"retweet_count": 3, "reply_count": 2, "like_count": 40, "quote_count": 1, "bookmark_count": 5, "impression_count": 900}
RECENT_PRIVATE = {"impression_count": 950, "url_link_clicks": 12, "user_profile_clicks": 4}
ME_WITH_METRICS = {"data": {"id": "2244994945", "name": "Developers", "username": "XDevelopers", "public_metrics": {
    "followers_count": 583423, "following_count": 2048, "tweet_count": 14052, "listed_count": 1672, "like_count": 2100, "media_count": 1300,
}}}


class TestXConformance(ProviderConformance):
    provider = provider
    metrics_ids = [RECENT_ID]
    metrics_success = [reply(200, json={"data": [{"id": RECENT_ID, "text": "new", "public_metrics": RECENT_PUBLIC, "non_public_metrics": RECENT_PRIVATE}]})]
    expected_metrics = {RECENT_ID: {"views": 950, "likes": 40, "comments": 2, "reposts": 3, "quotes": 1, "saves": 5, "clicks": 12}}
    # A post whose author hid bookmarks from the app: no bookmark_count, so saves are unknown.
    metrics_omitting = [reply(200, json={"data": [{"id": RECENT_ID, "text": "new", "public_metrics": {
        k: v for k, v in RECENT_PUBLIC.items() if k != "bookmark_count"}, "non_public_metrics": RECENT_PRIVATE}]})]
    omitted_figure = (RECENT_ID, "saves")
    account_metrics_success = [reply(200, json=ME_WITH_METRICS)]
    expected_account_metrics = {"followers": 583423, "following": 2048, "posts": 14052}
    credentials = CREDENTIALS
    request = PublishRequest(text="Hello world!", idempotency_key="tgt_x_conformance")
    processing_request = PublishRequest(text="watch", idempotency_key="tgt_x_video", media=(
        PublishMedia(kind="video", mime_type="video/mp4", size_bytes=10, url="https://media.example/v.mp4", source=BytesSource(b"v" * 10)),
    ))
    processing_publish = [
        reply(200, json={"data": {"id": "77", "media_key": "7_77", "expires_after_secs": 86400}}),
        reply(200, json={"data": {"expires_at": NOW + 86400}}),
        reply(200, json={"data": {"id": "77", "media_key": "7_77", "size": 10, "expires_after_secs": 86400,
                                  "processing_info": {"state": "pending", "check_after_secs": 1}}}),
    ]
    processing_polls = [
        [reply(200, json={"data": {"id": "77", "media_key": "7_77", "processing_info": {"state": "in_progress", "check_after_secs": 5, "progress_percent": 40}}})],
        [reply(200, json={"data": {"id": "77", "media_key": "7_77", "processing_info": {"state": "succeeded", "progress_percent": 100}}}),
         reply(201, json=CREATED)],
    ]
    processing_expected_post_id = TWEET_ID
    processing_failed = [reply(200, json={"data": {"id": "77", "media_key": "7_77", "processing_info": {
        "state": "failed", "progress_percent": 0, "error": {"code": 1, "name": "InvalidMedia", "message": "Invalid or Unsupported media"}}}})]
    success = [reply(201, json=CREATED)]
    expected_post_id = TWEET_ID
    expected_url = f"https://x.com/XDevelopers/status/{TWEET_ID}"
    error_cases = [
        ErrorCase(
            "429: wait until x-rate-limit-reset",
            [limited(**{"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(NOW + 600)})],
            RateLimited, retry_after=600,
        ),
        ErrorCase(
            "429 from the 24-hour user cap: its reset counts",
            [limited(**{"x-rate-limit-remaining": "150", "x-rate-limit-reset": str(NOW + 60),
                        "x-user-limit-24hour-limit": "100", "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(NOW + 3600)})],
            RateLimited, retry_after=3600,
        ),
        ErrorCase("429 with a reset already past", [limited(**{"x-rate-limit-reset": str(NOW - 5)})], RateLimited, retry_after=0),
        ErrorCase("401", [reply(401, json=UNAUTHORIZED)], AuthExpired, code="UNAUTHORIZED"),
        ErrorCase("403 duplicate content", [reply(403, json=DUPLICATE)], Rejected, code="DUPLICATE_CONTENT"),
        ErrorCase("400 invalid request", [reply(400, json=INVALID)], Rejected, code="INVALID_REQUEST"),
        ErrorCase("403 client not enrolled", [reply(403, json=NOT_ENROLLED)], Rejected, code="CLIENT_FORBIDDEN"),
        ErrorCase("503", [reply(503, json={"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank", "status": 503})], TransientError),
        ErrorCase("502 with an HTML page", [reply(502, text="<html>Bad Gateway</html>")], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("141 CJK characters weigh 282", PostDraft(text="漢" * 141), "TEXT_TOO_LONG"),
        RejectedDraft("141 emoji weigh 282", PostDraft(text="🎉" * 141), "TEXT_TOO_LONG"),
        RejectedDraft("a URL counts 23 however short", PostDraft(text="a" * 257 + " x.co"), "TEXT_TOO_LONG"),
        RejectedDraft("five images", PostDraft(text="pics", media=(DraftMedia("image", "image/png", 1000),) * 5), "TOO_MANY_MEDIA"),
        RejectedDraft("two videos", PostDraft(text="clips", media=(DraftMedia("video", "video/mp4", 1000),) * 2), "TOO_MANY_MEDIA"),
        RejectedDraft("an image with a GIF", PostDraft(text="mix", media=(DraftMedia("image", "image/png", 1), DraftMedia("gif", "image/gif", 1))), "MEDIA_COMBINATION_NOT_SUPPORTED"),
        RejectedDraft("a 6 MB image", PostDraft(text="big", media=(DraftMedia("image", "image/png", 6 * 1024 * 1024),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("a 16 MB GIF", PostDraft(text="big", media=(DraftMedia("gif", "image/gif", 16 * 1024 * 1024),)), "MEDIA_TOO_LARGE"),
    ]
    platform_accepts = [
        PostDraft(text="漢" * 140),  # 280 weighted
        PostDraft(text="a" * 256 + " https://example.com/" + "p" * 80),  # 256 + 1 + 23 = 280, 357 code points
        PostDraft(text="four", media=(DraftMedia("image", "image/jpeg", 5 * 1024 * 1024),) * 4),
        PostDraft(text="one video", media=(DraftMedia("video", "video/mp4", 512 * 1024 * 1024),)),
    ]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://api.x.com/2/tweets")
        assert request.headers["authorization"] == "Bearer xat-123"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {"text": "Hello world!"}


def run(coroutine):
    return asyncio.run(coroutine)


def form(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return dict(urllib.parse.parse_qsl(request.content.decode(), keep_blank_values=True))


TOKENS = {
    "token_type": "bearer",
    "expires_in": 7200,
    "access_token": "VGNibzFWSWREZm01bjN1N3dicWlNUG1oa2xRRVNNdmVHelJGY2hPSUo2VDhVOjE2MjIxNjA4MjU4MjU6MToxOmF0OjE",
    "scope": "tweet.write users.read tweet.read offline.access",
    "refresh_token": "bWRWa3gzdnk3WHRGU1o0bmRRcTJ5VUxWX1lZTDdJSUtmaWcxbTVxdEFXcW5tOjE2MjIxNjA4MjU4MjU6MToxOnJ0OjE",
}


def exchange(steps, **overrides):
    arguments = {"code": "c0de", "redirect_uri": "https://gate.example/oauth/x", "code_verifier": "v" * 43, "client_id": "cid", "client_secret": "s3cret"}
    arguments.update(overrides)
    return run(call_scripted(provider, steps, lambda ctx: provider.exchange_code(ctx, **arguments)))


# -- OAuth ---------------------------------------------------------------------------------


def test_the_authorize_url_uses_pkce_s256_and_every_scope():
    assert provider.auth.pkce is True
    url = provider.auth.authorization_url(client_id="cid", redirect_uri="https://gate.example/cb", state="st", code_challenge="ch4llenge")
    base, query = url.split("?")
    params = dict(urllib.parse.parse_qsl(query))
    assert base == "https://x.com/i/oauth2/authorize"
    assert params["scope"] == "tweet.read tweet.write users.read media.write offline.access"
    assert (params["code_challenge"], params["code_challenge_method"]) == ("ch4llenge", "S256")
    with pytest.raises(ValueError):
        provider.auth.authorization_url(client_id="cid", redirect_uri="https://gate.example/cb", state="st")


def test_a_confidential_client_exchanges_the_code_with_basic_auth_and_the_verifier():
    outcome = exchange([reply(200, json=TOKENS)])
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    assert form(request) == {
        "grant_type": "authorization_code", "code": "c0de", "redirect_uri": "https://gate.example/oauth/x",
        "code_verifier": "v" * 43, "client_id": "cid",
    }
    tokens = outcome.result
    assert tokens.access_token == TOKENS["access_token"] and tokens.refresh_token == TOKENS["refresh_token"]
    assert tokens.expires_at == FIXED_NOW + timedelta(seconds=7200)
    assert tokens.scopes == ("tweet.write", "users.read", "tweet.read", "offline.access")
    assert tokens.token_type == "Bearer"


def test_a_public_client_sends_no_authorization_header():
    outcome = exchange([reply(200, json=TOKENS)], client_secret="")
    (request,) = outcome.sent
    assert "authorization" not in request.headers
    assert form(request)["client_id"] == "cid"


def test_the_exchange_needs_the_pkce_verifier():
    outcome = exchange([], code_verifier=None)
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "PKCE_REQUIRED"
    assert outcome.sent == []


def test_a_refused_code_is_rejected_in_x_words():
    answer = {"error": "invalid_request", "error_description": "Value passed for the authorization code was invalid."}
    outcome = exchange([reply(400, json=answer)])
    assert isinstance(outcome.error, Rejected)
    assert (outcome.error.code, outcome.error.message) == ("INVALID_REQUEST", "Value passed for the authorization code was invalid.")


def refresh(steps, credentials, secret="s3cret"):
    return run(call_scripted(provider, steps, lambda ctx: provider.refresh_token(ctx, client_id="cid", client_secret=secret), credentials=credentials))


def test_refresh_sends_the_refresh_token_and_returns_the_rotated_one():
    rotated = dict(TOKENS, refresh_token="rotated-refresh")
    outcome = refresh([reply(200, json=rotated)], {"access_token": "old", "refresh_token": "old-refresh"})
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    assert form(request) == {"grant_type": "refresh_token", "refresh_token": "old-refresh", "client_id": "cid"}
    assert outcome.result.refresh_token == "rotated-refresh"
    assert outcome.result.expires_at == FIXED_NOW + timedelta(hours=2)


def test_a_refresh_without_a_new_refresh_token_keeps_none_for_the_gateway_to_keep_its_own():
    answer = {k: v for k, v in TOKENS.items() if k != "refresh_token"}
    outcome = refresh([reply(200, json=answer)], {"access_token": "old", "refresh_token": "old-refresh"}, secret="")
    assert outcome.result.refresh_token is None
    assert "refresh_token" not in outcome.result.to_credentials()


def test_a_dead_refresh_token_is_auth_expired():
    answer = {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
    outcome = refresh([reply(400, json=answer)], {"access_token": "old", "refresh_token": "dead"})
    assert isinstance(outcome.error, AuthExpired) and outcome.error.code == "INVALID_REQUEST"


def test_connect_names_the_account_from_users_me():
    me = {"data": {"id": "2244994945", "name": "Developers", "username": "XDevelopers", "profile_image_url": "https://pbs.twimg.com/profile_images/1/x_normal.jpg"}}
    outcome = run(call_scripted(provider, [reply(200, json=me)], lambda ctx: provider.connect(ctx, {"access_token": "fresh"})))
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("GET", "https://api.x.com/2/users/me?user.fields=profile_image_url")
    assert request.headers["authorization"] == "Bearer fresh"
    profile = outcome.result
    assert (profile.external_id, profile.handle, profile.display_name) == ("2244994945", "XDevelopers", "Developers")


# -- publishing ----------------------------------------------------------------------------


def image(alt="a cat on a keyboard"):
    return PublishMedia(kind="image", mime_type="image/png", size_bytes=7, url="https://media.example/cat.png", source=BytesSource(b"\x89PNGcat"), alt_text=alt)


def initialized(media_id):
    return reply(200, json={"data": {"id": media_id, "media_key": f"3_{media_id}", "expires_after_secs": 86400}})


def finalized(media_id, processing=None):
    data = {"id": media_id, "media_key": f"3_{media_id}", "size": 7, "expires_after_secs": 86400}
    if processing:
        data["processing_info"] = processing
    return reply(200, json={"data": data})


def created(post_id, text):
    return reply(201, json={"data": {"edit_history_tweet_ids": [post_id], "id": post_id, "text": text}})


APPENDED = reply(200, json={"data": {"expires_at": NOW + 86400}})


def test_a_thread_with_an_image_uploads_it_sets_its_alt_text_and_chains_the_replies():
    request = PublishRequest(text="part one", idempotency_key="tgt_thread", media=(image(),), thread=(ThreadPart("part two"),), reply_to="1111")
    steps = [
        initialized("1880028106020515840"), APPENDED, finalized("1880028106020515840"),
        reply(200, json={"data": {"associated_metadata": {"alt_text": {"text": "a cat on a keyboard"}}, "id": "1880028106020515840"}}),
        created("2001", "part one"), created("2002", "part two"),
    ]
    outcome = run(publish_scripted(provider, steps, request, credentials=CREDENTIALS))
    assert outcome.error is None
    assert (outcome.result.platform_post_id, outcome.result.thread_post_ids) == ("2001", ("2002",))
    assert outcome.result.url == "https://x.com/XDevelopers/status/2001"
    init, append, finalize, metadata, first, second = outcome.sent
    assert (init.method, str(init.url)) == ("POST", "https://api.x.com/2/media/upload/initialize")
    assert json.loads(init.content) == {"media_type": "image/png", "total_bytes": 7, "media_category": "tweet_image"}
    assert (append.method, str(append.url)) == ("POST", "https://api.x.com/2/media/upload/1880028106020515840/append")
    parts = form_parts(append)
    assert parts["segment_index"].text == "0"
    assert (parts["media"].content, parts["media"].content_type) == (b"\x89PNGcat", "application/octet-stream")
    assert (finalize.method, str(finalize.url), finalize.content) == ("POST", "https://api.x.com/2/media/upload/1880028106020515840/finalize", b"")
    assert (metadata.method, str(metadata.url)) == ("POST", "https://api.x.com/2/media/metadata")
    assert json.loads(metadata.content) == {"id": "1880028106020515840", "metadata": {"alt_text": {"text": "a cat on a keyboard"}}}
    assert json.loads(first.content) == {"text": "part one", "media": {"media_ids": ["1880028106020515840"]}, "reply": {"in_reply_to_tweet_id": "1111"}}
    assert json.loads(second.content) == {"text": "part two", "reply": {"in_reply_to_tweet_id": "2001"}}
    assert all(r.headers["authorization"] == "Bearer xat-123" for r in outcome.sent)


def video(size):
    return PublishMedia(kind="video", mime_type="video/mp4", size_bytes=size, url="https://media.example/v.mp4", source=BytesSource(b"v" * size), alt_text="ignored for video")


def status_answer(media_id, processing):
    return reply(200, json={"data": {"id": media_id, "media_key": f"7_{media_id}", "processing_info": processing}})


def test_a_video_is_appended_in_segments_then_processing_is_polled_honouring_check_after_secs_never_slept():
    size = UPLOAD_CHUNK_BYTES + 10
    request = PublishRequest(text="watch", idempotency_key="tgt_video", media=(video(size),))
    status = "https://api.x.com/2/media/upload?command=STATUS&media_id=77"
    store = MemoryProviderStore()
    upload = [initialized("77"), APPENDED, APPENDED, finalized("77", {"state": "pending", "check_after_secs": 1})]
    accepted = run(publish_scripted(provider, upload, request, credentials=CREDENTIALS, store=store))
    assert accepted.error is None and isinstance(accepted.result, Processing)
    assert dict(accepted.result.handle) == {"part": 0, "media_ids": ["77"], "pending": [["77", 0]]}
    assert (accepted.result.check_after, accepted.result.stage, accepted.result.published) == (timedelta(seconds=1), "transcoding", False)
    init, first, second, _finalize = accepted.sent
    assert json.loads(init.content) == {"media_type": "video/mp4", "total_bytes": size, "media_category": "tweet_video"}
    assert [form_parts(r)["segment_index"].text for r in (first, second)] == ["0", "1"]
    assert len(form_parts(first)["media"].content) == UPLOAD_CHUNK_BYTES and len(form_parts(second)["media"].content) == 10

    def poll(steps, handle):
        return run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, handle), credentials=CREDENTIALS, store=store))

    still = poll([status_answer("77", {"state": "in_progress", "check_after_secs": 5, "progress_percent": 40})], dict(accepted.result.handle))
    assert isinstance(still.result, Processing) and still.result.check_after == timedelta(seconds=5)
    assert [(r.method, str(r.url)) for r in still.sent] == [("GET", status)]
    done = poll([status_answer("77", {"state": "succeeded", "progress_percent": 100}), created("3001", "watch")], dict(still.result.handle))
    assert done.error is None and done.result.platform_post_id == "3001"
    check, post = done.sent
    assert (check.method, str(check.url)) == ("GET", status)
    assert json.loads(post.content) == {"text": "watch", "media": {"media_ids": ["77"]}}


def test_a_video_x_cannot_process_fails_without_posting():
    request = PublishRequest(text="watch", idempotency_key="tgt_video", media=(video(10),))
    failed = {"state": "failed", "progress_percent": 0, "error": {"code": 1, "name": "InvalidMedia", "message": "Invalid or Unsupported media"}}
    outcome = run(publish_scripted(provider, [initialized("77"), APPENDED, finalized("77", failed)], request, credentials=CREDENTIALS))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "MEDIA_PROCESSING_FAILED"
    assert "Invalid or Unsupported media" in outcome.error.message
    assert len(outcome.sent) == 3


def test_a_thread_whose_second_part_has_a_video_posts_the_first_then_waits_and_resumes_from_the_second():
    request = PublishRequest(text="one", idempotency_key="tgt_vthread", thread=(ThreadPart("two", media=(video(10),)),))
    store = MemoryProviderStore()
    steps = [created("4001", "one"), initialized("78"), APPENDED, finalized("78", {"state": "pending", "check_after_secs": 3})]
    accepted = run(publish_scripted(provider, steps, request, credentials=CREDENTIALS, store=store))
    assert isinstance(accepted.result, Processing) and dict(accepted.result.handle) == {"part": 1, "media_ids": ["78"], "pending": [["78", 0]]}
    steps = [status_answer("78", {"state": "succeeded", "progress_percent": 100}), created("4002", "two")]
    done = run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, dict(accepted.result.handle)), credentials=CREDENTIALS, store=store))
    assert (done.result.platform_post_id, done.result.thread_post_ids) == ("4001", ("4002",))
    assert json.loads(done.sent[1].content) == {"text": "two", "media": {"media_ids": ["78"]}, "reply": {"in_reply_to_tweet_id": "4001"}}


def test_a_gif_gets_its_category_and_alt_text():
    gif = dataclasses.replace(sample_media("gif"), alt_text="dancing cat")
    request = PublishRequest(text="gif", idempotency_key="tgt_gif", media=(gif,))
    steps = [initialized("5"), APPENDED, finalized("5"), reply(200, json={"data": {"id": "5"}}), created("6", "gif")]
    outcome = run(publish_scripted(provider, steps, request, credentials=CREDENTIALS))
    assert outcome.error is None
    assert json.loads(outcome.sent[0].content)["media_category"] == "tweet_gif"
    assert json.loads(outcome.sent[3].content)["metadata"]["alt_text"] == {"text": "dancing cat"}


def test_the_username_is_looked_up_once_and_kept():
    store = MemoryProviderStore()
    me = {"data": {"id": "2244994945", "name": "Developers", "username": "XDevelopers"}}

    async def go(steps):
        transport = ScriptedTransport(steps)
        ctx = make_context(provider, transport, credentials={"access_token": "t"}, store=store)
        try:
            return await provider.publish(ctx, PublishRequest(text="hi", idempotency_key="tgt_1")), transport.sent
        finally:
            await ctx.http.aclose()

    result, sent = run(go([reply(200, json=me), created("10", "hi")]))
    assert [(r.method, str(r.url)) for r in sent] == [("GET", "https://api.x.com/2/users/me"), ("POST", "https://api.x.com/2/tweets")]
    assert result.url == "https://x.com/XDevelopers/status/10"
    result, sent = run(go([created("11", "hi")]))
    assert [str(r.url) for r in sent] == ["https://api.x.com/2/tweets"] and result.url == "https://x.com/XDevelopers/status/11"


def test_a_retried_thread_resumes_after_the_part_x_confirmed():
    store = MemoryProviderStore()
    request = PublishRequest(text="one", idempotency_key="tgt_resume", thread=(ThreadPart("two"),))

    async def go(steps):
        transport = ScriptedTransport(steps)
        ctx = make_context(provider, transport, credentials=CREDENTIALS, store=store)
        try:
            return await provider.publish(ctx, request), transport.sent
        except TransientError as error:
            return error, transport.sent
        finally:
            await ctx.http.aclose()

    error, _ = run(go([created("21", "one"), reply(503, json={"title": "Service Unavailable", "status": 503})]))
    assert isinstance(error, TransientError)
    result, sent = run(go([created("22", "two")]))
    assert [json.loads(r.content) for r in sent] == [{"text": "two", "reply": {"in_reply_to_tweet_id": "21"}}]
    assert (result.platform_post_id, result.thread_post_ids) == ("21", ("22",))


# -- delete, metrics, reconcile ------------------------------------------------------------


def test_delete_sends_delete_and_accepts_an_already_deleted_post():
    outcome = run(call_scripted(provider, [reply(200, json={"data": {"deleted": True}})], lambda ctx: provider.delete(ctx, TWEET_ID), credentials=CREDENTIALS))
    assert outcome.error is None
    (request,) = outcome.sent
    assert (request.method, str(request.url), request.headers["authorization"]) == ("DELETE", f"https://api.x.com/2/tweets/{TWEET_ID}", "Bearer xat-123")
    gone = run(call_scripted(provider, [reply(404, json={"title": "Not Found Error", "status": 404})], lambda ctx: provider.delete(ctx, TWEET_ID), credentials=CREDENTIALS))
    assert gone.error is None
    refused = run(call_scripted(provider, [reply(200, json={"data": {"deleted": False}})], lambda ctx: provider.delete(ctx, TWEET_ID), credentials=CREDENTIALS))
    assert isinstance(refused.error, Rejected) and refused.error.code == "NOT_DELETED"


def test_metrics_ask_private_figures_only_for_posts_under_30_days_and_map_them():
    recent = {
        "id": RECENT_ID, "text": "new",
        "public_metrics": {"retweet_count": 3, "reply_count": 2, "like_count": 40, "quote_count": 1, "bookmark_count": 5, "impression_count": 900},
        "non_public_metrics": {"impression_count": 950, "url_link_clicks": 12, "user_profile_clicks": 4},
        "organic_metrics": {"impression_count": 950, "like_count": 40, "reply_count": 2, "retweet_count": 3, "url_link_clicks": 12, "user_profile_clicks": 4},
    }
    old = {"id": TWEET_ID, "text": "old", "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 7, "quote_count": 0, "bookmark_count": 0, "impression_count": 300}}
    missing = {"value": "99", "detail": "Could not find tweet with ids: [99].", "title": "Not Found Error", "resource_type": "tweet",
               "parameter": "ids", "resource_id": "99", "type": "https://api.twitter.com/2/problems/resource-not-found"}
    steps = [reply(200, json={"data": [recent]}), reply(200, json={"data": [old], "errors": [missing]})]
    outcome = run(call_scripted(provider, steps, lambda ctx: provider.fetch_metrics(ctx, [RECENT_ID, TWEET_ID, "99"]), credentials=CREDENTIALS))
    assert outcome.error is None
    first, second = outcome.sent
    assert str(first.url) == f"https://api.x.com/2/tweets?ids={RECENT_ID}&tweet.fields=public_metrics%2Cnon_public_metrics%2Corganic_metrics"
    assert str(second.url) == f"https://api.x.com/2/tweets?ids={TWEET_ID}%2C99&tweet.fields=public_metrics"
    new, older = outcome.result
    assert new.figures() == {
        "views": 950, "reach": None, "likes": 40, "comments": 2, "shares": None, "reposts": 3, "quotes": 1, "saves": 5, "clicks": 12,
        "video_watch_seconds": None,
    }
    assert dict(new.extra) == {"user_profile_clicks": 4}
    # Past 30 days X sends only public figures: the private ones are null, never zero.
    assert (older.views, older.likes, older.reposts, older.quotes, older.clicks) == (300, 7, 0, 0, None)
    assert dict(older.extra) == {"user_profile_clicks": None}
    assert new.captured_at == FIXED_NOW


def test_account_metrics_read_the_users_public_metrics():
    outcome = run(call_scripted(provider, [reply(200, json=ME_WITH_METRICS)], provider.fetch_account_metrics, credentials=CREDENTIALS))
    assert str(outcome.sent[0].url) == "https://api.x.com/2/users/me?user.fields=public_metrics"
    assert outcome.sent[0].headers["authorization"] == f"Bearer {CREDENTIALS['access_token']}"
    assert (outcome.result.followers, outcome.result.posts, dict(outcome.result.extra)) == (583423, 14052, {"listed": 1672})


def timeline(*posts):
    return reply(200, json={"data": list(posts), "meta": {"result_count": len(posts), "newest_id": posts[0]["id"] if posts else None}})


def test_reconcile_finds_the_post_by_its_text_with_t_co_links_and_entities():
    request = PublishRequest(text="Read this & that: https://example.com/a/long/article", idempotency_key="tgt_rec", media=(image(),))
    ours = {"id": "4001", "text": "Read this &amp; that: https://t.co/AbCdEf https://t.co/MeDiA", "created_at": "2026-01-15T11:59:00.000Z"}
    other = {"id": "4000", "text": "something else", "created_at": "2026-01-15T10:00:00.000Z"}
    outcome = run(call_scripted(provider, [timeline(ours, other)], lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS))
    assert outcome.error is None
    assert (outcome.result.platform_post_id, outcome.result.url) == ("4001", "https://x.com/XDevelopers/status/4001")
    (sent,) = outcome.sent
    assert str(sent.url).startswith("https://api.x.com/2/users/2244994945/tweets?")
    assert dict(urllib.parse.parse_qsl(sent.url.query.decode())) == {
        "max_results": "100", "start_time": "2026-01-14T12:00:00Z", "exclude": "retweets", "tweet.fields": "created_at,referenced_tweets",
    }


def test_reconcile_returns_none_when_the_post_is_not_there():
    request = PublishRequest(text="never arrived", idempotency_key="tgt_none")
    outcome = run(call_scripted(provider, [reply(200, json={"meta": {"result_count": 0}})], lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS))
    assert outcome.error is None and outcome.result is None


def test_reconcile_records_the_parts_of_a_thread_it_found_so_publishing_resumes():
    store = MemoryProviderStore()
    request = PublishRequest(text="one", idempotency_key="tgt_th", thread=(ThreadPart("two"), ThreadPart("three")))
    first = {"id": "51", "text": "one"}
    second = {"id": "52", "text": "two", "referenced_tweets": [{"type": "replied_to", "id": "51"}]}
    unrelated_two = {"id": "49", "text": "two", "referenced_tweets": [{"type": "replied_to", "id": "7"}]}

    async def go(steps, operation):
        transport = ScriptedTransport(steps)
        ctx = make_context(provider, transport, credentials=CREDENTIALS, store=store)
        try:
            return await operation(ctx), transport.sent
        finally:
            await ctx.http.aclose()

    result, _ = run(go([timeline(second, unrelated_two, first)], lambda ctx: provider.reconcile(ctx, request)))
    assert result is None  # "three" never arrived
    assert run(store.get(THREAD_PROGRESS, "tgt_th")) == {
        "parts": [{"post_id": "51", "url": "https://x.com/XDevelopers/status/51"}, {"post_id": "52", "url": "https://x.com/XDevelopers/status/52"}]
    }
    result, sent = run(go([created("53", "three")], lambda ctx: provider.publish(ctx, request)))
    assert [json.loads(r.content) for r in sent] == [{"text": "three", "reply": {"in_reply_to_tweet_id": "52"}}]
    assert (result.platform_post_id, result.thread_post_ids) == ("51", ("52", "53"))


def test_weighted_length_examples():
    measure = provider.limits.measure
    assert measure("a" * 280) == 280
    assert measure("漢字") == 4
    assert measure("👨‍👩‍👧‍👦") == 2  # one ZWJ family is one emoji
    assert measure("see https://example.com/" + "x" * 100) == 4 + 23
    assert measure("café") == 4
    assert validate_draft(provider, PostDraft(text="漢" * 140)) == []


def test_the_plugin_is_registered_under_its_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.x

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["x"] == "plugins.x"
    assert [p.id for p in plugins.x.register_providers()] == ["x"]


def test_a_check_made_again_after_x_took_the_post_finds_it_instead_of_failing_a_published_post():
    request = PublishRequest(text="watch", idempotency_key="tgt_video_again", media=(video(10),))
    handle = {"part": 0, "media_ids": ["77"], "pending": [["77", 0]]}
    ours = {"id": "5001", "text": "watch https://t.co/MeDiA", "created_at": "2026-01-15T11:59:00.000Z"}
    steps = [status_answer("77", {"state": "succeeded", "progress_percent": 100}), reply(403, json=DUPLICATE), timeline(ours)]
    again = run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, handle), credentials=CREDENTIALS))
    assert again.error is None and again.result.platform_post_id == "5001"
    missing = run(call_scripted(
        provider, steps[:2] + [timeline()], lambda ctx: provider.poll(ctx, request, handle), credentials=CREDENTIALS,
    ))
    assert isinstance(missing.error, Rejected) and missing.error.code == "DUPLICATE_CONTENT"  # not ours: X's refusal stands
