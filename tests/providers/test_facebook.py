"""The Facebook Page provider against the Graph API's real requests and answers (Meta "Pages API – Posts",
"Long-Lived Access Tokens", "Video API", Page insights after the 2025 renames)."""

import asyncio
import json
from datetime import timedelta

import httpx
import pytest

from plugins.facebook import FacebookPage
from plugins.meta_graph import FACEBOOK_GRAPH
from providers import AuthExpired, DraftMedia, PostDraft, Processing, PublishRequest, PublishResult, Rejected, TransientError
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, sample_media
from tests.providers.meta_replies import GRAPH_ERRORS, INVALID_METRIC, TOKEN_EXPIRED, bearer, form, meta_error, query, where

facebook = FacebookPage()
CREDENTIALS = {"access_token": "EAAPageToken", "page_id": "101"}
PERMALINK = "https://www.facebook.com/101/posts/555"
POSTED = reply(200, json={"id": "101_555", "permalink_url": PERMALINK})
POST_ID = "101_555"


def insight(name: str, value):
    return reply(200, json={"data": [{
        "name": name, "period": "lifetime", "values": [{"value": value}],
        "title": name, "description": "", "id": f"{POST_ID}/insights/{name}/lifetime",
    }], "paging": {}})


METRICS = [
    insight("post_media_view", 1520),
    insight("post_total_media_view_unique", 980),
    insight("post_reactions_by_type_total", {"like": 40, "love": 3, "wow": 1}),
    insight("post_clicks", 57),
    reply(200, json={"id": POST_ID, "shares": {"count": 6}, "comments": {"data": [], "summary": {"order": "ranked", "total_count": 12, "can_comment": True}}}),
]


VIDEO = PublishRequest(text="Behind the scenes", idempotency_key="tgt_fb_video", media=(sample_media("video"),), settings={"first_comment": "Credits below"})


def video_status(state: str, **phases):
    return reply(200, json={"id": "3141", "status": {"video_status": state, **phases}, "permalink_url": "/101/videos/3141/", "post_id": "888"})


VIDEO_HANDED = reply(200, json={"id": "3141"})
STILL_PROCESSING = video_status("processing", uploading_phase={"status": "complete"}, processing_phase={"status": "in_progress"})
VIDEO_DONE = {"processing_phase": {"status": "complete"}, "publishing_phase": {"status": "complete", "publish_status": "published", "publish_time": 1768478400}}
COULD_NOT_PROCESS = video_status("error", processing_phase={"status": "error", "errors": [{"code": 1363008, "message": "Video Upload Time Out Of Bounds"}]})


class TestFacebookConformance(ProviderConformance):
    provider = facebook
    credentials = CREDENTIALS
    request = PublishRequest(text="We open at 9 tomorrow", idempotency_key="tgt_fb_conformance", settings={"link": "https://example.com/hours"})
    success = [POSTED]
    expected_post_id = POST_ID
    expected_url = PERMALINK
    error_cases = GRAPH_ERRORS + [
        ErrorCase("506 duplicate status", [meta_error(506, "(#506) Duplicate status message")], Rejected, code="META_506"),
    ]
    platform_rejects = [
        RejectedDraft("63,207 characters", PostDraft(text="a" * 63_207), "TEXT_TOO_LONG"),
        RejectedDraft("11 photos", PostDraft(text="album", media=(DraftMedia("image", "image/jpeg", 1000),) * 11), "TOO_MANY_MEDIA"),
        RejectedDraft("two videos", PostDraft(text="clips", media=(DraftMedia("video", "video/mp4", 1000),) * 2), "TOO_MANY_MEDIA"),
        RejectedDraft("a photo and a video", PostDraft(text="mix", media=(DraftMedia("image", "image/jpeg", 1000), DraftMedia("video", "video/mp4", 1000))), "MEDIA_MIX_NOT_SUPPORTED"),
        RejectedDraft("a link on a photo post", PostDraft(text="see", media=(DraftMedia("image", "image/jpeg", 1000),), settings={"link": "https://example.com"}), "SETTING_INVALID"),
        RejectedDraft("no threads", PostDraft(text="a", thread=("b",)), "THREADS_NOT_SUPPORTED"),
    ]
    metrics_ids = [POST_ID]
    metrics_success = METRICS
    expected_metrics = {POST_ID: {"views": 1520, "reach": 980, "likes": 44, "clicks": 57, "comments": 12, "shares": 6}}
    # Meta refuses post_media_view for this post: only views is missing, the rest still read.
    metrics_omitting = [INVALID_METRIC, *METRICS[1:]]
    omitted_figure = (POST_ID, "views")
    account_metrics_success = [reply(200, json={"followers_count": 4210, "id": "101"})]
    expected_account_metrics = {"followers": 4210}
    # A video: handed to Facebook (Processing), still processing at the first poll, ready and
    # published at the second (then its first comment); the failure is a video Facebook could not process.
    processing_request = VIDEO
    processing_publish = [VIDEO_HANDED]
    processing_polls = [[STILL_PROCESSING], [video_status("ready", **VIDEO_DONE), reply(200, json={"id": "888_1"})]]
    processing_expected_post_id = "101_888"
    processing_failed = [COULD_NOT_PROCESS]

    def check_published_requests(self, sent):
        (request,) = sent
        assert where(request) == ("POST", f"{FACEBOOK_GRAPH}/101/feed")
        assert query(request) == {"fields": "id,permalink_url"}
        bearer(request, "EAAPageToken")
        assert form(request) == {"message": "We open at 9 tomorrow", "link": "https://example.com/hours"}


def test_the_pages_followers_are_read_from_the_page():
    outcome = call(TestFacebookConformance.account_metrics_success, facebook.fetch_account_metrics)
    assert where(outcome.sent[0]) == ("GET", f"{FACEBOOK_GRAPH}/101") and query(outcome.sent[0]) == {"fields": "followers_count"}


def run(coroutine):
    return asyncio.run(coroutine)


def call(steps, operation, credentials=CREDENTIALS):
    return run(call_scripted(facebook, steps, operation, credentials=credentials))


# -- publishing ------------------------------------------------------------------------------


def test_photos_are_uploaded_unpublished_then_attached_to_one_feed_post():
    photos = (sample_media("image"), sample_media("image"))
    request = PublishRequest(text="Two views", idempotency_key="tgt_fb_photos", media=photos)
    steps = [reply(200, json={"id": "9001"}), reply(200, json={"id": "9002"}), POSTED]
    outcome = call(steps, lambda ctx: facebook.publish(ctx, request))
    assert outcome.error is None and outcome.result.platform_post_id == POST_ID
    first, second, feed = outcome.sent
    for upload in (first, second):
        assert where(upload) == ("POST", f"{FACEBOOK_GRAPH}/101/photos")
        assert form(upload) == {"url": "https://media.example.com/image.bin", "published": "false"}
    assert where(feed) == ("POST", f"{FACEBOOK_GRAPH}/101/feed")
    body = form(feed)
    assert body["message"] == "Two views"
    assert [json.loads(body[f"attached_media[{i}]"]) for i in (0, 1)] == [{"media_fbid": "9001"}, {"media_fbid": "9002"}]


def test_a_lost_photo_upload_is_retried_not_unconfirmed():
    """An unpublished photo is not a post: its lost answer is transient; only the feed post's loss is Unconfirmed."""
    request = PublishRequest(text="One view", idempotency_key="tgt_fb_lost", media=(sample_media("image"),))
    outcome = call([httpx.ReadTimeout("no answer")], lambda ctx: facebook.publish(ctx, request))
    assert isinstance(outcome.error, TransientError)


def test_a_first_comment_is_posted_under_the_post_and_its_failure_keeps_the_post():
    request = PublishRequest(text="Menu is up", idempotency_key="tgt_fb_comment", settings={"first_comment": "Full menu: https://example.com/menu"})
    outcome = call([POSTED, reply(200, json={"id": "555_777"})], lambda ctx: facebook.publish(ctx, request))
    assert outcome.result.platform_post_id == POST_ID
    comment = outcome.sent[1]
    assert where(comment) == ("POST", f"{FACEBOOK_GRAPH}/{POST_ID}/comments")
    assert form(comment) == {"message": "Full menu: https://example.com/menu"}
    refused = call([POSTED, meta_error(368, "The action attempted has been deemed abusive or is otherwise disallowed")], lambda ctx: facebook.publish(ctx, request))
    assert refused.error is None and refused.result.platform_post_id == POST_ID
    assert refused.result.raw["first_comment"]["error"] == "META_368"


def test_a_video_is_handed_to_facebook_and_waits_in_processing():
    outcome = call([VIDEO_HANDED], lambda ctx: facebook.publish(ctx, VIDEO))
    (upload,) = outcome.sent
    assert where(upload) == ("POST", f"{FACEBOOK_GRAPH}/101/videos")
    assert form(upload) == {"file_url": "https://media.example.com/video.bin", "description": "Behind the scenes"}
    result = outcome.result
    assert isinstance(result, Processing)
    assert dict(result.handle) == {"video_id": "3141"} and result.published and result.stage == "transcoding"
    assert result.check_after == timedelta(seconds=30)


def test_poll_waits_while_the_video_is_processing_then_returns_the_post_and_comments():
    waiting = call([STILL_PROCESSING], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(waiting.result, Processing) and dict(waiting.result.handle) == {"video_id": "3141"}
    (status,) = waiting.sent
    assert where(status) == ("GET", f"{FACEBOOK_GRAPH}/3141") and query(status) == {"fields": "status,permalink_url,post_id"}
    ready = call([video_status("ready", **VIDEO_DONE), reply(200, json={"id": "888_1"})], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(ready.result, PublishResult)
    assert ready.result.platform_post_id == "101_888"
    assert ready.result.url == "https://www.facebook.com/101/videos/3141/"
    assert where(ready.sent[1]) == ("POST", f"{FACEBOOK_GRAPH}/101_888/comments")


def test_a_ready_video_whose_post_is_still_being_published_keeps_waiting():
    publishing = video_status("ready", processing_phase={"status": "complete"}, publishing_phase={"status": "in_progress", "publish_status": "not_published"})
    outcome = call([publishing], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(outcome.result, Processing) and len(outcome.sent) == 1


def test_an_expired_upload_or_a_failed_publishing_phase_is_rejected():
    expired = call([video_status("expired")], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(expired.error, Rejected) and expired.error.message == "Facebook could not process the video (expired)"
    failed = video_status("processing", publishing_phase={"status": "error", "errors": [{"code": 6000, "message": "There was a problem uploading your video"}]})
    outcome = call([failed], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(outcome.error, Rejected) and outcome.error.message == "There was a problem uploading your video"


def test_a_video_facebook_could_not_process_is_rejected_with_its_reason():
    outcome = call([COULD_NOT_PROCESS], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "VIDEO_PROCESSING_FAILED"
    assert outcome.error.message == "Video Upload Time Out Of Bounds"


def test_poll_maps_an_expired_token():
    outcome = call([TOKEN_EXPIRED], lambda ctx: facebook.poll(ctx, VIDEO, {"video_id": "3141"}))
    assert isinstance(outcome.error, AuthExpired)


# -- delete and reconcile ----------------------------------------------------------------------


def test_delete_removes_the_post_and_a_post_already_gone_is_success():
    done = call([reply(200, json={"success": True})], lambda ctx: facebook.delete(ctx, POST_ID))
    assert done.error is None and where(done.sent[0]) == ("DELETE", f"{FACEBOOK_GRAPH}/{POST_ID}")
    gone = meta_error(100, "Unsupported delete request. Object with ID '101_555' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", subcode=33)
    assert call([gone], lambda ctx: facebook.delete(ctx, POST_ID)).error is None
    assert isinstance(call([TOKEN_EXPIRED], lambda ctx: facebook.delete(ctx, POST_ID)).error, AuthExpired)


RECENT = reply(200, json={"data": [
    {"id": "101_556", "message": "Something newer", "permalink_url": "https://www.facebook.com/101/posts/556", "created_time": "2026-01-15T12:01:00+0000"},
    {"id": POST_ID, "message": "We open at 9 tomorrow", "permalink_url": PERMALINK, "created_time": "2026-01-15T12:00:00+0000"},
], "paging": {"cursors": {"before": "a", "after": "b"}}})


def test_reconcile_finds_the_post_among_the_pages_recent_posts():
    request = PublishRequest(text="We open at 9 tomorrow", idempotency_key="tgt_fb_reconcile")
    found = call([RECENT], lambda ctx: facebook.reconcile(ctx, request))
    assert found.result.platform_post_id == POST_ID and found.result.url == PERMALINK
    assert where(found.sent[0]) == ("GET", f"{FACEBOOK_GRAPH}/101/posts")
    assert query(found.sent[0]) == {"fields": "id,message,permalink_url,created_time", "limit": "25"}
    missing = PublishRequest(text="Never sent", idempotency_key="tgt_fb_reconcile2")
    assert call([RECENT], lambda ctx: facebook.reconcile(ctx, missing)).result is None


# -- metrics -----------------------------------------------------------------------------------


def test_each_metric_is_asked_alone_with_the_post_2025_names():
    outcome = call(METRICS, lambda ctx: facebook.fetch_metrics(ctx, [POST_ID]))
    asked = [query(request).get("metric") for request in outcome.sent[:4]]
    assert asked == ["post_media_view", "post_total_media_view_unique", "post_reactions_by_type_total", "post_clicks"]
    assert not any("impressions" in (metric or "") for metric in asked)
    assert all(where(r) == ("GET", f"{FACEBOOK_GRAPH}/{POST_ID}/insights") for r in outcome.sent[:4])
    assert query(outcome.sent[4]) == {"fields": "shares,comments.limit(0).summary(true)"}


def test_an_expired_token_while_reading_metrics_is_raised_not_swallowed():
    outcome = call([TOKEN_EXPIRED], lambda ctx: facebook.fetch_metrics(ctx, [POST_ID]))
    assert isinstance(outcome.error, AuthExpired)


# -- OAuth -------------------------------------------------------------------------------------

SHORT = reply(200, json={"access_token": "EAAshort", "token_type": "bearer", "expires_in": 5183})
LONG = reply(200, json={"access_token": "EAAlong", "token_type": "bearer", "expires_in": 5183944})
PAGES = reply(200, json={"data": [
    {"id": "101", "name": "Corner Bakery", "access_token": "EAAPageToken", "category": "Bakery", "tasks": ["CREATE_CONTENT", "MANAGE"]},
    {"id": "202", "name": "Second Page", "access_token": "EAAOther"},
], "paging": {"cursors": {"before": "x", "after": "y"}}})


def exchange(ctx):
    return facebook.exchange_code(ctx, code="AQBcode", redirect_uri="https://gw.example/oauth/facebook/callback", code_verifier=None,
                                  client_id="1234", client_secret="app-secret")


def test_the_code_becomes_a_long_lived_user_token_then_the_first_granted_pages_token():
    outcome = call([SHORT, LONG, PAGES], exchange, credentials={})
    code, longer, pages = outcome.sent
    assert where(code) == ("GET", f"{FACEBOOK_GRAPH}/oauth/access_token")
    assert query(code) == {"client_id": "1234", "client_secret": "app-secret", "redirect_uri": "https://gw.example/oauth/facebook/callback", "code": "AQBcode"}
    assert query(longer) == {"grant_type": "fb_exchange_token", "client_id": "1234", "client_secret": "app-secret", "fb_exchange_token": "EAAshort"}
    assert where(pages) == ("GET", f"{FACEBOOK_GRAPH}/me/accounts") and query(pages) == {"fields": "id,name,access_token", "limit": "100"}
    bearer(pages, "EAAlong")
    tokens = outcome.result
    assert tokens.access_token == "EAAPageToken" and tokens.expires_at is None and tokens.refresh_token is None
    assert tokens.to_credentials()["page_id"] == "101"
    assert "EAAlong" not in json.dumps(tokens.to_credentials()), "the user token is not kept once the Page token is read"


def test_a_login_that_granted_no_page_is_refused():
    outcome = call([SHORT, LONG, reply(200, json={"data": []})], exchange, credentials={})
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "NO_PAGE_GRANTED"


def test_a_refused_code_is_a_rejection_in_metas_words():
    used = meta_error(100, "This authorization code has been used.", subcode=36009)
    outcome = call([used], exchange, credentials={})
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "META_100_36009"


def test_connect_names_the_page():
    page = reply(200, json={"id": "101", "name": "Corner Bakery", "username": "cornerbakery", "link": "https://www.facebook.com/cornerbakery"})
    outcome = call([page], lambda ctx: facebook.connect(ctx, dict(CREDENTIALS)))
    profile = outcome.result
    assert (profile.external_id, profile.handle, profile.display_name, profile.account_type) == ("101", "cornerbakery", "Corner Bakery", "page")
    assert query(outcome.sent[0]) == {"fields": "id,name,username,link"}


@pytest.mark.parametrize("credentials", [{"access_token": "EAAPageToken"}])
def test_credentials_without_a_page_are_refused_before_any_request(credentials):
    outcome = call([], lambda ctx: facebook.publish(ctx, PublishRequest(text="hi", idempotency_key="k")), credentials=credentials)
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "PAGE_NOT_SELECTED" and outcome.sent == []
