"""Ads through GraphQL on the sandbox: connect, create, pause, sync, insights; scopes, the cap, idempotency, events."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from gateway.core import clock
from gateway.storage.models import AdObject, Job, OrganizationEvent
from tests.conftest import make_org_with_key

CONNECT = """mutation($input: ConnectAccountInput!) { connectAccount(input: $input) { account { id } userErrors { code } } }"""
AD_ACCOUNTS = """mutation($id: ID!) { connectAdAccounts(input: {accountId: $id}) {
  adAccounts { id provider externalId currency name } userErrors { code message } } }"""
CREATE = """mutation($input: CreateAdCampaignInput!) { createAdCampaign(input: $input) {
  job { id kind status error { code } } adCampaign { id name status effectiveStatus externalId dailyBudget { amountMinor currency formatted } }
  userErrors { field code message } } }"""
STATUS = """mutation($input: SetAdStatusInput!) { setAdCampaignStatus(input: $input) {
  job { status } adCampaign { status effectiveStatus } userErrors { code } } }"""
SYNC = """mutation($id: ID!) { syncAds(input: {adAccountId: $id}) { job { kind status result } userErrors { code } } }"""


async def sandbox_ad_accounts(api, key):
    account = (await api.graphql(CONNECT, {"input": {"provider": "sandbox", "credentials": {"handle": "ads"}}}, key=key))["data"]["connectAccount"]
    body = await api.graphql(AD_ACCOUNTS, {"id": account["account"]["id"]}, key=key)
    return {a["currency"]: a for a in body["data"]["connectAdAccounts"]["adAccounts"]}


async def create(api, key, ad_account_id, amount, currency, **extra):
    body = await api.graphql(CREATE, {"input": {"adAccountId": ad_account_id, "name": "Launch", "objective": "traffic",
                                                "dailyBudget": {"amountMinor": amount, "currency": currency}, **extra}}, key=key)
    return body["data"]["createAdCampaign"] if body.get("data") else body


async def org_events(api, kind):
    async with api.runtime.database.read() as session:
        return [e.payload for e in (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == kind).order_by(OrganizationEvent.id))).scalars()]


async def test_the_sandbox_walk(api, org, monkeypatch):
    accounts = await sandbox_ad_accounts(api, org.secret)
    assert sorted(accounts) == ["JPY", "KWD", "USD"]
    usd = accounts["USD"]["id"]
    assert [e["adAccountId"] for e in await org_events(api, "ads.account.connected")] == [a["id"] for a in accounts.values()]

    created = await create(api, org.secret, usd, "1234", "USD", status="ACTIVE")
    assert created["userErrors"] == []
    assert created["job"]["kind"] == "ads_write" and created["job"]["status"] == "SUCCEEDED"
    campaign = created["adCampaign"]
    assert campaign["dailyBudget"] == {"amountMinor": "1234", "currency": "USD", "formatted": "$12.34"}
    assert (campaign["status"], campaign["effectiveStatus"]) == ("ACTIVE", "RUNNING")

    start = clock.utcnow()
    monkeypatch.setattr(clock, "utcnow", lambda: start + timedelta(days=2))
    paused = (await api.graphql(STATUS, {"input": {"id": campaign["id"], "status": "PAUSED"}}, key=org.secret))["data"]["setAdCampaignStatus"]
    assert paused == {"job": {"status": "SUCCEEDED"}, "adCampaign": {"status": "PAUSED", "effectiveStatus": "PAUSED"}, "userErrors": []}

    synced = (await api.graphql(SYNC, {"id": usd}, key=org.secret))["data"]["syncAds"]
    assert synced["job"]["status"] == "SUCCEEDED" and synced["job"]["result"]["insightDays"] == 3

    day0 = start.date()
    body = await api.graphql(
        """query($id: ID!, $from: Date!, $to: Date!) { adCampaign(id: $id) { name adSets { id } drift { field }
             insights(from: $from, to: $to) { day impressions clicks spend { amountMinor currency } reach cpm cpc ctr } } }""",
        {"id": campaign["id"], "from": str(day0 - timedelta(days=1)), "to": str(day0 + timedelta(days=5))}, key=org.secret,
    )
    read = body["data"]["adCampaign"]
    assert read["adSets"] == [] and read["drift"] == []
    days = read["insights"]
    assert [d["day"] for d in days] == [str(day0 + timedelta(days=n)) for n in range(3)]
    for d in days:
        impressions, clicks, spend = int(d["impressions"]), int(d["clicks"]), int(d["spend"]["amountMinor"])
        assert spend <= 1234 and d["reach"] is None  # the sandbox does not report reach: null, never 0
        assert Decimal(d["ctr"]) == (Decimal(clicks) / impressions).quantize(Decimal("0.000001"))
        assert Decimal(d["cpc"]) == (Decimal(spend) / 100 / clicks).quantize(Decimal("0.000001"))
        assert Decimal(d["cpm"]) == (Decimal(spend) * 10 / impressions).quantize(Decimal("0.000001"))
    executed = await org_events(api, "ads.write.executed")
    assert [e["operation"] for e in executed] == ["createAdCampaign", "setAdCampaignStatus"]


async def test_jpy_kwd_and_a_big_idr_budget_round_trip_exactly(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    yen = await create(api, org.secret, accounts["JPY"]["id"], "1234", "JPY")
    fils = await create(api, org.secret, accounts["KWD"]["id"], 12345, "KWD")
    assert "adCampaign" in fils, fils
    assert yen["adCampaign"]["dailyBudget"] == {"amountMinor": "1234", "currency": "JPY", "formatted": "¥1,234"}
    assert fils["adCampaign"]["dailyBudget"] == {"amountMinor": "12345", "currency": "KWD", "formatted": "KWD12.345"}
    async with api.runtime.database.read() as session:
        stored = sorted((await session.execute(select(AdObject.daily_budget_minor, AdObject.currency))).all())
    assert stored == [(1234, "JPY"), (12345, "KWD")]


async def test_bad_money_is_a_user_error(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    wrong_currency = await create(api, org.secret, usd, "100", "usd")
    assert [(e["code"], e["field"]) for e in wrong_currency["userErrors"]] == [("CURRENCY_UNKNOWN", ["input", "dailyBudget", "currency"])]
    negative = await create(api, org.secret, usd, "-5", "USD")
    assert [e["code"] for e in negative["userErrors"]] == ["AMOUNT_INVALID"]
    too_big = await api.graphql(CREATE, {"input": {"adAccountId": usd, "name": "x", "dailyBudget": {"amountMinor": str(2**63), "currency": "USD"}}}, key=org.secret)
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    mismatch = await create(api, org.secret, usd, "500", "JPY")  # the platform refuses it: the job fails, the caller sees why
    assert mismatch["job"]["status"] == "FAILED" and [e["code"] for e in mismatch["userErrors"]] == ["CURRENCY_MISMATCH"]
    assert mismatch["adCampaign"] is None
    denied = await org_events(api, "ads.write.denied")
    assert [e["code"] for e in denied] == ["CURRENCY_MISMATCH"]
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(AdObject))).first() is None  # nothing stored that the platform did not accept


async def test_each_write_needs_its_scope(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    campaigns_only = await make_org_with_key(api.runtime, "Agency", scopes=["ads:read", "ads:write:campaigns", "accounts:write"])
    # another org's key cannot see this org's ad account; its own scopes are what is under test
    no_budget = await api.graphql(CREATE, {"input": {"adAccountId": usd, "name": "x", "dailyBudget": {"amountMinor": "100", "currency": "USD"}}},
                                  key=campaigns_only.secret)
    assert no_budget["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "ads:write:budgets" in no_budget["errors"][0]["message"]
    ok = await api.graphql(CREATE, {"input": {"adAccountId": usd, "name": "x"}}, key=campaigns_only.secret)
    assert [e["code"] for e in ok["data"]["createAdCampaign"]["userErrors"]] == ["AD_ACCOUNT_NOT_FOUND"]  # scoped to its own org
    wildcard = await make_org_with_key(api.runtime, "Owner", scopes=["ads:*", "accounts:write"])
    own = await sandbox_ad_accounts(api, wildcard.secret)
    made = await create(api, wildcard.secret, own["USD"]["id"], "100", "USD")
    assert made.get("userErrors") == [], made
    lifecycle_less = await make_org_with_key(api.runtime, "Ops", scopes=["ads:read", "ads:write:campaigns", "ads:write:budgets"])
    refused = await api.graphql(STATUS, {"input": {"id": "adc_" + "a" * 24, "status": "PAUSED"}}, key=lifecycle_less.secret)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with api.runtime.database.read() as session:
        denied = (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "ads.write.denied"))).scalars().all()
    assert sorted((e.organization_id, e.payload["code"]) for e in denied) == sorted(
        [(campaigns_only.organization_id, "FORBIDDEN"), (lifecycle_less.organization_id, "FORBIDDEN")])


async def test_the_daily_spend_cap(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    body = await api.graphql("""mutation { setAdSpendCap(input: {dailyCap: {amountMinor: "5000", currency: "USD"}}) {
        adSpendCaps { dailyCap { amountMinor currency formatted } } userErrors { code } } }""", key=org.secret)
    assert body["data"]["setAdSpendCap"]["adSpendCaps"] == [{"dailyCap": {"amountMinor": "5000", "currency": "USD", "formatted": "$50.00"}}]
    first = await create(api, org.secret, usd, "3000", "USD")
    assert first["userErrors"] == []
    over = await create(api, org.secret, usd, "2001", "USD")
    assert [(e["code"], e["field"]) for e in over["userErrors"]] == [("BUDGET_CAP_EXCEEDED", ["input", "dailyBudget"])]
    assert over["job"] is None  # refused before any job or platform call
    assert (await create(api, org.secret, usd, "2000", "USD"))["userErrors"] == []  # exactly at the cap
    assert (await create(api, org.secret, accounts["JPY"]["id"], "999999", "JPY"))["userErrors"] == []  # no JPY cap
    raise_budget = await api.graphql("""mutation($id: ID!) { updateAdCampaign(input: {id: $id, dailyBudget: {amountMinor: "3001", currency: "USD"}}) {
        userErrors { code } } }""", {"id": first["adCampaign"]["id"]}, key=org.secret)
    assert [e["code"] for e in raise_budget["data"]["updateAdCampaign"]["userErrors"]] == ["BUDGET_CAP_EXCEEDED"]
    exceeded = await org_events(api, "ads.budget.cap_exceeded")
    assert [(e["capMinor"], e["committedMinor"], e["requestedMinor"]) for e in exceeded] == [("5000", "3000", "2001"), ("5000", "2000", "3001")]
    assert [e["code"] for e in await org_events(api, "ads.write.denied")] == ["BUDGET_CAP_EXCEEDED", "BUDGET_CAP_EXCEEDED"]


async def test_an_idempotency_key_runs_the_write_once(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    first = await create(api, org.secret, usd, "1234", "USD", idempotencyKey="launch-1")
    again = await create(api, org.secret, usd, "1234", "USD", idempotencyKey="launch-1")
    assert again["job"]["id"] == first["job"]["id"] and again["adCampaign"]["id"] == first["adCampaign"]["id"]
    changed = await create(api, org.secret, usd, "1235", "USD", idempotencyKey="launch-1")
    assert [e["code"] for e in changed["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    async with api.runtime.database.read() as session:
        assert len((await session.execute(select(AdObject))).all()) == 1
        assert len((await session.execute(select(Job).where(Job.kind == "ads_write"))).all()) == 1


async def test_sync_records_drift_instead_of_overwriting(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    created = await create(api, org.secret, usd, "1234", "USD")
    # Someone changes the campaign in the platform's own console: the sandbox's record changes under us.
    from gateway.storage.models import ProviderRecord

    async with api.runtime.database.write() as session:
        record = (await session.execute(select(ProviderRecord).where(ProviderRecord.kind == "ad_object"))).scalar_one()
        from gateway.storage.provider_store import DatabaseProviderStore  # noqa: F401  (documents where the record lives)
    store = api.runtime.provider_context("sandbox", record.account_scope, {}).store
    value = await store.get("ad_object", record.key)
    await store.put("ad_object", record.key, {**value, "name": "Renamed in the console", "daily_budget": {"amount_minor": 999, "currency": "USD"}})
    synced = (await api.graphql(SYNC, {"id": usd}, key=org.secret))["data"]["syncAds"]
    assert synced["job"]["result"]["drifted"] == 1
    body = await api.graphql("""query($id: ID!) { adCampaign(id: $id) { name dailyBudget { amountMinor } drift { field ours platform } } }""",
                             {"id": created["adCampaign"]["id"]}, key=org.secret)
    read = body["data"]["adCampaign"]
    assert read["name"] == "Launch" and read["dailyBudget"] == {"amountMinor": "1234"}  # ours kept
    assert read["drift"] == [
        {"field": "daily_budget_minor", "ours": "1234", "platform": "999"},
        {"field": "name", "ours": "Launch", "platform": "Renamed in the console"},
    ]
    assert [e["fields"] for e in await org_events(api, "ads.sync.drift")] == [["daily_budget_minor", "name"]]


async def test_an_expired_token_is_an_event_and_a_user_error(api, org):
    account = (await api.graphql(CONNECT, {"input": {"provider": "sandbox", "credentials": {"handle": "late", "failure_mode": "auth_expired", "failure_count": "1"}}},
                                 key=org.secret))["data"]["connectAccount"]["account"]
    listed = await api.graphql(AD_ACCOUNTS, {"id": account["id"]}, key=org.secret)
    assert [e["code"] for e in listed["data"]["connectAdAccounts"]["userErrors"]] == ["ACCOUNT_TOKEN_EXPIRED"]
    listed = await api.graphql(AD_ACCOUNTS, {"id": account["id"]}, key=org.secret)  # the sandbox fails once, then answers
    usd = {a["currency"]: a for a in listed["data"]["connectAdAccounts"]["adAccounts"]}["USD"]["id"]
    async with api.runtime.database.write() as session:
        from gateway.storage.models import ProviderRecord

        await session.execute(ProviderRecord.__table__.delete().where(ProviderRecord.kind == "failures"))
    failed = await create(api, org.secret, usd, "100", "USD")
    assert failed["job"]["status"] == "FAILED" and failed["job"]["error"]["code"] == "ACCOUNT_TOKEN_EXPIRED"
    assert [e["adAccountId"] for e in await org_events(api, "ads.account.token_expired")] == [usd]


async def test_the_periodic_sync_visits_every_active_ad_account(api, org):
    from gateway.ads.sync import SyncLoop

    accounts = await sandbox_ad_accounts(api, org.secret)
    await create(api, org.secret, accounts["USD"]["id"], "1234", "USD")
    other = await make_org_with_key(api.runtime, "Other")
    other_accounts = await sandbox_ad_accounts(api, other.secret)
    body = await api.graphql("""query { adAccounts { nodes { accountId } } }""", key=other.secret)
    account_id = body["data"]["adAccounts"]["nodes"][0]["accountId"]
    await api.graphql("""mutation($id: ID!) { disconnectAccount(input: {id: $id}) { userErrors { code } } }""", {"id": account_id}, key=other.secret)
    assert await SyncLoop(api.runtime, 60).sync_all() == 3  # the disconnected account's three are skipped
    async with api.runtime.database.read() as session:
        synced = (await session.execute(select(Job.subject_id, Job.status).where(Job.kind == "ads_sync"))).all()
    assert sorted(synced) == sorted((a["id"], "succeeded") for a in accounts.values())
    assert not {a["id"] for a in other_accounts.values()} & {s for s, _ in synced}


async def test_a_page_of_campaigns_loads_its_ad_sets_and_ads_in_one_query_each(api, org):
    from sqlalchemy import event as sql_event

    accounts = await sandbox_ad_accounts(api, org.secret)
    usd = accounts["USD"]["id"]
    query = """{ adCampaigns(first: 20) { nodes { id adSets { id ads { id } } } } }"""

    async def statements_for_a_page() -> int:
        seen = []
        engine = api.runtime.database.engine.sync_engine
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        sql_event.listen(engine, "before_cursor_execute", listener)
        try:
            body = await api.graphql(query, key=org.secret)
        finally:
            sql_event.remove(engine, "before_cursor_execute", listener)
        assert "errors" not in body, body
        return len([s for s in seen if "ad_objects" in s])

    for n in range(2):
        campaign = (await create(api, org.secret, usd, "100", "USD"))["adCampaign"]["id"]
        ad_set = (await api.graphql("""mutation($c: ID!) { createAdSet(input: {campaignId: $c, name: "s"}) { adSet { id } } }""",
                                    {"c": campaign}, key=org.secret))["data"]["createAdSet"]["adSet"]["id"]
        await api.graphql("""mutation($s: ID!) { createAd(input: {adSetId: $s, name: "a", creativeId: "cr1"}) { ad { id } } }""", {"s": ad_set}, key=org.secret)
    few = await statements_for_a_page()
    for n in range(3):
        await create(api, org.secret, usd, "100", "USD")
    assert await statements_for_a_page() == few


async def test_an_adapter_bug_fails_the_job_instead_of_leaving_it_running(api, org, monkeypatch):
    from plugins.sandbox import SandboxAds

    accounts = await sandbox_ad_accounts(api, org.secret)

    async def broken(self, ctx, account, spec):
        raise RuntimeError("a bug in the adapter")

    monkeypatch.setattr(SandboxAds, "create_object", broken)
    body = await api.graphql(CREATE, {"input": {"adAccountId": accounts["USD"]["id"], "name": "x",
                                                "dailyBudget": {"amountMinor": "100", "currency": "USD"}}}, key=org.secret)
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL" and "bug" not in body["errors"][0]["message"]
    async with api.runtime.database.read() as session:
        job = (await session.execute(select(Job).where(Job.kind == "ads_write"))).scalar_one()
    assert (job.status, job.error_code) == ("failed", "INTERNAL")


async def test_platform_fields_cannot_carry_money_past_the_cap(api, org):
    accounts = await sandbox_ad_accounts(api, org.secret)
    sneaky = await create(api, org.secret, accounts["USD"]["id"], "100", "USD", platformFields={"daily_budget": {"amount_minor": 10**9, "currency": "USD"}})
    assert [e["code"] for e in sneaky["userErrors"]] == ["PLATFORM_FIELD_NOT_ALLOWED"] and sneaky["job"]["status"] == "FAILED"
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(AdObject))).first() is None
