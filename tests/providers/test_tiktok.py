"""The TikTok provider against the Content Posting API's real request and answer shapes (TikTok "Direct
Post", "Upload", "Media Transfer Guide", "Get Post Status", "Manage User Access Tokens", "Query Videos")."""

import asyncio
import json
import urllib.parse
from datetime import timedelta

import httpx
import pytest

from plugins.tiktok import CHUNK, TikTok, chunk_plan, chunk_ranges
from providers import (
    AuthExpired,
    BytesSource,
    DraftMedia,
    PostDraft,
    Processing,
    PublishMedia,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    TransientError,
    Unconfirmed,
    validate_draft,
)
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, publish_scripted, reply, sample_media

provider = TikTok(audited=True)
unaudited = TikTok(audited=False)
CREDENTIALS = {"access_token": "act.example12345Example12345Example", "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344"}
API = "https://open.tiktokapis.com"
LOG_ID = "202210112248442CB9319E1FB30C1073F3"
OK = {"code": "ok", "message": "", "log_id": LOG_ID}
PUBLISH_ID = "v_pub_file~v2-1.123456789"
UPLOAD_URL = "https://open-upload.tiktokapis.com/video/?upload_id=67890&upload_token=Xza123"
VIDEO_ID = 7123456789012345678
MB = 1024 * 1024


def ok(data, status=200):
    return reply(status, json={"data": data, "error": OK})


def creator(**changes):
    return ok({
        "creator_avatar_url": "https://lf16-tt4d.tiktokcdn.com/obj/tiktok-open-platform/8d5740ac3844be417beeacd0df75aef1",
        "creator_username": "tiktok", "creator_nickname": "TikTok Official",
        "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
        "comment_disabled": False, "duet_disabled": False, "stitch_disabled": True, "max_video_post_duration_sec": 300, **changes,
    })


def tiktok_error(status, code, message):
    return reply(status, json={"error": {"code": code, "message": message, "log_id": LOG_ID}})


def status(word, **data):
    return ok({"status": word, **data})


INIT = ok({"publish_id": PUBLISH_ID, "upload_url": UPLOAD_URL})
UPLOADED = reply(201, text="")
VIDEO = PublishMedia("video", "video/mp4", 1024, "https://media.example.com/clip.mp4", BytesSource(bytes(range(256)) * 4), duration_ms=42_000)
SETTINGS = {"privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": False}
REQUEST = PublishRequest(text="Behind the scenes #gate", idempotency_key="tgt_tiktok", media=(VIDEO,), settings=SETTINGS)
STILL_UPLOADING = status("PROCESSING_UPLOAD", uploaded_bytes=512)
DURATION_FAILED = status("FAILED", fail_reason="duration_check_failed")
EXPIRED = tiktok_error(401, "access_token_invalid", "The access token is invalid or not found in the request.")


def run(coroutine):
    return asyncio.run(coroutine)


def publish(steps, request, on=provider):
    return run(publish_scripted(on, steps, request, credentials=CREDENTIALS))


def poll(steps, handle, on=provider):
    return run(call_scripted(on, steps, lambda ctx: on.poll(ctx, REQUEST, handle), credentials=CREDENTIALS))


class TestTikTokConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = REQUEST
    success = [creator(), INIT, UPLOADED]
    publishing_step = 2  # the last (here the only) chunk hands the video to TikTok
    poll_success = [status("PUBLISH_COMPLETE", publicaly_available_post_id=[VIDEO_ID], uploaded_bytes=1024)]
    expected_stage = "uploading"
    # The video handed over (Processing), still PROCESSING_UPLOAD at the first poll, PUBLISH_COMPLETE
    # at the second; the failure is a FAILED status with TikTok's fail_reason.
    processing_publish = [creator(), INIT, UPLOADED]
    processing_polls = [[STILL_UPLOADING], poll_success]
    processing_expected_post_id = str(VIDEO_ID)
    processing_failed = [DURATION_FAILED]
    expected_post_id = str(VIDEO_ID)
    expected_url = f"https://www.tiktok.com/@tiktok/video/{VIDEO_ID}"
    error_cases = [
        ErrorCase("access_token_invalid", [EXPIRED], AuthExpired, code="ACCESS_TOKEN_INVALID"),
        ErrorCase("rate_limit_exceeded", [tiktok_error(429, "rate_limit_exceeded", "API rate limit was exceeded.")], RateLimited),
        ErrorCase("daily post cap", [creator(), tiktok_error(403, "spam_risk_too_many_posts", "The daily post cap from API is reached for the current user.")],
                  RateLimited, code="SPAM_RISK_TOO_MANY_POSTS"),
        ErrorCase("internal_error", [tiktok_error(500, "internal_error", "Something went wrong. Please try again later.")], TransientError),
        ErrorCase("a 502 without the envelope", [reply(502, text="<html>Bad Gateway</html>")], TransientError),
        ErrorCase("unaudited client", [creator(), tiktok_error(403, "unaudited_client_can_only_post_to_private_accounts",
                  "Please review our integration guidelines at https://developers.tiktok.com/doc/content-sharing-guidelines/")],
                  Rejected, code="UNAUDITED_CLIENT_CAN_ONLY_POST_TO_PRIVATE_ACCOUNTS"),
        ErrorCase("privacy mismatch", [creator(), tiktok_error(400, "privacy_level_option_mismatch", "privacy_level is not in the creator's options")],
                  Rejected, code="PRIVACY_LEVEL_OPTION_MISMATCH"),
        ErrorCase("an error with HTTP 200", [tiktok_error(200, "scope_not_authorized", "The user did not authorize the scope required.")],
                  Rejected, code="SCOPE_NOT_AUTHORIZED"),
        ErrorCase("a level the creator is not offered", [creator(privacy_level_options=["SELF_ONLY"])], Rejected, code="PRIVACY_LEVEL_NOT_OFFERED"),
        ErrorCase("longer than this creator may post", [creator(max_video_post_duration_sec=30)], Rejected, code="VIDEO_TOO_LONG"),
    ]
    platform_rejects = [
        RejectedDraft("text only", PostDraft(text="no media"), "MEDIA_REQUIRED"),
        RejectedDraft("1101 emoji are 2202 UTF-16 runes", PostDraft(text="🎬" * 1101, media=(DraftMedia("video", "video/mp4", 1000),),
                      settings={"privacy_level": "SELF_ONLY"}), "TEXT_TOO_LONG"),
        RejectedDraft("two videos", PostDraft(text="v", media=(DraftMedia("video", "video/mp4", 1000),) * 2, settings={"privacy_level": "SELF_ONLY"}), "TOO_MANY_MEDIA"),
        RejectedDraft("36 photos", PostDraft(text="p", media=(DraftMedia("image", "image/jpeg", 1000),) * 36, settings={"privacy_level": "SELF_ONLY"}), "TOO_MANY_MEDIA"),
        RejectedDraft("photos with a video", PostDraft(text="m", media=(DraftMedia("image", "image/jpeg", 1), DraftMedia("video", "video/mp4", 1)),
                      settings={"privacy_level": "SELF_ONLY"}), "MEDIA_COMBINATION_NOT_SUPPORTED"),
        RejectedDraft("a 91-character photo title", PostDraft(text="p", media=(DraftMedia("image", "image/jpeg", 1),),
                      settings={"privacy_level": "SELF_ONLY", "title": "t" * 91}), "TITLE_TOO_LONG"),
        RejectedDraft("private branded content", PostDraft(text="p", media=(DraftMedia("video", "video/mp4", 1),),
                      settings={"privacy_level": "SELF_ONLY", "brand_content": True}), "BRANDED_CONTENT_PRIVATE"),
        RejectedDraft("no privacy level", PostDraft(text="p", media=(DraftMedia("video", "video/mp4", 1),)), "SETTING_REQUIRED"),
    ]
    platform_accepts = [
        PostDraft(text="p", media=(DraftMedia("image", "image/jpeg", 1000),) * 35, settings={"privacy_level": "SELF_ONLY"}),
        PostDraft(text="🎬" * 1100, media=(DraftMedia("video", "video/mp4", 1000),), settings={"privacy_level": "SELF_ONLY"}),  # 2200 runes
        PostDraft(text="漢" * 2200, media=(DraftMedia("video", "video/mp4", 1000),), settings={"privacy_level": "SELF_ONLY"}),
    ]
    metrics_ids = ["7080217258529732386", "7080217258529732387"]
    metrics_success = [ok({"videos": [
        {"id": "7080217258529732386", "like_count": 12, "comment_count": 3, "share_count": 1, "view_count": 400},
        {"id": "7080217258529732387", "like_count": 0, "comment_count": 0, "share_count": 0, "view_count": 9},
    ], "cursor": 0, "has_more": False})]
    expected_metrics = {
        "7080217258529732386": {"views": 400, "likes": 12, "comments": 3, "shares": 1},
        "7080217258529732387": {"views": 9, "likes": 0, "comments": 0, "shares": 0},
    }
    metrics_omitting = [ok({"videos": [{"id": "7080217258529732386", "like_count": 12, "comment_count": 3, "view_count": 400}], "cursor": 0, "has_more": False})]
    omitted_figure = ("7080217258529732386", "shares")

    def valid_draft(self):
        return PostDraft(text="hello", media=(DraftMedia("video", "video/mp4", 1024),), settings={"privacy_level": "SELF_ONLY"})

    def check_published_requests(self, sent):
        info, init, put, fetch = sent
        assert (info.method, str(info.url)) == ("POST", f"{API}/v2/post/publish/creator_info/query/")
        assert info.headers["authorization"] == f"Bearer {CREDENTIALS['access_token']}"
        assert (init.method, str(init.url)) == ("POST", f"{API}/v2/post/publish/video/init/")
        assert init.headers["content-type"] == "application/json; charset=UTF-8"
        assert json.loads(init.content) == {
            "post_info": {
                "title": "Behind the scenes #gate", "privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": False,
                "disable_duet": False, "disable_stitch": True,  # the creator turned stitches off
                "brand_organic_toggle": False, "brand_content_toggle": False,
            },
            "source_info": {"source": "FILE_UPLOAD", "video_size": 1024, "chunk_size": 1024, "total_chunk_count": 1},
        }
        assert (put.method, str(put.url)) == ("PUT", UPLOAD_URL)
        assert put.headers["content-range"] == "bytes 0-1023/1024" and put.headers["content-type"] == "video/mp4"
        assert put.content == bytes(range(256)) * 4
        assert "authorization" not in put.headers, "the upload URL carries its own token"
        assert (fetch.method, str(fetch.url)) == ("POST", f"{API}/v2/post/publish/status/fetch/")
        assert json.loads(fetch.content) == {"publish_id": PUBLISH_ID}


# -- chunks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, plan",
    [
        (1, (1, 1)),
        (4 * MB, (4 * MB, 1)),  # under 5 MB: whole
        (64 * MB, (64 * MB, 1)),  # up to 64 MB: whole
        (64 * MB + 1, (CHUNK, 6)),  # 6 chunks of 10 MB, the last one 14 MB + 1 byte
        (79 * MB, (CHUNK, 7)),  # the remainder rides in the last chunk: 19 MB, under twice the chunk
        (1000 * CHUNK + CHUNK - 1, (CHUNK, 1000)),
    ],
)
def test_the_chunk_plan_follows_the_media_transfer_guide(size, plan):
    assert chunk_plan(size) == plan
    ranges = chunk_ranges(size)
    assert len(ranges) == plan[1] and ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:])), "the chunks are contiguous"
    sizes = [last - first + 1 for first, last in ranges]
    if len(sizes) > 1:
        assert all(5 * MB <= s <= 64 * MB for s in sizes[:-1]) and sizes[-1] <= 128 * MB


def test_a_video_needing_more_than_a_thousand_chunks_is_refused():
    with pytest.raises(ValueError):
        chunk_plan(1001 * CHUNK)


def test_a_large_video_is_put_in_chunks_whose_content_range_and_bytes_match():
    size = 64 * MB + 3
    data = bytes(range(251)) * (size // 251) + bytes(size % 251)
    video = PublishMedia("video", "video/mp4", size, "https://media.example.com/big.mp4", BytesSource(data))
    request = PublishRequest(text="big", idempotency_key="tgt_big", media=(video,), settings={"privacy_level": "SELF_ONLY"})
    outcome = publish([creator(), INIT] + [reply(206, text="")] * 5 + [UPLOADED], request)
    assert isinstance(outcome.result, Processing), outcome.error
    init, puts = outcome.sent[1], outcome.sent[2:]
    assert json.loads(init.content)["source_info"] == {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": CHUNK, "total_chunk_count": 6}
    assert [p.headers["content-range"] for p in puts] == [
        f"bytes {i * CHUNK}-{(i + 1) * CHUNK - 1}/{size}" for i in range(5)
    ] + [f"bytes {5 * CHUNK}-{size - 1}/{size}"]
    assert b"".join(p.content for p in puts) == data


def test_a_dropped_connection_before_the_last_chunk_is_safe_to_retry_and_after_it_unconfirmed():
    size = 64 * MB + 3
    video = PublishMedia("video", "video/mp4", size, "https://media.example.com/big.mp4", BytesSource(bytes(size)))
    request = PublishRequest(text="big", idempotency_key="tgt_big", media=(video,), settings={"privacy_level": "SELF_ONLY"})
    early = publish([creator(), INIT, reply(206, text=""), httpx.ReadTimeout("gone")], request)
    assert isinstance(early.error, TransientError)
    late = publish([creator(), INIT] + [reply(206, text="")] * 5 + [httpx.ReadTimeout("gone")], request)
    assert isinstance(late.error, Unconfirmed)


def test_pull_from_url_sends_the_public_url_and_the_init_itself_publishes():
    request = PublishRequest(text="pulled", idempotency_key="k", media=(VIDEO,), settings={**SETTINGS, "source": "pull_from_url"})
    outcome = publish([creator(), ok({"publish_id": "v_pub_url~v2.123456789"})], request)
    assert outcome.result.handle["publish_id"] == "v_pub_url~v2.123456789"
    assert json.loads(outcome.sent[1].content)["source_info"] == {"source": "PULL_FROM_URL", "video_url": "https://media.example.com/clip.mp4"}


def test_inbox_mode_sends_only_the_source_and_ends_in_the_creators_inbox():
    request = PublishRequest(text="draft", idempotency_key="k", media=(VIDEO,), settings={**SETTINGS, "mode": "inbox"})
    outcome = publish([creator(), INIT, UPLOADED], request)
    init = outcome.sent[1]
    assert str(init.url) == f"{API}/v2/post/publish/inbox/video/init/"
    assert set(json.loads(init.content)) == {"source_info"}
    done = poll([status("SEND_TO_USER_INBOX")], outcome.result.handle)
    assert isinstance(done.result, PublishResult) and done.result.platform_post_id == PUBLISH_ID and done.result.url is None


def test_photos_are_pulled_through_content_init_as_a_photo_post():
    photos = (sample_media("image"), PublishMedia("image", "image/jpeg", 10, "https://media.example.com/b.jpg", BytesSource(b"x")))
    settings = {"privacy_level": "SELF_ONLY", "title": "Two frames", "disable_comment": True}
    outcome = publish([creator(), ok({"publish_id": "p_pub_url~v2.123456789"})], PublishRequest(text="A caption", idempotency_key="k", media=photos, settings=settings))
    init = outcome.sent[1]
    assert str(init.url) == f"{API}/v2/post/publish/content/init/"
    assert json.loads(init.content) == {
        "media_type": "PHOTO", "post_mode": "DIRECT_POST",
        "post_info": {"title": "Two frames", "description": "A caption", "privacy_level": "SELF_ONLY", "disable_comment": True,
                      "brand_organic_toggle": False, "brand_content_toggle": False},
        "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": ["https://media.example.com/image.bin", "https://media.example.com/b.jpg"]},
    }
    inbox = publish([creator(), ok({"publish_id": "p"})], PublishRequest(text="c", idempotency_key="k", media=photos, settings={**settings, "mode": "inbox"}))
    assert json.loads(inbox.sent[1].content)["post_mode"] == "MEDIA_UPLOAD"


def test_comments_the_creator_turned_off_stay_off():
    outcome = publish([creator(comment_disabled=True), INIT, UPLOADED], REQUEST)
    assert json.loads(outcome.sent[1].content)["post_info"]["disable_comment"] is True


# -- status polling ---------------------------------------------------------------------------------


HANDLE = {"publish_id": PUBLISH_ID, "mode": "direct", "username": "tiktok"}


def test_processing_states_poll_again_and_failures_are_rejected_in_tiktoks_words():
    for word, stage in (("PROCESSING_UPLOAD", "uploading"), ("PROCESSING_DOWNLOAD", "downloading")):
        outcome = poll([status(word, uploaded_bytes=512)], HANDLE)
        assert isinstance(outcome.result, Processing) and outcome.result.stage == stage and outcome.result.handle == HANDLE
    failed = poll([DURATION_FAILED], HANDLE)
    assert isinstance(failed.error, Rejected) and failed.error.code == "DURATION_CHECK_FAILED"
    internal = poll([status("FAILED", fail_reason="internal")], HANDLE)
    assert isinstance(internal.error, TransientError)
    expired = poll([EXPIRED], HANDLE)
    assert isinstance(expired.error, AuthExpired)


def test_a_status_tiktok_adds_later_is_checked_again_not_published_twice():
    outcome = poll([status("PROCESSING_MODERATION")], HANDLE)
    assert isinstance(outcome.result, Processing) and outcome.result.handle == HANDLE


def test_an_inbox_photo_draft_names_no_privacy_level():
    request = PublishRequest(text="c", idempotency_key="k", media=(sample_media("image"),), settings={"mode": "inbox"})
    outcome = publish([creator(), ok({"publish_id": "p"})], request, on=unaudited)
    assert "privacy_level" not in json.loads(outcome.sent[1].content)["post_info"]


def test_a_complete_post_without_a_public_id_keeps_the_publish_id():
    outcome = poll([status("PUBLISH_COMPLETE", publicaly_available_post_id=[])], HANDLE)
    assert outcome.result.platform_post_id == PUBLISH_ID and outcome.result.url is None


# -- privacy levels and the audit ------------------------------------------------------------------------


def test_privacy_choices_come_from_the_creator_and_an_unaudited_app_is_offered_only_self_only():
    audited = run(call_scripted(provider, [creator()], lambda ctx: provider.setting_choices(ctx, "privacy_level"), credentials=CREDENTIALS))
    assert [c.value for c in audited.result] == ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert audited.result[0].extra["max_video_post_duration_sec"] == 300
    assert str(audited.sent[0].url) == f"{API}/v2/post/publish/creator_info/query/"
    limited = run(call_scripted(unaudited, [creator()], lambda ctx: unaudited.setting_choices(ctx, "privacy_level"), credentials=CREDENTIALS))
    assert [c.value for c in limited.result] == ["SELF_ONLY"]


def test_validation_refuses_public_posts_from_an_unaudited_app_and_says_why():
    draft = PostDraft(text="hi", media=(DraftMedia("video", "video/mp4", 1000),), settings={"privacy_level": "PUBLIC_TO_EVERYONE"})
    (issue,) = validate_draft(unaudited, draft)
    assert issue.code == "PRIVACY_LEVEL_NOT_ALLOWED" and "SOCIALGATE_TIKTOK_AUDITED" in issue.message
    assert validate_draft(unaudited, PostDraft(text="hi", media=draft.media, settings={"privacy_level": "SELF_ONLY"})) == []
    assert validate_draft(provider, draft) == []


def test_an_inbox_draft_needs_no_privacy_level_and_is_not_held_to_self_only():
    media = (DraftMedia("video", "video/mp4", 1000),)
    assert validate_draft(unaudited, PostDraft(text="hi", media=media, settings={"mode": "inbox"})) == []
    (issue,) = validate_draft(unaudited, PostDraft(text="hi", media=media))
    assert issue.code == "SETTING_REQUIRED" and issue.field == ("settings", "privacy_level")
    request = PublishRequest(text="draft", idempotency_key="k", media=(VIDEO,), settings={"mode": "inbox"})
    outcome = publish([creator(privacy_level_options=["SELF_ONLY"]), INIT, UPLOADED], request, on=unaudited)
    assert isinstance(outcome.result, Processing), outcome.error


def test_the_audit_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("SOCIALGATE_TIKTOK_AUDITED", raising=False)
    assert TikTok().audited is False
    monkeypatch.setenv("SOCIALGATE_TIKTOK_AUDITED", "true")
    assert TikTok().audited is True


# -- OAuth -----------------------------------------------------------------------------------------------


TOKENS = {
    "access_token": "act.example12345Example12345Example", "expires_in": 86400, "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344",
    "refresh_expires_in": 31536000, "refresh_token": "rft.example12345Example12345Example", "scope": "user.info.basic,video.publish",
    "token_type": "Bearer",
}


def form(request):
    return dict(urllib.parse.parse_qsl(request.content.decode()))


def test_the_authorize_url_names_the_client_key_and_comma_separated_scopes():
    url = provider.auth.authorization_url(client_id="awx1234", redirect_uri="https://gate.example/cb", state="st")
    base, query = url.split("?")
    params = dict(urllib.parse.parse_qsl(query))
    assert base == "https://www.tiktok.com/v2/auth/authorize/"
    assert params["client_key"] == "awx1234" and "client_id" not in params
    assert params["scope"] == "user.info.basic,video.publish,video.upload,video.list"


def test_the_code_exchange_gives_a_day_long_token_and_a_year_long_refresh_token():
    arguments = {"code": "c0de", "redirect_uri": "https://gate.example/cb", "code_verifier": None, "client_id": "awx1234", "client_secret": "s3cret"}
    outcome = run(call_scripted(provider, [reply(200, json=TOKENS)], lambda ctx: provider.exchange_code(ctx, **arguments)))
    (sent,) = outcome.sent
    assert (sent.method, str(sent.url)) == ("POST", f"{API}/v2/oauth/token/")
    assert form(sent) == {"client_key": "awx1234", "client_secret": "s3cret", "code": "c0de", "grant_type": "authorization_code", "redirect_uri": "https://gate.example/cb"}
    tokens = outcome.result
    assert tokens.expires_at == FIXED_NOW + timedelta(days=1)
    assert tokens.extra["refresh_token_expires_at"] == (FIXED_NOW + timedelta(days=365)).isoformat()
    assert tokens.extra["open_id"] == TOKENS["open_id"] and tokens.scopes == ("user.info.basic", "video.publish")


def test_refresh_and_its_refusal_even_when_tiktok_answers_200():
    credentials = {**CREDENTIALS, "refresh_token": "rft.old"}
    refreshed = run(call_scripted(provider, [reply(200, json=TOKENS)], lambda ctx: provider.refresh_token(ctx, client_id="awx1234", client_secret="s"), credentials=credentials))
    assert form(refreshed.sent[0]) == {"client_key": "awx1234", "client_secret": "s", "grant_type": "refresh_token", "refresh_token": "rft.old"}
    assert refreshed.result.refresh_token == TOKENS["refresh_token"]
    refused = {"error": "invalid_grant", "error_description": "Refresh token is invalid or expired.", "log_id": "202206221854370101130062072500FFA2"}
    for status_code in (200, 400):
        outcome = run(call_scripted(provider, [reply(status_code, json=refused)], lambda ctx: provider.refresh_token(ctx, client_id="awx1234", client_secret="s"), credentials=credentials))
        assert isinstance(outcome.error, AuthExpired) and outcome.error.code == "INVALID_GRANT"
    exchange = run(call_scripted(provider, [reply(200, json={**refused, "error_description": "Authorization code is expired."})], lambda ctx: provider.exchange_code(
        ctx, code="c", redirect_uri="https://gate.example/cb", code_verifier=None, client_id="a", client_secret="s")))
    assert isinstance(exchange.error, Rejected) and exchange.error.code == "INVALID_GRANT"


def test_connect_names_the_account_by_its_open_id():
    user = {"open_id": TOKENS["open_id"], "union_id": "c9c60f44-a68e-4f5d-84dd-ce22faeb0ba1", "avatar_url": "https://p19-sign.tiktokcdn-us.com/a.jpeg", "display_name": "Gate House"}
    outcome = run(call_scripted(provider, [ok({"user": user})], lambda ctx: provider.connect(ctx, {"access_token": "act.1"})))
    assert str(outcome.sent[0].url) == f"{API}/v2/user/info/?fields=open_id%2Cunion_id%2Cavatar_url%2Cdisplay_name"
    assert outcome.result.external_id == TOKENS["open_id"] and outcome.result.handle == "Gate House"


def test_metrics_ask_video_query_for_the_counters():
    outcome = run(call_scripted(provider, TestTikTokConformance.metrics_success, lambda ctx: provider.fetch_metrics(ctx, TestTikTokConformance.metrics_ids), credentials=CREDENTIALS))
    (sent,) = outcome.sent
    assert str(sent.url) == f"{API}/v2/video/query/?fields=id%2Cview_count%2Clike_count%2Ccomment_count%2Cshare_count"
    assert json.loads(sent.content) == {"filters": {"video_ids": TestTikTokConformance.metrics_ids}}


def test_a_video_shorter_than_it_said_is_refused_before_the_last_chunk():
    short = PublishMedia("video", "video/mp4", 64 * MB + 3, "https://media.example.com/big.mp4", BytesSource(bytes(30 * MB)))
    request = PublishRequest(text="big", idempotency_key="k", media=(short,), settings={"privacy_level": "SELF_ONLY"})
    outcome = publish([creator(), INIT] + [reply(206, text="")] * 3, request)
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "MEDIA_SIZE_MISMATCH"
    assert len(outcome.sent) == 5, "the three whole chunks it had went; the last, which would complete it, did not"
