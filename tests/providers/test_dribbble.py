"""Dribbble v2 through the conformance kit, replaying the API's real request and response shapes."""

import asyncio
import urllib.parse

import httpx

from plugins.dribbble import Dribbble
from providers import AuthExpired, DraftMedia, PostDraft, PublishMedia, PublishRequest, RateLimited, Rejected, TransientError, Unconfirmed
from providers.calls import BytesSource
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from tests.providers.multipart import form_parts

TOKEN = "6a8f3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
CREDENTIALS = {"access_token": TOKEN}
KEY = "tgt_conformance0000000000001"
provider = Dribbble()


def shot_image(width=800, height=600, kind="image", mime="image/png"):
    return PublishMedia(kind=kind, mime_type=mime, size_bytes=4, url="https://gw.example/m/shot.png", source=BytesSource(b"\x89PNG"), width=width, height=height, filename="shot.png")


ACCEPTED = reply(202, text="", headers={"Location": "https://api.dribbble.com/v2/shots/472178", "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "1768478460"})
SETTINGS = {"title": "Dashboard concept", "tags": "ui, dashboard ,dark mode", "low_profile": True}


def shot(shot_id=472178, title="Dashboard concept"):
    """A shot as ``GET /v2/user/shots`` lists it."""
    return {
        "id": shot_id, "title": title, "description": "<p>Dark mode</p>", "width": 400, "height": 300,
        "images": {"hidpi": None, "normal": "https://cdn.dribbble.com/users/1/screenshots/472178/shot.png", "teaser": "https://cdn.dribbble.com/users/1/screenshots/472178/shot_teaser.png"},
        "published_at": "2026-01-15T12:00:05Z", "updated_at": "2026-01-15T12:00:05Z", "html_url": f"https://dribbble.com/shots/{shot_id}-Dashboard-concept",
        "animated": False, "tags": ["ui", "dashboard"], "attachments": [], "projects": [], "team": None, "video": None, "low_profile": True,
    }


def run(operation, steps, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials))
    return outcome.result, outcome.error, outcome.sent


class TestDribbbleConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Dark mode for the gateway dashboard.", idempotency_key=KEY, media=(shot_image(),), settings=SETTINGS)
    success = [ACCEPTED]
    expected_post_id = "472178"
    expected_url = "https://dribbble.com/shots/472178"
    error_cases = [
        ErrorCase("429 until the reset time", [reply(429, json={"message": "API rate limit exceeded."}, headers={"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(FIXED_NOW.timestamp()) + 42)})], RateLimited, retry_after=42),
        ErrorCase("401", [reply(401, json={"message": "Bad credentials"})], AuthExpired),
        ErrorCase("422 image", [reply(422, json={"message": "Validation failed.", "errors": [{"attribute": "image", "message": "must be exactly 400x300 or 800x600"}]})], Rejected, code="INVALID_IMAGE"),
        ErrorCase("422 title", [reply(422, json={"message": "Validation failed.", "errors": [{"attribute": "title", "message": "can't be blank"}]})], Rejected, code="INVALID_TITLE"),
        ErrorCase("400 parsing", [reply(400, json={"message": "Problem parsing JSON."})], Rejected),
        ErrorCase("403 not a player", [reply(403, json={"message": "You are not authorized to upload shots."})], Rejected, code="FORBIDDEN"),
        ErrorCase("502", [reply(502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})], TransientError),
        ErrorCase("a 202 without Location", [reply(202, text="")], Unconfirmed),
    ]
    platform_rejects = [
        RejectedDraft("not 400x300 or 800x600", PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=1600, height=1200),), settings=SETTINGS), "IMAGE_DIMENSIONS_NOT_SUPPORTED"),
        RejectedDraft("portrait", PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=300, height=400),), settings=SETTINGS), "IMAGE_DIMENSIONS_NOT_SUPPORTED"),
        RejectedDraft("8 MB", PostDraft(text="", media=(DraftMedia("image", "image/png", 8 * 1024 * 1024 + 1, width=800, height=600),), settings=SETTINGS), "MEDIA_TOO_LARGE"),
        RejectedDraft("a shot is an image", PostDraft(text="", settings=SETTINGS), "MEDIA_REQUIRED"),
        RejectedDraft("one image", PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=400, height=300),) * 2, settings=SETTINGS), "TOO_MANY_MEDIA"),
        RejectedDraft("no video", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 10),), settings=SETTINGS), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("12 tags", PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=400, height=300),), settings={**SETTINGS, "tags": ",".join(f"t{n}" for n in range(13))}), "TOO_MANY_TAGS"),
        RejectedDraft("a title", PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=400, height=300),)), "SETTING_REQUIRED"),
    ]
    platform_accepts = [
        PostDraft(text="", media=(DraftMedia("image", "image/png", 10, width=400, height=300),), settings={**SETTINGS, "tags": ",".join(f"t{n}" for n in range(12))}),
        PostDraft(text="", media=(DraftMedia("gif", "image/gif", 8 * 1024 * 1024, width=800, height=600),), settings=SETTINGS),
    ]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://api.dribbble.com/v2/shots")
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        parts = form_parts(request)
        assert (parts["title"].text, parts["description"].text, parts["low_profile"].text) == ("Dashboard concept", "Dark mode for the gateway dashboard.", "true")
        assert (parts["image"].filename, parts["image"].content_type, parts["image"].content) == ("shot.png", "image/png", b"\x89PNG")
        tags = [line.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0].decode() for line in request.content.split(b'name="tags[]"')[1:]]
        assert tags == ["ui", "dashboard", "dark mode"]


def test_an_image_of_the_wrong_or_unknown_size_is_refused_before_any_call():
    for width, height in ((1024, 768), (None, None)):
        request = PublishRequest(text="", idempotency_key=KEY, media=(shot_image(width, height),), settings=SETTINGS)
        _, error, sent = run(lambda ctx, r=request: provider.publish(ctx, r), [])
        assert isinstance(error, Rejected) and error.code == "IMAGE_DIMENSIONS_NOT_SUPPORTED" and sent == []
    request = PublishRequest(text="", idempotency_key=KEY, media=(shot_image(400, 300),), settings={"title": "Small", "team_id": "39"})
    result, error, sent = run(lambda ctx: provider.publish(ctx, request), [ACCEPTED])
    assert error is None and result.platform_post_id == "472178"
    parts = form_parts(sent[0])
    assert (parts["team_id"].text, parts["low_profile"].text) == ("39", "false") and "tags[]" not in parts


def test_reconcile_finds_the_shot_sent_since_the_first_attempt_by_title():
    store = MemoryProviderStore()
    request = PublishRequest(text="", idempotency_key=KEY, media=(shot_image(),), settings=SETTINGS)
    outcome = asyncio.run(call_scripted(provider, [], lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS, store=store))
    assert (outcome.result, outcome.error, outcome.sent) == (None, None, [])  # never sent
    outcome = asyncio.run(call_scripted(provider, [httpx.ReadTimeout("no answer")], lambda ctx: provider.publish(ctx, request), credentials=CREDENTIALS, store=store))
    assert isinstance(outcome.error, Unconfirmed)

    def reconcile(steps):
        outcome = asyncio.run(call_scripted(provider, steps, lambda ctx: provider.reconcile(ctx, request), credentials=CREDENTIALS, store=store))
        return outcome.result, outcome.error, outcome.sent

    found, error, sent = reconcile([reply(200, json=[shot(1, "Other"), shot()])])
    assert error is None and found.platform_post_id == "472178" and found.url == "https://dribbble.com/shots/472178-Dashboard-concept"
    assert str(sent[0].url) == "https://api.dribbble.com/v2/user/shots?per_page=30" and sent[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert reconcile([reply(200, json=[shot(1, "Other")])])[:2] == (None, None)
    last_year = {**shot(9), "published_at": "2025-01-15T12:00:00Z"}  # the same title a year ago is another shot
    assert reconcile([reply(200, json=[last_year])])[:2] == (None, None)


def test_oauth_scopes_the_code_exchange_and_connect():
    url = provider.auth.authorization_url(client_id="abc", redirect_uri="https://gw.example/cb", state="s")
    assert url.startswith("https://dribbble.com/oauth/authorize?") and "scope=public+upload" in url
    assert provider.auth.refreshable is False
    tokens, error, sent = run(
        lambda ctx: provider.exchange_code(ctx, code="c0de", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="abc", client_secret="s3cret"),
        [reply(200, json={"access_token": TOKEN, "token_type": "bearer", "scope": "public upload", "created_at": 1768478400})], credentials={},
    )
    assert error is None and tokens.access_token == TOKEN and tokens.expires_at is None and tokens.scopes == ("public", "upload")
    assert str(sent[0].url) == "https://dribbble.com/oauth/token"
    assert urllib.parse.parse_qs(sent[0].content.decode()) == {"client_id": ["abc"], "client_secret": ["s3cret"], "code": ["c0de"], "redirect_uri": ["https://gw.example/cb"]}
    me = {"id": 1, "name": "Dan Cederholm", "login": "simplebits", "html_url": "https://dribbble.com/simplebits", "avatar_url": "https://cdn.dribbble.com/users/1/avatars/normal/dc.jpg",
          "bio": "", "location": "Salem, MA", "links": {}, "can_upload_shot": True, "pro": True, "followers_count": 29262, "created_at": "2009-07-08T02:51:22Z", "type": "User", "teams": []}
    profile, error, sent = run(lambda ctx: provider.connect(ctx, {"access_token": TOKEN}), [reply(200, json=me)])
    assert error is None and (profile.external_id, profile.handle, profile.display_name) == ("1", "simplebits", "Dan Cederholm")
    assert str(sent[0].url) == "https://api.dribbble.com/v2/user"
    _, error, _ = run(lambda ctx: provider.connect(ctx, {"access_token": TOKEN}), [reply(200, json={**me, "can_upload_shot": False})])
    assert isinstance(error, Rejected) and error.code == "CANNOT_UPLOAD_SHOTS"


def test_delete_and_a_shot_already_gone():
    _, error, sent = run(lambda ctx: provider.delete(ctx, "472178"), [reply(204)])
    assert error is None and (sent[0].method, str(sent[0].url)) == ("DELETE", "https://api.dribbble.com/v2/shots/472178")
    _, error, _ = run(lambda ctx: provider.delete(ctx, "472178"), [reply(404, json={"message": "Not found"})])
    assert error is None


def test_the_plugin_is_registered_under_its_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.dribbble

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["dribbble"] == "plugins.dribbble"
    assert [p.id for p in plugins.dribbble.register_providers()] == ["dribbble"]
