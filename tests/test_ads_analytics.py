"""Ads figures join `analytics` (issue 16 point 7): spend per currency with exact CPM/CPC/CTR, the
same window, filters and groups as the posts' figures, null when nothing was reported."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from gateway.core import clock
from gateway.storage.models import AdInsightRow
from tests.conftest import make_org_with_key
from tests.test_ads_api import create, sandbox_ad_accounts

ANALYTICS = """query($f: AnalyticsFilter!, $g: [AnalyticsGroupKey!]) { analytics(filter: $f, groupBy: $g) { ads {
  totals { currency impressions clicks conversions spend { amountMinor currency formatted } reportedDays cpm cpc ctr }
  groups { keys { provider accountId adCampaignId day week } currency impressions clicks spend { amountMinor } reportedDays cpm } } } }"""
WINDOW = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-09T00:00:00Z"}  # Monday to Monday


async def _campaigns(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = (await create(api, org.secret, accounts["USD"]["id"], "1234", "USD"))["adCampaign"]["id"]
    jpy = (await create(api, org.secret, accounts["JPY"]["id"], "5000", "JPY"))["adCampaign"]["id"]
    return accounts, usd, jpy


async def _insights(api, org, rows):
    async with api.runtime.database.write() as session:
        session.add_all([AdInsightRow(organization_id=org.organization_id, ad_object_id=object_id, day=day, currency=currency,
                                      impressions=impressions, clicks=clicks, spend_minor=spend, conversions=None)
                         for object_id, day, currency, impressions, clicks, spend in rows])


async def test_spend_is_added_up_per_currency_with_exact_ratios(api, org):
    accounts, usd, jpy = await _campaigns(api, org)
    await _insights(api, org, [
        (usd, date(2026, 3, 2), "USD", 1000, 30, 1234),
        (usd, date(2026, 3, 3), "USD", 2000, 10, 566),
        (usd, date(2026, 3, 9), "USD", 999, 9, 999),  # the window ends before this day
        (usd, date(2026, 3, 1), "USD", 999, 9, 999),  # and began after this one
        (jpy, date(2026, 3, 4), "JPY", 3000, None, 700),
    ])
    body = await api.graphql(ANALYTICS, {"f": WINDOW, "g": ["CAMPAIGN"]}, key=org.secret)
    ads = body["data"]["analytics"]["ads"]
    totals = {t["currency"]: t for t in ads["totals"]}
    assert totals["USD"] == {"currency": "USD", "impressions": "3000", "clicks": "40", "conversions": None,
                             "spend": {"amountMinor": "1800", "currency": "USD", "formatted": "$18.00"}, "reportedDays": 2,
                             "cpm": "6.000000", "cpc": "0.450000", "ctr": "0.013333"}
    # JPY has no minor unit; no clicks were reported: clicks and CPC are null, not 0.
    assert totals["JPY"]["spend"]["amountMinor"] == "700" and totals["JPY"]["clicks"] is None and totals["JPY"]["cpc"] is None
    assert totals["JPY"]["cpm"] == "233.333333"
    assert sorted((g["keys"]["adCampaignId"], g["currency"], g["spend"]["amountMinor"]) for g in ads["groups"]) == sorted(
        [(usd, "USD", "1800"), (jpy, "JPY", "700")])


async def test_weeks_days_and_filters(api, org):
    accounts, usd, _ = await _campaigns(api, org)
    await _insights(api, org, [
        (usd, date(2026, 3, 4), "USD", 100, 1, 100),
        (usd, date(2026, 3, 8), "USD", 100, 1, 100),   # Sunday: the same week
        (usd, date(2026, 3, 10), "USD", 100, 1, 100),  # the next week
    ])
    window = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-16T00:00:00Z"}
    weeks = (await api.graphql(ANALYTICS, {"f": window, "g": ["WEEK"]}, key=org.secret))["data"]["analytics"]["ads"]["groups"]
    assert [(g["keys"]["week"], g["keys"]["day"], g["spend"]["amountMinor"], g["reportedDays"]) for g in weeks] == [
        ("2026-03-02", None, "200", 2), ("2026-03-09", None, "100", 1)]
    days = (await api.graphql(ANALYTICS, {"f": window, "g": ["DAY", "PROVIDER"]}, key=org.secret))["data"]["analytics"]["ads"]["groups"]
    assert [(g["keys"]["day"], g["keys"]["provider"]) for g in days] == [("2026-03-04", "sandbox"), ("2026-03-08", "sandbox"), ("2026-03-10", "sandbox")]
    other_account = {**window, "accountIds": ["acct_" + "0" * 24]}
    assert (await api.graphql(ANALYTICS, {"f": other_account}, key=org.secret))["data"]["analytics"]["ads"]["totals"] == []
    listed = (await api.graphql("{ adAccounts { nodes { id accountId } } }", key=org.secret))["data"]["adAccounts"]["nodes"]
    connected = {n["id"]: n["accountId"] for n in listed}[accounts["USD"]["id"]]
    by_account = (await api.graphql(ANALYTICS, {"f": {**window, "accountIds": [connected]}}, key=org.secret))["data"]["analytics"]["ads"]
    assert [t["spend"]["amountMinor"] for t in by_account["totals"]] == ["300"]
    assert (await api.graphql(ANALYTICS, {"f": {**window, "providers": ["x"]}}, key=org.secret))["data"]["analytics"]["ads"]["totals"] == []


async def test_another_organizations_ads_and_the_scope(api, org):
    _, usd, _ = await _campaigns(api, org)
    await _insights(api, org, [(usd, date(2026, 3, 4), "USD", 100, 1, 100)])
    other = await make_org_with_key(api.runtime, "Other")
    assert (await api.graphql(ANALYTICS, {"f": WINDOW}, key=other.secret))["data"]["analytics"]["ads"]["totals"] == []
    reader = await make_org_with_key(api.runtime, "Reader", scopes=["analytics:read"])
    body = await api.graphql(ANALYTICS, {"f": WINDOW}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_what_a_sync_pulled_is_what_analytics_adds_up(api, org, monkeypatch):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = (await create(api, org.secret, accounts["USD"]["id"], "1234", "USD", status="ACTIVE"))["adCampaign"]["id"]
    started = clock.utcnow()
    monkeypatch.setattr(clock, "utcnow", lambda: started + timedelta(days=2))  # two days of delivery
    sync = """mutation($id: ID!) { syncAds(input: {adAccountId: $id}) { job { status } } }"""
    assert (await api.graphql(sync, {"id": accounts["USD"]["id"]}, key=org.secret))["data"]["syncAds"]["job"]["status"] == "SUCCEEDED"
    today = clock.utcnow().date()
    start, end = today - timedelta(days=10), today + timedelta(days=10)
    days = (await api.graphql("""query($id: ID!, $from: Date!, $to: Date!) { adCampaign(id: $id) {
        insights(from: $from, to: $to) { spend { amountMinor } impressions } } }""",
        {"id": usd, "from": str(start), "to": str(end)}, key=org.secret))["data"]["adCampaign"]["insights"]
    assert days  # the sandbox delivered something to add up
    window = {"from": datetime.combine(start, time(0)).isoformat() + "Z", "to": datetime.combine(end, time(0)).isoformat() + "Z"}
    (usd_total,) = (await api.graphql(ANALYTICS, {"f": {**window, "providers": ["sandbox"]}}, key=org.secret))["data"]["analytics"]["ads"]["totals"]
    assert int(usd_total["spend"]["amountMinor"]) == sum(int(d["spend"]["amountMinor"]) for d in days)
    assert int(usd_total["impressions"]) == sum(int(d["impressions"]) for d in days)
    assert usd_total["reportedDays"] == len(days)
