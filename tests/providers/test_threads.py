"""The Threads provider against the Threads API's real request and answer shapes (Meta "Threads Posts",
"Long-lived tokens", "Delete Posts", "Insights"; Graph-style errors)."""

import asyncio
import urllib.parse
from datetime import timedelta

import httpx

from plugins.threads import DELETE_LOG, Threads
from providers import (
    AuthExpired,
    DraftMedia,
    PostDraft,
    Processing,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    TextUnit,
    ThreadPart,
    TransientError,
    Unconfirmed,
    measure,
)
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, publish_scripted, reply, sample_media
from providers.threads import THREAD_PROGRESS

provider = Threads()
USER = "25025320900401234"
CREDENTIALS = {"access_token": "THQVJ-long-lived", "user_id": USER}
API = "https://graph.threads.net/v1.0"
CONTAINER = "17889615691921648"
POST_ID = "18038446354206138"
PERMALINK = "https://www.threads.net/@gatehouse/post/C8Ld6yJv8bN"


def created(container=CONTAINER):
    return reply(200, json={"id": container})


def status(word, container=CONTAINER, **fields):
    return reply(200, json={"status": word, "id": container, **fields})


def published(post_id=POST_ID):
    return reply(200, json={"id": post_id})


def permalink(post_id=POST_ID, url=PERMALINK):
    return reply(200, json={"permalink": url, "id": post_id})


def graph_error(status_code, code, message, subcode=None, **fields):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AWs2bq1cW8Hd7HkFyMJ3bGz", **fields}
    if subcode is not None:
        error["error_subcode"] = subcode
    return reply(status_code, json={"error": error})


EXPIRED = graph_error(
    401, 190, "Error validating access token: Session has expired on Thursday, 15-Jan-26 03:00:00 PST.", subcode=463
)
LIMITED = graph_error(400, 4, "Application request limit reached", is_transient=True)
UNKNOWN = graph_error(500, 1, "An unknown error has occurred.", is_transient=True)
INVALID = graph_error(400, 100, "Invalid parameter", subcode=2207052, error_user_msg="The media could not be fetched from this URI.")
SUCCESS = [created(), status("FINISHED"), published(), permalink()]
VIDEO_REQUEST = PublishRequest(text="clip", idempotency_key="tgt_vid", media=(sample_media("video"),))


def form(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode(), keep_blank_values=True))


def run(coroutine):
    return asyncio.run(coroutine)


def publish(steps, request, store=None):
    return run(publish_scripted(provider, steps, request, credentials=CREDENTIALS, store=store))


def poll(steps, request, handle, store=None):
    return run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, handle), credentials=CREDENTIALS, store=store))


class TestThreadsConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Hello from the gate 👋", idempotency_key="tgt_threads_conformance")
    success = SUCCESS
    publishing_step = 2
    expected_post_id = POST_ID
    expected_url = PERMALINK
    error_cases = [
        ErrorCase("190 session expired", [EXPIRED], AuthExpired, code="META_190_463"),
        ErrorCase("code 4 request limit", [LIMITED], RateLimited, code="META_4"),
        ErrorCase("code 1 unknown error", [UNKNOWN], TransientError, code="META_1"),
        ErrorCase("a 502 HTML page", [reply(502, text="<html>Bad Gateway</html>")], TransientError),
        ErrorCase("100 invalid parameter", [INVALID], Rejected, code="META_100_2207052"),
        ErrorCase("publish refused after a finished container", [created(), status("FINISHED"), LIMITED], RateLimited),
        ErrorCase("the container failed", [created(), status("ERROR", error_message="FAILED_DOWNLOADING_VIDEO")], Rejected, code="CONTAINER_ERROR"),
        ErrorCase("the container expired", [created(), status("EXPIRED")], Rejected, code="CONTAINER_EXPIRED"),
    ]
    platform_rejects = [
        RejectedDraft("126 emoji weigh 504", PostDraft(text="😀" * 126), "TEXT_TOO_LONG"),
        RejectedDraft("a family emoji weighs 25", PostDraft(text="a" * 476 + "👨‍👩‍👧‍👦"), "TEXT_TOO_LONG"),
        RejectedDraft("21 carousel items", PostDraft(text="pics", media=(DraftMedia("image", "image/jpeg", 1000),) * 21), "TOO_MANY_MEDIA"),
        RejectedDraft("a 9 MB image", PostDraft(text="big", media=(DraftMedia("image", "image/jpeg", 9 * 1024 * 1024),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("a six-minute video", PostDraft(text="long", media=(DraftMedia("video", "video/mp4", 1000, duration_ms=360_000),)), "MEDIA_TOO_LONG"),
    ]
    platform_accepts = [
        PostDraft(text="😀" * 125),  # 125 × 4 bytes = 500
        PostDraft(text="é" * 500),  # accents are one character each, not their two bytes
        PostDraft(text="carousel", media=(DraftMedia("image", "image/jpeg", 1000),) * 20),
    ]
    metrics_ids = [POST_ID]
    metrics_success = [reply(200, json={"data": [
        {"name": name, "period": "lifetime", "values": [{"value": value}], "title": name.title(), "description": "",
         "id": f"{POST_ID}/insights/{name}/lifetime"}
        for name, value in (("views", 1520), ("likes", 48), ("replies", 6), ("reposts", 3), ("quotes", 1), ("shares", 2))
    ]})]
    expected_metrics = {POST_ID: {"views": 1520, "likes": 48, "comments": 6, "reposts": 3, "quotes": 1, "shares": 2}}
    # A repost facade answers an empty list for some figures: those are unknown, not zero.
    metrics_omitting = [reply(200, json={"data": [
        {"name": "views", "period": "lifetime", "values": [{"value": 1520}], "title": "Views", "description": "", "id": f"{POST_ID}/insights/views/lifetime"},
    ]})]
    omitted_figure = (POST_ID, "likes")
    account_metrics_success = [reply(200, json={"data": [
        {"name": "followers_count", "period": "day", "title": "followers_count", "description": "", "total_value": {"value": 4210},
         "id": f"{USER}/insights/followers_count/day"},
    ]})]
    expected_account_metrics = {"followers": 4210}
    # A video: its container is IN_PROGRESS at publish and at the first poll, FINISHED at the second
    # (published then); the failure is a container Meta marks ERROR with its reason.
    processing_request = VIDEO_REQUEST
    processing_publish = [created(), status("IN_PROGRESS")]
    processing_polls = [[status("IN_PROGRESS")], [status("FINISHED"), published(), permalink()]]
    processing_expected_post_id = POST_ID
    processing_failed = [status("ERROR", error_message="FAILED_PROCESSING_VIDEO")]

    def check_published_requests(self, sent):
        create, check, publish_, link = sent
        assert (create.method, str(create.url)) == ("POST", f"{API}/{USER}/threads")
        assert create.headers["authorization"] == "Bearer THQVJ-long-lived"
        assert form(create) == {"media_type": "TEXT", "text": "Hello from the gate 👋"}
        assert (check.method, str(check.url)) == ("GET", f"{API}/{CONTAINER}?fields=status%2Cerror_message")
        assert (publish_.method, str(publish_.url)) == ("POST", f"{API}/{USER}/threads_publish")
        assert form(publish_) == {"creation_id": CONTAINER}
        assert (link.method, str(link.url)) == ("GET", f"{API}/{POST_ID}?fields=permalink")
        assert all("access_token" not in str(r.url) for r in sent), "the token travels in the Authorization header"


def test_emoji_count_their_utf8_bytes_and_other_characters_count_one():
    assert measure("hi 😀", TextUnit.EMOJI_UTF8_BYTES) == 3 + 4
    assert measure("👨‍👩‍👧", TextUnit.EMOJI_UTF8_BYTES) == len("👨‍👩‍👧".encode())
    assert measure("漢字é", TextUnit.EMOJI_UTF8_BYTES) == 3


# -- containers that take time ------------------------------------------------------------------


def test_an_image_container_still_in_progress_is_processing_and_the_poll_publishes_it():
    request = PublishRequest(text="a chart", idempotency_key="tgt_img", media=(sample_media("image"),))
    first = publish([created(), status("IN_PROGRESS")], request)
    assert isinstance(first.result, Processing)
    assert first.result.handle == {"posted": [], "container": CONTAINER} and first.result.published is False
    assert first.result.check_after == timedelta(seconds=30)
    assert form(first.sent[0]) == {"media_type": "IMAGE", "image_url": "https://media.example.com/image.bin", "text": "a chart"}

    again = poll([status("IN_PROGRESS")], request, first.result.handle)
    assert isinstance(again.result, Processing) and again.result.handle == first.result.handle

    done = poll([status("FINISHED"), published(), permalink()], request, again.result.handle)
    assert isinstance(done.result, PublishResult) and done.result.platform_post_id == POST_ID and done.result.url == PERMALINK
    assert [r.method for r in done.sent] == ["GET", "POST", "GET"], "the poll creates no second container"


def test_a_container_that_fails_while_polled_is_rejected_with_metas_reason_never_unconfirmed():
    request = VIDEO_REQUEST
    handle = {"posted": [], "container": CONTAINER}
    failed = poll([status("ERROR", error_message="FAILED_PROCESSING_VIDEO")], request, handle)
    assert isinstance(failed.error, Rejected) and failed.error.code == "CONTAINER_ERROR"
    assert "FAILED_PROCESSING_VIDEO" in failed.error.message
    expired = poll([status("EXPIRED")], request, handle)
    assert isinstance(expired.error, Rejected) and expired.error.code == "CONTAINER_EXPIRED"


def test_a_container_published_by_a_lost_answer_is_unconfirmed():
    outcome = poll([status("PUBLISHED")], PublishRequest(text="x", idempotency_key="k"), {"posted": [], "container": CONTAINER})
    assert isinstance(outcome.error, Unconfirmed)


def test_a_container_status_meta_adds_later_is_checked_again():
    handle = {"posted": [], "container": CONTAINER}
    outcome = poll([status("SCHEDULED")], PublishRequest(text="x", idempotency_key="k"), handle)
    assert isinstance(outcome.result, Processing) and outcome.result.handle == handle


def test_a_video_container_names_its_url():
    request = PublishRequest(text="", idempotency_key="tgt_v", media=(sample_media("video"),))
    outcome = publish([created(), status("IN_PROGRESS")], request)
    assert form(outcome.sent[0]) == {"media_type": "VIDEO", "video_url": "https://media.example.com/video.bin"}


def test_several_attachments_become_a_carousel_of_item_containers():
    request = PublishRequest(text="two", idempotency_key="tgt_c", media=(sample_media("image"), sample_media("video")))
    outcome = publish([created("c1"), created("c2"), created("parent"), status("IN_PROGRESS", "parent")], request)
    first, second, parent, check = outcome.sent
    assert form(first) == {"media_type": "IMAGE", "image_url": "https://media.example.com/image.bin", "is_carousel_item": "true"}
    assert form(second) == {"media_type": "VIDEO", "video_url": "https://media.example.com/video.bin", "is_carousel_item": "true"}
    assert form(parent) == {"media_type": "CAROUSEL", "children": "c1,c2", "text": "two"}
    assert str(check.url).startswith(f"{API}/parent?")
    assert outcome.result.handle["container"] == "parent"


def test_a_published_post_whose_permalink_cannot_be_read_is_still_published():
    outcome = publish([created(), status("FINISHED"), published(), UNKNOWN], PublishRequest(text="hi", idempotency_key="tgt_p"))
    assert isinstance(outcome.result, PublishResult) and outcome.result.platform_post_id == POST_ID and outcome.result.url is None


# -- threads as chains of replies ----------------------------------------------------------------


THREAD = PublishRequest(text="1/2", idempotency_key="tgt_thread", thread=(ThreadPart("2/2", (sample_media("image"),)),))


def test_a_thread_publishes_each_part_as_a_reply_to_the_one_before():
    store = MemoryProviderStore()
    first = publish([created("k1"), status("FINISHED", "k1"), published("p1"), permalink("p1"), created("k2"), status("IN_PROGRESS", "k2")], THREAD, store)
    processing = first.result
    assert isinstance(processing, Processing) and processing.published is True, "part 1 is public while part 2 processes"
    assert processing.handle == {"posted": [{"post_id": "p1", "url": PERMALINK}], "container": "k2"}
    assert form(first.sent[4]) == {"media_type": "IMAGE", "image_url": "https://media.example.com/image.bin", "text": "2/2", "reply_to_id": "p1"}

    done = poll([status("FINISHED", "k2"), published("p2"), permalink("p2", "https://www.threads.net/@gatehouse/post/p2")], THREAD, processing.handle, store)
    assert done.result.platform_post_id == "p1" and done.result.thread_post_ids == ("p2",)
    assert run(store.get(THREAD_PROGRESS, "tgt_thread"))["parts"][1]["post_id"] == "p2"


def test_a_retried_thread_resumes_after_the_parts_already_published():
    store = MemoryProviderStore({(THREAD_PROGRESS, "tgt_thread"): {"parts": [{"post_id": "p1", "url": PERMALINK}]}})
    outcome = publish([created("k2"), status("FINISHED", "k2"), published("p2"), permalink("p2")], THREAD, store)
    assert form(outcome.sent[0])["reply_to_id"] == "p1", "part 1 is not posted again"
    assert outcome.result.platform_post_id == "p1" and outcome.result.thread_post_ids == ("p2",)


def test_a_reply_to_an_earlier_post_names_it():
    outcome = publish([created(), status("IN_PROGRESS")], PublishRequest(text="re", idempotency_key="k", reply_to="1799"))
    assert form(outcome.sent[0])["reply_to_id"] == "1799"


# -- OAuth -----------------------------------------------------------------------------------------


def test_the_authorize_url_names_every_scope_comma_separated():
    url = provider.auth.authorization_url(client_id="990602627938098", redirect_uri="https://gate.example/cb", state="st")
    base, query = url.split("?")
    assert base == "https://threads.net/oauth/authorize"
    params = dict(urllib.parse.parse_qsl(query))
    assert params["client_id"] == "990602627938098" and params["response_type"] == "code"
    assert params["scope"] == "threads_basic,threads_content_publish,threads_manage_replies,threads_manage_insights,threads_delete"


def test_the_code_becomes_a_long_lived_token_that_is_also_its_own_refresh_token():
    steps = [
        reply(200, json={"access_token": "THQVJshort", "user_id": int(USER)}),
        reply(200, json={"access_token": "THQVJlong", "token_type": "bearer", "expires_in": 5183944}),
        reply(200, json={"id": USER, "username": "gatehouse", "name": "Gate House"}),
    ]
    arguments = {"code": "AQBx-code", "redirect_uri": "https://gate.example/cb", "code_verifier": None, "client_id": "cid", "client_secret": "s3cret"}
    outcome = run(call_scripted(provider, steps, lambda ctx: provider.exchange_code(ctx, **arguments)))
    token, exchange, me = outcome.sent
    assert (token.method, str(token.url)) == ("POST", "https://graph.threads.net/oauth/access_token")
    assert form(token) == {"client_id": "cid", "client_secret": "s3cret", "grant_type": "authorization_code", "redirect_uri": "https://gate.example/cb", "code": "AQBx-code"}
    assert exchange.method == "GET" and str(exchange.url) == (
        "https://graph.threads.net/access_token?grant_type=th_exchange_token&client_secret=s3cret&access_token=THQVJshort"
    )
    assert me.headers["authorization"] == "Bearer THQVJlong"
    tokens = outcome.result
    assert tokens.access_token == tokens.refresh_token == "THQVJlong"
    assert tokens.expires_at == FIXED_NOW + timedelta(seconds=5183944)
    assert tokens.extra["user_id"] == USER


def test_refresh_trades_the_long_lived_token_for_a_new_one_and_a_refusal_is_auth_expired():
    credentials = {"access_token": "THQVJlong", "refresh_token": "THQVJlong", "user_id": USER}
    refreshed = run(call_scripted(
        provider, [reply(200, json={"access_token": "THQVJnew", "token_type": "bearer", "expires_in": 5183944})],
        lambda ctx: provider.refresh_token(ctx, client_id="cid", client_secret="s"), credentials=credentials,
    ))
    assert str(refreshed.sent[0].url) == "https://graph.threads.net/refresh_access_token?grant_type=th_refresh_token&access_token=THQVJlong"
    assert refreshed.result.refresh_token == "THQVJnew" and refreshed.result.extra["user_id"] == USER
    refused = run(call_scripted(
        provider, [graph_error(400, 190, "Error validating access token: The session has been invalidated.", subcode=460)],
        lambda ctx: provider.refresh_token(ctx, client_id="cid", client_secret="s"), credentials=credentials,
    ))
    assert isinstance(refused.error, AuthExpired) and refused.error.code == "REFRESH_REFUSED"


# -- delete ----------------------------------------------------------------------------------------


def delete(steps, store):
    return run(call_scripted(provider, steps, lambda ctx: provider.delete(ctx, POST_ID), credentials=CREDENTIALS, store=store))


def test_delete_sends_delete_and_counts_it_against_the_daily_hundred():
    store = MemoryProviderStore()
    outcome = delete([reply(200, json={"success": True, "deleted_id": POST_ID})], store)
    assert outcome.error is None and (outcome.sent[0].method, str(outcome.sent[0].url)) == ("DELETE", f"{API}/{POST_ID}")
    assert run(store.get(DELETE_LOG, "recent")) == {"times": [FIXED_NOW.isoformat()]}
    gone = delete([graph_error(400, 100, "Unsupported delete request. Object with ID does not exist", subcode=33)], store)
    assert gone.error is None, "deleting what is gone succeeds"


def test_the_hundred_and_first_delete_in_a_day_waits_without_asking_meta():
    oldest = FIXED_NOW - timedelta(hours=20)
    times = [oldest.isoformat()] + [(FIXED_NOW - timedelta(minutes=m)).isoformat() for m in range(1, 100)]
    stale = (FIXED_NOW - timedelta(days=2)).isoformat()
    outcome = delete([], MemoryProviderStore({(DELETE_LOG, "recent"): {"times": [stale, *times]}}))
    assert outcome.sent == []
    assert isinstance(outcome.error, RateLimited) and outcome.error.code == "DELETE_QUOTA"
    assert outcome.error.retry_after == timedelta(hours=4).total_seconds()


def test_the_quotas_declare_posts_replies_and_deletes():
    quotas = {(q.count, q.operation) for q in provider.limits.quotas}
    assert quotas == {(250, "publish"), (100, "delete")}
    assert all(q.period_seconds == 86_400 for q in provider.limits.quotas)


def test_registered_under_the_entry_point_group():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="socialgate.providers") if e.name == "threads"]
    assert [p.id for p in entry.load().register_providers()] == ["threads"]


def test_reconcile_finds_a_post_of_the_last_day_by_its_text_and_leaves_threads_to_a_person():
    def latest(*posts):
        return reply(200, json={"data": [
            {"id": pid, "permalink": f"https://www.threads.net/@gatehouse/post/{pid}", "text": text, "timestamp": when} for pid, text, when in posts
        ], "paging": {"cursors": {"before": "a", "after": "b"}}})

    request = PublishRequest(text="Hello from the gate 👋", idempotency_key="k")
    found = run(call_scripted(provider, [latest(("180", "other", "2026-01-15T11:59:00+0000"), ("181", "Hello from the gate 👋", "2026-01-15T11:58:00+0000"))],
                              lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS))
    assert found.result.platform_post_id == "181" and found.result.url.endswith("/181")
    assert str(found.sent[0].url) == f"{API}/{USER}/threads?fields=id%2Cpermalink%2Ctext%2Ctimestamp&limit=25"
    old = run(call_scripted(provider, [latest(("170", "Hello from the gate 👋", "2026-01-13T11:58:00+0000"))],
                            lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS))
    assert old.result is None, "the same text two days ago is another post"
    thread = run(call_scripted(provider, [], lambda ctx: provider.reconcile(ctx, THREAD), credentials=CREDENTIALS))
    assert thread.result is None and thread.sent == []
    bare = PublishRequest(text="", idempotency_key="k", media=(sample_media("image"),))
    captionless = run(call_scripted(provider, [], lambda ctx: provider.reconcile(ctx, bare), credentials=CREDENTIALS))
    assert captionless.result is None and captionless.sent == [], "a post without text cannot be recognised"
