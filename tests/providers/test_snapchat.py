"""Snapchat's Public Profile API, replayed with its request and response shapes: the encrypted media
container, multipart parts, Stories, Saved Stories, Spotlight, profile stats and Snap's error envelope."""

import asyncio
import base64
import json

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from plugins import snapchat
from plugins.snapchat import Snapchat
from providers import AuthExpired, BytesSource, DraftMedia, PostDraft, PublishMedia, RateLimited, Rejected, TransientError, Unconfirmed
from providers.encryption import EncryptedMedia
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, request_line, sample_request
from tests.media_samples import png
from tests.providers.multipart import form_parts

PROFILE_ID = "b6b1b6e2-2f0e-4a0a-9a4b-6d7b8f6c1a11"
PROFILE = f"https://businessapi.snapchat.com/v1/public_profiles/{PROFILE_ID}"
MEDIA_ID = "3a0f6b84-5d6e-4f2c-9b7a-1c2d3e4f5a6b"
ADD_PATH = f"/v1/public_profiles/{PROFILE_ID}/media/{MEDIA_ID}/multipart-upload-v2?action=ADD"
FINALIZE_PATH = f"/v1/public_profiles/{PROFILE_ID}/media/{MEDIA_ID}/multipart-upload-v2?action=FINALIZE"
CREDENTIALS = {"access_token": "snap-access", "refresh_token": "snap-refresh", "token_type": "Bearer", "profile_id": PROFILE_ID}
IMAGE = png(54, 96)
provider = Snapchat()


def ok(**fields):
    return reply(200, json={"request_status": "SUCCESS", "request_id": "5f3b2c1a00ff0a1b2c3d4e5f60001", **fields})


def snap_error(status, display, debug="", **fields):
    return reply(status, json={"request_status": "ERROR", "request_id": "5f3b2c1a00ff0a1b2c3d4e5f60002", "display_message": display, "debug_message": debug, **fields})


CONTAINER = ok(media_id=MEDIA_ID, add_path=ADD_PATH, finalize_path=FINALIZE_PATH)
UPLOADED = ok()


def saved_story(story_id="c0ffee00-1111-2222-3333-444455556666"):
    return ok(saved_stories=[{"sub_request_status": "SUCCESS", "saved_story": {"id": story_id, "title": "Launch day", "snap_sources": [{"media_id": MEDIA_ID}]}}])


def image_media(data=IMAGE):
    return PublishMedia("image", "image/png", len(data), "https://media.example.com/launch.png", BytesSource(data), width=54, height=96)


def video_media(duration_ms=15_000):
    return PublishMedia("video", "video/mp4", 4096, "https://media.example.com/launch.mp4", BytesSource(b"\0" * 4096), duration_ms=duration_ms)


def run(operation, steps, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials))
    return outcome.result, outcome.error, outcome.sent


def decrypt(container_request, parts):
    declared = json.loads(container_request.content)
    key, iv = base64.b64decode(declared["key"]), base64.b64decode(declared["iv"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(b"".join(parts)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


class TestSnapchatConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = sample_request(text="Launch day", media=(image_media(),))
    success = [CONTAINER, UPLOADED, UPLOADED, saved_story()]
    expected_post_id = "c0ffee00-1111-2222-3333-444455556666"
    error_cases = [
        ErrorCase("token expired", [snap_error(401, "Unauthorized", "Token is expired")], AuthExpired),
        ErrorCase("app not allow-listed", [snap_error(403, "Forbidden", "Organization is not allowlisted for the Public Profile API")], Rejected, code="HTTP_403"),
        ErrorCase("rate limited", [reply(429, json={"request_status": "ERROR", "display_message": "Too many requests"}, headers={"Retry-After": "30"})], RateLimited, retry_after=30),
        ErrorCase("part refused", [CONTAINER, snap_error(400, "Invalid part", "part_number out of range")], Rejected),
        ErrorCase("server error on finalize", [CONTAINER, UPLOADED, reply(500, text="Internal Server Error")], TransientError),
        ErrorCase(
            "saved story refused in its envelope",
            [CONTAINER, UPLOADED, UPLOADED, ok(saved_stories=[{"sub_request_status": "ERROR", "sub_request_error_reason": "Media is not finalized"}])],
            Rejected, code="SUB_REQUEST_ERROR",
        ),
        ErrorCase("an error in a 200", [CONTAINER, UPLOADED, UPLOADED, reply(200, json={"request_status": "ERROR", "display_message": "Title too long"})], Rejected, code="REQUEST_ERROR"),
        ErrorCase("success without an id", [CONTAINER, UPLOADED, UPLOADED, ok(saved_stories=[])], Unconfirmed),
    ]
    platform_rejects = [
        RejectedDraft("text only", PostDraft(text="hello"), "MEDIA_REQUIRED"),
        RejectedDraft("text on a Story", PostDraft(text="hi", media=(DraftMedia("image", "image/png", 10),), settings={"placement": "STORY"}), "TEXT_NOT_SUPPORTED"),
        RejectedDraft("a long Saved Story title", PostDraft(text="a" * 46, media=(DraftMedia("image", "image/png", 10),)), "TEXT_TOO_LONG"),
        RejectedDraft("an image on Spotlight", PostDraft(text="#launch", media=(DraftMedia("image", "image/png", 10),), settings={"placement": "SPOTLIGHT"}), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft(
            "a 3-second Spotlight", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 10, duration_ms=3000),), settings={"placement": "SPOTLIGHT"}), "MEDIA_TOO_SHORT",
        ),
        RejectedDraft("a 61-second video", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 10, duration_ms=61_000),)), "MEDIA_TOO_LONG"),
    ]
    platform_accepts = [
        PostDraft(text="", media=(DraftMedia("image", "image/png", 10),), settings={"placement": "STORY"}),
        PostDraft(text="a" * 160, media=(DraftMedia("video", "video/mp4", 10, duration_ms=6000),), settings={"placement": "SPOTLIGHT"}),
    ]
    account_metrics_success = [ok(lifetime_stats=[{"sub_request_status": "SUCCESS", "lifetime_stat": {"id": PROFILE_ID, "type": "PROFILE", "stats": {"subscribers": 1520}}}])]
    expected_account_metrics = {"followers": 1520}

    def check_published_requests(self, sent):
        container, part, finalize, post = sent
        assert request_line(container) == f"POST {PROFILE}/media" and container.headers["Authorization"] == "Bearer snap-access"
        declared = json.loads(container.content)
        assert declared["type"] == "IMAGE" and declared["name"] == "tgt_conformance0000000000001"
        assert len(base64.b64decode(declared["key"])) == 32 and len(base64.b64decode(declared["iv"])) == 16
        assert str(part.url) == "https://businessapi.snapchat.com" + ADD_PATH
        fields = form_parts(part)
        assert fields["action"].text == "ADD" and fields["part_number"].text == "1" and fields["file"].filename == "media.bin"
        assert decrypt(container, [fields["file"].content]) == IMAGE  # Snap can decrypt it with the declared key and IV
        assert str(finalize.url) == "https://businessapi.snapchat.com" + FINALIZE_PATH and form_parts(finalize)["action"].text == "FINALIZE"
        assert request_line(post) == f"POST {PROFILE}/saved_stories"
        assert json.loads(post.content) == {"saved_stories": [{"snap_sources": [{"media_id": MEDIA_ID}], "title": "Launch day"}]}

    def test_network_failures_map_to_typed_errors(self):
        """Snap needs an upload before anything is posted: a lost answer there is retried; only the
        publishing request's lost answer may have posted (the kit's check assumes the first request posts)."""
        refused = self.scripted_publish([httpx.ConnectError("connection refused")])
        lost_upload = self.scripted_publish([httpx.ReadTimeout("no answer")])
        assert isinstance(refused.error, TransientError) and isinstance(lost_upload.error, TransientError)
        lost_post = self.scripted_publish([CONTAINER, UPLOADED, UPLOADED, httpx.ReadTimeout("no answer")])
        assert isinstance(lost_post.error, Unconfirmed), lost_post.error


def test_large_media_goes_up_in_parts_of_at_most_32_mb(monkeypatch):
    monkeypatch.setattr(snapchat, "PART_BYTES", 64)  # the same split, on a small file
    data = bytes(range(256)) * 2  # 512 bytes → 528 after padding → parts of 64 bytes
    request = sample_request(text="", media=(image_media(data),), settings={"placement": "STORY"})
    steps = [CONTAINER] + [UPLOADED] * 9 + [UPLOADED, ok(stories=[{"sub_request_status": "SUCCESS", "story": {"id": "story-1"}}])]
    result, error, sent = run(lambda ctx: provider.publish(ctx, request), steps)
    assert error is None and result.platform_post_id == "story-1"
    parts = [form_parts(r) for r in sent[1:10]]
    assert [p["part_number"].text for p in parts] == [str(n) for n in range(1, 10)]
    assert all(len(p["file"].content) <= 64 for p in parts) and decrypt(sent[0], [p["file"].content for p in parts]) == data
    assert json.loads(sent[-1].content) == {"media_id": MEDIA_ID} and sent[-1].url.path.endswith("/stories")


def test_spotlight_sends_description_and_locale():
    request = sample_request(text="Behind the scenes #launch", media=(video_media(),), settings={"placement": "SPOTLIGHT", "locale": "de_DE"})
    steps = [CONTAINER, UPLOADED, UPLOADED, ok(spotlights=[{"sub_request_status": "SUCCESS", "spotlight": {"id": "spot-1"}}])]
    result, error, sent = run(lambda ctx: provider.publish(ctx, request), steps)
    assert error is None and result.platform_post_id == "spot-1" and json.loads(sent[0].content)["type"] == "VIDEO"
    assert json.loads(sent[-1].content) == {"media_id": MEDIA_ID, "description": "Behind the scenes #launch", "locale": "de_DE"}


def test_each_file_gets_its_own_key_and_iv():
    first, second = EncryptedMedia(), EncryptedMedia()
    assert first.key != second.key and first.iv != second.iv
    known = EncryptedMedia(key=b"k" * 32, iv=b"i" * 16)
    sealed = known.update(b"x" * 20) + known.finalize()
    assert len(sealed) == 32 and b"x" * 16 not in sealed


def test_the_code_exchange_records_the_public_profile():
    token = reply(200, json={"access_token": "snap-new", "refresh_token": "snap-r", "expires_in": 3600, "token_type": "Bearer", "scope": "snapchat-profile-api"})
    profiles = ok(public_profiles=[{"sub_request_status": "SUCCESS", "public_profile": {"id": PROFILE_ID, "display_name": "Gate Coffee", "snap_user_name": "gatecoffee"}}])
    exchange = lambda ctx: provider.exchange_code(ctx, code="abc", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="id", client_secret="s")  # noqa: E731
    tokens, error, sent = run(exchange, [token, profiles], credentials={})
    assert error is None and tokens.to_credentials()["profile_id"] == PROFILE_ID
    assert request_line(sent[1]) == "GET https://businessapi.snapchat.com/v1/me/public_profiles" and sent[1].headers["Authorization"] == "Bearer snap-new"
    profile, error, _ = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [profiles])
    assert error is None and (profile.external_id, profile.handle) == (PROFILE_ID, "gatecoffee")
    _, error, _ = run(exchange, [token, ok(public_profiles=[])], credentials={})
    assert isinstance(error, Rejected) and error.code == "NO_PUBLIC_PROFILE"


def test_profile_stats_ask_within_the_past_90_days():
    _, error, sent = run(provider.fetch_account_metrics, TestSnapchatConformance.account_metrics_success)
    params = sent[0].url.params
    assert error is None and sent[0].url.path == f"/v1/public_profiles/{PROFILE_ID}/stats"
    assert (params["assetType"], params["granularity"], params["fields"]) == ("PROFILE", "LIFETIME", "subscribers")
    assert (params["startTime"], params["endTime"]) == ("2025-10-18T00:00:00Z", "2026-01-15T00:00:00Z")  # 89 days before the kit's clock
    invalid = snap_error(400, "Invalid request", "Field subscribers is not valid for asset type PROFILE")
    _, error, _ = run(provider.fetch_account_metrics, [invalid])
    assert isinstance(error, Rejected)


def test_a_saved_story_without_text_is_sent_without_a_title():
    request = sample_request(text="", media=(image_media(),))
    _, error, sent = run(lambda ctx: provider.publish(ctx, request), [CONTAINER, UPLOADED, UPLOADED, saved_story()])
    assert error is None and json.loads(sent[-1].content) == {"saved_stories": [{"snap_sources": [{"media_id": MEDIA_ID}]}]}
