"""The YouTube provider against the Data API v3's real request and answer shapes (Google "Resumable
uploads", "Videos: insert/list/delete", "Thumbnails: set", "Errors", "Quota")."""

import asyncio
import json
import urllib.parse
from datetime import UTC, datetime, timedelta

import httpx

from plugins.youtube import CHUNK, SESSIONS, YouTube, seconds_until_pacific_midnight
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
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, publish_scripted, reply

provider = YouTube()
CREDENTIALS = {"access_token": "ya29.a0AfB_byC-example", "refresh_token": "1//0gExample"}
SESSION = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status&upload_id=ADPycdu2Yx"
VIDEO_ID = "Ks-_Mh1QhMc"
DATA = bytes(range(256)) * 4
VIDEO = PublishMedia("video", "video/mp4", len(DATA), "https://media.example.com/clip.mp4", BytesSource(DATA), duration_ms=30_000)
SETTINGS = {"title": "Launch day", "privacy": "unlisted", "tags": "gateway, social media,api", "made_for_kids": False}
REQUEST = PublishRequest(text="How we shipped it.\nMore below.", idempotency_key="tgt_youtube", media=(VIDEO,), settings=SETTINGS)


def google_error(status, reason, message, domain="youtube.video", **fields):
    return reply(status, json={"error": {"code": status, "message": message, "errors": [{"message": message, "domain": domain, "reason": reason}], **fields}})


def opened(location=SESSION):
    return reply(200, text="", headers={"Location": location})


def incomplete(last_byte=None):
    return reply(308, text="", headers={} if last_byte is None else {"Range": f"bytes=0-{last_byte}"})


def video(**status):
    return reply(200, json={"kind": "youtube#video", "etag": "Dn5xIderbhAnUk5TAW0qkFFir0M", "id": VIDEO_ID,
                            "snippet": {"title": "Launch day", "categoryId": "22"},
                            "status": {"uploadStatus": "uploaded", "privacyStatus": "unlisted", "selfDeclaredMadeForKids": False, **status}})


def listed(processing, upload="uploaded", **status):
    item = {"kind": "youtube#video", "etag": "x", "id": VIDEO_ID, "status": {"uploadStatus": upload, **status}, "processingDetails": processing}
    return reply(200, json={"kind": "youtube#videoListResponse", "etag": "y", "items": [item], "pageInfo": {"totalResults": 1, "resultsPerPage": 1}})


QUOTA = google_error(403, "quotaExceeded", 'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.', domain="youtube.quota")
UNAUTHENTICATED = reply(401, json={"error": {"code": 401, "status": "UNAUTHENTICATED",
    "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header"}]}})
BACKEND = google_error(503, "backendError", "Backend Error", domain="global")
STILL_PROCESSING = listed({"processingStatus": "processing", "processingProgress": {"partsTotal": "1000", "partsProcessed": "370", "timeLeftMs": "63000"}})
TRANSCODE_FAILED = listed({"processingStatus": "failed", "processingFailureReason": "transcodeFailed"})
SUCCEEDED = listed({"processingStatus": "succeeded", "fileDetailsAvailability": "available"}, upload="processed")


def run(coroutine):
    return asyncio.run(coroutine)


def publish(steps, request=REQUEST, store=None):
    return run(publish_scripted(provider, steps, request, credentials=CREDENTIALS, store=store))


def poll(steps, handle, request=REQUEST):
    return run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, handle), credentials=CREDENTIALS))


class TestYouTubeConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = REQUEST
    success = [opened(), video()]
    publishing_step = 1  # the last chunk
    after_lost_answer = [httpx.ReadTimeout("no answer either")]  # asking the session what it holds
    poll_success = [SUCCEEDED]
    expected_stage = "transcoding"
    # The upload done (Processing), processingStatus "processing" at the first poll, "succeeded"
    # at the second; the failure is processingStatus "failed" with YouTube's reason.
    processing_publish = [opened(), video()]
    processing_polls = [[STILL_PROCESSING], poll_success]
    processing_expected_post_id = VIDEO_ID
    processing_failed = [TRANSCODE_FAILED]
    expected_post_id = VIDEO_ID
    expected_url = f"https://www.youtube.com/watch?v={VIDEO_ID}"
    error_cases = [
        ErrorCase("quotaExceeded: until midnight Pacific", [QUOTA], RateLimited, code="QUOTA_EXCEEDED", retry_after=20 * 3600),
        ErrorCase("uploadLimitExceeded", [google_error(400, "uploadLimitExceeded", "The user has exceeded the number of videos they may upload.")],
                  RateLimited, code="UPLOAD_LIMIT_EXCEEDED"),
        ErrorCase("401 authError", [UNAUTHENTICATED], AuthExpired, code="AUTH_ERROR"),
        ErrorCase("503 backendError", [BACKEND], TransientError, code="BACKEND_ERROR"),
        ErrorCase("invalidTitle", [google_error(400, "invalidTitle", "The request metadata specifies an invalid video title.")], Rejected, code="INVALID_TITLE"),
        ErrorCase("forbidden", [google_error(403, "forbidden", "Access forbidden. The request may not be properly authorized.", domain="global")], Rejected, code="FORBIDDEN"),
        ErrorCase("a session without Location", [reply(200, text="")], TransientError, code="NO_UPLOAD_SESSION"),
        ErrorCase("the session expired mid-upload", [opened(), reply(404, text="Not Found")], TransientError, code="UPLOAD_SESSION_EXPIRED",
                  sends=["POST https://www.googleapis.com/upload/youtube/v3/videos", f"PUT {SESSION.split('?')[0]}"]),
    ]
    platform_rejects = [
        RejectedDraft("no video", PostDraft(text="t", media=(DraftMedia("image", "image/png", 1000),)), "VIDEO_REQUIRED"),
        RejectedDraft("two videos", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1000),) * 2), "TOO_MANY_MEDIA"),
        RejectedDraft("a 101-character title", PostDraft(text="d", media=(DraftMedia("video", "video/mp4", 1),), settings={"title": "t" * 101}), "TITLE_TOO_LONG"),
        RejectedDraft("no title at all", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 1),)), "TITLE_REQUIRED"),
        RejectedDraft("angle brackets", PostDraft(text="a <b> c", media=(DraftMedia("video", "video/mp4", 1),)), "ANGLE_BRACKETS_NOT_ALLOWED"),
        RejectedDraft("5001 bytes of description", PostDraft(text="é" * 2501, media=(DraftMedia("video", "video/mp4", 1),)), "TEXT_TOO_LONG"),
        RejectedDraft("tags over 500", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1),), settings={"tags": ",".join(["ab"] * 168)}), "TAGS_TOO_LONG"),
        RejectedDraft("publishAt on a public video", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1),),
                      settings={"publish_at": "2026-03-01T09:00:00+01:00"}), "PUBLISH_AT_NEEDS_PRIVATE"),
        RejectedDraft("publishAt without offset", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1),),
                      settings={"publish_at": "2026-03-01T09:00:00", "privacy": "private"}), "PUBLISH_AT_INVALID"),
        RejectedDraft("a four-minute Short", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1, duration_ms=240_000),), settings={"shorts": True}), "SHORT_TOO_LONG"),
        RejectedDraft("a landscape Short", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1, width=1920, height=1080),), settings={"shorts": True}), "SHORT_NOT_VERTICAL"),
        RejectedDraft("a 3 MB thumbnail", PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1), DraftMedia("image", "image/png", 3 * 1024 * 1024))), "MEDIA_TOO_LARGE"),
    ]
    platform_accepts = [
        PostDraft(text="é" * 2500, media=(DraftMedia("video", "video/mp4", 1),)),
        PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1),), settings={"tags": ",".join(["ab"] * 167)}),  # 167 × 2 + 166 = 500
        PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1, duration_ms=180_000, width=1080, height=1920),), settings={"shorts": True}),
        PostDraft(text="t", media=(DraftMedia("video", "video/mp4", 1),), settings={"publish_at": "2026-03-01T09:00:00+01:00", "privacy": "private"}),
    ]
    metrics_ids = [VIDEO_ID, "dQw4w9WgXcQ"]
    metrics_success = [reply(200, json={"kind": "youtube#videoListResponse", "items": [
        {"kind": "youtube#video", "id": VIDEO_ID, "statistics": {"viewCount": "1520", "likeCount": "48", "favoriteCount": "0", "commentCount": "6"}},
        {"kind": "youtube#video", "id": "dQw4w9WgXcQ", "statistics": {"viewCount": "1700000000", "likeCount": "18000000", "favoriteCount": "0", "commentCount": "2400000"}},
    ]})]
    expected_metrics = {
        VIDEO_ID: {"views": 1520, "likes": 48, "comments": 6},
        "dQw4w9WgXcQ": {"views": 1700000000, "likes": 18000000, "comments": 2400000},
    }
    # Likes hidden by the owner: likeCount is absent, so the figure is unknown.
    metrics_omitting = [reply(200, json={"kind": "youtube#videoListResponse", "items": [
        {"kind": "youtube#video", "id": VIDEO_ID, "statistics": {"viewCount": "1520", "favoriteCount": "0", "commentCount": "6"}}]})]
    omitted_figure = (VIDEO_ID, "likes")
    account_metrics_success = [reply(200, json={"kind": "youtube#channelListResponse", "items": [
        {"kind": "youtube#channel", "id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "statistics": {
            "viewCount": "250000", "subscriberCount": "4210", "hiddenSubscriberCount": False, "videoCount": "87"}}]})]
    expected_account_metrics = {"followers": 4210, "posts": 87}

    def valid_draft(self):
        return PostDraft(text="hello", media=(DraftMedia("video", "video/mp4", 1024),))

    def check_published_requests(self, sent):
        start, upload, check = sent
        assert start.method == "POST" and str(start.url) == (
            "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&part=snippet%2Cstatus"
        )
        assert start.headers["authorization"] == "Bearer ya29.a0AfB_byC-example"
        assert start.headers["x-upload-content-length"] == "1024" and start.headers["x-upload-content-type"] == "video/mp4"
        assert json.loads(start.content) == {
            "snippet": {"title": "Launch day", "description": "How we shipped it.\nMore below.", "categoryId": "22",
                        "tags": ["gateway", "social media", "api"]},
            "status": {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": False},
        }
        assert (upload.method, str(upload.url)) == ("PUT", SESSION)
        assert upload.headers["content-range"] == "bytes 0-1023/1024" and upload.content == DATA
        assert check.method == "GET" and str(check.url) == f"https://www.googleapis.com/youtube/v3/videos?part=status%2CprocessingDetails&id={VIDEO_ID}"


# -- resumable upload -------------------------------------------------------------------------------


BIG = bytes(range(251)) * ((2 * CHUNK + 1000) // 251)
BIG_VIDEO = PublishMedia("video", "video/mp4", len(BIG), "https://media.example.com/big.mp4", BytesSource(BIG))
BIG_REQUEST = PublishRequest(text="big", idempotency_key="tgt_big", media=(BIG_VIDEO,), settings={"title": "Big"})


def test_chunks_are_multiples_of_256_kib_and_each_308_names_what_the_server_holds():
    outcome = publish([opened(), incomplete(CHUNK - 1), incomplete(2 * CHUNK - 1), video()], BIG_REQUEST)
    assert isinstance(outcome.result, Processing), outcome.error
    puts = outcome.sent[1:]
    assert [p.headers["content-range"] for p in puts] == [
        f"bytes 0-{CHUNK - 1}/{len(BIG)}", f"bytes {CHUNK}-{2 * CHUNK - 1}/{len(BIG)}", f"bytes {2 * CHUNK}-{len(BIG) - 1}/{len(BIG)}",
    ]
    assert CHUNK % (256 * 1024) == 0 and b"".join(p.content for p in puts) == BIG


def test_a_dropped_connection_resumes_from_the_range_the_server_reports():
    store = MemoryProviderStore()
    half = CHUNK // 2
    steps = [opened(), incomplete(CHUNK - 1), httpx.RemoteProtocolError("connection dropped"), incomplete(CHUNK + half - 1), video()]
    outcome = publish(steps, BIG_REQUEST, store)
    assert isinstance(outcome.result, Processing) and outcome.result.handle["video_id"] == VIDEO_ID, outcome.error
    ask = outcome.sent[3]
    assert ask.method == "PUT" and ask.headers["content-range"] == f"bytes */{len(BIG)}" and ask.content == b""
    (resumed,) = outcome.sent[4:]
    assert resumed.headers["content-range"] == f"bytes {CHUNK + half}-{len(BIG) - 1}/{len(BIG)}"
    assert resumed.content == BIG[CHUNK + half :], "only what the server lacks is sent again"
    assert run(store.get(SESSIONS, "tgt_big")) == {"session": SESSION, "size": len(BIG)}


def test_a_server_that_kept_less_than_a_chunk_gets_the_rest_again():
    steps = [opened(), incomplete(CHUNK - 1 - 1000), incomplete(2 * CHUNK - 1), video()]
    outcome = publish(steps, BIG_REQUEST)
    assert outcome.sent[2].headers["content-range"].startswith(f"bytes {CHUNK - 1000}-")


def test_a_retried_publish_resumes_its_kept_session_instead_of_uploading_twice():
    store = MemoryProviderStore({(SESSIONS, "tgt_big"): {"session": SESSION, "size": len(BIG)}})
    outcome = publish([incomplete(2 * CHUNK - 1), video()], BIG_REQUEST, store)
    assert [r.method for r in outcome.sent] == ["PUT", "PUT"], "no new session is opened"
    assert outcome.sent[1].content == BIG[2 * CHUNK :]
    finished = publish([video()], BIG_REQUEST, MemoryProviderStore({(SESSIONS, "tgt_big"): {"session": SESSION, "size": len(BIG)}}))
    assert finished.result.handle["video_id"] == VIDEO_ID and len(finished.sent) == 1, "an upload that finished is not sent again"
    expired = publish([reply(404, text="Not Found"), opened(), incomplete(CHUNK - 1), incomplete(2 * CHUNK - 1), video()], BIG_REQUEST,
                      MemoryProviderStore({(SESSIONS, "tgt_big"): {"session": SESSION, "size": len(BIG)}}))
    assert isinstance(expired.result, Processing) and expired.sent[1].method == "POST", "an expired session starts over"


def test_a_lost_answer_to_the_last_chunk_is_reconciled_through_the_session():
    lost = publish([opened(), httpx.ReadTimeout("gone"), httpx.ReadTimeout("still gone")])
    assert isinstance(lost.error, Unconfirmed)
    store = MemoryProviderStore({(SESSIONS, "tgt_youtube"): {"session": SESSION, "size": len(DATA)}})
    found = run(call_scripted(provider, [video()], lambda ctx: provider.reconcile(ctx, REQUEST), credentials=CREDENTIALS, store=store))
    assert found.result == PublishResult(VIDEO_ID, f"https://www.youtube.com/watch?v={VIDEO_ID}", raw=json.loads(video().content))
    missing = run(call_scripted(provider, [incomplete(511)], lambda ctx: provider.reconcile(ctx, REQUEST), credentials=CREDENTIALS, store=store))
    assert missing.result is None


def test_a_5xx_on_a_chunk_is_resumed_like_a_dropped_connection():
    outcome = publish([opened(), BACKEND, incomplete(None), video()])
    assert isinstance(outcome.result, Processing)
    assert outcome.sent[3].headers["content-range"] == "bytes 0-1023/1024", "nothing kept: everything again"


# -- metadata, Shorts, thumbnail -------------------------------------------------------------------------


def test_a_scheduled_private_video_for_kids_carries_publish_at_and_the_kids_flag():
    settings = {"title": "Later", "privacy": "private", "publish_at": "2026-03-01T09:00:00+01:00", "made_for_kids": True,
                "category_id": "28", "notify_subscribers": False}
    outcome = publish([opened(), video()], PublishRequest(text="d", idempotency_key="k", media=(VIDEO,), settings=settings))
    start = outcome.sent[0]
    assert json.loads(start.content)["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": True, "publishAt": "2026-03-01T09:00:00+01:00"}
    assert json.loads(start.content)["snippet"]["categoryId"] == "28"
    assert dict(urllib.parse.parse_qsl(start.url.query.decode()))["notifySubscribers"] == "false"


def test_a_short_says_so_in_its_title_and_links_to_shorts():
    request = PublishRequest(text="Quick tip\nwith details", idempotency_key="k", media=(VIDEO,), settings={"shorts": True})
    outcome = publish([opened(), video()], request)
    assert json.loads(outcome.sent[0].content)["snippet"]["title"] == "Quick tip #Shorts"
    done = poll([SUCCEEDED], outcome.result.handle, request)
    assert done.result.url == f"https://www.youtube.com/shorts/{VIDEO_ID}"


def test_an_image_beside_the_video_becomes_its_thumbnail_and_a_refusal_does_not_fail_the_upload():
    png = PublishMedia("image", "image/png", 4, "https://media.example.com/t.png", BytesSource(b"\x89PNG"))
    request = PublishRequest(text="t", idempotency_key="k", media=(VIDEO, png), settings={"title": "T"})
    thumbs = {"kind": "youtube#thumbnailSetResponse", "etag": "z", "items": [{"default": {"url": "https://i.ytimg.com/vi/x/default.jpg", "width": 120, "height": 90}}]}
    outcome = publish([opened(), video(), reply(200, json=thumbs)], request)
    thumb = outcome.sent[2]
    assert thumb.method == "POST" and str(thumb.url) == f"https://www.googleapis.com/upload/youtube/v3/thumbnails/set?videoId={VIDEO_ID}&uploadType=media"
    assert thumb.headers["content-type"] == "image/png" and thumb.content == b"\x89PNG"
    assert outcome.result.handle["thumbnail"] == "set"
    refused = publish([opened(), video(), google_error(403, "forbidden", "The authenticated user doesnt have permissions to upload and set custom video thumbnails.")], request)
    assert isinstance(refused.result, Processing) and refused.result.handle["thumbnail"] == "FORBIDDEN"


# -- processing -----------------------------------------------------------------------------------------


HANDLE = {"video_id": VIDEO_ID, "shorts": False}


def test_processing_polls_again_after_the_time_youtube_expects_and_failures_are_rejected():
    going = poll([STILL_PROCESSING], HANDLE)
    assert isinstance(going.result, Processing) and going.result.check_after == timedelta(seconds=63) and going.result.published is True
    failed = poll([TRANSCODE_FAILED], HANDLE)
    assert isinstance(failed.error, Rejected) and failed.error.code == "PROCESSING_FAILED" and "transcodeFailed" in failed.error.message
    rejected = poll([listed({"processingStatus": "terminated"}, upload="rejected", rejectionReason="duplicate")], HANDLE)
    assert isinstance(rejected.error, Rejected) and rejected.error.code == "UPLOAD_REJECTED" and "duplicate" in rejected.error.message
    gone = poll([reply(200, json={"kind": "youtube#videoListResponse", "items": []})], HANDLE)
    assert isinstance(gone.error, Rejected) and gone.error.code == "VIDEO_GONE"
    quota = poll([QUOTA], HANDLE)
    assert isinstance(quota.error, RateLimited)


def test_the_quota_day_ends_at_midnight_pacific_summer_or_winter():
    assert seconds_until_pacific_midnight(datetime(2026, 1, 15, 12, tzinfo=UTC)) == 20 * 3600  # 04:00 PST
    assert seconds_until_pacific_midnight(datetime(2026, 7, 15, 12, tzinfo=UTC)) == 19 * 3600  # 05:00 PDT
    assert seconds_until_pacific_midnight(datetime(2026, 1, 16, 7, 59, tzinfo=UTC)) == 60  # 23:59 PST


def test_the_upload_quota_is_declared_per_project_in_units():
    (quota,) = provider.limits.quotas
    assert (quota.count, quota.period_seconds, quota.scope, quota.cost) == (10_000, 86_400, "app", 1_600)


# -- OAuth, delete -----------------------------------------------------------------------------------------


def form(request):
    return dict(urllib.parse.parse_qsl(request.content.decode()))


def test_the_authorize_url_asks_for_offline_access_with_consent():
    url = provider.auth.authorization_url(client_id="1234.apps.googleusercontent.com", redirect_uri="https://gate.example/cb", state="st")
    base, query = url.split("?")
    params = dict(urllib.parse.parse_qsl(query))
    assert base == "https://accounts.google.com/o/oauth2/v2/auth"
    assert params["access_type"] == "offline" and params["prompt"] == "consent" and params["client_id"] == "1234.apps.googleusercontent.com"
    assert params["scope"] == "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.force-ssl"


def test_code_exchange_and_refresh_post_googles_token_form():
    tokens = {"access_token": "ya29.new", "expires_in": 3599, "refresh_token": "1//0gNew", "scope": " ".join(provider.auth.scopes), "token_type": "Bearer"}
    arguments = {"code": "4/0Ab", "redirect_uri": "https://gate.example/cb", "code_verifier": None, "client_id": "cid", "client_secret": "sec"}
    exchanged = run(call_scripted(provider, [reply(200, json=tokens)], lambda ctx: provider.exchange_code(ctx, **arguments)))
    assert str(exchanged.sent[0].url) == "https://oauth2.googleapis.com/token"
    assert form(exchanged.sent[0]) == {"code": "4/0Ab", "client_id": "cid", "client_secret": "sec", "redirect_uri": "https://gate.example/cb", "grant_type": "authorization_code"}
    assert exchanged.result.refresh_token == "1//0gNew" and exchanged.result.expires_at == FIXED_NOW + timedelta(seconds=3599)
    refreshed = run(call_scripted(provider, [reply(200, json={k: v for k, v in tokens.items() if k != "refresh_token"})],
                                  lambda ctx: provider.refresh_token(ctx, client_id="cid", client_secret="sec"), credentials=CREDENTIALS))
    assert form(refreshed.sent[0]) == {"client_id": "cid", "client_secret": "sec", "refresh_token": "1//0gExample", "grant_type": "refresh_token"}
    assert refreshed.result.refresh_token is None, "Google keeps the refresh token: the stored one stays"
    refused = run(call_scripted(provider, [reply(400, json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."})],
                                lambda ctx: provider.refresh_token(ctx, client_id="cid", client_secret="sec"), credentials=CREDENTIALS))
    assert isinstance(refused.error, AuthExpired) and refused.error.code == "INVALID_GRANT"


def test_connect_names_the_channel_and_refuses_an_account_without_one():
    channel = {"kind": "youtube#channel", "id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "snippet": {
        "title": "Google for Developers", "customUrl": "@googledevelopers", "thumbnails": {"default": {"url": "https://yt3.ggpht.com/a.jpg"}}}}
    found = run(call_scripted(provider, [reply(200, json={"kind": "youtube#channelListResponse", "items": [channel]})], lambda ctx: provider.connect(ctx, {"access_token": "ya29.x"})))
    assert str(found.sent[0].url) == "https://www.googleapis.com/youtube/v3/channels?part=snippet&mine=true"
    assert (found.result.external_id, found.result.handle, found.result.account_type) == ("UC_x5XG1OV2P6uZZ5FSM9Ttw", "@googledevelopers", "channel")
    none = run(call_scripted(provider, [reply(200, json={"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}})], lambda ctx: provider.connect(ctx, {"access_token": "ya29.x"})))
    assert isinstance(none.error, Rejected) and none.error.code == "NO_CHANNEL"


def test_delete_removes_the_video_and_a_missing_one_is_already_gone():
    deleted = run(call_scripted(provider, [reply(204, text="")], lambda ctx: provider.delete(ctx, VIDEO_ID), credentials=CREDENTIALS))
    assert (deleted.sent[0].method, str(deleted.sent[0].url)) == ("DELETE", f"https://www.googleapis.com/youtube/v3/videos?id={VIDEO_ID}")
    assert deleted.error is None
    gone = run(call_scripted(provider, [google_error(404, "videoNotFound", "The video identified by the id parameter cannot be found.")],
                             lambda ctx: provider.delete(ctx, VIDEO_ID), credentials=CREDENTIALS))
    assert gone.error is None


def test_validation_accepts_the_conformance_request():
    draft = PostDraft(text=REQUEST.text, media=(DraftMedia("video", "video/mp4", 1024),), settings=SETTINGS)
    assert validate_draft(provider, draft) == []


def test_a_title_taken_from_a_long_first_line_is_cut_to_fit_but_a_long_explicit_one_is_refused():
    long_line = "word " * 40
    request = PublishRequest(text=long_line + "\nrest", idempotency_key="k", media=(VIDEO,), settings={"shorts": True})
    title = json.loads(publish([opened(), video()], request).sent[0].content)["snippet"]["title"]
    assert len(title) == 100 and title.endswith("\u2026 #Shorts")
    draft = PostDraft(text="d", media=(DraftMedia("video", "video/mp4", 1),), settings={"title": "t" * 95, "shorts": True})
    assert [i.code for i in validate_draft(provider, draft)] == ["TITLE_TOO_LONG"]
