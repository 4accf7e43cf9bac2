"""TikTok ads, replayed against the Business API v1.3's real request and response shapes."""

import asyncio
import json
from datetime import date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.tiktok_ads import TikTokAds
from providers import AdAccountRef, AdSpec, AuthExpired, Money, RateLimited, Rejected, TransientError
from providers.ads_testing import AdsCall, AdsConformance
from providers.money import parse_json
from providers.testing import ErrorCase, Reply, call_scripted, reply

API = "https://business-api.tiktok.com/open_api/v1.3"
TOKEN = "act.example0000000000000000000000conformance"
ADVERTISER = "7012345678901234567"
ACCOUNT = AdAccountRef(ADVERTISER, "USD")
CAMPAIGN_ID = 1800000000000000001  # int64, unquoted in TikTok's JSON
provider = TikTokAds()


def envelope(data=None, code=0, message="OK"):
    """TikTok's envelope as raw bytes: ids stay unquoted int64 numbers and money exact decimals."""
    body = '{"code": %d, "message": %s, "request_id": "20260115120000ABCDEF", "data": %s}' % (code, json.dumps(message), data or "{}")
    return Reply(200, body.encode(), {"Content-Type": "application/json"})


def campaign_json(budget="12.34", name="Spring sale", operation="DISABLE", secondary="CAMPAIGN_STATUS_DISABLE"):
    return ('{"campaign_id": %d, "campaign_name": %s, "advertiser_id": %s, "objective_type": "TRAFFIC", "budget_mode": "BUDGET_MODE_DAY",'
            ' "budget": %s, "operation_status": "%s", "secondary_status": "%s", "create_time": "2026-01-15 12:00:00"}'
            % (CAMPAIGN_ID, json.dumps(name), ADVERTISER, budget, operation, secondary))


def page(*rows, total_page=1):
    return '{"list": [%s], "page_info": {"page": 1, "page_size": 100, "total_number": %d, "total_page": %d}}' % (",".join(rows), len(rows), total_page)


def body(request):
    return parse_json(request.content)


def check_create(result, sent):
    assert [(r.method, str(r.url.copy_with(query=None))) for r in sent] == [("POST", f"{API}/campaign/create/"), ("GET", f"{API}/campaign/get/")]
    assert sent[0].headers["Access-Token"] == TOKEN
    assert b'"budget":12.34' in sent[0].content  # an exact JSON number, not 12.339999…
    assert body(sent[0]) == {
        "advertiser_id": ADVERTISER, "operation_status": "DISABLE", "campaign_name": "Spring sale", "objective_type": "TRAFFIC",
        "budget_mode": "BUDGET_MODE_DAY", "budget": body(sent[0])["budget"],
    }
    assert json.loads(sent[1].url.params["filtering"]) == {"campaign_ids": [str(CAMPAIGN_ID)]}
    assert result.external_id == str(CAMPAIGN_ID) and result.daily_budget == Money(1234, "USD")
    assert (result.status, result.effective_status) == ("paused", "CAMPAIGN_STATUS_DISABLE")


def check_list(result, sent):
    assert [r.url.params["page"] for r in sent] == ["1", "2"] and sent[0].url.params["advertiser_id"] == ADVERTISER
    assert [c.status for c in result] == ["paused", "active"]


def check_status(result, sent):
    assert str(sent[0].url) == f"{API}/campaign/status/update/"
    assert body(sent[0]) == {"advertiser_id": ADVERTISER, "campaign_ids": [str(CAMPAIGN_ID)], "operation_status": "ENABLE"}
    assert result.status == "active"


def check_insights(result, sent):
    params = sent[0].url.params
    assert (params["report_type"], params["data_level"], params["start_date"], params["end_date"]) == ("BASIC", "AUCTION_CAMPAIGN", "2026-01-14", "2026-01-15")
    assert json.loads(params["dimensions"]) == ["campaign_id", "stat_time_day"]
    assert [(i.day, i.impressions, i.clicks, i.spend, i.reach, i.conversions) for i in result] == [
        (date(2026, 1, 14), 1000, 20, Money(534, "USD"), 900, 2),
        (date(2026, 1, 15), 1100, 25, Money(1234, "USD"), None, None),
    ]


def check_accounts(result, sent):
    assert json.loads(sent[0].url.params["advertiser_ids"]) == [ADVERTISER]
    assert [(a.external_id, a.currency) for a in result] == [(ADVERTISER, "USD")]


ADGROUP_ID = 1800000000000000101


def adgroup_json():
    return ('{"adgroup_id": %d, "adgroup_name": "Readers", "campaign_id": %d, "advertiser_id": %s, "budget_mode": "BUDGET_MODE_DAY", "budget": 20.00,'
            ' "bid_price": 0.45, "operation_status": "DISABLE", "secondary_status": "ADGROUP_STATUS_CAMPAIGN_DISABLE",'
            ' "schedule_start_time": "2026-01-16 00:00:00", "schedule_end_time": "2026-02-16 00:00:00"}' % (ADGROUP_ID, CAMPAIGN_ID, ADVERTISER))


def check_adgroup(result, sent):
    assert str(sent[0].url) == f"{API}/adgroup/create/"
    assert body(sent[0]) == {
        "advertiser_id": ADVERTISER, "operation_status": "DISABLE", "adgroup_name": "Readers", "campaign_id": str(CAMPAIGN_ID),
        "budget_mode": "BUDGET_MODE_DAY", "budget": Decimal("20.00"), "bid_price": Decimal("0.45"), "schedule_type": "SCHEDULE_START_END",
        "schedule_start_time": "2026-01-16 00:00:00", "schedule_end_time": "2026-02-16 00:00:00", "billing_event": "CPC",
    }
    assert (result.external_id, result.parent_id, result.daily_budget, result.bid) == (str(ADGROUP_ID), str(CAMPAIGN_ID), Money(2000, "USD"), Money(45, "USD"))
    assert result.ends_at == datetime(2026, 2, 16)


def check_delete(result, sent):
    assert str(sent[0].url) == f"{API}/ad/status/update/"
    assert body(sent[0]) == {"advertiser_id": ADVERTISER, "ad_ids": ["1800000000000000201"], "operation_status": "DELETE"}
    assert result.status == "deleted"


def echo_campaign_steps(account_currency):
    sent = []

    def created(request):
        sent.append(body(request))
        return envelope('{"campaign_id": %d}' % CAMPAIGN_ID)

    def got(request):
        return envelope(page(campaign_json(budget=str(sent[0]["budget"]))))

    return [created, got]


class TestTikTokAdsConformance(AdsConformance):
    provider = provider
    credentials = {"access_token": TOKEN, "advertiser_ids": ADVERTISER}
    account = ACCOUNT
    unrepresentable = []  # TikTok takes any decimal the currency's ISO exponent allows
    money_platform_field = "bid_price"
    calls = [
        AdsCall("create a campaign",
                lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec("campaign", "Spring sale", daily_budget=Money(1234, "USD"))),
                [envelope('{"campaign_id": %d}' % CAMPAIGN_ID), envelope(page(campaign_json()))], check_create),
        AdsCall("list campaigns over two pages", lambda ads, ctx, acct: ads.list_objects(ctx, acct, "campaign"),
                [envelope(page(campaign_json(), total_page=2)), envelope(page(campaign_json(operation="ENABLE", secondary="CAMPAIGN_STATUS_ENABLE"), total_page=2))],
                check_list),
        AdsCall("activate a campaign", lambda ads, ctx, acct: ads.set_status(ctx, acct, "campaign", str(CAMPAIGN_ID), "active"),
                [envelope('{"campaign_ids": [%d]}' % CAMPAIGN_ID), envelope(page(campaign_json(operation="ENABLE", secondary="CAMPAIGN_STATUS_ENABLE")))],
                check_status),
        AdsCall("daily report", lambda ads, ctx, acct: ads.fetch_insights(ctx, acct, "campaign", str(CAMPAIGN_ID), date(2026, 1, 14), date(2026, 1, 15)),
                [envelope('{"list": [{"dimensions": {"campaign_id": %d, "stat_time_day": "2026-01-15 00:00:00"}, "metrics": {"spend": "12.34", "impressions": "1100", "clicks": "25"}},'
                          ' {"dimensions": {"campaign_id": %d, "stat_time_day": "2026-01-14 00:00:00"}, "metrics": {"spend": "5.34", "impressions": "1000", "clicks": "20", "reach": "900", "conversion": "2"}}],'
                          ' "page_info": {"page": 1, "page_size": 1000, "total_number": 2, "total_page": 1}}' % (CAMPAIGN_ID, CAMPAIGN_ID))],
                check_insights),
        AdsCall("create an ad group with a bid and a schedule",
                lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec(
                    "ad_set", "Readers", parent_id=str(CAMPAIGN_ID), daily_budget=Money(2000, "USD"), bid=Money(45, "USD"),
                    starts_at=datetime(2026, 1, 16), ends_at=datetime(2026, 2, 16), platform_fields={"billing_event": "CPC"})),
                [envelope('{"adgroup_id": %d}' % ADGROUP_ID), envelope(page(adgroup_json()))], check_adgroup),
        AdsCall("delete an ad", lambda ads, ctx, acct: ads.set_status(ctx, acct, "ad", "1800000000000000201", "deleted"),
                [envelope('{"ad_ids": [1800000000000000201]}')],
                check_delete),
        AdsCall("advertisers", lambda ads, ctx, acct: ads.list_ad_accounts(ctx),
                [envelope('{"list": [{"advertiser_id": %s, "name": "Shop", "currency": "USD", "timezone": "Etc/GMT"}]}' % ADVERTISER)], check_accounts),
    ]
    error_cases = [
        ErrorCase("HTTP 200, token expired", [envelope(code=40105, message="The access token is invalid or has been revoked.")], AuthExpired, code="TIKTOK_40105"),
        ErrorCase("HTTP 200, too many requests", [envelope(code=40100, message="Too many requests. Please retry in some time.")], RateLimited, code="TIKTOK_40100"),
        ErrorCase("HTTP 200, system error", [envelope(code=50000, message="System error")], TransientError, code="TIKTOK_50000"),
        ErrorCase("HTTP 200, bad parameter", [envelope(code=40002, message="advertiser_id: Missing data for required field.")], Rejected, code="TIKTOK_40002"),
        ErrorCase("HTTP 200, budget too low", [envelope(code=40700, message="Budget must be at least 50.")], Rejected, code="TIKTOK_40700"),
        ErrorCase("HTTP 200, partial success", [envelope(code=20001, message="Partial success")], Rejected, code="TIKTOK_20001"),
        ErrorCase("a gateway's 502 before TikTok", [reply(502, text="<html>Bad Gateway</html>")], TransientError),
    ]

    def echo_campaign(self, budget):
        return echo_campaign_steps(budget.currency)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=10**15), st.sampled_from(["USD", "JPY", "KWD", "IDR", "BHD"]))
def test_every_budget_round_trips_as_an_exact_decimal(amount, currency):
    assert TestTikTokAdsConformance().round_trip(Money(amount, currency)) == Money(amount, currency)


def test_auth_code_exchange_keeps_the_advertisers():
    async def flow(ctx):
        tokens = await provider.exchange_code(ctx, code="auth-code-1", redirect_uri="https://gw.example/cb", code_verifier=None, client_id="7000000000000000001", client_secret="app-secret")
        return tokens, await provider.connect(ctx, tokens.to_credentials())

    outcome = asyncio.run(call_scripted(provider, [
        envelope('{"access_token": "%s", "scope": [4, 5], "advertiser_ids": [%s, 7012345678901234568]}' % (TOKEN, ADVERTISER)),
        envelope('{"core_user_id": "7100000000000000001", "display_name": "Shop owner", "email": "o***@example.com", "create_time": 1700000000}'),
    ], flow))
    tokens, profile = outcome.result
    assert body(outcome.sent[0]) == {"app_id": "7000000000000000001", "secret": "app-secret", "auth_code": "auth-code-1"}
    assert tokens.to_credentials()["advertiser_ids"] == f"{ADVERTISER},7012345678901234568"
    assert profile.external_id == "7100000000000000001"
    assert "app_id=7000000000000000001" in provider.auth.authorization_url(client_id="7000000000000000001", redirect_uri="https://gw.example/cb", state="s")


def test_tiktok_has_no_archive():
    outcome = TestTikTokAdsConformance().run_call(lambda ads, ctx, acct: ads.set_status(ctx, acct, "campaign", "1", "archived"), [])
    assert outcome.error.code == "STATUS_NOT_SUPPORTED" and outcome.sent == []
