"""`Campaign.metrics` (issue 15): the campaign's posts' latest figures summed, null never 0, the
posts it holds now, and one statement for a page of campaigns however long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.auth.keys import mint_key
from tests.engine import engine_app, sandbox_account, setup_org
from tests.row_counts import selects_of
from tests.test_campaigns import campaign
from tests.test_metrics_api import seed

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
METRICS = """query($id: ID!) { campaign(id: $id) { metrics { latest { likes views comments targets capturedAt
  reportedBy { likes views comments } } } } }"""


async def _latest(api, key, campaign_id):
    return (await api.graphql(METRICS, {"id": campaign_id}, key=key))["data"]["campaign"]["metrics"]["latest"]


async def test_the_posts_figures_summed_and_null_never_zero(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        launch, empty = await campaign(api, org.secret), await campaign(api, org.secret, name="Quiet")
        await seed(api, org.organization_id, account, "sandbox", [T0, T0 + timedelta(hours=1)],
                           campaign=launch, likes=lambda n: 3 + n, comments=0)
        await seed(api, org.organization_id, account, "sandbox", [T0], campaign=launch, views=50)  # reports no likes
        await seed(api, org.organization_id, account, "sandbox", [T0], likes=100)  # in no campaign
        latest = await _latest(api, org.secret, launch)
        assert latest == {"likes": 7, "views": 50, "comments": 0, "targets": 3, "capturedAt": "2026-03-02T14:00:00+00:00",
                          "reportedBy": {"likes": 2, "views": 1, "comments": 2}}
        assert await _latest(api, org.secret, empty) == {"likes": None, "views": None, "comments": None, "targets": 0, "capturedAt": None,
                                                         "reportedBy": {"likes": 0, "views": 0, "comments": 0}}


async def test_campaign_metrics_need_analytics_read(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        launch = await campaign(api, org.secret)
        async with api.runtime.database.write() as session:
            planner = (await mint_key(session, org.organization_id, ["campaigns:read"])).secret
        body = await api.graphql(METRICS, {"id": launch}, key=planner)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["errors"][0]["path"] == ["campaign", "metrics"]


PAGE = """query($n: Int!) { campaigns(first: $n) { nodes { id metrics { latest { likes targets } } } } }"""


async def test_a_page_of_campaign_metrics_runs_the_same_statements_at_any_size(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        for n in range(12):
            await seed(api, org.organization_id, account, "sandbox", [T0], campaign=await campaign(api, org.secret, name=f"c{n}"), likes=n)
        await api.runtime.relay.stop()  # only the request's statements count

        small, few = await selects_of(api, PAGE, {"n": 10}, org.secret)
        large, many = await selects_of(api, PAGE, {"n": 100}, org.secret)
        assert len(small["data"]["campaigns"]["nodes"]) == 10 and len(large["data"]["campaigns"]["nodes"]) == 12
        assert sorted(n["metrics"]["latest"]["likes"] for n in large["data"]["campaigns"]["nodes"]) == list(range(12))
        assert few == many
