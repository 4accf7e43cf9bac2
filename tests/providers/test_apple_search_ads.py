"""Apple Search Ads, replayed against the Campaign Management API v5's real request and response shapes."""

import asyncio
import json
from datetime import date, timedelta
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.apple_search_ads import AppleSearchAds
from providers import AdAccountRef, AdChanges, AdSpec, AuthExpired, Money, RateLimited, Rejected, TransientError
from providers.ads_testing import AdsCall, AdsConformance
from providers.testing import FIXED_NOW, ErrorCase, call_scripted, reply

API = "https://api.searchads.apple.com/api/v5"
ORG = "40669820"
ACCOUNT = AdAccountRef(ORG, "USD")
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
CREDENTIALS = {
    "client_id": "SEARCHADS.27478e71-3bb0-4588-998c-182e2b405577", "team_id": "SEARCHADS.27478e71-3bb0-4588-998c-182e2b405577",
    "key_id": "bacaebda-e219-41ee-a907-e2c25b24d1b2", "private_key": PEM,
}
HELD_TOKEN = {("token", "access"): {"access_token": "held-token", "expires_at": (FIXED_NOW + timedelta(minutes=50)).isoformat()}}
provider = AppleSearchAds()


def campaign(amount="12.34", currency="USD", status="PAUSED", **fields):
    return {
        "id": 542370539, "orgId": int(ORG), "name": "Spring sale", "budgetAmount": None,
        "dailyBudgetAmount": {"amount": amount, "currency": currency}, "adamId": 1252497129, "paymentModel": "PAYG",
        "countriesOrRegions": ["US"], "status": status, "servingStatus": "NOT_RUNNING", "servingStateReasons": ["PAUSED_BY_USER"],
        "displayStatus": "PAUSED", "supplySources": ["APPSTORE_SEARCH_RESULTS"], "deleted": False,
        "startTime": "2026-01-15T12:00:00.000", "endTime": None, **fields,
    }


def envelope(data, pagination=None):
    return reply(200, json={"data": data, "pagination": pagination, "error": None})


def apple_error(status, code, message, field="campaign.dailyBudgetAmount", headers=None):
    return reply(status, json={"data": None, "pagination": None, "error": {"errors": [{"messageCode": code, "message": message, "field": field}]}}, headers=headers)


def check_create(result, sent):
    assert (sent[0].method, str(sent[0].url)) == ("POST", f"{API}/campaigns")
    assert sent[0].headers["Authorization"] == "Bearer held-token" and sent[0].headers["X-AP-Context"] == f"orgId={ORG}"
    assert json.loads(sent[0].content) == {
        "name": "Spring sale", "status": "PAUSED", "supplySources": ["APPSTORE_SEARCH_RESULTS"], "dailyBudgetAmount": {"amount": "12.34", "currency": "USD"},
        "adamId": 1252497129, "countriesOrRegions": ["US"],
    }
    assert result.external_id == "542370539" and result.daily_budget == Money(1234, "USD") and result.effective_status == "NOT_RUNNING"


def check_update(result, sent):
    assert (sent[0].method, str(sent[0].url)) == ("PUT", f"{API}/campaigns/542370539")
    assert json.loads(sent[0].content) == {"campaign": {"dailyBudgetAmount": {"amount": "50.00", "currency": "USD"}}}
    assert result.daily_budget == Money(5000, "USD")


def check_ad_groups(result, sent):
    assert str(sent[0].url.copy_with(query=None)) == f"{API}/campaigns/542370539/adgroups"
    assert [(g.external_id, g.parent_id, g.bid) for g in result] == [("542370539/542317136", "542370539", Money(150, "USD"))]


def check_pause(result, sent):
    assert json.loads(sent[0].content) == {"campaign": {"status": "PAUSED"}} and result.status == "paused"


def check_report(result, sent):
    body = json.loads(sent[0].content)
    assert str(sent[0].url) == f"{API}/reports/campaigns"
    assert (body["startTime"], body["endTime"], body["granularity"]) == ("2026-01-14", "2026-01-15", "DAILY")
    assert body["selector"]["conditions"] == [{"field": "campaignId", "operator": "EQUALS", "values": ["542370539"]}]
    assert [(i.day, i.impressions, i.clicks, i.spend, i.reach, i.conversions) for i in result] == [
        (date(2026, 1, 14), 1000, 20, Money(534, "USD"), None, 3), (date(2026, 1, 15), 0, 0, Money(0, "USD"), None, 0),
    ]


class TestAppleSearchAdsConformance(AdsConformance):
    provider = provider
    credentials = CREDENTIALS
    account = ACCOUNT
    stored = HELD_TOKEN
    unrepresentable = []
    money_platform_field = "budgetAmount"
    calls = [
        AdsCall("create a campaign", lambda ads, ctx, acct: ads.create_object(ctx, acct, AdSpec(
            "campaign", "Spring sale", daily_budget=Money(1234, "USD"), platform_fields={"adamId": 1252497129, "countriesOrRegions": ["US"]})),
            [envelope(campaign())], check_create),
        AdsCall("raise the budget", lambda ads, ctx, acct: ads.update_object(ctx, acct, "campaign", "542370539", AdChanges(daily_budget=Money(5000, "USD"))),
                [envelope(campaign(amount="50"))], check_update),
        AdsCall("list ad groups", lambda ads, ctx, acct: ads.list_objects(ctx, acct, "ad_set", "542370539"),
                [envelope([{"id": 542317136, "campaignId": 542370539, "name": "Exact", "status": "ENABLED", "servingStatus": "RUNNING",
                            "pricingModel": "CPC", "defaultBidAmount": {"amount": "1.5", "currency": "USD"}, "deleted": False,
                            "startTime": "2026-01-15T12:00:00.000", "endTime": None}],
                          {"totalResults": 1, "startIndex": 0, "itemsPerPage": 1})], check_ad_groups),
        AdsCall("pause", lambda ads, ctx, acct: ads.set_status(ctx, acct, "campaign", "542370539", "paused"), [envelope(campaign())], check_pause),
        AdsCall("daily report", lambda ads, ctx, acct: ads.fetch_insights(ctx, acct, "campaign", "542370539", date(2026, 1, 14), date(2026, 1, 15)),
                [envelope({"reportingDataResponse": {"row": [{"other": False, "metadata": {"campaignId": 542370539, "campaignName": "Spring sale"},
                    "granularity": [
                        {"date": "2026-01-14", "impressions": 1000, "taps": 20, "ttr": 0.02, "tapInstalls": 3, "totalInstalls": 3,
                         "localSpend": {"amount": "5.34", "currency": "USD"}, "avgCPT": {"amount": "0.267", "currency": "USD"}},
                        {"date": "2026-01-15", "impressions": 0, "taps": 0, "ttr": 0, "tapInstalls": 0, "totalInstalls": 0,
                         "localSpend": {"amount": "0", "currency": "USD"}}]}]}})], check_report),
    ]
    error_cases = [
        ErrorCase("expired token", [reply(401, text="")], AuthExpired),
        ErrorCase("rate limited", [reply(429, text="", headers={"Retry-After": "60"})], RateLimited, retry_after=60),
        ErrorCase("server error", [reply(500, json={"data": None, "error": {"errors": [{"messageCode": "INTERNAL_ERROR", "message": "Internal error", "field": ""}]}})], TransientError),
        ErrorCase("invalid budget", [apple_error(400, "INVALID_ATTRIBUTE_TYPE", "Invalid value for dailyBudgetAmount")], Rejected, code="APPLE_INVALID_ATTRIBUTE_TYPE"),
        ErrorCase("unknown org", [apple_error(403, "FORBIDDEN", "User does not have permission to access orgId", field="")], Rejected, code="APPLE_FORBIDDEN"),
    ]

    def echo_campaign(self, budget):
        def answer(request):
            sent = json.loads(request.content)["dailyBudgetAmount"]
            return envelope(campaign(amount=sent["amount"], currency=sent["currency"]))
        return [answer]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=10**15), st.sampled_from(["USD", "JPY", "KWD", "IDR", "EUR"]))
def test_every_budget_round_trips_as_a_decimal_string(amount, currency):
    assert TestAppleSearchAdsConformance().round_trip(Money(amount, currency)) == Money(amount, currency)


def test_an_expired_token_is_minted_again_with_an_es256_client_assertion():
    async def list_orgs(ctx):
        return await provider.ads.list_ad_accounts(ctx)

    outcome = asyncio.run(call_scripted(provider, [
        reply(200, json={"access_token": "fresh-token", "token_type": "Bearer", "expires_in": 3600}),
        envelope([{"orgName": "Shop", "orgId": int(ORG), "currency": "KWD", "paymentModel": "PAYG", "roleNames": ["Admin"], "timeZone": "Asia/Kuwait"}]),
    ], list_orgs, credentials=CREDENTIALS))
    token_request, acls = outcome.sent
    form = {k: v[0] for k, v in parse_qs(token_request.content.decode()).items()}
    assert str(token_request.url) == "https://appleid.apple.com/auth/oauth2/token"
    assert (form["grant_type"], form["scope"], form["client_id"]) == ("client_credentials", "searchadsorg", CREDENTIALS["client_id"])
    # Signed at the kit's fixed clock: the signature and audience are checked, the (past) expiry by hand.
    claims = jwt.decode(form["client_secret"], KEY.public_key(), algorithms=["ES256"], audience="https://appleid.apple.com",
                        options={"verify_exp": False, "verify_iat": False})
    assert (claims["iat"], claims["exp"] - claims["iat"]) == (int(FIXED_NOW.timestamp()), 86400)
    assert (claims["sub"], claims["iss"]) == (CREDENTIALS["client_id"], CREDENTIALS["team_id"])
    assert jwt.get_unverified_header(form["client_secret"])["kid"] == CREDENTIALS["key_id"]
    assert acls.headers["Authorization"] == "Bearer fresh-token"
    assert [(a.external_id, a.currency) for a in outcome.result] == [(ORG, "KWD")]
    assert PEM not in repr(outcome.sent) and "PRIVATE" not in token_request.content.decode()


def test_a_bad_key_is_refused_before_anything_is_sent():
    outcome = asyncio.run(call_scripted(provider, [], lambda ctx: provider.connect(ctx, dict(CREDENTIALS, private_key="not a key")), credentials={}))
    assert isinstance(outcome.error, Rejected) and outcome.error.code == "PRIVATE_KEY_INVALID" and outcome.sent == []
