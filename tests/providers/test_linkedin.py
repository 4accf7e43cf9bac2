"""The LinkedIn member and page providers against LinkedIn's real request and answer shapes (MS Learn, reported errors)."""

import asyncio
import json
import urllib.parse
from datetime import timedelta

import httpx

from plugins.linkedin import LINKEDIN_VERSION, TOKEN_URL, LinkedInMember, LinkedInPage, escape_commentary
from providers import (
    AuthExpired,
    BytesSource,
    DraftMedia,
    PostDraft,
    Processing,
    PublishMedia,
    PublishRequest,
    RateLimited,
    Rejected,
    TransientError,
)
from providers.store import MemoryProviderStore
from providers.testing import (
    FIXED_NOW,
    ErrorCase,
    ProviderConformance,
    RejectedDraft,
    ScriptedTransport,
    call_scripted,
    make_context,
    publish_scripted,
    reply,
)

member = LinkedInMember()
page = LinkedInPage()
MEMBER_CREDENTIALS = {"access_token": "li-at", "person_id": "782bbtaQ"}
PAGE_CREDENTIALS = {"access_token": "li-at", "organization_id": "2414183"}
SHARE = "urn:li:share:6844785523593134080"
CREATED = reply(201, text="", headers={"x-restli-id": SHARE})
DISTRIBUTION = {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []}
DUPLICATE = {
    "errorDetailType": "com.linkedin.common.error.BadRequest",
    "message": "com.linkedin.content.common.exception.BadRequestResponseException: Content is a duplicate of urn:li:share:7141138937766391808",
    "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]},
    "status": 422,
}
ERRORS = [
    ErrorCase("429 throttle", [reply(429, json={"message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.", "status": 429})], RateLimited),
    ErrorCase("401 invalid token", [reply(401, json={"serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token", "status": 401})], AuthExpired, code="INVALID_ACCESS_TOKEN"),
    ErrorCase("401 revoked", [reply(401, json={"serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "The token used in the request has been revoked by the user", "status": 401})], AuthExpired, code="REVOKED_ACCESS_TOKEN"),
    ErrorCase("422 duplicate post", [reply(422, json=DUPLICATE)], Rejected, code="DUPLICATE_POST"),
    ErrorCase("403 access denied", [reply(403, json={"serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260101", "status": 403})], Rejected, code="ACCESS_DENIED"),
    ErrorCase("400 without a code", [reply(400, json={"message": "Invalid value for field; wrong type or other syntax error", "status": 400})], Rejected, code="HTTP_400"),
    ErrorCase("500", [reply(500, json={"message": "Internal Server Error", "status": 500})], TransientError),
    ErrorCase("504", [reply(504, text="")], TransientError),
]
REJECTS = [
    RejectedDraft("3001 characters", PostDraft(text="a" * 3001), "TEXT_TOO_LONG"),
    RejectedDraft("21 images", PostDraft(text="album", media=(DraftMedia("image", "image/png", 1000),) * 21), "TOO_MANY_MEDIA"),
    RejectedDraft("no threads", PostDraft(text="a", thread=("b",)), "THREADS_NOT_SUPPORTED"),
    RejectedDraft("a video beside an image", PostDraft(text="clip", media=(DraftMedia("video", "video/mp4", 1000), DraftMedia("image", "image/png", 1000))), "MEDIA_COMBINATION"),
    RejectedDraft("a 101 MB document", PostDraft(text="deck", media=(DraftMedia("document", "application/pdf", 101 * 1024 * 1024),)), "MEDIA_TOO_LARGE"),
    RejectedDraft("a 501 MB video", PostDraft(text="clip", media=(DraftMedia("video", "video/mp4", 501 * 1024 * 1024),)), "MEDIA_TOO_LARGE"),
]

# MS Learn "Videos API" and "Documents API": the answers as LinkedIn documents them.
VIDEO_URN = "urn:li:video:C5F10AQGKQg_6y2a4sQ"
DOCUMENT_URN = "urn:li:document:D5F10AQH4Lq9OU5N3jQ"
UPLOAD_URL = "https://www.linkedin.com/dms-uploads/C5F10AQGKQg_6y2a4sQ/uploadedVideo?sau=aHR0cHM6Ly93d3cubGlua2VkaW4uY29tL2FtYnJ5"
PART = 4194304  # LinkedIn splits a video into parts of 4 MiB


def video_initialized(size):
    parts = [{"uploadUrl": f"{UPLOAD_URL}{n}", "firstByte": start, "lastByte": min(start + PART, size) - 1} for n, start in enumerate(range(0, size, PART))]
    return reply(200, json={"value": {"uploadUrlsExpireAt": 1650567510704, "video": VIDEO_URN, "uploadInstructions": parts, "uploadToken": "", "thumbnailUploadUrl": ""}})


def asset_status(urn, status):
    body = {"id": urn, "status": status, "owner": "urn:li:person:782bbtaQ", "downloadUrlExpiresAt": 1650286800000, "downloadUrl": "https://www.linkedin.com/dms/C5F10AQGKQg/"}
    if urn.startswith("urn:li:video:"):
        body |= {"duration": 16, "aspectRatioWidth": 16, "aspectRatioHeight": 9}
    return reply(200, json=body)


def clip(size=10):
    return PublishMedia(kind="video", mime_type="video/mp4", size_bytes=size, url="https://media.example/v.mp4", source=BytesSource(b"v" * size), filename="launch.mp4")


UPLOADED_PART = reply(200, text="", headers={"etag": "/ambry-video/signedId/abc123"})
FINALIZED = reply(200, text="")


def rest_headers_ok(request: httpx.Request, token: str = "li-at") -> None:
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["linkedin-version"] == LINKEDIN_VERSION
    assert request.headers["x-restli-protocol-version"] == "2.0.0"


def post_body(author: str, commentary: str, **more) -> dict:
    return {
        "author": author, "commentary": commentary, "visibility": "PUBLIC", "distribution": DISTRIBUTION,
        "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False, **more,
    }


class TestLinkedInMemberConformance(ProviderConformance):
    provider = member
    credentials = MEMBER_CREDENTIALS
    request = PublishRequest(text="Shipped (finally) #release @team", idempotency_key="tgt_li_conformance")
    success = [CREATED]
    expected_post_id = SHARE
    expected_url = f"https://www.linkedin.com/feed/update/{SHARE}"
    error_cases = ERRORS
    platform_rejects = REJECTS
    platform_accepts = [
        PostDraft(text="é" * 3000), PostDraft(text="album", media=(DraftMedia("image", "image/jpeg", 1000),) * 20),
        PostDraft(text="clip", media=(DraftMedia("video", "video/mp4", 1000),)),
        PostDraft(text="deck", media=(DraftMedia("document", "application/pdf", 1000),)),
    ]
    processing_request = PublishRequest(text="Our launch", idempotency_key="tgt_li_video", media=(clip(),))
    processing_publish = [video_initialized(10), UPLOADED_PART, FINALIZED]
    processing_polls = [[asset_status(VIDEO_URN, "PROCESSING")], [asset_status(VIDEO_URN, "AVAILABLE"), CREATED]]
    processing_expected_post_id = SHARE
    processing_failed = [asset_status(VIDEO_URN, "PROCESSING_FAILED")]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://api.linkedin.com/rest/posts")
        rest_headers_ok(request)
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == post_body("urn:li:person:782bbtaQ", "Shipped \\(finally\\) #release \\@team")


class TestLinkedInPageConformance(ProviderConformance):
    provider = page
    credentials = PAGE_CREDENTIALS
    request = PublishRequest(text="We are hiring", idempotency_key="tgt_lip_conformance")
    success = [CREATED]
    expected_post_id = SHARE
    error_cases = ERRORS
    platform_rejects = REJECTS
    processing_request = PublishRequest(text="Q3 results", idempotency_key="tgt_lip_doc", media=(
        PublishMedia(kind="document", mime_type="application/pdf", size_bytes=8, url="https://media.example/d.pdf", source=BytesSource(b"%PDF-1.7")),
    ))
    processing_publish = [
        reply(200, json={"value": {"uploadUrlExpiresAt": 1650567510704, "uploadUrl": "https://www.linkedin.com/dms-uploads/D5F10AQH4Lq9OU5N3jQ/uploadedDocument", "document": "urn:li:document:D5F10AQH4Lq9OU5N3jQ"}}),
        reply(201, text=""),
    ]
    processing_polls = [[asset_status("urn:li:document:D5F10AQH4Lq9OU5N3jQ", "PROCESSING")], [asset_status("urn:li:document:D5F10AQH4Lq9OU5N3jQ", "AVAILABLE"), CREATED]]
    processing_expected_post_id = SHARE
    processing_failed = [asset_status("urn:li:document:D5F10AQH4Lq9OU5N3jQ", "PROCESSING_FAILED")]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", "https://api.linkedin.com/rest/posts")
        rest_headers_ok(request)
        assert json.loads(request.content) == post_body("urn:li:organization:2414183", "We are hiring")


def run(coroutine):
    return asyncio.run(coroutine)


# -- commentary escaping -------------------------------------------------------------------


def test_every_reserved_character_is_escaped():
    assert escape_commentary("\\ | { } @ [ ] ( ) < > # * _ ~") == "\\\\ \\| \\{ \\} \\@ \\[ \\] \\( \\) \\< \\> \\# \\* \\_ \\~"


def test_hashtags_links_and_explicit_mentions_stay_as_written():
    text = "Thanks @[DevTestCo](urn:li:organization:2414183) (again)! #launch_day see https://example.com/a_b?(x)=1 or 5 * 3"
    assert escape_commentary(text) == (
        "Thanks @[DevTestCo](urn:li:organization:2414183) \\(again\\)! #launch\\_day see https://example.com/a_b?(x)=1 or 5 \\* 3"
    )


def test_plain_text_is_unchanged():
    assert escape_commentary("Hello, world. 100% ready: yes!") == "Hello, world. 100% ready: yes!"


# -- OAuth ---------------------------------------------------------------------------------


def form(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return dict(urllib.parse.parse_qsl(request.content.decode()))


TOKENS = {
    "access_token": "AQUvlL_DYEzvT2wz1QJiEPeLioeA",
    "expires_in": 5184000,
    "scope": "openid,profile,w_member_social",
    "token_type": "Bearer",
    "refresh_token": "AQWAft_WjYZKwuWXLC5hQlghgTam",
    "refresh_token_expires_in": 31536000,
}
ACLS = {
    "paging": {"count": 10, "start": 0, "links": []},
    "elements": [
        {"role": "ADMINISTRATOR", "roleAssignee": "urn:li:person:782bbtaQ", "state": "APPROVED", "organization": "urn:li:organization:2414183"},
        {"role": "ADMINISTRATOR", "roleAssignee": "urn:li:person:782bbtaQ", "state": "APPROVED", "organization": "urn:li:organization:5515715"},
    ],
}
ACLS_URL = "https://api.linkedin.com/rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED"


def exchange(provider, steps):
    return run(
        call_scripted(
            provider, steps,
            lambda ctx: provider.exchange_code(ctx, code="c0de", redirect_uri="https://gate.example/cb", code_verifier=None, client_id="cid", client_secret="sec"),
        )
    )


def test_no_pkce_and_the_scopes_of_each_kind_of_account():
    assert member.auth.pkce is False and page.auth.pkce is False
    assert member.auth.authorize_url == page.auth.authorize_url == "https://www.linkedin.com/oauth/v2/authorization"
    assert " ".join(member.auth.scopes) == "w_member_social openid profile"
    assert " ".join(page.auth.scopes) == "w_organization_social r_organization_social rw_organization_admin"


def test_the_member_code_exchange_posts_the_client_secret_in_the_form():
    outcome = exchange(member, [reply(200, json=TOKENS)])
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert "authorization" not in request.headers
    assert form(request) == {"grant_type": "authorization_code", "code": "c0de", "redirect_uri": "https://gate.example/cb", "client_id": "cid", "client_secret": "sec"}
    tokens = outcome.result
    assert tokens.scopes == ("openid", "profile", "w_member_social")
    assert tokens.expires_at == FIXED_NOW + timedelta(days=60)
    assert tokens.extra["refresh_token_expires_at"] == (FIXED_NOW + timedelta(days=365)).isoformat()


def test_the_page_code_exchange_records_the_first_administered_organization():
    outcome = exchange(page, [reply(200, json=TOKENS), reply(200, json=ACLS)])
    token_request, acls = outcome.sent
    assert str(acls.url) == ACLS_URL
    rest_headers_ok(acls, token="AQUvlL_DYEzvT2wz1QJiEPeLioeA")
    assert outcome.result.to_credentials()["organization_id"] == "2414183"


def test_a_member_administering_no_page_cannot_connect_one():
    outcome = exchange(page, [reply(200, json=TOKENS), reply(200, json={"paging": {"count": 10, "start": 0}, "elements": []})])
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "NO_ADMINISTERED_ORGANIZATION"


def test_refresh_posts_the_refresh_token_and_keeps_the_page():
    answer = dict(TOKENS, refresh_token_expires_in=20000000)
    credentials = {"access_token": "old", "refresh_token": "AQWAft_WjYZKwuWXLC5hQlghgTam", "organization_id": "5515715"}
    outcome = run(call_scripted(page, [reply(200, json=answer)], lambda ctx: page.refresh_token(ctx, client_id="cid", client_secret="sec"), credentials=credentials))
    (request,) = outcome.sent
    assert form(request) == {"grant_type": "refresh_token", "refresh_token": "AQWAft_WjYZKwuWXLC5hQlghgTam", "client_id": "cid", "client_secret": "sec"}
    assert outcome.result.extra["organization_id"] == "5515715"
    # LinkedIn does not extend a refresh token's life: its remaining time is what it says.
    assert outcome.result.extra["refresh_token_expires_at"] == (FIXED_NOW + timedelta(seconds=20000000)).isoformat()


def test_refresh_without_a_refresh_token_sends_nothing_and_asks_for_a_reconnect():
    outcome = run(call_scripted(member, [], lambda ctx: member.refresh_token(ctx, client_id="cid", client_secret="sec"), credentials={"access_token": "old"}))
    assert isinstance(outcome.error, AuthExpired) and outcome.error.code == "NO_REFRESH_TOKEN"
    assert outcome.sent == []


def test_a_refused_refresh_is_auth_expired():
    refused = {"error": "invalid_request", "error_description": "The provided authorization grant or refresh token is invalid, expired or revoked."}
    outcome = run(call_scripted(member, [reply(400, json=refused)], lambda ctx: member.refresh_token(ctx, client_id="cid", client_secret="sec"), credentials={"refresh_token": "r"}))
    assert isinstance(outcome.error, AuthExpired)


# -- connect -------------------------------------------------------------------------------

USERINFO = {
    "sub": "782bbtaQ", "name": "John Doe", "given_name": "John", "family_name": "Doe",
    "picture": "https://media.licdn-ei.com/dms/image/C5F03AQHqK8v7tB1HCQ/profile-displayphoto-shrink_100_100/0/", "locale": "en-US",
}
ORGANIZATION = {"vanityName": "devtestco", "localizedName": "DevTestCo", "id": 2414183}


def test_a_member_connects_through_openid_userinfo():
    outcome = run(call_scripted(member, [reply(200, json=USERINFO)], lambda ctx: member.connect(ctx, {"access_token": "fresh"})))
    (request,) = outcome.sent
    assert (request.method, str(request.url), request.headers["authorization"]) == ("GET", "https://api.linkedin.com/v2/userinfo", "Bearer fresh")
    assert (outcome.result.external_id, outcome.result.display_name, outcome.result.account_type) == ("782bbtaQ", "John Doe", "user")


def test_a_page_connects_as_the_organization_its_credentials_name():
    credentials = {"access_token": "fresh", "organization_id": "5515715"}
    outcome = run(call_scripted(page, [reply(200, json=ACLS), reply(200, json=dict(ORGANIZATION, id=5515715))], lambda ctx: page.connect(ctx, credentials)))
    acls, organization = outcome.sent
    assert str(acls.url) == ACLS_URL
    assert (organization.method, str(organization.url)) == ("GET", "https://api.linkedin.com/rest/organizations/5515715")
    rest_headers_ok(organization, token="fresh")
    profile = outcome.result
    assert (profile.external_id, profile.handle, profile.display_name, profile.account_type) == ("5515715", "devtestco", "DevTestCo", "organization")


def test_a_page_the_member_does_not_administer_is_refused():
    credentials = {"access_token": "fresh", "organization_id": "999"}
    outcome = run(call_scripted(page, [reply(200, json=ACLS)], lambda ctx: page.connect(ctx, credentials)))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "NOT_AN_ADMINISTRATOR"


# -- publishing ----------------------------------------------------------------------------


def image(name, alt=""):
    return PublishMedia(kind="image", mime_type="image/jpeg", size_bytes=4, url=f"https://media.example/{name}", source=BytesSource(name.encode()[:4]), alt_text=alt)


def initialized(image_id):
    return reply(200, json={"value": {"uploadUrlExpiresAt": 1650567510704, "uploadUrl": f"https://www.linkedin.com/dms-uploads/{image_id}/uploaded-image/0?ca=vector_ads&cn=uploads&sync=0&v=beta", "image": f"urn:li:image:{image_id}"}})


def test_one_image_is_uploaded_and_attached_as_content_media():
    request = PublishRequest(text="One picture", idempotency_key="tgt_img", media=(image("cat1", alt="A cat"),), settings={"visibility": "CONNECTIONS", "disable_reshare": True})
    outcome = run(publish_scripted(member, [initialized("C4E10AQFoyyAjHPMQuQ"), reply(201, text=""), CREATED], request, credentials=MEMBER_CREDENTIALS))
    assert outcome.error is None
    init, upload, post = outcome.sent
    assert (init.method, str(init.url)) == ("POST", "https://api.linkedin.com/rest/images?action=initializeUpload")
    rest_headers_ok(init)
    assert json.loads(init.content) == {"initializeUploadRequest": {"owner": "urn:li:person:782bbtaQ"}}
    assert (upload.method, str(upload.url)) == ("PUT", "https://www.linkedin.com/dms-uploads/C4E10AQFoyyAjHPMQuQ/uploaded-image/0?ca=vector_ads&cn=uploads&sync=0&v=beta")
    assert (upload.headers["authorization"], upload.content) == ("Bearer li-at", b"cat1")
    assert json.loads(post.content) == post_body(
        "urn:li:person:782bbtaQ", "One picture", visibility="CONNECTIONS", isReshareDisabledByAuthor=True,
        content={"media": {"id": "urn:li:image:C4E10AQFoyyAjHPMQuQ", "altText": "A cat"}},
    )


def test_several_images_become_a_multi_image_post():
    request = PublishRequest(text="Album", idempotency_key="tgt_album", media=(image("aaaa", alt="first"), image("bbbb")))
    steps = [initialized("A1"), reply(201, text=""), initialized("B2"), reply(201, text=""), CREATED]
    outcome = run(publish_scripted(page, steps, request, credentials=PAGE_CREDENTIALS))
    assert outcome.error is None
    assert json.loads(outcome.sent[0].content) == {"initializeUploadRequest": {"owner": "urn:li:organization:2414183"}}
    assert json.loads(outcome.sent[-1].content)["content"] == {"multiImage": {"images": [{"id": "urn:li:image:A1", "altText": "first"}, {"id": "urn:li:image:B2"}]}}


def test_a_created_post_without_its_urn_is_unconfirmed():
    outcome = run(publish_scripted(member, [reply(201, text="")], PublishRequest(text="hi", idempotency_key="t"), credentials=MEMBER_CREDENTIALS))
    assert type(outcome.error).__name__ == "Unconfirmed"


def test_the_member_id_is_looked_up_once_when_the_credentials_lack_it():
    store = MemoryProviderStore()

    async def go(steps):
        transport = ScriptedTransport(steps)
        ctx = make_context(member, transport, credentials={"access_token": "li-at"}, store=store)
        try:
            await member.publish(ctx, PublishRequest(text="hi", idempotency_key="t"))
            return transport.sent
        finally:
            await ctx.http.aclose()

    first = run(go([reply(200, json=USERINFO), CREATED]))
    assert [str(r.url) for r in first] == ["https://api.linkedin.com/v2/userinfo", "https://api.linkedin.com/rest/posts"]
    second = run(go([CREATED]))
    assert json.loads(second[0].content)["author"] == "urn:li:person:782bbtaQ"


def test_a_page_account_without_its_organization_is_refused_before_sending():
    outcome = run(publish_scripted(page, [], PublishRequest(text="hi", idempotency_key="t"), credentials={"access_token": "li-at"}))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "ORGANIZATION_NOT_SELECTED"
    assert outcome.sent == []


# -- delete and statistics -----------------------------------------------------------------


def test_delete_encodes_the_urn_and_treats_404_as_gone():
    outcome = run(call_scripted(member, [reply(204, text="")], lambda ctx: member.delete(ctx, SHARE), credentials=MEMBER_CREDENTIALS))
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("DELETE", "https://api.linkedin.com/rest/posts/urn%3Ali%3Ashare%3A6844785523593134080")
    rest_headers_ok(request)
    gone = run(call_scripted(member, [reply(404, json={"message": "Not Found", "status": 404})], lambda ctx: member.delete(ctx, SHARE), credentials=MEMBER_CREDENTIALS))
    assert gone.error is None
    denied = run(call_scripted(member, [reply(403, json={"code": "ACCESS_DENIED", "message": "no", "status": 403})], lambda ctx: member.delete(ctx, SHARE), credentials=MEMBER_CREDENTIALS))
    assert isinstance(denied.error, Rejected)


UGC = "urn:li:ugcPost:7000000000000000000"


def test_page_statistics_for_shares_and_ugc_posts_in_one_call():
    answer = {
        "paging": {"count": 10, "start": 0, "links": []},
        "elements": [
            {"totalShareStatistics": {"uniqueImpressionsCount": 10, "shareCount": 1, "engagement": 0.18, "clickCount": 2, "likeCount": 5, "impressionCount": 40, "commentCount": 1},
             "share": SHARE, "organizationalEntity": "urn:li:organization:2414183"},
            {"totalShareStatistics": {"impressionCount": 7}, "ugcPost": UGC, "organizationalEntity": "urn:li:organization:2414183"},
        ],
    }
    outcome = run(call_scripted(page, [reply(200, json=answer)], lambda ctx: page.fetch_metrics(ctx, [SHARE, UGC]), credentials=PAGE_CREDENTIALS))
    (request,) = outcome.sent
    assert str(request.url) == (
        "https://api.linkedin.com/rest/organizationalEntityShareStatistics?q=organizationalEntity"
        "&organizationalEntity=urn%3Ali%3Aorganization%3A2414183"
        "&shares=List(urn%3Ali%3Ashare%3A6844785523593134080)&ugcPosts=List(urn%3Ali%3AugcPost%3A7000000000000000000)"
    )
    rest_headers_ok(request)
    shared, ugc = outcome.result
    assert (shared.platform_post_id, shared.views, shared.reach, shared.likes, shared.comments, shared.reposts, shared.clicks) == (SHARE, 40, 10, 5, 1, 1, 2)
    assert (shared.shares, shared.saves) == (None, None)
    assert (ugc.platform_post_id, ugc.views, ugc.likes) == (UGC, 7, None)


def test_member_statistics_ask_each_figure_of_member_creator_post_analytics():
    def figure(count):
        return reply(200, json={"paging": {"start": 0, "count": 10, "links": []}, "elements": [{"count": count, "metricType": {"com.linkedin.adsexternalapi.memberanalytics.v1.CreatorPostAnalyticsMetricTypeV1": "X"}}]})

    steps = [figure(120), figure(80), figure(3), figure(9), reply(200, json={"paging": {"start": 0, "count": 10}, "elements": []})]
    outcome = run(call_scripted(member, steps, lambda ctx: member.fetch_metrics(ctx, [SHARE]), credentials=MEMBER_CREDENTIALS))
    assert outcome.error is None
    assert [str(r.url) for r in outcome.sent] == [
        f"https://api.linkedin.com/rest/memberCreatorPostAnalytics?q=entity&entity=(share:urn%3Ali%3Ashare%3A6844785523593134080)&queryType={kind}&aggregation=TOTAL"
        for kind in ("IMPRESSION", "MEMBERS_REACHED", "RESHARE", "REACTION", "COMMENT")
    ]
    (snapshot,) = outcome.result
    assert (snapshot.views, snapshot.reach, snapshot.reposts, snapshot.likes, snapshot.comments) == (120, 80, 3, 9, None)
    assert (snapshot.clicks, snapshot.shares, snapshot.saves) == (None, None, None)


def member_figure(count):
    element = {"count": count, "metricType": {"com.linkedin.adsexternalapi.memberanalytics.v1.CreatorPostAnalyticsMetricTypeV1": "X"}}
    return reply(200, json={"paging": {"start": 0, "count": 10, "links": []}, "elements": [element]})


NO_FIGURE = reply(200, json={"paging": {"start": 0, "count": 10}, "elements": []})
PAGE_STATISTICS = {
    "paging": {"count": 10, "start": 0, "links": []},
    "elements": [{
        "totalShareStatistics": {"uniqueImpressionsCount": 10, "shareCount": 1, "engagement": 0.18, "clickCount": 2, "likeCount": 5,
                                 "impressionCount": 40, "commentCount": 1},
        "share": SHARE, "organizationalEntity": "urn:li:organization:2414183",
    }],
}
TestLinkedInMemberConformance.metrics_ids = [SHARE]
TestLinkedInMemberConformance.metrics_success = [member_figure(120), member_figure(80), member_figure(3), member_figure(9), member_figure(0)]
TestLinkedInMemberConformance.expected_metrics = {SHARE: {"views": 120, "reach": 80, "reposts": 3, "likes": 9, "comments": 0}}
TestLinkedInMemberConformance.metrics_omitting = [member_figure(120), member_figure(80), member_figure(3), member_figure(9), NO_FIGURE]
TestLinkedInMemberConformance.omitted_figure = (SHARE, "comments")
TestLinkedInPageConformance.metrics_ids = [SHARE]
TestLinkedInPageConformance.metrics_success = [reply(200, json=PAGE_STATISTICS)]
TestLinkedInPageConformance.expected_metrics = {SHARE: {"views": 40, "reach": 10, "likes": 5, "comments": 1, "reposts": 1, "clicks": 2}}
TestLinkedInPageConformance.metrics_omitting = [reply(200, json={**PAGE_STATISTICS, "elements": [{
    **PAGE_STATISTICS["elements"][0],
    "totalShareStatistics": {k: v for k, v in PAGE_STATISTICS["elements"][0]["totalShareStatistics"].items() if k != "clickCount"},
}]})]
TestLinkedInPageConformance.omitted_figure = (SHARE, "clicks")
TestLinkedInPageConformance.account_metrics_success = [reply(200, json={"firstDegreeSize": 9876})]
TestLinkedInPageConformance.expected_account_metrics = {"followers": 9876}


def test_page_followers_come_from_network_sizes():
    outcome = run(call_scripted(page, [reply(200, json={"firstDegreeSize": 9876})], page.fetch_account_metrics, credentials=PAGE_CREDENTIALS))
    (request,) = outcome.sent
    assert str(request.url) == "https://api.linkedin.com/rest/networkSizes/urn%3Ali%3Aorganization%3A2414183?edgeType=COMPANY_FOLLOWED_BY_MEMBER"
    rest_headers_ok(request)
    assert outcome.result.followers == 9876


def test_both_providers_are_registered_under_the_linkedin_entry_point():
    import tomllib
    from pathlib import Path

    import plugins.linkedin

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["socialgate.providers"]["linkedin"] == "plugins.linkedin"
    assert [p.id for p in plugins.linkedin.register_providers()] == ["linkedin", "linkedin_page"]


# -- video, documents, reconcile -------------------------------------------------------------


def poll(provider, steps, request, handle, credentials=MEMBER_CREDENTIALS):
    return run(call_scripted(provider, steps, lambda ctx: provider.poll(ctx, request, handle), credentials=credentials))


def test_a_video_is_uploaded_in_parts_finalized_with_their_etags_then_posted_once_available():
    size = PART + 10
    request = PublishRequest(text="Our launch", idempotency_key="tgt_li_video", media=(clip(size),))
    second_part = reply(200, text="", headers={"etag": "/ambry-video/signedId/def456"})
    accepted = run(publish_scripted(member, [video_initialized(size), UPLOADED_PART, second_part, FINALIZED], request, credentials=MEMBER_CREDENTIALS))
    assert accepted.error is None and isinstance(accepted.result, Processing)
    assert dict(accepted.result.handle) == {"asset": VIDEO_URN, "kind": "video", "title": "launch.mp4"}
    assert accepted.result.published is False
    init, first, second, finalize = accepted.sent
    assert (init.method, str(init.url)) == ("POST", "https://api.linkedin.com/rest/videos?action=initializeUpload")
    rest_headers_ok(init)
    assert json.loads(init.content) == {"initializeUploadRequest": {
        "owner": "urn:li:person:782bbtaQ", "fileSizeBytes": size, "uploadCaptions": False, "uploadThumbnail": False}}
    assert [(r.method, str(r.url)) for r in (first, second)] == [("PUT", f"{UPLOAD_URL}0"), ("PUT", f"{UPLOAD_URL}1")]
    assert (len(first.content), len(second.content)) == (PART, 10)
    assert first.headers["content-type"] == "application/octet-stream"
    assert (finalize.method, str(finalize.url)) == ("POST", "https://api.linkedin.com/rest/videos?action=finalizeUpload")
    assert json.loads(finalize.content) == {"finalizeUploadRequest": {
        "video": VIDEO_URN, "uploadToken": "", "uploadedPartIds": ["/ambry-video/signedId/abc123", "/ambry-video/signedId/def456"]}}

    handle = dict(accepted.result.handle)
    waiting = poll(member, [asset_status(VIDEO_URN, "WAITING_UPLOAD")], request, handle)
    assert isinstance(waiting.result, Processing) and waiting.result.stage == "waiting_upload"
    assert (waiting.sent[0].method, str(waiting.sent[0].url)) == ("GET", "https://api.linkedin.com/rest/videos/urn%3Ali%3Avideo%3AC5F10AQGKQg_6y2a4sQ")
    done = poll(member, [asset_status(VIDEO_URN, "AVAILABLE"), CREATED], request, handle)
    assert done.error is None and done.result.platform_post_id == SHARE
    assert json.loads(done.sent[1].content) == post_body("urn:li:person:782bbtaQ", "Our launch", content={"media": {"title": "launch.mp4", "id": VIDEO_URN}})


def test_a_document_is_uploaded_with_one_put_and_posted_with_its_title_once_available():
    deck = PublishMedia(kind="document", mime_type="application/pdf", size_bytes=8, url="https://media.example/d.pdf", source=BytesSource(b"%PDF-1.7"), filename="q3-results.pdf")
    request = PublishRequest(text="Q3 results", idempotency_key="tgt_li_doc", media=(deck,))
    initialized = reply(200, json={"value": {"uploadUrlExpiresAt": 1650567510704, "uploadUrl": "https://www.linkedin.com/dms-uploads/D5F10AQH4Lq9OU5N3jQ/uploadedDocument?ca=vector_feedshare", "document": DOCUMENT_URN}})
    accepted = run(publish_scripted(page, [initialized, reply(201, text="")], request, credentials=PAGE_CREDENTIALS))
    assert isinstance(accepted.result, Processing) and dict(accepted.result.handle) == {"asset": DOCUMENT_URN, "kind": "document", "title": "q3-results.pdf"}
    init, put = accepted.sent
    assert str(init.url) == "https://api.linkedin.com/rest/documents?action=initializeUpload"
    assert json.loads(init.content) == {"initializeUploadRequest": {"owner": "urn:li:organization:2414183"}}
    assert (put.method, put.content) == ("PUT", b"%PDF-1.7")
    done = poll(page, [asset_status(DOCUMENT_URN, "AVAILABLE"), CREATED], request, dict(accepted.result.handle), PAGE_CREDENTIALS)
    assert str(done.sent[0].url) == "https://api.linkedin.com/rest/documents/urn%3Ali%3Adocument%3AD5F10AQH4Lq9OU5N3jQ"
    assert json.loads(done.sent[1].content)["content"] == {"media": {"title": "q3-results.pdf", "id": DOCUMENT_URN}}


def test_a_video_linkedin_could_not_process_is_rejected_without_posting():
    request = PublishRequest(text="Our launch", idempotency_key="tgt_li_video", media=(clip(),))
    failed = poll(member, [asset_status(VIDEO_URN, "PROCESSING_FAILED")], request, {"asset": VIDEO_URN, "kind": "video", "title": "launch.mp4"})
    assert isinstance(failed.error, Rejected) and failed.error.code == "MEDIA_PROCESSING_FAILED"
    assert len(failed.sent) == 1


def posts_page(*elements):
    return reply(200, json={"paging": {"start": 0, "count": 20, "links": [], "total": len(elements)}, "elements": list(elements)})


def a_post(urn, commentary, created_ms):
    return {
        "isReshareDisabledByAuthor": False, "createdAt": created_ms, "lifecycleState": "PUBLISHED", "lastModifiedAt": created_ms,
        "visibility": "PUBLIC", "publishedAt": created_ms, "author": "urn:li:organization:2414183", "id": urn,
        "distribution": DISTRIBUTION, "commentary": commentary,
    }


def test_reconcile_finds_the_recent_post_whose_commentary_is_the_one_sent():
    now_ms = int(FIXED_NOW.timestamp() * 1000)
    request = PublishRequest(text="Hiring (again)", idempotency_key="tgt_li_lost")
    answer = posts_page(
        a_post("urn:li:share:1", "Something else", now_ms - 60_000),
        a_post("urn:li:share:2", "Hiring \\(again\\)", now_ms - 2 * 86_400_000),  # the same words two days ago: another post
        a_post("urn:li:share:3", "Hiring \\(again\\)", now_ms - 30_000),
    )
    found = run(call_scripted(page, [answer], lambda ctx: page.reconcile(ctx, request), credentials=PAGE_CREDENTIALS))
    assert found.result.platform_post_id == "urn:li:share:3" and found.result.url == "https://www.linkedin.com/feed/update/urn:li:share:3"
    (sent,) = found.sent
    assert str(sent.url) == "https://api.linkedin.com/rest/posts?author=urn%3Ali%3Aorganization%3A2414183&q=author&count=20&sortBy=LAST_MODIFIED"
    assert sent.headers["x-restli-method"] == "FINDER"
    rest_headers_ok(sent)
    missing = run(call_scripted(page, [posts_page(a_post("urn:li:share:1", "Something else", now_ms))], lambda ctx: page.reconcile(ctx, request), credentials=PAGE_CREDENTIALS))
    assert missing.error is None and missing.result is None


def test_a_check_made_again_after_linkedin_took_the_post_finds_it_instead_of_failing_it():
    now_ms = int(FIXED_NOW.timestamp() * 1000)
    request = PublishRequest(text="Our launch", idempotency_key="tgt_li_again", media=(clip(),))
    handle = {"asset": VIDEO_URN, "kind": "video", "title": "launch.mp4"}
    steps = [asset_status(VIDEO_URN, "AVAILABLE"), reply(422, json=DUPLICATE), posts_page(a_post("urn:li:share:9", "Our launch", now_ms - 5_000))]
    again = poll(member, steps, request, handle)
    assert again.error is None and again.result.platform_post_id == "urn:li:share:9"
    assert str(again.sent[2].url).startswith("https://api.linkedin.com/rest/posts?author=urn%3Ali%3Aperson%3A782bbtaQ&q=author")
    refused = poll(member, steps[:2] + [posts_page()], request, handle)
    assert isinstance(refused.error, Rejected) and refused.error.code == "DUPLICATE_POST"
