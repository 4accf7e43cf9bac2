"""WordPress providers, replayed against the REST API's real answers (recorded from WordPress 6.1 on
Debian; ``tests/peers/test_wordpress.py`` runs the same provider against a live site)."""

import asyncio
import base64
import json

from plugins.wordpress import WordPress, WordPressCom, generated_slug
from providers import AuthExpired, BytesSource, DraftMedia, PostDraft, PublishMedia, RateLimited, Rejected, TransientError
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, sample_request
from tests.media_samples import png

SITE = "https://blog.example.com"
CREDENTIALS = {"site_url": SITE, "username": "editor", "application_password": "abcd EFGH ijkl MNOP qrst UVWX"}
KEY = "tgt_conformance0000000000001"
TEXT = "Hello from the socialgate conformance kit"
SLUG = generated_slug(TEXT, KEY)


def post(post_id=4, slug=SLUG, title=TEXT, status="publish", site=SITE, **fields):
    """A post as ``POST /wp/v2/posts`` answers it (context edit), trimmed of ``_links``."""
    return {
        "id": post_id, "date": "2026-01-15T12:00:00", "date_gmt": "2026-01-15T12:00:00",
        "guid": {"rendered": f"{site}/?p={post_id}", "raw": f"{site}/?p={post_id}"}, "modified": "2026-01-15T12:00:00",
        "slug": slug, "status": status, "type": "post", "link": f"{site}/{slug}/",
        "title": {"raw": title, "rendered": title}, "content": {"raw": TEXT, "rendered": f"<p>{TEXT}</p>\n", "protected": False, "block_version": 0},
        "excerpt": {"raw": "", "rendered": f"<p>{TEXT}</p>\n", "protected": False}, "author": 1, "featured_media": 0,
        "comment_status": "open", "ping_status": "open", "sticky": False, "template": "", "format": "standard", "meta": [],
        "categories": [1], "tags": [], "permalink_template": f"{site}/%postname%/", "generated_slug": slug, **fields,
    }


def wp_error(status, code, message, **data):
    return reply(status, json={"code": code, "message": message, "data": {"status": status, **data}})


CANNOT_PUBLISH = wp_error(403, "rest_cannot_publish", "Sorry, you are not allowed to publish posts in this post type.")
NOT_LOGGED_IN = wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
provider = WordPress()
com = WordPressCom()


def run(operation, steps, prov=provider, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(prov, steps, operation, credentials=credentials))
    return outcome.result, outcome.error, outcome.sent


class TestWordPressConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    success = [reply(201, json=post(), headers={"Location": f"{SITE}/wp-json/wp/v2/posts/4"})]
    expected_post_id = "4"
    expected_url = f"{SITE}/{SLUG}/"
    error_cases = [
        ErrorCase("application password refused", [NOT_LOGGED_IN], AuthExpired, code="rest_not_logged_in"),
        ErrorCase("a contributor may not publish", [CANNOT_PUBLISH], Rejected, code="rest_cannot_publish"),
        ErrorCase(
            "invalid parameter", [wp_error(400, "rest_invalid_param", "Invalid parameter(s): status", params={"status": "status is not one of publish…"})],
            Rejected, code="rest_invalid_param",
        ),
        ErrorCase("a host's rate limit", [reply(429, text="Too Many Requests", headers={"Retry-After": "120"})], RateLimited, retry_after=120),
        ErrorCase("database down", [reply(500, text="<h1>Error establishing a database connection</h1>", headers={"Content-Type": "text/html"})], TransientError),
    ]
    platform_rejects = [
        RejectedDraft("two images", PostDraft(text="a", media=(DraftMedia("image", "image/png", 10),) * 2), "TOO_MANY_MEDIA"),
        RejectedDraft("a video", PostDraft(text="a", media=(DraftMedia("video", "video/mp4", 10),)), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("category names instead of ids", PostDraft(text="a", settings={"categories": "news,releases"}), "SETTING_INVALID"),
        RejectedDraft("an unknown status", PostDraft(text="a", settings={"status": "future"}), "SETTING_INVALID"),
    ]
    platform_accepts = [PostDraft(text="a" * 100_000, settings={"categories": "1,12", "tags": "7", "status": "draft", "slug": "my-post"})]

    def check_published_requests(self, sent):
        (request,) = sent
        assert request.method == "POST" and str(request.url) == f"{SITE}/wp-json/wp/v2/posts"
        expected = base64.b64encode(b"editor:abcdEFGHijklMNOPqrstUVWX").decode()
        assert request.headers["Authorization"] == f"Basic {expected}"  # the displayed spaces are dropped
        assert json.loads(request.content) == {"title": TEXT, "content": TEXT, "status": "publish", "slug": SLUG}


class TestWordPressComConformance(ProviderConformance):
    provider = com
    credentials = {"access_token": "wpcom-token", "token_type": "Bearer", "blog_id": "12345678", "blog_url": "https://gate.wordpress.com"}
    success = [reply(201, json=post(site="https://gate.wordpress.com"))]
    expected_post_id = "4"
    error_cases = [
        ErrorCase("token revoked", [reply(401, json={"code": "rest_cannot_create", "message": "Sorry, you are not allowed to create posts as this user.", "data": {"status": 401}})], AuthExpired),
        ErrorCase("not an author of the site", [CANNOT_PUBLISH], Rejected, code="rest_cannot_publish"),
        ErrorCase("rate limited", [reply(429, json={"code": "rate_limit_exceeded", "message": "Rate limit exceeded"}, headers={"Retry-After": "60"})], RateLimited, retry_after=60),
        ErrorCase("bad gateway", [reply(502, text="Bad Gateway")], TransientError),
    ]

    def check_published_requests(self, sent):
        (request,) = sent
        assert str(request.url) == "https://public-api.wordpress.com/wp/v2/sites/12345678/posts"
        assert request.headers["Authorization"] == "Bearer wpcom-token"


def test_the_featured_image_is_uploaded_first_with_its_alt_text():
    image = png(4, 3)
    media = PublishMedia("image", "image/png", len(image), "https://media.example.com/c.png", BytesSource(image), alt_text="The cover", filename="Cover shot (1).png")
    request = sample_request(media=(media,), settings={"excerpt": "Short", "categories": "2,3", "tags": "5"})
    attachment = {"id": 9, "source_url": f"{SITE}/wp-content/uploads/2026/01/Cover-shot-1-.png", "alt_text": "The cover", "mime_type": "image/png"}
    result, error, sent = run(lambda ctx: provider.publish(ctx, request), [reply(201, json=attachment), reply(201, json=post(featured_media=9))])
    assert error is None and result.platform_post_id == "4"
    upload, create = sent
    assert str(upload.url) == f"{SITE}/wp-json/wp/v2/media?alt_text=The+cover"
    assert upload.headers["Content-Disposition"] == 'attachment; filename="Cover-shot-1-.png"' and upload.content == image
    body = json.loads(create.content)
    assert body["featured_media"] == 9 and body["excerpt"] == "Short" and body["categories"] == [2, 3] and body["tags"] == [5]


def test_a_failed_upload_publishes_nothing():
    media = PublishMedia("image", "image/png", 3, "https://media.example.com/c.png", BytesSource(b"abc"))
    refused = wp_error(400, "rest_upload_sideload_error", "Sorry, you are not allowed to upload this file type.")
    _, error, sent = run(lambda ctx: provider.publish(ctx, sample_request(media=(media,))), [refused])
    assert isinstance(error, Rejected) and error.code == "rest_upload_sideload_error" and len(sent) == 1


def test_setting_choices_read_every_page_of_terms():
    first = reply(200, json=[{"id": 2, "count": 0, "name": "Releases", "slug": "releases"}], headers={"X-WP-Total": "2", "X-WP-TotalPages": "2"})
    second = reply(200, json=[{"id": 1, "count": 2, "name": "Uncategorized", "slug": "uncategorized"}], headers={"X-WP-Total": "2", "X-WP-TotalPages": "2"})
    choices, error, sent = run(lambda ctx: provider.setting_choices(ctx, "categories"), [first, second])
    assert error is None and [(c.value, c.label) for c in choices] == [("2", "Releases"), ("1", "Uncategorized")]
    assert [r.url.params["page"] for r in sent] == ["1", "2"] and sent[0].url.path == "/wp-json/wp/v2/categories"


def test_reconcile_matches_slug_and_title():
    request = sample_request()
    found, _, sent = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=[post(status="draft")])])
    assert found.platform_post_id == "4"
    assert sent[0].url.params["slug"] == SLUG and sent[0].url.params["context"] == "edit"
    other, _, _ = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=[post(title="Someone else's post")])])
    assert other is None


def test_delete_trashes_and_treats_gone_as_done():
    trashed = post(status="trash", slug=f"{SLUG}__trashed")
    _, error, sent = run(lambda ctx: provider.delete(ctx, "4"), [reply(200, json=trashed)])
    assert error is None and sent[0].method == "DELETE" and str(sent[0].url) == f"{SITE}/wp-json/wp/v2/posts/4"
    for answer in (wp_error(410, "rest_already_trashed", "The post has already been deleted."), wp_error(404, "rest_post_invalid_id", "Invalid post ID.")):
        _, error, _ = run(lambda ctx: provider.delete(ctx, "4"), [answer])
        assert error is None


def test_wordpress_com_code_exchange_keeps_the_chosen_site():
    answer = reply(200, json={"access_token": "wpcom-token", "blog_id": "12345678", "blog_url": "https://gate.wordpress.com", "token_type": "bearer"})
    exchange = lambda ctx: com.exchange_code(ctx, code="c0de", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="42", client_secret="s3cret")  # noqa: E731
    tokens, error, sent = run(exchange, [answer], prov=com, credentials={})
    assert error is None and tokens.to_credentials()["blog_id"] == "12345678" and tokens.refresh_token is None
    assert dict(x.split("=") for x in sent[0].content.decode().split("&"))["grant_type"] == "authorization_code"
    refused = reply(400, json={"error": "invalid_grant", "error_description": "The authorization code is invalid."})
    _, error, _ = run(exchange, [refused], prov=com, credentials={})
    assert isinstance(error, Rejected) and error.code == "INVALID_GRANT" and "s3cret" not in error.message


def test_generated_slugs_are_the_targets_own_and_in_wordpress_form():
    assert generated_slug("Release 2.0: what's new?", KEY) == "release-2-0-what-s-new-" + generated_slug("", KEY).removeprefix("post-")
    assert generated_slug("Ünïcode — only", "a") != generated_slug("Ünïcode — only", "b")
    assert generated_slug("日本語", KEY).startswith("post-")


def test_connect_names_the_site_and_user_on_both_providers():
    me = {"id": 5, "username": "editor", "name": "The Editor", "slug": "editor", "roles": ["editor"], "avatar_urls": {"96": "https://secure.gravatar.com/avatar/x?s=96"}}
    profile, error, sent = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS, site_url=SITE + "/")), [reply(200, json=me)], credentials={})
    assert error is None and (profile.external_id, profile.handle, profile.display_name) == (f"{SITE}#5", "editor", "The Editor")
    assert str(sent[0].url) == f"{SITE}/wp-json/wp/v2/users/me?context=edit"
    wpcom = {"access_token": "wpcom-token", "blog_id": "12345678"}
    profile, error, sent = run(lambda ctx: com.connect(ctx, wpcom), [reply(200, json=me)], prov=com, credentials={})
    assert error is None and profile.external_id == "wordpress.com/12345678#5"
    assert str(sent[0].url) == "https://public-api.wordpress.com/wp/v2/sites/12345678/users/me?context=edit"


def test_only_categories_and_tags_have_choices_from_the_site():
    _, error, sent = run(lambda ctx: provider.setting_choices(ctx, "status"), [])
    assert isinstance(error, Rejected) and error.code == "UNKNOWN_SETTING" and sent == []
