"""Meta ads, replayed against the Marketing API's real request and response shapes."""

import asyncio
import json
from datetime import UTC, date, datetime
from urllib.parse import parse_qs

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.meta_ads import MetaAds
from providers import AdAccountRef, AdChanges, AdSpec, AuthExpired, Money, RateLimited, Rejected, TransientError
from providers.ads_testing import AdsCall, AdsConformance
from providers.testing import ErrorCase, call_scripted, reply

GRAPH = "https://graph.facebook.com/v23.0"
TOKEN = "EAABwzLixnjYBO-conformance"
ACCOUNT = AdAccountRef("act_1234567890", "USD")
CAMPAIGN_ID = "120210000000000001"
provider = MetaAds()


def form(request):
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def campaign(**fields):
    """A campaign as ``GET /{id}?fields=…`` returns it: budgets are integer strings."""
    return {
        "id": CAMPAIGN_ID, "name": "Spring sale", "status": "PAUSED", "effective_status": "PAUSED",
        "objective": "OUTCOME_TRAFFIC", "daily_budget": "1234", "start_time": "2026-01-15T12:00:00+0000", **fields,
    }


def graph_error(code, message, subcode=None, kind="OAuthException", status=400, headers=None):
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEfGhIjK"}
    if subcode:
        error["error_subcode"] = subcode
    return reply(status, json={"error": error}, headers=headers)


def check_create(result, sent):
    assert [(r.method, str(r.url.copy_with(query=None))) for r in sent] == [
        ("POST", f"{GRAPH}/act_1234567890/campaigns"), ("GET", f"{GRAPH}/{CAMPAIGN_ID}"),
    ]
    assert sent[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert form(sent[0]) == {
        "name": "Spring sale", "status": "PAUSED", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": "[]", "daily_budget": "1234",
    }
    assert sent[1].url.params["fields"].startswith("id,name,status,effective_status")
    assert result.daily_budget == Money(1234, "USD") and result.effective_status == "PAUSED"
    assert result.starts_at == datetime(2026, 1, 15, 12, tzinfo=UTC)


def check_list(result, sent):
    assert [r.url.params.get("after") for r in sent] == [None, "QVFIUmFk"]
    assert str(sent[0].url.copy_with(query=None)) == f"{GRAPH}/act_1234567890/campaigns"
    assert [c.external_id for c in result] == [CAMPAIGN_ID, "120210000000000002"]
    assert result[1].status == "active" and result[1].effective_status == "WITH_ISSUES"


def check_pause(result, sent):
    assert (sent[0].method, str(sent[0].url), form(sent[0])) == ("POST", f"{GRAPH}/{CAMPAIGN_ID}", {"status": "PAUSED"})
    assert result.status == "paused"


def check_update(result, sent):
    assert form(sent[0]) == {"name": "Spring sale 2", "daily_budget": "5000"}
    assert result.daily_budget == Money(5000, "USD")


def check_insights(result, sent):
    params = sent[0].url.params
    assert json.loads(params["time_range"]) == {"since": "2026-01-14", "until": "2026-01-15"}
    assert params["time_increment"] == "1" and params["fields"] == "impressions,clicks,spend,reach,conversions"
    assert [(i.day, i.impressions, i.clicks, i.spend, i.reach, i.conversions) for i in result] == [
        (date(2026, 1, 14), 1000, 20, Money(534, "USD"), 800, None),
        (date(2026, 1, 15), 1200, 30, Money(53395, "USD"), None, 3),
    ]


def check_accounts(result, sent):
    assert [(a.external_id, a.currency, a.timezone) for a in result] == [("act_1234567890", "USD", "America/Los_Angeles"), ("act_2", "JPY", "Asia/Tokyo")]


ADSET_ID = "120210000000000101"
AD_ID = "120210000000000201"
TARGETING = {"geo_locations": {"countries": ["US"]}}


def check_ad_set(result, sent):
    assert [(r.method, str(r.url.copy_with(query=None))) for r in sent] == [("POST", f"{GRAPH}/act_1234567890/adsets"), ("GET", f"{GRAPH}/{ADSET_ID}")]
    assert form(sent[0]) == {
        "name": "Readers", "status": "PAUSED", "campaign_id": CAMPAIGN_ID, "daily_budget": "2000", "bid_amount": "45",
        "start_time": "2026-01-16T00:00:00+00:00", "billing_event": "IMPRESSIONS", "optimization_goal": "LINK_CLICKS", "targeting": json.dumps(TARGETING),
    }
    assert (result.parent_id, result.daily_budget, result.bid) == (CAMPAIGN_ID, Money(2000, "USD"), Money(45, "USD"))


def check_ad(result, sent):
    assert form(sent[0]) == {"name": "Banner", "status": "PAUSED", "adset_id": ADSET_ID, "creative": json.dumps({"creative_id": "23840000000000001"})}
    assert (result.level, result.parent_id, result.effective_status) == ("ad", ADSET_ID, "PENDING_REVIEW")


def check_delete(result, sent):
    assert form(sent[0]) == {"status": "DELETED"} and result.status == "deleted"


def check_ad_sets(result, sent):
    assert str(sent[0].url.copy_with(query=None)) == f"{GRAPH}/{CAMPAIGN_ID}/adsets"
    assert [(s.external_id, s.daily_budget) for s in result] == [(ADSET_ID, None)]  # "0": the budget is the campaign's


def echo_get(first_request_holder):
    def answer(request):
        sent = form(first_request_holder[0])
        return reply(200, json=campaign(name=sent["name"], daily_budget=sent["daily_budget"]))
    return answer


def remember(holder, response):
    def answer(request):
        holder.append(request)
        return response
    return answer


class TestMetaAdsConformance(AdsConformance):
    provider = provider
    credentials = {"access_token": TOKEN}
    account = ACCOUNT
    unrepresentable = [Money(12345, "KWD"), Money(150, "IDR")]  # Meta counts KWD in hundredths, IDR in whole rupiah
    money_platform_field = "lifetime_budget"
    calls = [
        AdsCall(
            "create a campaign",
            lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec("campaign", "Spring sale", daily_budget=Money(1234, "USD"))),
            [reply(200, json={"id": CAMPAIGN_ID}), reply(200, json=campaign())], check_create,
        ),
        AdsCall(
            "list campaigns over two pages",
            lambda ads, ctx, acct: ads.list_objects(ctx, acct, "campaign"),
            [
                reply(200, json={"data": [campaign()], "paging": {"cursors": {"before": "QVFIUjFa", "after": "QVFIUmFk"}, "next": f"{GRAPH}/act_1234567890/campaigns?after=QVFIUmFk"}}),
                reply(200, json={"data": [campaign(id="120210000000000002", status="ACTIVE", effective_status="WITH_ISSUES")], "paging": {"cursors": {"before": "QVFIUmFk", "after": "QVFIUmFl"}}}),
            ],
            check_list,
        ),
        AdsCall(
            "pause a campaign",
            lambda ads, ctx, acct: ads.set_status(ctx, acct, "campaign", CAMPAIGN_ID, "paused"),
            [reply(200, json={"success": True}), reply(200, json=campaign())], check_pause,
        ),
        AdsCall(
            "rename and rebudget",
            lambda ads, ctx, acct: ads.update_object(ctx, acct, "campaign", CAMPAIGN_ID, AdChanges(name="Spring sale 2", daily_budget=Money(5000, "USD"))),
            [reply(200, json={"success": True}), reply(200, json=campaign(name="Spring sale 2", daily_budget="5000"))], check_update,
        ),
        AdsCall(
            "daily insights",
            lambda ads, ctx, acct: ads.fetch_insights(ctx, acct, "campaign", CAMPAIGN_ID, date(2026, 1, 14), date(2026, 1, 15)),
            [reply(200, json={"data": [
                {"impressions": "1000", "clicks": "20", "spend": "5.34", "reach": "800", "date_start": "2026-01-14", "date_stop": "2026-01-14"},
                {"impressions": "1200", "clicks": "30", "spend": "533.95", "conversions": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"}],
                 "date_start": "2026-01-15", "date_stop": "2026-01-15"},
            ], "paging": {"cursors": {"before": "MAZDZD", "after": "MQZDZD"}}})],
            check_insights,
        ),
        AdsCall(
            "create an ad set with a bid and Meta's own fields",
            lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec(
                "ad_set", "Readers", parent_id=CAMPAIGN_ID, daily_budget=Money(2000, "USD"), bid=Money(45, "USD"),
                starts_at=datetime(2026, 1, 16, tzinfo=UTC),
                platform_fields={"billing_event": "IMPRESSIONS", "optimization_goal": "LINK_CLICKS", "targeting": TARGETING})),
            [reply(200, json={"id": ADSET_ID}), reply(200, json={
                "id": ADSET_ID, "name": "Readers", "status": "PAUSED", "effective_status": "PAUSED", "campaign_id": CAMPAIGN_ID,
                "daily_budget": "2000", "bid_amount": "45", "start_time": "2026-01-16T00:00:00+0000"})],
            check_ad_set,
        ),
        AdsCall(
            "create an ad",
            lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec("ad", "Banner", parent_id=ADSET_ID, creative_id="23840000000000001")),
            [reply(200, json={"id": AD_ID}), reply(200, json={"id": AD_ID, "name": "Banner", "status": "PAUSED", "effective_status": "PENDING_REVIEW", "adset_id": ADSET_ID})],
            check_ad,
        ),
        AdsCall(
            "list a campaign's ad sets",
            lambda ads, ctx, acct: ads.list_objects(ctx, acct, "ad_set", CAMPAIGN_ID),
            [reply(200, json={"data": [{"id": ADSET_ID, "name": "Readers", "status": "ACTIVE", "effective_status": "CAMPAIGN_PAUSED", "campaign_id": CAMPAIGN_ID, "daily_budget": "0"}],
                              "paging": {"cursors": {"before": "a", "after": "b"}}})],
            check_ad_sets,
        ),
        AdsCall(
            "delete a campaign",
            lambda ads, ctx, acct: ads.set_status(ctx, acct, "campaign", CAMPAIGN_ID, "deleted"),
            [reply(200, json={"success": True}), reply(200, json=campaign(status="DELETED", effective_status="DELETED"))], check_delete,
        ),
        AdsCall(
            "ad accounts",
            lambda ads, ctx, acct: ads.list_ad_accounts(ctx),
            [reply(200, json={"data": [
                {"id": "act_1234567890", "name": "Main", "currency": "USD", "timezone_name": "America/Los_Angeles"},
                {"id": "act_2", "name": "Japan", "currency": "JPY", "timezone_name": "Asia/Tokyo"},
            ], "paging": {"cursors": {"before": "a", "after": "b"}}})],
            check_accounts,
        ),
    ]
    error_cases = [
        ErrorCase("expired token", [graph_error(190, "Error validating access token: Session has expired", subcode=463, status=400)], AuthExpired, code="META_190_463"),
        ErrorCase(
            "ads rate limit",
            [graph_error(80004, "There have been too many calls to this ad-account.", subcode=2446079, status=400,
                         headers={"X-Business-Use-Case-Usage": json.dumps({"1234567890": [{"type": "ads_management", "call_count": 100, "total_cputime": 30, "total_time": 30, "estimated_time_to_regain_access": 5}]})})],
            RateLimited, code="META_80004_2446079", retry_after=300,
        ),
        ErrorCase("unknown error", [graph_error(1, "An unknown error occurred", kind="OAuthException", status=500)], TransientError, code="META_1"),
        ErrorCase("invalid parameter", [graph_error(100, "Invalid parameter", subcode=1885272, status=400)], Rejected, code="META_100_1885272"),
        ErrorCase("no such object", [graph_error(100, "Unsupported get request. Object with ID 'act_1' does not exist", subcode=33, kind="GraphMethodException")], Rejected, code="NOT_FOUND"),
    ]

    def echo_campaign(self, budget):
        holder = []
        return [remember(holder, reply(200, json={"id": CAMPAIGN_ID})), echo_get(holder)]


def test_jpy_is_sent_in_whole_yen_and_kwd_in_meta_hundredths():
    kit = TestMetaAdsConformance()
    for budget, units in ((Money(1234, "JPY"), "1234"), (Money(12340, "KWD"), "1234")):
        holder = []
        outcome = kit.run_call(
            lambda ads, ctx, acct, b=budget: ads.create_object(ctx, acct, AdSpec("campaign", "x", daily_budget=b)),
            [remember(holder, reply(200, json={"id": CAMPAIGN_ID})), echo_get(holder)], AdAccountRef("act_1", budget.currency),
        )
        assert form(outcome.sent[0])["daily_budget"] == units and outcome.result.daily_budget == budget


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=10**15), st.sampled_from(["USD", "JPY", "KWD", "IDR", "EUR"]))
def test_every_budget_round_trips_or_is_refused(amount, currency):
    kit = TestMetaAdsConformance()
    budget = Money(amount, currency)
    representable = (amount * (1 if currency in ("JPY", "IDR") else 100)) % (10 ** {"JPY": 0, "KWD": 3}.get(currency, 2)) == 0
    if representable:
        assert kit.round_trip(budget) == budget
    else:
        outcome = kit.run_call(lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec("campaign", "x", daily_budget=budget)), [], AdAccountRef("act_1", currency))
        assert outcome.error.code == "AMOUNT_NOT_REPRESENTABLE" and outcome.sent == []


def test_code_exchange_and_connect():
    async def flow(ctx):
        tokens = await provider.exchange_code(ctx, code="AQD-code", redirect_uri="https://gw.example/oauth/callback", code_verifier=None,
                                              client_id="1234", client_secret="app-secret")
        return tokens, await provider.connect(ctx, tokens.to_credentials())

    outcome = asyncio.run(call_scripted(provider, [
        reply(200, json={"access_token": TOKEN, "token_type": "bearer", "expires_in": 5183944}),
        reply(200, json={"id": "10160000000000001", "name": "Ada Admin"}),
    ], flow))
    tokens, profile = outcome.result
    assert outcome.sent[0].method == "GET" and outcome.sent[0].url.params["code"] == "AQD-code"
    assert tokens.access_token == TOKEN and tokens.expires_at is not None
    assert (profile.external_id, profile.handle) == ("10160000000000001", "Ada Admin")
    assert outcome.sent[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_platform_fields_never_carry_money_or_override_ours():
    kit = TestMetaAdsConformance()
    for fields in ({"lifetime_budget": "999999"}, {"bid_amount": "1"}, {"name": "other"}):
        outcome = kit.run_call(lambda ads, ctx, acct, f=fields: ads.create_object(ctx, acct, AdSpec("campaign", "x", platform_fields=f)), [])
        assert outcome.error.code == "PLATFORM_FIELD_NOT_ALLOWED" and outcome.sent == [], fields
