"""Reddit through the conformance kit, replaying the OAuth API's real request and response shapes."""

import asyncio
import base64
import json
import urllib.parse
from datetime import timedelta

import httpx

from plugins.reddit import Reddit, subreddit_name
from providers import (
    AuthExpired,
    DraftMedia,
    PostDraft,
    Processing,
    PublishMedia,
    PublishRequest,
    RateLimited,
    Rejected,
    TransientError,
    Unconfirmed,
)
from providers.calls import BytesSource
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from tests.providers.multipart import field_names, form_parts

TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6IlNIQTI1NjpzS3dsMnlsV0VtMjVmcXhwTU40cWY4MXE2OWFFdWFyMnpLMUdhVGxjdWNZIiwidHlwIjoiSldUIn0"
CREDENTIALS = {"access_token": TOKEN, "refresh_token": "1234-rEfReSh", "username": "gate_bot"}
KEY = "tgt_conformance0000000000001"
UA = "server:socialgate:1 (by /u/gate_bot)"
NOW = FIXED_NOW.timestamp()
provider = Reddit()
SETTINGS = {"subreddit": "r/socialgate", "title": "Release 2.0 is out"}


def form(request):
    return {k: v[0] for k, v in urllib.parse.parse_qs(request.content.decode()).items()}


def submitted(name="t3_1h2k3l4"):
    """``POST /api/submit`` (api_type=json) for a self or link post."""
    short = name[3:]
    return {"json": {"errors": [], "data": {"url": f"https://www.reddit.com/r/socialgate/comments/{short}/release_20_is_out/", "drafts_count": 0, "id": short, "name": name}}}


def errors(*triples, **extra):
    return {"json": {"errors": [list(t) for t in triples], **extra}}


MEDIA_SUBMITTED = {"json": {"errors": [], "data": {
    "user_submitted_page": "https://www.reddit.com/user/gate_bot/submitted/",
    "websocket_url": "wss://ws-078adc7cb2099a9df.wss.redditmedia.com/rte_images/z7n0s3gqx4oe1?m=AQAA7rp",
}}}


def lease(key="rte_images/z7n0s3gqx4oe1", mime="image/png"):
    """``POST /api/media/asset.json``: a signed S3 form for Reddit's media bucket."""
    return {
        "args": {"action": "//reddit-uploaded-media.s3-accelerate.amazonaws.com", "fields": [
            {"name": "acl", "value": "private"}, {"name": "key", "value": key},
            {"name": "X-Amz-Credential", "value": "ASIATHKEMUQNYHD2DF6A/20260115/us-east-1/s3/aws4_request"},
            {"name": "X-Amz-Algorithm", "value": "AWS4-HMAC-SHA256"}, {"name": "X-Amz-Date", "value": "20260115T120000Z"},
            {"name": "success_action_status", "value": "201"}, {"name": "content-type", "value": mime},
            {"name": "policy", "value": "eyJleHBpcmF0aW9uIjog"}, {"name": "X-Amz-Signature", "value": "b1f7a6"},
        ]},
        "asset": {"asset_id": key.split("/")[-1], "processing_state": "incomplete", "payload": {"filepath": "image.png"}, "websocket_url": "wss://ws.example"},
    }


S3_CREATED = reply(201, text="<PostResponse><Location>https://reddit-uploaded-media.s3-accelerate.amazonaws.com/rte_images%2Fz7n0s3gqx4oe1</Location></PostResponse>", headers={"Content-Type": "application/xml"})


def listing(*posts):
    return {"kind": "Listing", "data": {"after": None, "dist": len(posts), "children": [{"kind": "t3", "data": p} for p in posts], "before": None}}


def post(name="t3_1h2k3l4", title="Release 2.0 is out", subreddit="socialgate", created=NOW, **fields):
    short = name[3:]
    return {
        "subreddit": subreddit, "title": title, "name": name, "id": short, "author": "gate_bot", "created_utc": created,
        "permalink": f"/r/{subreddit}/comments/{short}/release_20_is_out/", "score": 12, "ups": 12, "upvote_ratio": 0.93,
        "num_comments": 3, "over_18": False, "spoiler": False, **fields,
    }


def run(operation, steps, credentials=CREDENTIALS, store=None):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials, store=store))
    return outcome.result, outcome.error, outcome.sent


def image(kind="image", mime="image/png", name="chart.png"):
    return PublishMedia(kind=kind, mime_type=mime, size_bytes=3, url=f"https://gw.example/{name}", source=BytesSource(name.encode()), filename=name)


IMAGE_REQUEST = PublishRequest(text="", idempotency_key=KEY, media=(image(),), settings=SETTINGS)
OLDER = post("t3_old", created=NOW - 3600)  # the same title an hour earlier is another post
MINE = post("t3_1h2k3l9", created=NOW + 5)


class TestRedditConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    request = PublishRequest(text="Changelog inside.", idempotency_key=KEY, settings={**SETTINGS, "flair_id": "9c5d1e0c-2a5b", "spoiler": True})
    success = [reply(200, json=submitted(), headers={"X-Ratelimit-Used": "3", "X-Ratelimit-Remaining": "97.0", "X-Ratelimit-Reset": "412"})]
    expected_post_id = "t3_1h2k3l4"
    expected_url = "https://www.reddit.com/r/socialgate/comments/1h2k3l4/release_20_is_out/"
    error_cases = [
        ErrorCase("RATELIMIT in a 200", [reply(200, json=errors(["RATELIMIT", "Looks like you've been doing that a lot. Take a break for 9 minutes before trying again.", "ratelimit"], ratelimit=548.0))], RateLimited, code="RATELIMIT", retry_after=548.0),
        ErrorCase("429 with the window's reset", [reply(429, json={"message": "Too Many Requests", "error": 429}, headers={"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "120", "X-Ratelimit-Used": "100"})], RateLimited, retry_after=120),
        ErrorCase("SUBREDDIT_NOEXIST in a 200", [reply(200, json=errors(["SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr"]))], Rejected, code="SUBREDDIT_NOEXIST"),
        ErrorCase("flair required", [reply(200, json=errors(["SUBMIT_VALIDATION_FLAIR_REQUIRED", "Your post must contain post flair.", "flair"]))], Rejected, code="SUBMIT_VALIDATION_FLAIR_REQUIRED"),
        ErrorCase("NO_SELFS", [reply(200, json=errors(["NO_SELFS", "This community doesn't allow text posts.", "sr"]))], Rejected, code="NO_SELFS"),
        ErrorCase("USER_REQUIRED", [reply(200, json=errors(["USER_REQUIRED", "Please log in to do that.", None]))], AuthExpired, code="USER_REQUIRED"),
        ErrorCase("401", [reply(401, json={"message": "Unauthorized", "error": 401})], AuthExpired),
        ErrorCase("403 banned", [reply(403, json={"message": "Forbidden", "error": 403})], Rejected, code="FORBIDDEN"),
        ErrorCase("503", [reply(503, text="<html>all of our servers are busy right now</html>", headers={"Content-Type": "text/html"})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("title 300", PostDraft(text="", settings={**SETTINGS, "title": "t" * 301}), "TITLE_TOO_LONG"),
        RejectedDraft("selftext 40,000", PostDraft(text="a" * 40_001, settings=SETTINGS), "TEXT_TOO_LONG"),
        RejectedDraft("a subreddit name", PostDraft(text="", settings={**SETTINGS, "subreddit": "r/not a name"}), "SETTING_INVALID"),
        RejectedDraft("a title is required", PostDraft(text="", settings={"subreddit": "pics"}), "SETTING_REQUIRED"),
        RejectedDraft("a blank title", PostDraft(text="", settings={**SETTINGS, "title": "  "}), "SETTING_REQUIRED"),
        RejectedDraft("a video needs its poster", PostDraft(text="", media=(DraftMedia("video", "video/mp4", 1),), settings=SETTINGS), "VIDEO_POSTER_REQUIRED"),
        RejectedDraft("no galleries", PostDraft(text="", media=(DraftMedia("image", "image/png", 1),) * 2, settings=SETTINGS), "TOO_MANY_MEDIA"),
        RejectedDraft("a link is a URL", PostDraft(text="", settings={**SETTINGS, "url": "example.com"}), "SETTING_INVALID"),
    ]
    platform_accepts = [
        PostDraft(text="a" * 40_000, settings={**SETTINGS, "title": "t" * 300}),
        PostDraft(text="", media=(DraftMedia("video", "video/mp4", 1), DraftMedia("image", "image/png", 1)), settings=SETTINGS),
    ]
    metrics_ids = ["t3_1h2k3l4", "1h2k3l5"]
    metrics_success = [reply(200, json=listing(post(), post("t3_1h2k3l5", score=0, ups=0, num_comments=0)))]
    expected_metrics = {"t3_1h2k3l4": {"likes": 12, "comments": 3}, "t3_1h2k3l5": {"likes": 0, "comments": 0}}
    metrics_omitting = [reply(200, json=listing({k: v for k, v in post().items() if k != "num_comments"}))]
    omitted_figure = ("t3_1h2k3l4", "comments")
    # An image: uploaded and submitted (Processing: Reddit names no id yet), not yet in the
    # account's submissions at the first poll, there at the second.
    processing_request = IMAGE_REQUEST
    processing_publish = [reply(200, json=lease()), S3_CREATED, reply(200, json=MEDIA_SUBMITTED)]
    processing_polls = [[reply(200, json=listing(OLDER))], [reply(200, json=listing(MINE, OLDER))]]
    processing_expected_post_id = "t3_1h2k3l9"
    processing_failure_unseen = (
        "Reddit reports a failed media upload only on the submission's websocket (PRAW's MediaPostFailed): "
        "the post never appears in the account's submissions, and the Processing deadline (2 hours) ends the target"
    )

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://oauth.reddit.com/api/submit")
        assert request.headers["authorization"] == f"bearer {TOKEN}"
        assert request.headers["user-agent"] == UA
        assert form(request) == {
            "api_type": "json", "sr": "socialgate", "title": "Release 2.0 is out", "kind": "self", "text": "Changelog inside.",
            "resubmit": "true", "sendreplies": "true", "nsfw": "false", "spoiler": "true", "flair_id": "9c5d1e0c-2a5b",
        }


def publish(request):
    return lambda ctx: provider.publish(ctx, request)


def test_a_link_post_sends_the_url_and_nsfw():
    request = PublishRequest(text="ignored", idempotency_key=KEY, settings={**SETTINGS, "url": "https://socialgate.example/2.0", "nsfw": True, "send_replies": False})
    result, error, sent = run(publish(request), [reply(200, json=submitted())])
    assert error is None and result.platform_post_id == "t3_1h2k3l4"
    sent_form = form(sent[0])
    assert (sent_form["kind"], sent_form["url"], sent_form["nsfw"], sent_form["sendreplies"]) == ("link", "https://socialgate.example/2.0", "true", "false")
    assert "text" not in sent_form


def test_an_image_is_uploaded_submitted_and_found_again_in_the_users_submissions():
    store = MemoryProviderStore()
    request = IMAGE_REQUEST
    result, error, sent = run(publish(request), [reply(200, json=lease()), S3_CREATED, reply(200, json=MEDIA_SUBMITTED)], store=store)
    assert error is None
    assert [(r.method, str(r.url)) for r in sent] == [
        ("POST", "https://oauth.reddit.com/api/media/asset.json"), ("POST", "https://reddit-uploaded-media.s3-accelerate.amazonaws.com"),
        ("POST", "https://oauth.reddit.com/api/submit"),
    ]
    assert form(sent[0]) == {"filepath": "chart.png", "mimetype": "image/png"}
    parts = form_parts(sent[1])
    assert parts["key"].text == "rte_images/z7n0s3gqx4oe1" and parts["file"].content == b"chart.png"
    assert field_names(sent[1])[-1] == "file" and "authorization" not in sent[1].headers
    assert form(sent[2])["kind"] == "image"
    assert form(sent[2])["url"] == "https://reddit-uploaded-media.s3-accelerate.amazonaws.com/rte_images/z7n0s3gqx4oe1"
    # No id in the answer: processing, already published, found again by listing the submissions.
    assert isinstance(result, Processing) and result.published
    handle = dict(result.handle)
    assert handle == {"subreddit": "socialgate", "title": "Release 2.0 is out", "submitted_at": FIXED_NOW.isoformat()}

    found, error, sent = run(lambda ctx: provider.poll(ctx, request, handle), [reply(200, json=listing(OLDER))])
    assert error is None and isinstance(found, Processing)
    assert str(sent[0].url) == "https://oauth.reddit.com/user/gate_bot/submitted?sort=new&limit=25&raw_json=1"
    found, error, _ = run(lambda ctx: provider.poll(ctx, request, handle), [reply(200, json=listing(post("t3_x", subreddit="pics", created=NOW + 6), MINE, OLDER))])
    assert error is None and found.platform_post_id == "t3_1h2k3l9"
    assert found.url == "https://www.reddit.com/r/socialgate/comments/1h2k3l9/release_20_is_out/"


def test_a_video_uploads_the_video_and_its_poster():
    request = PublishRequest(text="", idempotency_key=KEY, media=(image("video", "video/mp4", "clip.mp4"), image()), settings=SETTINGS)
    steps = [reply(200, json=lease("rte_videos/v1", "video/mp4")), S3_CREATED, reply(200, json=lease("rte_images/p1")), S3_CREATED, reply(200, json=MEDIA_SUBMITTED)]
    result, error, sent = run(publish(request), steps)
    assert error is None and isinstance(result, Processing)
    submit = form(sent[4])
    assert submit["kind"] == "video"
    assert submit["url"] == "https://reddit-uploaded-media.s3-accelerate.amazonaws.com/rte_videos/v1"
    assert submit["video_poster_url"] == "https://reddit-uploaded-media.s3-accelerate.amazonaws.com/rte_images/p1"


def test_reconcile_finds_the_post_submitted_since_the_first_attempt_or_none():
    store = MemoryProviderStore()
    request = PublishRequest(text="Changelog inside.", idempotency_key=KEY, settings=SETTINGS)
    found, error, sent = run(lambda ctx: provider.reconcile(ctx, request), [], store=store)
    assert (found, error, sent) == (None, None, [])  # never submitted: nothing to find, nothing asked
    _, error, _ = run(publish(request), [httpx.ReadTimeout("no answer")], store=store)
    assert isinstance(error, Unconfirmed)
    found, error, _ = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=listing(post(created=NOW + 1)))], store=store)
    assert error is None and found.platform_post_id == "t3_1h2k3l4"
    found, error, _ = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=listing(post(title="Something else", created=NOW + 1)))], store=store)
    assert (found, error) == (None, None)
    # The same title posted a day earlier is another post.
    found, error, _ = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=listing(post(created=NOW - 86400)))], store=store)
    assert (found, error) == (None, None)


def test_when_the_window_is_used_up_the_next_call_waits_without_sending():
    store = MemoryProviderStore()
    request = PublishRequest(text="x", idempotency_key=KEY, settings=SETTINGS)
    headers = {"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "90"}
    result, error, _ = run(publish(request), [reply(200, json=submitted(), headers=headers)], store=store)
    assert error is None and result.platform_post_id == "t3_1h2k3l4"  # the answer that used the window still counts
    _, error, sent = run(publish(request), [], store=store)
    assert isinstance(error, RateLimited) and error.retry_after == 90 and sent == []
    # Once the window has reset, calls go out again.
    asyncio.run(store.put("pace", "until", {"at": (FIXED_NOW - timedelta(seconds=1)).isoformat()}))
    _, error, sent = run(publish(request), [reply(200, json=submitted())], store=store)
    assert error is None and len(sent) == 1


def test_flair_choices_are_read_for_the_subreddit_named_in_the_setting():
    templates = [
        {"id": "9c5d1e0c-2a5b", "text": "Release", "text_editable": False, "type": "text", "mod_only": False, "css_class": "", "background_color": "#0079d3", "text_color": "light", "allowable_content": "all", "max_emojis": 10, "richtext": []},
        {"id": "77aa", "text": "Question", "text_editable": True, "type": "text", "mod_only": False, "css_class": "", "background_color": "", "text_color": "dark", "allowable_content": "all", "max_emojis": 10, "richtext": []},
    ]
    choices, error, sent = run(lambda ctx: provider.setting_choices(ctx, "flair_id:r/socialgate"), [reply(200, json=templates)])
    assert error is None
    assert str(sent[0].url) == "https://oauth.reddit.com/r/socialgate/api/link_flair_v2"
    assert sent[0].headers["user-agent"] == UA
    assert [(c.value, c.label, c.extra["text_editable"]) for c in choices] == [("9c5d1e0c-2a5b", "Release", False), ("77aa", "Question", True)]
    _, error, sent = run(lambda ctx: provider.setting_choices(ctx, "flair_id"), [])
    assert isinstance(error, Rejected) and error.code == "SUBREDDIT_REQUIRED" and sent == []


def test_oauth_asks_for_a_permanent_grant_and_records_the_username():
    url = provider.auth.authorization_url(client_id="cl1ent", redirect_uri="https://gw.example/cb", state="s")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert url.startswith("https://www.reddit.com/api/v1/authorize?") and query["duration"] == ["permanent"]
    assert query["scope"] == ["identity submit flair read history edit"]
    token = {"access_token": TOKEN, "token_type": "bearer", "expires_in": 86400, "refresh_token": "1234-rEfReSh", "scope": "edit flair history identity read submit"}
    me = {"name": "gate_bot", "id": "1w72", "icon_img": "https://styles.redditmedia.com/t5_2/a.png?width=256&amp;s=1", "total_karma": 40, "created_utc": 1500000000.0}
    tokens, error, sent = run(
        lambda ctx: provider.exchange_code(ctx, code="c0de", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="cl1ent", client_secret="s3cret"),
        [reply(200, json=token), reply(200, json=me)], credentials={},
    )
    assert error is None and tokens.extra["username"] == "gate_bot" and tokens.refresh_token == "1234-rEfReSh"
    assert str(sent[0].url) == "https://www.reddit.com/api/v1/access_token"
    assert sent[0].headers["authorization"] == "Basic " + base64.b64encode(b"cl1ent:s3cret").decode()
    assert (str(sent[1].url), sent[1].headers["authorization"], sent[1].headers["user-agent"]) == ("https://oauth.reddit.com/api/v1/me", f"bearer {TOKEN}", "server:socialgate:1 (self-hosted social publishing gateway)")
    profile, error, _ = run(lambda ctx: provider.connect(ctx, tokens.to_credentials()), [reply(200, json=me)])
    assert (profile.external_id, profile.handle, profile.avatar_url) == ("t2_1w72", "u/gate_bot", "https://styles.redditmedia.com/t5_2/a.png")
    refreshed, error, sent = run(lambda ctx: provider.refresh_token(ctx, client_id="cl1ent", client_secret="s3cret"), [reply(200, json={**token, "refresh_token": None})])
    assert error is None and refreshed.extra["username"] == "gate_bot"
    assert form(sent[0]) == {"grant_type": "refresh_token", "refresh_token": "1234-rEfReSh"}
    _, error, _ = run(lambda ctx: provider.refresh_token(ctx, client_id="cl1ent", client_secret="s3cret"), [reply(400, json={"error": "invalid_grant"})])
    assert isinstance(error, AuthExpired)


def test_delete_and_metrics_use_fullnames():
    _, error, sent = run(lambda ctx: provider.delete(ctx, "1h2k3l4"), [reply(200, json={})])
    assert error is None and (sent[0].method, str(sent[0].url), form(sent[0])) == ("POST", "https://oauth.reddit.com/api/del", {"id": "t3_1h2k3l4"})
    snapshots, error, sent = run(lambda ctx: provider.fetch_metrics(ctx, ["t3_a", "b"]), [reply(200, json=listing(post("t3_a", score=10, ups=11)))])
    assert error is None and str(sent[0].url) == "https://oauth.reddit.com/api/info?id=t3_a%2Ct3_b&raw_json=1"
    (snapshot,) = snapshots  # t3_b was removed: Reddit leaves it out
    assert (snapshot.likes, snapshot.comments, dict(snapshot.extra), snapshot.views) == (11, 3, {"score": 10}, None)


def test_subreddit_names():
    assert [subreddit_name(v) for v in ("pics", "r/pics", "/r/AskReddit", "r/a b", "")] == ["pics", "pics", "AskReddit", None, None]
    assert json.dumps(provider.auth.extra_authorize_params["duration"]) == '"permanent"'


def test_the_plugin_is_registered_under_its_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.reddit

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["reddit"] == "plugins.reddit"
    assert [p.id for p in plugins.reddit.register_providers()] == ["reddit"]
