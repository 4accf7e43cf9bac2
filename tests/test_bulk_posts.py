"""bulkCreatePosts (issue 14, point 7): a result per item, atomic, dry run, idempotency key, campaign, publishAt."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from gateway.core.clock import utcnow
from gateway.storage.models import Post, Target
from tests.conftest import make_org_with_key
from tests.engine import engine_app, sandbox_account, setup_org
from tests.row_counts import row_counts

BULK = """mutation($input: BulkCreatePostsInput!) { bulkCreatePosts(input: $input) {
  results { index post { id text campaignId status } jobId userErrors { field code } } createdCount userErrors { code } } }"""
CREATE_CAMPAIGN = """mutation { createCampaign(input: {name: "Bulk", status: ACTIVE}) { campaign { id } } }"""
UNKNOWN_ACCOUNT = "acct_" + "x" * 24


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def _bulk(api, key, items, **extra):
    return (await api.graphql(BULK, {"input": {"items": items, **extra}}, key=key))["data"]["bulkCreatePosts"]


async def _row_counts(api) -> dict[str, int]:
    return await row_counts(api.runtime)


def _items(account, bad_at=1, count=3):
    return [{"text": f"item {i}", "targets": [{"accountId": UNKNOWN_ACCOUNT if i == bad_at else account}]} for i in range(count)]


async def test_a_bad_item_does_not_block_the_others(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    result = await _bulk(api, org.secret, _items(account))
    assert result["createdCount"] == 2 and result["userErrors"] == []
    assert [r["index"] for r in result["results"]] == [0, 1, 2]
    assert [r["post"]["text"] if r["post"] else None for r in result["results"]] == ["item 0", None, "item 2"]
    assert result["results"][1]["userErrors"] == [{"field": ["targets", "0", "accountId"], "code": "ACCOUNT_NOT_FOUND"}]


async def test_atomic_writes_nothing_when_one_item_fails(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    before = await _row_counts(api)
    result = await _bulk(api, org.secret, _items(account), atomic=True)
    assert result["createdCount"] == 0 and [r["post"] for r in result["results"]] == [None, None, None]
    assert [e["code"] for e in result["results"][1]["userErrors"]] == ["ACCOUNT_NOT_FOUND"]
    assert await _row_counts(api) == before
    ok = await _bulk(api, org.secret, _items(account, bad_at=-1), atomic=True)
    assert ok["createdCount"] == 3


async def test_dry_run_checks_every_item_and_writes_nothing(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    before = await _row_counts(api)
    items = _items(account) + [{"text": "x" * 100_001, "targets": [{"accountId": account}]}]
    result = await _bulk(api, org.secret, items, dryRun=True)
    assert [sorted({e["code"] for e in r["userErrors"]}) for r in result["results"]] == [[], ["ACCOUNT_NOT_FOUND"], [], ["TEXT_TOO_LONG"]]
    assert result["createdCount"] == 0 and await _row_counts(api) == before


async def test_too_many_items_and_none(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    too_many = await _bulk(api, org.secret, [{"text": "x", "targets": [{"accountId": account}]}] * 501)
    assert too_many["userErrors"] == [{"code": "TOO_MANY_ITEMS"}] and too_many["results"] == []
    assert (await _bulk(api, org.secret, []))["userErrors"] == [{"code": "ITEMS_REQUIRED"}]


async def test_an_idempotency_key_creates_once(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    items = _items(account, bad_at=-1, count=2)
    first = await _bulk(api, org.secret, items, idempotencyKey="bulk-1")
    again = await _bulk(api, org.secret, items, idempotencyKey="bulk-1")
    assert [r["post"]["id"] for r in again["results"]] == [r["post"]["id"] for r in first["results"]]
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(Post))).scalar_one() == 2
    other = await _bulk(api, org.secret, items[:1], idempotencyKey="bulk-1")
    assert other["userErrors"] == [{"code": "IDEMPOTENCY_KEY_REUSED"}]


async def test_campaign_for_every_item_and_publish_at(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    campaign = (await api.graphql(CREATE_CAMPAIGN, key=org.secret))["data"]["createCampaign"]["campaign"]["id"]
    at = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    items = [
        {"text": "planned", "targets": [{"accountId": account}], "publishAt": at.isoformat()},
        {"text": "draft", "targets": [{"accountId": account}]},
        {"text": "elsewhere", "targets": [{"accountId": account}], "campaignId": "camp_" + "n" * 24},
        {"text": "local", "targets": [{"accountId": account}], "publishAt": "2020-01-01T09:00:00", "timezone": "Europe/Paris"},
    ]
    result = await _bulk(api, org.secret, items, campaignId=campaign)
    first, second, third, fourth = result["results"]
    assert first["post"]["campaignId"] == campaign and first["post"]["status"] == "SCHEDULED" and first["jobId"].startswith("job_")
    assert second["post"]["status"] == "DRAFT" and second["jobId"] is None
    assert third["userErrors"] == [{"field": ["campaignId"], "code": "CAMPAIGN_NOT_FOUND"}]
    assert fourth["userErrors"] == [{"field": ["publishAt"], "code": "PUBLISH_AT_IN_PAST"}]
    async with api.runtime.database.read() as session:
        due = (await session.execute(select(Target.next_attempt_at).where(Target.post_id == first["post"]["id"]))).scalar_one()
    assert due == at


async def test_scopes(api):
    await setup_org(api)
    reader = await make_org_with_key(api.runtime, "Reader", ["posts:read"])
    body = await api.graphql(BULK, {"input": {"items": []}}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    writer = await make_org_with_key(api.runtime, "Writer", ["posts:write", "accounts:write", "accounts:read"])
    account = await sandbox_account(api, writer.secret)
    body = await api.graphql(BULK, {"input": {"items": [{"text": "x", "targets": [{"accountId": account}],
                                                          "publishAt": (utcnow() + timedelta(days=1)).isoformat()}]}}, key=writer.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # publishing needs posts:publish


async def test_an_item_whose_account_changed_after_its_check_is_not_written(api):
    """The write reads the facts again: a check made before an account was disconnected does not count."""
    from gateway.campaigns import bulk
    from gateway.content.posts import PostInput, TargetInput
    from gateway.storage.models import Account

    org = await setup_org(api)
    kept, dropped = await sandbox_account(api, org.secret, "kept"), await sandbox_account(api, org.secret, "dropped")
    items = [bulk.BulkItem(PostInput(text="a", targets=(TargetInput(kept),))), bulk.BulkItem(PostInput(text="b", targets=(TargetInput(dropped),)))]
    results = await bulk.check_items(api.runtime, org.organization_id, items)
    assert [r.errors for r in results] == [[], []]
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).where(Account.id == dropped).values(status="disconnected"))
    events = []
    async with api.runtime.database.write() as session:
        await bulk._write(session, api.runtime, org.organization_id, None, items, results, events, atomic=False)
    assert results[0].post_id is not None and results[1].post_id is None
    assert [e.code for e in results[1].errors] == ["ACCOUNT_DISCONNECTED"]
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(Post))).scalar_one() == 1
