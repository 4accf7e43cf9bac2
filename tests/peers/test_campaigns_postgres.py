"""Campaigns on PostgreSQL: the paused campaign's hold in the SKIP LOCKED claim, the tag filter over
JSON, a cadence plan applied once under one idempotency key, and a CSV import's multi-row INSERTs."""

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from gateway.campaigns.imports import import_posts
from gateway.storage.models import Attempt, Job, Target
from tests.engine import new_post, publish, sandbox_account, scheduler_for, setup_org
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { code } } }"""
PAUSE = """mutation($id: ID!) { pauseCampaign(input: {id: $id}) { userErrors { code } } }"""
RESUME = """mutation($id: ID!) { resumeCampaign(input: {id: $id}) { userErrors { code } } }"""
SCHEDULE = """mutation($input: ScheduleCampaignInput!) { scheduleCampaign(input: $input) { job { id } userErrors { code } } }"""


async def test_campaigns_on_postgres(pg_api):
    api = pg_api
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, f"pgc{i}") for i in range(2)]
    held = (await api.graphql(CREATE, {"input": {"name": "Held", "status": "ACTIVE", "tags": ["pg", "launch"]}}, key=org.secret))
    held = held["data"]["createCampaign"]["campaign"]["id"]
    inside = [await new_post(api, org.secret, accounts, text=f"held {i}", campaignId=held) for i in range(3)]
    outside = await new_post(api, org.secret, accounts, text="free")
    assert (await api.graphql(PAUSE, {"id": held}, key=org.secret))["data"]["pauseCampaign"]["userErrors"] == []
    for post_id in [*inside, outside]:
        await publish(api, org.secret, post_id)
    first, second = scheduler_for(api, worker_id="pgc-one"), scheduler_for(api, worker_id="pgc-two")
    await asyncio.gather(first.drain(timeout=60), second.drain(timeout=60))
    async with api.runtime.database.read() as session:
        by_post = dict((await session.execute(select(Target.post_id, func.count()).where(Target.status == "scheduled").group_by(Target.post_id))).all())
        attempts = (await session.execute(select(func.count()).select_from(Attempt))).scalar_one()
    assert by_post == {post_id: 2 for post_id in inside} and attempts == 2
    tagged = await api.graphql("""{ campaigns(filter: {tag: "launch"}) { nodes { id } } }""", key=org.secret)
    assert [n["id"] for n in tagged["data"]["campaigns"]["nodes"]] == [held]
    assert (await api.graphql(RESUME, {"id": held}, key=org.secret))["data"]["resumeCampaign"]["userErrors"] == []
    await first.drain(timeout=60)
    async with api.runtime.database.read() as session:
        assert set((await session.execute(select(Target.status))).scalars()) == {"published"}

    planned = (await api.graphql(CREATE, {"input": {"name": "Plan", "status": "ACTIVE"}}, key=org.secret))["data"]["createCampaign"]
    for i in range(4):
        await new_post(api, org.secret, accounts, text=f"plan {i}", campaignId=planned["campaign"]["id"])
    cadence = {"times": ["08:00", "20:00"], "startDate": str(date.today() + timedelta(days=2))}
    inputs = {"input": {"campaignId": planned["campaign"]["id"], "cadence": cadence, "idempotencyKey": "pg-plan"}}
    results = await asyncio.gather(*(api.graphql(SCHEDULE, inputs, key=org.secret) for _ in range(3)))
    assert len({r["data"]["scheduleCampaign"]["job"]["id"] for r in results}) == 1
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(Job).where(Job.kind == "campaign.schedule"))).scalar_one() == 1

    rows = "text,accounts,publish_at\n" + "".join(f"row {i},{' '.join(accounts)},\n" for i in range(50))
    report = await import_posts(api.runtime, org.organization_id, None, rows.encode(), dry_run=False)
    assert report.created == 50 and report.errors == []
