"""Campaigns (issue 14, point 1): CRUD, filters, counts, posts joining and moving, and the pause
that the engine's claim respects, with the late policy applied on resume."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.core.clock import utcnow
from gateway.storage.models import Attempt, OrganizationEvent, Target
from tests.conftest import make_org_with_key
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

CREATE = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) {
  campaign { id name status timezone tags metadata latePolicy startsAt endsAt } userErrors { field code message } } }"""
UPDATE = """mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) {
  campaign { id name status tags metadata description } userErrors { field code } } }"""
PAUSE = """mutation($id: ID!) { pauseCampaign(input: {id: $id}) { campaign { status } userErrors { code } } }"""
RESUME = """mutation($id: ID!) { resumeCampaign(input: {id: $id}) { campaign { status } userErrors { code } } }"""
ARCHIVE = """mutation($id: ID!) { archiveCampaign(input: {id: $id}) { campaign { status } userErrors { code } } }"""
MOVE = """mutation($ids: [ID!]!, $c: ID) { movePostsToCampaign(input: {postIds: $ids, campaignId: $c}) {
  posts { id campaignId } userErrors { field code } } }"""
CAMPAIGN = """query($id: ID!) { campaign(id: $id) { id status nextPublishAt
  counts { posts { status count } targets { status count } } posts(first: 10) { nodes { id } totalCount } } }"""
LIST = """query($f: CampaignFilter) { campaigns(filter: $f, first: 10) { nodes { name } totalCount } }"""
CREATE_POST = """mutation($input: CreatePostInput!) { createPost(input: $input) { post { id campaignId } userErrors { field code } } }"""
POST = """query($id: ID!) { post(id: $id) { status targets { status error { code } } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def campaign(api, key, **fields) -> str:
    body = await api.graphql(CREATE, {"input": {"name": "Spring launch", "status": "ACTIVE", **fields}}, key=key)
    assert body["data"]["createCampaign"]["userErrors"] == [], body
    return body["data"]["createCampaign"]["campaign"]["id"]


async def test_create_read_update_and_filter(api):
    org = await setup_org(api)
    body = await api.graphql(
        CREATE,
        {"input": {"name": " Spring ", "timezone": "Europe/Paris", "tags": ["launch", "q2"], "metadata": {"owner": "ana"},
                   "startsAt": "2026-04-01T00:00:00+02:00", "endsAt": "2026-05-01T00:00:00+02:00", "latePolicy": "MISS"}},
        key=org.secret,
    )
    created = body["data"]["createCampaign"]["campaign"]
    assert created["id"].startswith("camp_")
    assert (created["name"], created["status"], created["latePolicy"]) == ("Spring", "DRAFT", "MISS")
    assert created["tags"] == ["launch", "q2"] and created["metadata"] == {"owner": "ana"}
    await campaign(api, org.secret, name="Autumn", tags=["q4"])

    changed = (await api.graphql(UPDATE, {"input": {"id": created["id"], "tags": ["launch"], "metadata": {"owner": "", "team": "b"},
                                                    "status": "ACTIVE"}}, key=org.secret))["data"]["updateCampaign"]
    assert changed["userErrors"] == []
    assert changed["campaign"]["tags"] == ["launch"] and changed["campaign"]["metadata"] == {"team": "b"}
    assert changed["campaign"]["description"] == "" and changed["campaign"]["status"] == "ACTIVE"

    by_tag = (await api.graphql(LIST, {"f": {"tag": "q4"}}, key=org.secret))["data"]["campaigns"]
    assert [n["name"] for n in by_tag["nodes"]] == ["Autumn"]
    by_status = (await api.graphql(LIST, {"f": {"status": "ACTIVE"}}, key=org.secret))["data"]["campaigns"]
    assert by_status["totalCount"] == 2
    by_name = (await api.graphql(LIST, {"f": {"search": "SPR"}}, key=org.secret))["data"]["campaigns"]
    assert [n["name"] for n in by_name["nodes"]] == ["Spring"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": ""}, "NAME_REQUIRED"),
        ({"timezone": "Mars/Olympus"}, "INVALID_TIMEZONE"),
        ({"startsAt": "2026-05-01T00:00:00Z", "endsAt": "2026-04-01T00:00:00Z"}, "WINDOW_INVALID"),
        ({"tags": ['bad"tag']}, "TAG_INVALID"),
        ({"metadata": {"k": 1}}, "METADATA_VALUE_NOT_STRING"),
        ({"metadata": "a string"}, "METADATA_NOT_OBJECT"),
        ({"metadata": ["a", "list"]}, "METADATA_NOT_OBJECT"),
        ({"status": "PAUSED"}, "STATUS_NOT_SETTABLE"),
    ],
)
async def test_bad_input_is_a_user_error(api, fields, code):
    org = await setup_org(api)
    body = await api.graphql(CREATE, {"input": {"name": "x", **fields}}, key=org.secret)
    assert [e["code"] for e in body["data"]["createCampaign"]["userErrors"]] == [code]


async def test_another_organizations_campaign_is_not_found(api):
    org = await setup_org(api)
    other = await make_org_with_key(api.runtime, "Other")
    theirs = await campaign(api, other.secret)
    account = await sandbox_account(api, org.secret)
    assert (await api.graphql(CAMPAIGN, {"id": theirs}, key=org.secret))["data"]["campaign"] is None
    body = await api.graphql(CREATE_POST, {"input": {"text": "x", "targets": [{"accountId": account}], "campaignId": theirs}}, key=org.secret)
    assert body["data"]["createPost"]["userErrors"] == [{"field": ["campaignId"], "code": "CAMPAIGN_NOT_FOUND"}]
    assert (await api.graphql(PAUSE, {"id": theirs}, key=org.secret))["data"]["pauseCampaign"]["userErrors"] == [{"code": "CAMPAIGN_NOT_FOUND"}]


async def test_scopes_are_checked(api):
    org = await setup_org(api)
    reader = await make_org_with_key(api.runtime, "Reader", ["campaigns:read"])
    body = await api.graphql(CREATE, {"input": {"name": "x"}}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await api.graphql(LIST, {}, key=(await make_org_with_key(api.runtime, "Posts", ["posts:read"])).secret)
    assert body["data"]["campaigns"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert org


async def test_posts_join_count_and_move_while_unpublished(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    first, second = await campaign(api, org.secret), await campaign(api, org.secret, name="Second")
    body = await api.graphql(CREATE_POST, {"input": {"text": "a", "targets": [{"accountId": account}], "campaignId": first}}, key=org.secret)
    post = body["data"]["createPost"]["post"]
    assert post["campaignId"] == first
    published = await new_post(api, org.secret, [account], text="b", campaignId=first)
    later = await new_post(api, org.secret, [account], text="c", campaignId=first)
    await publish(api, org.secret, published)
    await scheduler_for(api).drain()
    when = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    body = await api.graphql(
        """mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }""",
        {"id": later, "at": when.isoformat()}, key=org.secret,
    )
    assert body["data"]["schedulePost"]["userErrors"] == []

    seen = (await api.graphql(CAMPAIGN, {"id": first}, key=org.secret))["data"]["campaign"]
    assert seen["posts"]["totalCount"] == 3
    assert {c["status"]: c["count"] for c in seen["counts"]["posts"]} == {"draft": 1, "published": 1, "scheduled": 1}
    assert {c["status"]: c["count"] for c in seen["counts"]["targets"]} == {"draft": 1, "published": 1, "scheduled": 1}
    assert seen["nextPublishAt"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))

    moved = (await api.graphql(MOVE, {"ids": [post["id"], later], "c": second}, key=org.secret))["data"]["movePostsToCampaign"]
    assert moved["userErrors"] == [] and {p["campaignId"] for p in moved["posts"]} == {second}
    refused = (await api.graphql(MOVE, {"ids": [later, published], "c": first}, key=org.secret))["data"]["movePostsToCampaign"]
    assert refused["userErrors"] == [{"field": ["postIds", "1"], "code": "CONFLICT"}]
    # All or none: the first post did not move either.
    assert (await api.graphql(CAMPAIGN, {"id": second}, key=org.secret))["data"]["campaign"]["posts"]["totalCount"] == 2
    out = (await api.graphql(MOVE, {"ids": [later], "c": None}, key=org.secret))["data"]["movePostsToCampaign"]
    assert out["posts"] == [{"id": later, "campaignId": None}]


async def _attempts(api) -> int:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Attempt))).scalar_one()


async def _statuses(api, post_id) -> list[str]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(Target.status).where(Target.post_id == post_id))).scalars())


async def test_the_engine_never_claims_a_paused_campaigns_target(api):
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, h) for h in ("a", "b")]
    held = await campaign(api, org.secret)
    outside = await new_post(api, org.secret, accounts, text="not in a campaign")
    inside = [await new_post(api, org.secret, accounts, text=f"held {i}", campaignId=held) for i in range(3)]
    assert (await api.graphql(PAUSE, {"id": held}, key=org.secret))["data"]["pauseCampaign"] == {"campaign": {"status": "PAUSED"}, "userErrors": []}
    for post_id in [*inside, outside]:
        assert (await publish(api, org.secret, post_id))["userErrors"] == []  # due now

    scheduler = scheduler_for(api)
    await scheduler.drain()
    assert await _statuses(api, outside) == ["published", "published"]
    assert await scheduler.claim_due() == [] and await scheduler.tick() == 0  # ...and none of the paused campaign's
    for post_id in inside:
        assert await _statuses(api, post_id) == ["scheduled", "scheduled"]
    assert await _attempts(api) == 2

    assert (await api.graphql(RESUME, {"id": held}, key=org.secret))["data"]["resumeCampaign"]["campaign"]["status"] == "ACTIVE"
    await scheduler.drain()  # the default policy: overdue targets publish at once
    for post_id in inside:
        assert await _statuses(api, post_id) == ["published", "published"]


async def test_resume_with_the_miss_policy_marks_overdue_targets_missed(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    held = await campaign(api, org.secret, latePolicy="MISS")
    overdue = await new_post(api, org.secret, [account], campaignId=held)
    future = await new_post(api, org.secret, [account], text="later", campaignId=held)
    assert (await api.graphql(PAUSE, {"id": held}, key=org.secret))["data"]["pauseCampaign"]["userErrors"] == []
    job = (await publish(api, org.secret, overdue))["job"]["id"]
    at = (utcnow() + timedelta(hours=3)).isoformat()
    await api.graphql("""mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { job { id } } }""",
                      {"id": future, "at": at}, key=org.secret)
    assert (await api.graphql(RESUME, {"id": held}, key=org.secret))["data"]["resumeCampaign"]["userErrors"] == []

    await scheduler_for(api).drain()
    assert await _attempts(api) == 0
    post = (await api.graphql(POST, {"id": overdue}, key=org.secret))["data"]["post"]
    assert post == {"status": "MISSED", "targets": [{"status": "MISSED", "error": {"code": "MISSED"}}]}
    assert await _statuses(api, future) == ["scheduled"]  # not due yet: untouched
    job_seen = (await api.graphql("""query($id: ID!) { job(id: $id) { status events { kind } } }""", {"id": job}, key=org.secret))["data"]["job"]
    assert "target.missed" in [e["kind"] for e in job_seen["events"]] and job_seen["status"] == "FAILED"
    async with api.runtime.database.read() as session:
        events = list((await session.execute(select(OrganizationEvent).order_by(OrganizationEvent.id))).scalars())
    campaign_events = [(e.kind, e.payload.get("missedTargets")) for e in events if e.kind.startswith("campaign.")]
    assert campaign_events == [("campaign.created", None), ("campaign.paused", None), ("campaign.resumed", 1)]


async def test_pause_resume_and_archive_refuse_the_wrong_state(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    camp = await campaign(api, org.secret)
    waiting = await new_post(api, org.secret, [account], campaignId=camp)
    at = (utcnow() + timedelta(hours=3)).isoformat()
    await api.graphql("""mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { job { id } } }""",
                      {"id": waiting, "at": at}, key=org.secret)
    assert (await api.graphql(RESUME, {"id": camp}, key=org.secret))["data"]["resumeCampaign"]["userErrors"] == [{"code": "CAMPAIGN_NOT_PAUSED"}]
    assert (await api.graphql(ARCHIVE, {"id": camp}, key=org.secret))["data"]["archiveCampaign"]["campaign"]["status"] == "ARCHIVED"
    assert await _statuses(api, waiting) == ["canceled"]
    assert (await api.graphql(PAUSE, {"id": camp}, key=org.secret))["data"]["pauseCampaign"]["userErrors"] == [{"code": "CAMPAIGN_NOT_PAUSABLE"}]
    body = await api.graphql(CREATE_POST, {"input": {"text": "x", "targets": [{"accountId": account}], "campaignId": camp}}, key=org.secret)
    assert body["data"]["createPost"]["userErrors"] == [{"field": ["campaignId"], "code": "CAMPAIGN_CLOSED"}]
    frozen = (await api.graphql(UPDATE, {"input": {"id": camp, "name": "x"}}, key=org.secret))["data"]["updateCampaign"]
    assert frozen["userErrors"] == [{"field": ["id"], "code": "CAMPAIGN_ARCHIVED"}]


async def test_a_paused_campaign_edits_its_fields_but_resumes_only_through_resume(api):
    org = await setup_org(api)
    camp = await campaign(api, org.secret)
    assert (await api.graphql(PAUSE, {"id": camp}, key=org.secret))["data"]["pauseCampaign"]["userErrors"] == []
    renamed = (await api.graphql(UPDATE, {"input": {"id": camp, "name": "Renamed"}}, key=org.secret))["data"]["updateCampaign"]
    assert renamed["campaign"]["name"] == "Renamed" and renamed["campaign"]["status"] == "PAUSED"
    bypass = (await api.graphql(UPDATE, {"input": {"id": camp, "status": "ACTIVE"}}, key=org.secret))["data"]["updateCampaign"]
    assert bypass["userErrors"] == [{"field": ["status"], "code": "STATUS_NOT_SETTABLE"}]
