"""Ads on a real PostgreSQL: the migration's tables, the sandbox walk, and the spend cap under
concurrent writes (the cap row is locked, so two budgets can never both fit the same room)."""

import asyncio

import pytest
from sqlalchemy import select

from gateway.storage.models import AdObject
from tests.conftest import make_org_with_key
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401 - fixtures
from tests.test_ads_api import CREATE, sandbox_ad_accounts

pytestmark = pytest.mark.e2e


async def test_concurrent_budgets_never_pass_the_cap_on_postgres(pg_api):
    org = await make_org_with_key(pg_api.runtime, "Capped")
    usd = (await sandbox_ad_accounts(pg_api, org.secret))["USD"]["id"]
    capped = await pg_api.graphql("""mutation { setAdSpendCap(input: {dailyCap: {amountMinor: "10000", currency: "USD"}}) { userErrors { code } } }""", key=org.secret)
    assert capped["data"]["setAdSpendCap"]["userErrors"] == []

    async def create(n):
        body = await pg_api.graphql(CREATE, {"input": {"adAccountId": usd, "name": f"c{n}", "dailyBudget": {"amountMinor": "3000", "currency": "USD"}}}, key=org.secret)
        return body["data"]["createAdCampaign"]

    results = await asyncio.gather(*(create(n) for n in range(6)))
    made = [r for r in results if r["userErrors"] == []]
    refused = [r for r in results if [e["code"] for e in r["userErrors"]] == ["BUDGET_CAP_EXCEEDED"]]
    assert (len(made), len(refused)) == (3, 3), results  # 3 × 30.00 fit under 100.00; a fourth never does
    async with pg_api.runtime.database.read() as session:
        budgets = (await session.execute(select(AdObject.daily_budget_minor).where(AdObject.organization_id == org.organization_id))).scalars().all()
    assert sorted(budgets) == [3000, 3000, 3000]
    big = await pg_api.graphql(CREATE, {"input": {"adAccountId": (await sandbox_ad_accounts(pg_api, org.secret))["USD"]["id"], "name": "big",
                                                  "dailyBudget": {"amountMinor": str(2**62), "currency": "JPY"}}}, key=org.secret)
    assert [e["code"] for e in big["data"]["createAdCampaign"]["userErrors"]] == ["CURRENCY_MISMATCH"]  # a 64-bit amount travels; the platform decides
