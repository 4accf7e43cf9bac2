"""Pinterest v5 through the conformance kit, replaying the API's real request and response shapes."""

import asyncio
import base64
import json
import urllib.parse

from plugins.pinterest import Pinterest, day_figures
from providers import AuthExpired, DraftMedia, PostDraft, Processing, PublishMedia, PublishRequest, RateLimited, Rejected, TransientError
from providers.calls import BytesSource
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from tests.providers.multipart import field_names, form_parts

TOKEN = "pina_AMAZRGIWAAAAAAAAAGADEBW3W7D3RBQBACGSPLE2VQ"
CREDENTIALS = {"access_token": TOKEN}
KEY = "tgt_conformance0000000000001"
BOARD = "549755885175"
provider = Pinterest()


def image(n=1, alt=""):
    return PublishMedia(kind="image", mime_type="image/png", size_bytes=10, url=f"https://gw.example/m/{n}.png", source=BytesSource(b"png"), alt_text=alt)


VIDEO = PublishMedia(kind="video", mime_type="video/mp4", size_bytes=3, url="https://gw.example/m/v.mp4", source=BytesSource(b"mp4"), filename="clip.mp4")


def pin(pin_id="813744226420795884", **fields):
    """A Pin as ``POST /v5/pins`` returns it."""
    return {
        "id": pin_id, "created_at": "2026-01-15T12:00:00", "link": None, "title": None, "description": "Spring palette",
        "alt_text": None, "board_id": BOARD, "board_section_id": None, "board_owner": {"username": "gatepins"},
        "media": {"media_type": "image", "images": {"150x150": {"width": 150, "height": 150, "url": "https://i.pinimg.com/150x150/a.jpg"}}},
        "parent_pin_id": None, "is_owner": True, "note": None, "creative_type": "REGULAR", **fields,
    }


def run(operation, steps, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials))
    return outcome.result, outcome.error, outcome.sent


def analytics(*days):
    return {"all": {"daily_metrics": list(days), "lifetime_metrics": {}, "summary_metrics": {}}}


def day(date, status="READY", **metrics):
    return {"date": date, "data_status": status, "metrics": metrics}


USER_ACCOUNT = {
    "account_type": "BUSINESS", "id": "1104155920336418213", "profile_image": "https://i.pinimg.com/75x75_RS/a.jpg",
    "website_url": "https://socialgate.example", "username": "gatepins", "about": "", "business_name": "Socialgate",
    "board_count": 3, "pin_count": 41, "follower_count": 120, "following_count": 8, "monthly_views": 5400,
}


MEDIA_REGISTERED = {
    "media_id": "12345", "media_type": "video", "upload_url": "https://pinterest-media-upload.s3-accelerate.amazonaws.com/",
    "upload_parameters": {
        "x-amz-date": "20260115T120000Z", "x-amz-signature": "5c7c5a5d", "x-amz-security-token": "IQoJb3JpZ2luX2Vj",
        "x-amz-algorithm": "AWS4-HMAC-SHA256", "key": "uploads/12/34/5/12345.mp4", "policy": "eyJleHBpcmF0aW9u",
        "x-amz-credential": "ASIA/20260115/us-east-1/s3/aws4_request", "Content-Type": "multipart/form-data",
    },
}
VIDEO_REQUEST = PublishRequest(text="Clip", idempotency_key=KEY, media=(VIDEO,), settings={"board_id": BOARD, "cover_image_url": "https://gw.example/c.png"})


def media_status(status, media_id="12345"):
    """``GET /v5/media/{media_id}``: the registered video's processing status."""
    return reply(200, json={"media_id": media_id, "media_type": "video", "status": status})


class TestPinterestConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Spring palette", idempotency_key=KEY, media=(image(alt="Five swatches"),), settings={"board_id": BOARD, "title": "Spring", "link": "https://socialgate.example/spring"})
    success = [reply(201, json=pin())]
    expected_post_id = "813744226420795884"
    expected_url = "https://www.pinterest.com/pin/813744226420795884/"
    error_cases = [
        ErrorCase("429", [reply(429, json={"code": 8, "message": "You have exceeded your rate limit. Try again later."}, headers={"Retry-After": "60"})], RateLimited, retry_after=60),
        ErrorCase("401", [reply(401, json={"code": 2, "message": "Authentication failed."})], AuthExpired),
        ErrorCase("404 board", [reply(404, json={"code": 40, "message": "Board not found."})], Rejected, code="NOT_FOUND"),
        ErrorCase("400", [reply(400, json={"code": 1, "message": "Invalid request: 'link' is not a valid URL"})], Rejected, code="INVALID_PARAMETERS"),
        ErrorCase("503", [reply(503, text="<html>Service Unavailable</html>", headers={"Content-Type": "text/html"})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("description 500", PostDraft(text="a" * 501, media=(DraftMedia("image", "image/png", 1),), settings={"board_id": BOARD}), "TEXT_TOO_LONG"),
        RejectedDraft("a pin needs media", PostDraft(text="hi", settings={"board_id": BOARD}), "MEDIA_REQUIRED"),
        RejectedDraft("5 images", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),) * 6, settings={"board_id": BOARD}), "TOO_MANY_MEDIA"),
        RejectedDraft("title 100", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),), settings={"board_id": BOARD, "title": "t" * 101}), "TITLE_TOO_LONG"),
        RejectedDraft("link 2048", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),), settings={"board_id": BOARD, "link": "https://a.example/" + "p" * 2031}), "LINK_TOO_LONG"),
        RejectedDraft("link must be a URL", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),), settings={"board_id": BOARD, "link": "not a url"}), "SETTING_INVALID"),
        RejectedDraft("video alone", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 1), DraftMedia("image", "image/png", 1)), settings={"board_id": BOARD}), "MEDIA_COMBINATION_NOT_SUPPORTED"),
        RejectedDraft("the board is required", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),)), "SETTING_REQUIRED"),
    ]
    platform_accepts = [
        PostDraft(text="a" * 500, media=(DraftMedia("image", "image/png", 1),) * 5, settings={"board_id": BOARD, "title": "t" * 100, "link": "https://a.example/" + "p" * 2030}),
    ]
    metrics_ids = ["813744226420795884"]
    metrics_success = [reply(200, json=analytics(
        day("2026-01-13", IMPRESSION=40, SAVE=2, PIN_CLICK=5, OUTBOUND_CLICK=1), day("2026-01-14", IMPRESSION=60, SAVE=1, PIN_CLICK=0, OUTBOUND_CLICK=3),
        day("2026-01-15", "PROCESSING"),
    ))]
    expected_metrics = {"813744226420795884": {"views": 100, "saves": 3, "clicks": 5}}
    metrics_omitting = [reply(200, json=analytics(day("2026-01-14", IMPRESSION=60, PIN_CLICK=0, OUTBOUND_CLICK=3)))]
    omitted_figure = ("813744226420795884", "saves")
    account_metrics_success = [reply(200, json=USER_ACCOUNT)]
    expected_account_metrics = {"followers": 120, "following": 8, "posts": 41}

    # A video: registered and uploaded (Processing), still "processing" at the first poll,
    # "succeeded" at the second (the Pin is created then); the failure is Pinterest's "failed".
    processing_request = VIDEO_REQUEST
    processing_publish = [reply(201, json=MEDIA_REGISTERED), reply(204)]
    processing_polls = [[media_status("processing")], [media_status("succeeded"), reply(201, json=pin("99"))]]
    processing_expected_post_id = "99"
    processing_failed = [media_status("failed")]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://api.pinterest.com/v5/pins")
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert json.loads(request.content) == {
            "board_id": BOARD, "description": "Spring palette", "title": "Spring", "link": "https://socialgate.example/spring",
            "alt_text": "Five swatches", "media_source": {"source_type": "image_url", "url": "https://gw.example/m/1.png"},
        }


def publish(request):
    return lambda ctx: provider.publish(ctx, request)


def test_several_images_become_a_multiple_image_urls_pin():
    request = PublishRequest(text="Palettes", idempotency_key=KEY, media=(image(1), image(2), image(3)), settings={"board_id": BOARD})
    result, error, sent = run(publish(request), [reply(201, json=pin("1"))])
    assert error is None and result.platform_post_id == "1"
    assert json.loads(sent[0].content)["media_source"] == {
        "source_type": "multiple_image_urls", "items": [{"url": f"https://gw.example/m/{n}.png"} for n in (1, 2, 3)],
    }


def test_a_video_is_registered_uploaded_and_answers_processing_without_creating_a_pin():
    request = PublishRequest(text="Clip", idempotency_key=KEY, media=(VIDEO,), settings={"board_id": BOARD})
    result, error, sent = run(publish(request), [reply(201, json=MEDIA_REGISTERED), reply(204)])
    assert error is None
    assert isinstance(result, Processing) and dict(result.handle) == {"media_id": "12345"} and not result.published
    assert [(r.method, str(r.url)) for r in sent] == [
        ("POST", "https://api.pinterest.com/v5/media"), ("POST", "https://pinterest-media-upload.s3-accelerate.amazonaws.com/"),
    ]
    assert json.loads(sent[0].content) == {"media_type": "video"}
    assert "authorization" not in sent[1].headers  # the pre-signed form is the upload's only credential
    parts = form_parts(sent[1])
    assert {k: parts[k].text for k in MEDIA_REGISTERED["upload_parameters"]} == MEDIA_REGISTERED["upload_parameters"]
    assert (parts["file"].filename, parts["file"].content) == ("clip.mp4", b"mp4")
    assert field_names(sent[1])[-1] == "file"  # S3 ignores fields after the file


def test_poll_waits_while_processing_then_creates_the_video_pin():
    request = VIDEO_REQUEST
    handle = {"media_id": "12345"}
    result, error, sent = run(lambda ctx: provider.poll(ctx, request, handle), [media_status("processing")])
    assert error is None and isinstance(result, Processing) and dict(result.handle) == handle and result.stage == "processing"
    assert (sent[0].method, str(sent[0].url)) == ("GET", "https://api.pinterest.com/v5/media/12345")

    steps = [media_status("succeeded"), reply(201, json=pin("99"))]
    result, error, sent = run(lambda ctx: provider.poll(ctx, request, handle), steps)
    assert error is None and result.platform_post_id == "99" and result.url == "https://www.pinterest.com/pin/99/"
    assert json.loads(sent[1].content)["media_source"] == {"source_type": "video_id", "media_id": "12345", "cover_image_url": "https://gw.example/c.png"}


def test_a_video_without_a_cover_uses_the_first_frame_and_a_failed_one_is_rejected():
    request = PublishRequest(text="Clip", idempotency_key=KEY, media=(VIDEO,), settings={"board_id": BOARD})
    steps = [media_status("succeeded", "1"), reply(201, json=pin("7"))]
    _, error, sent = run(lambda ctx: provider.poll(ctx, request, {"media_id": "1"}), steps)
    assert error is None and json.loads(sent[1].content)["media_source"]["cover_image_key_frame_time"] == 0
    _, error, sent = run(lambda ctx: provider.poll(ctx, request, {"media_id": "1"}), [media_status("failed", "1")])
    assert isinstance(error, Rejected) and error.code == "MEDIA_PROCESSING_FAILED" and len(sent) == 1  # no pin created


def test_boards_are_the_board_settings_choices_across_pages():
    page1 = {"items": [{"id": "1", "name": "Recipes", "privacy": "PUBLIC", "description": "", "owner": {"username": "gatepins"}}], "bookmark": "Y2JVSG81V2sxcmNHRll"}
    page2 = {"items": [{"id": "2", "name": "Drafts", "privacy": "SECRET", "description": "", "owner": {"username": "gatepins"}}], "bookmark": None}
    choices, error, sent = run(lambda ctx: provider.setting_choices(ctx, "board_id"), [reply(200, json=page1), reply(200, json=page2)])
    assert error is None
    assert [(c.value, c.label, dict(c.extra)) for c in choices] == [("1", "Recipes", {"privacy": "PUBLIC"}), ("2", "Drafts", {"privacy": "SECRET"})]
    assert [str(r.url) for r in sent] == [
        "https://api.pinterest.com/v5/boards?page_size=250", "https://api.pinterest.com/v5/boards?page_size=250&bookmark=Y2JVSG81V2sxcmNHRll",
    ]
    assert sent[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_analytics_ask_for_the_last_90_days_and_a_day_not_ready_is_null():
    assert day_figures(day("2026-01-15", "PROCESSING", IMPRESSION=5)) == {"views": None, "saves": None, "clicks": None, "outbound_clicks": None}
    assert day_figures(day("2026-01-14", IMPRESSION=5, SAVE=0))["saves"] == 0
    steps = [reply(200, json=analytics(day("2026-01-14", IMPRESSION=60, SAVE=0, PIN_CLICK=4, OUTBOUND_CLICK=3))), reply(404, json={"code": 50, "message": "Pin not found."})]
    snapshots, error, sent = run(lambda ctx: provider.fetch_metrics(ctx, ["5", "6"]), steps)
    assert error is None
    query = urllib.parse.parse_qs(sent[0].url.query.decode())
    assert str(sent[0].url).startswith("https://api.pinterest.com/v5/pins/5/analytics?")
    assert query == {"start_date": ["2025-10-18"], "end_date": ["2026-01-15"], "metric_types": ["IMPRESSION,SAVE,PIN_CLICK,OUTBOUND_CLICK"]}
    (snapshot,) = snapshots  # pin 6 is gone
    assert (snapshot.views, snapshot.saves, snapshot.clicks, dict(snapshot.extra)) == (60, 0, 4, {"outbound_clicks": 3})
    # Every day still processing: nothing measured yet, so None rather than 0.
    snapshots, _, _ = run(lambda ctx: provider.fetch_metrics(ctx, ["5"]), [reply(200, json=analytics(day("2026-01-15", "PROCESSING")))])
    assert snapshots[0].figures()["views"] is None


def test_oauth_uses_comma_scopes_and_basic_client_auth():
    url = provider.auth.authorization_url(client_id="1234", redirect_uri="https://gw.example/oauth/callback", state="s")
    assert url.startswith("https://www.pinterest.com/oauth/?")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["scope"] == ["boards:read,boards:write,pins:read,pins:write,user_accounts:read"]
    body = {"access_token": TOKEN, "refresh_token": "pinr_R", "response_type": "authorization_code", "token_type": "bearer", "expires_in": 2592000,
            "refresh_token_expires_in": 31536000, "scope": "boards:read,boards:write,pins:read,pins:write,user_accounts:read"}
    tokens, error, sent = run(
        lambda ctx: provider.exchange_code(ctx, code="c0de", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="1234", client_secret="s3cret"),
        [reply(200, json=body)],
    )
    assert error is None and tokens.access_token == TOKEN and tokens.refresh_token == "pinr_R" and "pins:write" in tokens.scopes
    assert str(sent[0].url) == "https://api.pinterest.com/v5/oauth/token"
    assert sent[0].headers["authorization"] == "Basic " + base64.b64encode(b"1234:s3cret").decode()
    assert urllib.parse.parse_qs(sent[0].content.decode()) == {"grant_type": ["authorization_code"], "code": ["c0de"], "redirect_uri": ["https://gw.example/cb"]}
    _, error, sent = run(lambda ctx: provider.refresh_token(ctx, client_id="1234", client_secret="s3cret"), [reply(400, json={"code": 1, "message": "Invalid refresh token"})],
                         credentials={**CREDENTIALS, "refresh_token": "pinr_R"})
    assert isinstance(error, AuthExpired)
    assert urllib.parse.parse_qs(sent[0].content.decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["pinr_R"]}


def test_connect_reads_the_user_account_and_delete_accepts_a_pin_already_gone():
    profile, error, sent = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [reply(200, json=USER_ACCOUNT)])
    assert error is None and (profile.external_id, profile.handle, profile.display_name) == ("1104155920336418213", "gatepins", "Socialgate")
    assert str(sent[0].url) == "https://api.pinterest.com/v5/user_account"
    _, error, sent = run(lambda ctx: provider.delete(ctx, "99"), [reply(204)])
    assert error is None and (sent[0].method, str(sent[0].url)) == ("DELETE", "https://api.pinterest.com/v5/pins/99")
    _, error, _ = run(lambda ctx: provider.delete(ctx, "99"), [reply(404, json={"code": 50, "message": "Pin not found."})])
    assert error is None


def test_the_plugin_is_registered_under_its_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.pinterest

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["pinterest"] == "plugins.pinterest"
    assert [p.id for p in plugins.pinterest.register_providers()] == ["pinterest"]
