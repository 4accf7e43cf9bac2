"""Google Business Profile, replayed against the Business Profile APIs' real request and response shapes
(localPosts v4, account management and business information v1, performance v1)."""

import asyncio
import json

from plugins.google_business import GoogleBusinessProfile, performance_totals
from providers import AuthExpired, DraftMedia, PostDraft, RateLimited, Rejected, TransientError, Unconfirmed
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply, sample_media, sample_request

ACCOUNT = "accounts/108149346525466153412"
LOCATION = "locations/4839158302548235912"
POSTS = f"https://mybusiness.googleapis.com/v4/{ACCOUNT}/{LOCATION}/localPosts"
CREDENTIALS = {
    "access_token": "ya29.a0AfB_byC", "refresh_token": "1//0gLq", "token_type": "Bearer",
    "business_account": ACCOUNT, "location": LOCATION, "location_title": "Gate Coffee",
}
provider = GoogleBusinessProfile()


def local_post(post_id="1234567890", state="LIVE", summary="Hello from the socialgate conformance kit", topic="STANDARD", created="2026-01-15T12:00:00.120Z"):
    """A LocalPost as ``POST …/localPosts`` and the listing return it."""
    return {
        "name": f"{ACCOUNT}/{LOCATION}/localPosts/{post_id}", "languageCode": "en", "summary": summary, "state": state,
        "updateTime": created, "createTime": created, "topicType": topic,
        "searchUrl": f"https://local.google.com/place?id=7312&use=posts&lpsid={post_id}",
    }


def google_error(code, status, message, details=None):
    return reply(code, json={"error": {"code": code, "message": message, "status": status, **({"details": details} if details else {})}})


def run(operation, steps, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials))
    return outcome.result, outcome.error, outcome.sent


def series(metric, *values):
    """One metric's ``dailyMetricTimeSeries``; a None value is a day Google left out as zero."""
    dated = [{"date": {"year": 2026, "month": 1, "day": day + 1}, **({"value": str(v)} if v is not None else {})} for day, v in enumerate(values)]
    return {"dailyMetric": metric, "timeSeries": {"datedValues": dated}}


PERFORMANCE = {"multiDailyMetricTimeSeries": [{"dailyMetricTimeSeries": [
    series("WEBSITE_CLICKS", 3, None, 4), series("CALL_CLICKS", None, None, None), series("BUSINESS_DIRECTION_REQUESTS", 1, 2, 0),
    series("BUSINESS_IMPRESSIONS_DESKTOP_MAPS", 10, 11, 12), series("BUSINESS_IMPRESSIONS_MOBILE_MAPS", 5),
    series("BUSINESS_IMPRESSIONS_DESKTOP_SEARCH", 7), series("BUSINESS_IMPRESSIONS_MOBILE_SEARCH", 8),
]}]}


class TestGoogleBusinessConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    success = [reply(200, json=local_post())]
    expected_post_id = f"{ACCOUNT}/{LOCATION}/localPosts/1234567890"
    expected_url = "https://local.google.com/place?id=7312&use=posts&lpsid=1234567890"
    error_cases = [
        ErrorCase("token expired", [google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")], AuthExpired, code="UNAUTHENTICATED"),
        ErrorCase("no API access", [google_error(403, "PERMISSION_DENIED", "The caller does not have permission")], Rejected, code="PERMISSION_DENIED"),
        ErrorCase("location gone", [google_error(404, "NOT_FOUND", "Requested entity was not found.")], Rejected, code="NOT_FOUND"),
        ErrorCase("bad argument", [google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")], Rejected, code="INVALID_ARGUMENT"),
        ErrorCase(
            "10 edits a minute",
            [google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Edits per minute per profile'",
                          [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42s"}])],
            RateLimited, code="RESOURCE_EXHAUSTED", retry_after=42,
        ),
        ErrorCase("policy rejection", [reply(200, json=local_post(state="REJECTED"))], Rejected, code="POST_REJECTED"),
        ErrorCase("backend error", [google_error(503, "UNAVAILABLE", "The service is currently unavailable.")], TransientError),
        ErrorCase("an answer without the post", [reply(200, json={})], Unconfirmed),
    ]
    platform_rejects = [
        RejectedDraft("an event without dates", PostDraft(text="a", settings={"topic": "EVENT", "event_title": "Tasting"}), "SETTING_REQUIRED"),
        RejectedDraft(
            "an event that ends before it starts",
            PostDraft(text="a", settings={"topic": "EVENT", "event_title": "T", "event_start": "2026-03-02", "event_end": "2026-03-01"}), "SETTING_INVALID",
        ),
        RejectedDraft(
            "a button on an offer",
            PostDraft(text="a", settings={"topic": "OFFER", "event_title": "T", "event_start": "2026-03-01", "event_end": "2026-03-02", "action": "SHOP", "action_url": "https://x.example"}),
            "SETTING_INVALID",
        ),
        RejectedDraft("a button without a link", PostDraft(text="a", settings={"action": "BOOK"}), "SETTING_REQUIRED"),
        RejectedDraft("an alert (not creatable)", PostDraft(text="a", settings={"topic": "ALERT"}), "SETTING_INVALID"),
        RejectedDraft("event details on a standard post", PostDraft(text="a", settings={"event_title": "T"}), "SETTING_INVALID"),
        RejectedDraft("a video", PostDraft(text="a", media=(DraftMedia("video", "video/mp4", 10),)), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("two photos", PostDraft(text="a", media=(DraftMedia("image", "image/jpeg", 10),) * 2), "TOO_MANY_MEDIA"),
    ]
    platform_accepts = [
        PostDraft(text="a", settings={"action": "CALL"}),
        PostDraft(text="a", settings={"topic": "EVENT", "event_title": "Tasting", "event_start": "2026-03-01T18:30", "event_end": "2026-03-01T21:00"}),
    ]
    account_metrics_success = [reply(200, json=PERFORMANCE), reply(200, json={"localPosts": [local_post("1"), local_post("2")], "nextPageToken": "p2"}),
                               reply(200, json={"localPosts": [local_post("3")]})]
    expected_account_metrics = {"posts": 3}

    def check_published_requests(self, sent):
        (request,) = sent
        assert request.method == "POST" and str(request.url) == POSTS
        assert request.headers["Authorization"] == "Bearer ya29.a0AfB_byC"
        assert json.loads(request.content) == {"languageCode": "en", "summary": "Hello from the socialgate conformance kit", "topicType": "STANDARD"}


def test_the_ten_edits_a_minute_are_declared_as_a_quota():
    (quota,) = provider.limits.quotas
    assert (quota.count, quota.period_seconds, quota.scope, quota.cost) == (10, 60, "account", 1)
    assert provider.metrics.post == () and not provider.implements("fetch_metrics")  # no per-post figures


def test_an_offer_carries_its_event_offer_and_photo():
    settings = {
        "topic": "OFFER", "event_title": "Spring sale", "event_start": "2026-03-01", "event_end": "2026-03-31T20:00",
        "offer_coupon": "SPRING", "offer_url": "https://shop.example/sale", "offer_terms": "One per customer", "language": "de",
    }
    request = sample_request(media=(sample_media("image"),), settings=settings)
    result, error, sent = run(lambda ctx: provider.publish(ctx, request), [reply(200, json=local_post(topic="OFFER", state="PROCESSING"))])
    assert error is None and result.raw["state"] == "PROCESSING"
    assert json.loads(sent[0].content) == {
        "languageCode": "de", "summary": request.text, "topicType": "OFFER",
        "event": {"title": "Spring sale", "schedule": {"startDate": {"year": 2026, "month": 3, "day": 1}, "endDate": {"year": 2026, "month": 3, "day": 31}, "endTime": {"hours": 20, "minutes": 0}}},
        "offer": {"couponCode": "SPRING", "redeemOnlineUrl": "https://shop.example/sale", "termsConditions": "One per customer"},
        "media": [{"mediaFormat": "PHOTO", "sourceUrl": "https://media.example.com/image.bin"}],
    }


def test_a_call_to_action_button():
    request = sample_request(settings={"action": "LEARN_MORE", "action_url": "https://gate.example/menu"})
    _, error, sent = run(lambda ctx: provider.publish(ctx, request), [reply(200, json=local_post())])
    assert error is None and json.loads(sent[0].content)["callToAction"] == {"actionType": "LEARN_MORE", "url": "https://gate.example/menu"}
    call = sample_request(settings={"action": "CALL"})
    _, _, sent = run(lambda ctx: provider.publish(ctx, call), [reply(200, json=local_post())])
    assert json.loads(sent[0].content)["callToAction"] == {"actionType": "CALL"}


def test_delete_and_a_post_already_gone():
    name = f"{ACCOUNT}/{LOCATION}/localPosts/1234567890"
    _, error, sent = run(lambda ctx: provider.delete(ctx, name), [reply(200, json={})])
    assert error is None and sent[0].method == "DELETE" and str(sent[0].url) == f"https://mybusiness.googleapis.com/v4/{name}"
    _, error, _ = run(lambda ctx: provider.delete(ctx, name), [google_error(404, "NOT_FOUND", "Requested entity was not found.")])
    assert error is None


def test_reconcile_finds_a_recent_post_with_the_same_summary_only():
    request = sample_request()
    found, _, sent = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json={"localPosts": [local_post("9", summary="other"), local_post("8")], "nextPageToken": "x"})])
    assert found.platform_post_id.endswith("/localPosts/8") and sent[0].url.params["pageSize"] == "100" and len(sent) == 1
    old = local_post("7", created="2026-01-10T09:00:00Z")  # five days before the kit's clock: an earlier post with the same words
    assert run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json={"localPosts": [old]})])[0] is None


def test_location_performance_sums_days_and_keeps_unreported_metrics_unknown():
    totals = performance_totals(PERFORMANCE)
    assert totals == {
        "website_clicks": 7, "call_clicks": 0, "direction_requests": 3, "impressions_maps": 38, "impressions_search": 15,
        "conversations": None,  # not in the answer: unknown, not zero
    }
    snapshot, error, sent = run(provider.fetch_account_metrics, TestGoogleBusinessConformance.account_metrics_success)
    assert error is None and snapshot.extra["impressions_maps"] == 38 and snapshot.posts == 3
    params = sent[0].url.params
    assert sent[0].url.path == f"/v1/{LOCATION}:fetchMultiDailyMetricsTimeSeries"
    assert "WEBSITE_CLICKS" in params.get_list("dailyMetrics") and len(params.get_list("dailyMetrics")) == 8
    # The kit's clock is 2026-01-15: the 28 full days before it.
    assert (params["dailyRange.startDate.month"], params["dailyRange.startDate.day"]) == ("12", "18")
    assert (params["dailyRange.endDate.year"], params["dailyRange.endDate.month"], params["dailyRange.endDate.day"]) == ("2026", "1", "14")
    assert sent[2].url.params["pageToken"] == "p2"


def test_the_code_exchange_records_the_first_managed_location():
    token = reply(200, json={"access_token": "ya29.new", "expires_in": 3599, "refresh_token": "1//0new", "scope": "https://www.googleapis.com/auth/business.manage", "token_type": "Bearer"})
    accounts = reply(200, json={"accounts": [{"name": ACCOUNT, "accountName": "Gate Coffee", "type": "LOCATION_GROUP", "verificationState": "VERIFIED"}]})
    locations = reply(200, json={"locations": [{"name": LOCATION, "title": "Gate Coffee", "storefrontAddress": {"locality": "Zürich"}}]})
    exchange = lambda ctx: provider.exchange_code(ctx, code="4/0Ad", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="id", client_secret="s")  # noqa: E731
    tokens, error, sent = run(exchange, [token, accounts, locations], credentials={})
    assert error is None
    assert {k: tokens.to_credentials()[k] for k in ("business_account", "location", "location_title")} == {"business_account": ACCOUNT, "location": LOCATION, "location_title": "Gate Coffee"}
    assert sent[2].url.params["readMask"] == "name,title,storefrontAddress" and sent[2].headers["Authorization"] == "Bearer ya29.new"
    _, error, _ = run(exchange, [token, reply(200, json={})], credentials={})
    assert isinstance(error, Rejected) and error.code == "NO_LOCATION"


def test_connect_refuses_a_location_the_user_does_not_manage():
    accounts = reply(200, json={"accounts": [{"name": ACCOUNT}]})
    locations = reply(200, json={"locations": [{"name": LOCATION, "title": "Gate Coffee"}]})
    profile, error, _ = run(lambda ctx: provider.connect(ctx, dict(CREDENTIALS)), [accounts, locations])
    assert error is None and profile.external_id == LOCATION and profile.account_type == "location"
    other = dict(CREDENTIALS, location="locations/1")
    _, error, _ = run(lambda ctx: provider.connect(ctx, other), [accounts, locations])
    assert isinstance(error, Rejected) and error.code == "LOCATION_NOT_MANAGED"


def test_a_refresh_keeps_the_location():
    answer = reply(200, json={"access_token": "ya29.fresh", "expires_in": 3599, "token_type": "Bearer"})
    tokens, error, sent = run(lambda ctx: provider.refresh_token(ctx, client_id="id", client_secret="s"), [answer])
    assert error is None and tokens.to_credentials()["location"] == LOCATION and tokens.access_token == "ya29.fresh"
    refused = reply(400, json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    _, error, _ = run(lambda ctx: provider.refresh_token(ctx, client_id="id", client_secret="s"), [refused])
    assert isinstance(error, AuthExpired)


def test_a_listing_longer_than_is_read_leaves_the_posts_figure_unknown(monkeypatch):
    from plugins import google_business

    monkeypatch.setattr(google_business, "MAX_POST_PAGES", 1)
    steps = [reply(200, json=PERFORMANCE), reply(200, json={"localPosts": [local_post("1")], "nextPageToken": "p2"})]
    snapshot, error, sent = run(provider.fetch_account_metrics, steps)
    assert error is None and snapshot.posts is None and snapshot.extra["website_clicks"] == 7 and len(sent) == 2
