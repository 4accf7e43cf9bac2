"""Both Instagram providers against Meta's real requests and answers (IG User Media / Media Publish /
content_publishing_limit, IG Container status_code, Instagram Login tokens, Media Insights after 2025)."""

import asyncio
from datetime import timedelta

import httpx
import pytest

from plugins.instagram import INSTAGRAM_TOKEN_URL, InstagramBusiness, InstagramLogin
from plugins.meta_graph import FACEBOOK_GRAPH, INSTAGRAM_GRAPH
from providers import (
    AuthExpired,
    DraftMedia,
    PostDraft,
    Processing,
    PublishRequest,
    PublishResult,
    Quota,
    RateLimited,
    Rejected,
    TransientError,
    Unconfirmed,
)
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, sample_media
from tests.providers.meta_replies import GRAPH_ERRORS, INVALID_METRIC, TOKEN_EXPIRED, bearer, form, meta_error, query, where

login = InstagramLogin()
business = InstagramBusiness()
USER = "17841400008460056"
CONTAINER = "17889615691921648"
MEDIA = "17918195224117851"
PERMALINK = "https://www.instagram.com/p/DAbCdEfGhIj/"
LOGIN_CREDENTIALS = {"access_token": "IGAAlong", "ig_user_id": USER}
BUSINESS_CREDENTIALS = {"access_token": "EAAPageToken", "ig_user_id": USER, "page_id": "101"}
PHOTO = PublishRequest(text="Fresh out of the oven #bakery", idempotency_key="tgt_ig_photo", media=(sample_media("image"),))
REEL = PublishRequest(text="How we knead", idempotency_key="tgt_ig_reel", media=(sample_media("video"),), settings={"first_comment": "Recipe in bio"})


def limit(used: int):
    return reply(200, json={"data": [{"quota_usage": used, "config": {"quota_total": 50, "quota_duration": 86400}}]})


def status(code: str, **more):
    return reply(200, json={"status_code": code, "id": CONTAINER, **more})


CREATED = reply(200, json={"id": CONTAINER})
PUBLISHED = reply(200, json={"id": MEDIA})
LINK = reply(200, json={"permalink": PERMALINK, "id": MEDIA})
SUCCESS = [limit(2), CREATED, status("FINISHED"), PUBLISHED, LINK]
COMMENTED = reply(200, json={"id": "18000000000000001"})
CONTAINER_FAILED = ("ERROR", "Error: Media upload has failed with error code 2207026")


def insights_answer(**values):
    return reply(200, json={"data": [
        {"name": name, "period": "lifetime", "values": [{"value": value}], "title": name.title(), "description": "", "id": f"{MEDIA}/insights/{name}/lifetime"}
        for name, value in values.items()
    ]})


ALL_METRICS = dict(views=2300, reach=1800, likes=140, comments=9, saved=31, shares=12)
IG_ERRORS = GRAPH_ERRORS + [
    ErrorCase("the account used its 50 posts (content_publishing_limit)", [limit(50)], RateLimited, code="PUBLISHING_LIMIT", retry_after=3600),
    ErrorCase(
        "9/2207042 publishing limit reached on the container",
        [limit(49), meta_error(9, "Application request limit reached", subcode=2207042, is_transient=False, error_user_title="Reached publishing limit",
                               error_user_msg="You reached maximum number of posts that is allowed to be published by Content Publishing API.")],
        RateLimited, code="META_9_2207042",
    ),
    ErrorCase(
        "4/2207051 suspected spam is a refusal, not a rate limit",
        [limit(3), meta_error(4, "Application request limit reached", subcode=2207051, error_user_msg="We restrict certain activity to protect our community.")],
        Rejected, code="META_4_2207051",
    ),
    ErrorCase("-2/2207003 media download timed out", [limit(3), meta_error(-2, "Timeout", subcode=2207003, error_user_msg="It takes too long to download the media.")], TransientError),
    ErrorCase("36000/2207004 image too large", [limit(3), meta_error(36000, "The image size is too large.", subcode=2207004)], Rejected, code="META_36000_2207004"),
    ErrorCase(
        "container ERROR", [limit(3), CREATED, status("ERROR", status="Error: Media upload has failed with error code 2207026")],
        Rejected, code="CONTAINER_ERROR",
    ),
]
REJECTS = [
    RejectedDraft("no media", PostDraft(text="words only"), "MEDIA_REQUIRED"),
    RejectedDraft("2,201 characters", PostDraft(text="a" * 2201, media=(DraftMedia("image", "image/jpeg", 1000),)), "TEXT_TOO_LONG"),
    RejectedDraft("an 11-item carousel", PostDraft(text="album", media=(DraftMedia("image", "image/jpeg", 1000),) * 11), "TOO_MANY_MEDIA"),
    RejectedDraft("31 hashtags", PostDraft(text=" ".join(f"#t{i}" for i in range(31)), media=(DraftMedia("image", "image/jpeg", 1000),)), "TOO_MANY_HASHTAGS"),
    RejectedDraft(
        "a story of two photos",
        PostDraft(text="", media=(DraftMedia("image", "image/jpeg", 1000),) * 2, settings={"placement": "story"}), "TOO_MANY_MEDIA",
    ),
]


class _InstagramConformance(ProviderConformance):
    request = PHOTO
    success = SUCCESS
    # Reading the publishing limit, making the container and reading its status only prepare: the
    # request that publishes is media_publish.
    publishing_step = 3
    expected_post_id = MEDIA
    expected_url = PERMALINK
    error_cases = IG_ERRORS
    platform_rejects = REJECTS
    platform_accepts = [PostDraft(text="carousel", media=(DraftMedia("image", "image/jpeg", 1000),) * 10)]
    metrics_ids = [MEDIA]
    metrics_success = [insights_answer(**ALL_METRICS)]
    expected_metrics = {MEDIA: {"views": 2300, "reach": 1800, "likes": 140, "comments": 9, "saves": 31, "shares": 12}}
    # Meta leaves out what it does not report (an empty data set for it), which is not zero.
    metrics_omitting = [insights_answer(**{k: v for k, v in ALL_METRICS.items() if k != "shares"})]
    omitted_figure = (MEDIA, "shares")
    account_metrics_success = [reply(200, json={"followers_count": 5120, "follows_count": 180, "media_count": 342, "id": USER})]
    expected_account_metrics = {"followers": 5120, "following": 180, "posts": 342}
    # A reel: its container is still IN_PROGRESS at publish and at the first poll, FINISHED at the
    # second (published, then its first comment); the failure is a container Meta marks ERROR.
    processing_request = REEL
    processing_publish = [limit(0), CREATED, status("IN_PROGRESS")]
    processing_polls = [[status("IN_PROGRESS")], [status("FINISHED"), PUBLISHED, LINK, COMMENTED]]
    processing_expected_post_id = MEDIA
    processing_failed = [status(CONTAINER_FAILED[0], status=CONTAINER_FAILED[1])]
    graph: str
    token: str

    def check_published_requests(self, sent):
        check, create, look, publish, link = sent
        assert where(check) == ("GET", f"{self.graph}/{USER}/content_publishing_limit") and query(check) == {"fields": "quota_usage,config"}
        assert where(create) == ("POST", f"{self.graph}/{USER}/media")
        assert form(create) == {"image_url": "https://media.example.com/image.bin", "caption": "Fresh out of the oven #bakery"}
        assert where(look) == ("GET", f"{self.graph}/{CONTAINER}") and query(look) == {"fields": "status_code,status"}
        assert where(publish) == ("POST", f"{self.graph}/{USER}/media_publish") and form(publish) == {"creation_id": CONTAINER}
        assert where(link) == ("GET", f"{self.graph}/{MEDIA}") and query(link) == {"fields": "permalink"}
        for request in sent:
            bearer(request, self.token)


class TestInstagramLoginConformance(_InstagramConformance):
    provider = login
    credentials = LOGIN_CREDENTIALS
    graph = INSTAGRAM_GRAPH
    token = "IGAAlong"


class TestInstagramBusinessConformance(_InstagramConformance):
    provider = business
    credentials = BUSINESS_CREDENTIALS
    graph = FACEBOOK_GRAPH
    token = "EAAPageToken"


def run(coroutine):
    return asyncio.run(coroutine)


def call(steps, operation, provider=login, credentials=LOGIN_CREDENTIALS):
    return run(call_scripted(provider, steps, operation, credentials=credentials))


def test_the_publishing_limit_is_declared_as_a_quota():
    for provider in (login, business):
        assert provider.limits.quotas == (Quota(50, 86_400, description=provider.limits.quotas[0].description),)
        assert provider.limits.media_required


def test_a_reached_limit_creates_no_container():
    outcome = call([limit(50)], lambda ctx: login.publish(ctx, PHOTO))
    assert isinstance(outcome.error, RateLimited) and len(outcome.sent) == 1


# -- containers and processing ------------------------------------------------------------------


def test_a_reel_answers_processing_while_its_container_is_in_progress():
    outcome = call([limit(0), CREATED, status("IN_PROGRESS")], lambda ctx: login.publish(ctx, REEL))
    create = outcome.sent[1]
    assert form(create) == {"video_url": "https://media.example.com/video.bin", "media_type": "REELS", "caption": "How we knead", "share_to_feed": "true"}
    result = outcome.result
    assert isinstance(result, Processing) and dict(result.handle) == {"container": CONTAINER}
    assert not result.published and result.stage == "container" and result.deadline == timedelta(hours=24)


def test_poll_publishes_a_finished_container_then_the_first_comment():
    outcome = call([status("FINISHED"), PUBLISHED, LINK, COMMENTED],
                   lambda ctx: login.poll(ctx, REEL, {"container": CONTAINER}))
    assert isinstance(outcome.result, PublishResult)
    assert (outcome.result.platform_post_id, outcome.result.url) == (MEDIA, PERMALINK)
    comment = outcome.sent[3]
    assert where(comment) == ("POST", f"{INSTAGRAM_GRAPH}/{MEDIA}/comments") and form(comment) == {"message": "Recipe in bio"}


def test_poll_keeps_waiting_while_in_progress():
    outcome = call([status("IN_PROGRESS")], lambda ctx: login.poll(ctx, REEL, {"container": CONTAINER}))
    assert isinstance(outcome.result, Processing) and dict(outcome.result.handle) == {"container": CONTAINER}
    assert len(outcome.sent) == 1


@pytest.mark.parametrize(("state", "reason"), [
    CONTAINER_FAILED,
    ("EXPIRED", "The container was not published within 24 hours"),
])
def test_a_failed_or_expired_container_is_rejected_with_metas_reason(state, reason):
    outcome = call([status(state, status=reason)], lambda ctx: login.poll(ctx, REEL, {"container": CONTAINER}))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == f"CONTAINER_{state}"
    assert outcome.error.message == reason and len(outcome.sent) == 1, "nothing is published"


def test_a_container_already_published_is_unconfirmed_never_published_again():
    outcome = call([status("PUBLISHED")], lambda ctx: login.poll(ctx, REEL, {"container": CONTAINER}))
    assert isinstance(outcome.error, Unconfirmed) and len(outcome.sent) == 1


def test_a_lost_answer_to_media_publish_is_unconfirmed():
    outcome = call([status("FINISHED"), httpx.ReadTimeout("no answer")], lambda ctx: login.poll(ctx, REEL, {"container": CONTAINER}))
    assert isinstance(outcome.error, Unconfirmed)


def test_a_carousel_is_built_from_child_containers():
    media = (sample_media("image"), sample_media("video"), sample_media("image"))
    request = PublishRequest(text="Three of a kind", idempotency_key="tgt_ig_carousel", media=media)
    children = [reply(200, json={"id": f"c{i}"}) for i in range(3)]
    outcome = call([limit(1), *children, CREATED, status("IN_PROGRESS")], lambda ctx: business.publish(ctx, request),
                   provider=business, credentials=BUSINESS_CREDENTIALS)
    sent = outcome.sent
    assert [form(r) for r in sent[1:4]] == [
        {"image_url": "https://media.example.com/image.bin", "is_carousel_item": "true"},
        {"video_url": "https://media.example.com/video.bin", "media_type": "VIDEO", "is_carousel_item": "true"},
        {"image_url": "https://media.example.com/image.bin", "is_carousel_item": "true"},
    ]
    assert where(sent[4]) == ("POST", f"{FACEBOOK_GRAPH}/{USER}/media")
    assert form(sent[4]) == {"media_type": "CAROUSEL", "children": "c0,c1,c2", "caption": "Three of a kind"}
    assert isinstance(outcome.result, Processing)


def test_a_story_has_no_caption_and_no_first_comment():
    request = PublishRequest(text="", idempotency_key="tgt_ig_story", media=(sample_media("image"),),
                             settings={"placement": "story", "first_comment": "ignored on stories"})
    outcome = call([limit(1), CREATED, status("FINISHED"), PUBLISHED, LINK], lambda ctx: login.publish(ctx, request))
    assert form(outcome.sent[1]) == {"image_url": "https://media.example.com/image.bin", "media_type": "STORIES"}
    assert isinstance(outcome.result, PublishResult) and len(outcome.sent) == 5


# -- reconcile and metrics ----------------------------------------------------------------------


def test_reconcile_finds_the_media_by_its_caption():
    recent = reply(200, json={"data": [
        {"id": MEDIA, "caption": "How we knead", "permalink": PERMALINK, "timestamp": "2026-01-15T12:00:00+0000"},
    ], "paging": {"cursors": {"after": "x"}}})
    outcome = call([recent], lambda ctx: login.reconcile(ctx, REEL))
    assert outcome.result.platform_post_id == MEDIA
    assert where(outcome.sent[0]) == ("GET", f"{INSTAGRAM_GRAPH}/{USER}/media")
    assert query(outcome.sent[0]) == {"fields": "id,caption,permalink,timestamp", "limit": "25"}
    assert call([reply(200, json={"data": []})], lambda ctx: login.reconcile(ctx, REEL)).result is None


def test_a_refused_metric_set_is_asked_one_metric_at_a_time():
    """A story has no ``likes``: Meta refuses the whole set; each figure is then asked alone."""
    alone = [insights_answer(views=300), insights_answer(reach=250), INVALID_METRIC, insights_answer(comments=0),
             insights_answer(saved=2), insights_answer(shares=1)]
    outcome = call([INVALID_METRIC, *alone], lambda ctx: login.fetch_metrics(ctx, [MEDIA]))
    (snapshot,) = outcome.result
    assert query(outcome.sent[0])["metric"] == "views,reach,likes,comments,saved,shares"
    assert [query(r)["metric"] for r in outcome.sent[1:]] == ["views", "reach", "likes", "comments", "saved", "shares"]
    assert (snapshot.views, snapshot.reach, snapshot.likes, snapshot.comments, snapshot.saves, snapshot.shares) == (300, 250, None, 0, 2, 1)


def test_an_expired_token_while_reading_metrics_is_raised():
    assert isinstance(call([TOKEN_EXPIRED], lambda ctx: login.fetch_metrics(ctx, [MEDIA])).error, AuthExpired)


# -- Instagram Login tokens --------------------------------------------------------------------


def ig_exchange(ctx):
    return login.exchange_code(ctx, code="AQDcode", redirect_uri="https://gw.example/oauth/instagram/callback", code_verifier=None,
                               client_id="990602627938098", client_secret="ig-secret")


SHORT_IG = reply(200, json={"data": [{"access_token": "IGAAshort", "user_id": USER, "permissions": "instagram_business_basic,instagram_business_content_publish"}]})
LONG_IG = reply(200, json={"access_token": "IGAAlong", "token_type": "bearer", "expires_in": 5183944})


def test_instagram_login_trades_the_code_for_a_60_day_token():
    outcome = call([SHORT_IG, LONG_IG], ig_exchange, credentials={})
    code, longer = outcome.sent
    assert (code.method, str(code.url)) == ("POST", INSTAGRAM_TOKEN_URL)
    assert form(code) == {"client_id": "990602627938098", "client_secret": "ig-secret", "grant_type": "authorization_code",
                          "redirect_uri": "https://gw.example/oauth/instagram/callback", "code": "AQDcode"}
    assert where(longer) == ("GET", "https://graph.instagram.com/access_token")
    assert query(longer) == {"grant_type": "ig_exchange_token", "client_secret": "ig-secret", "access_token": "IGAAshort"}
    tokens = outcome.result
    assert tokens.access_token == "IGAAlong" and tokens.expires_at == FIXED_NOW + timedelta(seconds=5183944)
    credentials = tokens.to_credentials()
    assert credentials["ig_user_id"] == USER and credentials["issued_at"] == FIXED_NOW.isoformat()
    assert credentials["refresh_token"] == "IGAAlong", "the long-lived token is what refreshes it"


def test_a_token_older_than_a_day_is_refreshed_and_a_younger_one_is_not():
    old = {**LOGIN_CREDENTIALS, "issued_at": (FIXED_NOW - timedelta(hours=25)).isoformat()}
    refreshed = reply(200, json={"access_token": "IGAAnewer", "token_type": "bearer", "expires_in": 5183944})
    outcome = call([refreshed], lambda ctx: login.refresh_token(ctx, client_id="x", client_secret="y"), credentials=old)
    (request,) = outcome.sent
    assert where(request) == ("GET", "https://graph.instagram.com/refresh_access_token")
    assert query(request) == {"grant_type": "ig_refresh_token", "access_token": "IGAAlong"}
    assert outcome.result.access_token == "IGAAnewer" and outcome.result.refresh_token == "IGAAnewer"
    assert outcome.result.to_credentials()["issued_at"] == FIXED_NOW.isoformat()
    young = {**LOGIN_CREDENTIALS, "issued_at": (FIXED_NOW - timedelta(hours=2)).isoformat()}
    early = call([], lambda ctx: login.refresh_token(ctx, client_id="x", client_secret="y"), credentials=young)
    assert isinstance(early.error, AuthExpired) and early.error.code == "REFRESH_TOO_EARLY" and early.sent == []


def test_a_refused_refresh_means_the_account_must_reconnect():
    old = {**LOGIN_CREDENTIALS, "issued_at": (FIXED_NOW - timedelta(days=59)).isoformat()}
    outcome = call([TOKEN_EXPIRED], lambda ctx: login.refresh_token(ctx, client_id="x", client_secret="y"), credentials=old)
    assert isinstance(outcome.error, AuthExpired)


def test_instagram_login_connect_names_the_professional_account():
    me = reply(200, json={"user_id": USER, "username": "cornerbakery", "name": "Corner Bakery", "account_type": "BUSINESS", "id": "2672"})
    outcome = call([me], lambda ctx: login.connect(ctx, {"access_token": "IGAAlong"}), credentials={})
    assert (outcome.result.external_id, outcome.result.handle, outcome.result.account_type) == (USER, "cornerbakery", "business")
    assert where(outcome.sent[0]) == ("GET", f"{INSTAGRAM_GRAPH}/me")
    bearer(outcome.sent[0], "IGAAlong")


# -- Facebook Login (instagram_business) -------------------------------------------------------

SHORT = reply(200, json={"access_token": "EAAshort", "token_type": "bearer", "expires_in": 5183})
LONG = reply(200, json={"access_token": "EAAlong", "token_type": "bearer", "expires_in": 5183944})


def fb_exchange(ctx):
    return business.exchange_code(ctx, code="AQBcode", redirect_uri="https://gw.example/oauth/instagram_business/callback", code_verifier=None,
                                  client_id="1234", client_secret="app-secret")


def test_facebook_login_takes_the_first_page_with_a_linked_instagram_account():
    pages = reply(200, json={"data": [
        {"id": "100", "name": "No Instagram", "access_token": "EAAUnlinked"},
        {"id": "101", "name": "Corner Bakery", "access_token": "EAAPageToken", "instagram_business_account": {"id": USER, "username": "cornerbakery"}},
    ]})
    outcome = call([SHORT, LONG, pages], fb_exchange, provider=business, credentials={})
    assert query(outcome.sent[1])["grant_type"] == "fb_exchange_token"
    assert query(outcome.sent[2])["fields"] == "id,name,access_token,instagram_business_account{id,username}"
    credentials = outcome.result.to_credentials()
    assert (credentials["access_token"], credentials["ig_user_id"], credentials["page_id"]) == ("EAAPageToken", USER, "101")
    assert "refresh_token" not in credentials and "expires_at" not in credentials, "a Page token read from a long-lived user token does not expire"
    none = call([SHORT, LONG, reply(200, json={"data": [{"id": "100", "name": "x", "access_token": "EAAx"}]})], fb_exchange,
                provider=business, credentials={})
    assert isinstance(none.error, Rejected) and none.error.code == "NO_INSTAGRAM_ACCOUNT"


def test_facebook_login_connect_reads_the_instagram_account():
    me = reply(200, json={"id": USER, "username": "cornerbakery", "name": "Corner Bakery"})
    outcome = call([me], lambda ctx: business.connect(ctx, dict(BUSINESS_CREDENTIALS)), provider=business, credentials={})
    assert (outcome.result.external_id, outcome.result.handle) == (USER, "cornerbakery")
    assert where(outcome.sent[0]) == ("GET", f"{FACEBOOK_GRAPH}/{USER}")



def test_a_refused_instagram_code_is_a_rejection_in_instagrams_words():
    used = reply(400, json={"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"})
    outcome = call([used], ig_exchange, credentials={})
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "META_400"
    assert outcome.error.message == "Matching code was not found or was already used"
    empty = call([reply(200, json={"data": [{"permissions": "instagram_business_basic"}]})], ig_exchange, credentials={})
    assert isinstance(empty.error, Rejected) and empty.error.code == "INVALID_TOKEN_RESPONSE" and len(empty.sent) == 1


def test_account_totals_are_read_from_the_instagram_user_on_each_host():
    answer = _InstagramConformance.account_metrics_success
    for provider, credentials, graph in ((login, LOGIN_CREDENTIALS, INSTAGRAM_GRAPH), (business, BUSINESS_CREDENTIALS, FACEBOOK_GRAPH)):
        outcome = call(answer, provider.fetch_account_metrics, provider=provider, credentials=credentials)
        assert where(outcome.sent[0]) == ("GET", f"{graph}/{USER}")
        assert query(outcome.sent[0]) == {"fields": "followers_count,follows_count,media_count"}


def test_a_published_media_whose_permalink_read_fails_is_still_published():
    """After media_publish the post exists: a failed read of its link must not make the engine publish again."""
    outcome = call([status("FINISHED"), PUBLISHED, meta_error(2, "An unexpected error has occurred.", status=500, is_transient=True)],
                   lambda ctx: login.poll(ctx, PHOTO, {"container": CONTAINER}))
    assert isinstance(outcome.result, PublishResult) and outcome.result.platform_post_id == MEDIA and outcome.result.url is None


def test_hashtags_are_counted_as_words_not_as_every_hash_sign():
    photo = (DraftMedia("image", "image/jpeg", 1000),)
    thirty = " ".join(f"#t{i}" for i in range(30)) + " https://example.com/page#section C# &#35;"
    assert login.check_draft(PostDraft(text=thirty, media=photo)) == []


def test_a_post_without_a_caption_is_never_matched_to_someone_elses_media():
    story = PublishRequest(text="", idempotency_key="tgt_ig_story2", media=(sample_media("image"),), settings={"placement": "story"})
    outcome = call([], lambda ctx: login.reconcile(ctx, story))
    assert outcome.result is None and outcome.sent == []
