"""Approvals (issue 14.4): the org policy and its inheritance, a post's states and thread, the
scopes of each stage, first-N and trust rules, and the gate the engine's claim enforces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.approvals.policy import ApprovalPolicy, effective_policy, set_policy
from gateway.auth.keys import mint_key
from gateway.core.clock import utcnow
from gateway.orgs.organizations import create_organization
from gateway.storage.models import Attempt, OrganizationEvent, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

SET_POLICY = """mutation($p: ApprovalPolicyInput) { setApprovalPolicy(input: {policy: $p}) {
  policy { requiresApproval stages firstNPostsBlocked trustThreshold lateApproval inheritedFrom } userErrors { field code } } }"""
POLICY = "{ approvalPolicy { requiresApproval stages inheritedFrom } }"
SUBMIT = """mutation($id: ID!) { submitPostForApproval(input: {postId: $id, comment: "ready"}) {
  post { approval { status stage } } userErrors { code } } }"""
APPROVE = """mutation($id: ID!, $stage: ApprovalStage!, $c: String!) { approvePost(input: {postId: $id, stage: $stage, comment: $c}) {
  post { approvalStatus approval { status stage } } userErrors { field code } } }"""
REJECT = """mutation($id: ID!, $c: String!) { rejectPost(input: {postId: $id, comment: $c}) {
  post { approval { status } } userErrors { field code } } }"""
COMMENT = """mutation($id: ID!, $c: String!) { commentOnPost(input: {postId: $id, comment: $c}) { comment { action comment } userErrors { code } } }"""
POST = """query($id: ID!) { post(id: $id) { status approval { status stage comments { action stage comment authorKeyId via createdAt } }
  targets { status } } }"""
UPDATE = """mutation($id: ID!, $t: String!) { updatePost(input: {id: $id, text: $t}) { post { approval { status stage } } userErrors { code } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def _policy(api, org, **fields) -> dict:
    body = await api.graphql(SET_POLICY, {"p": {"requiresApproval": True, **fields}}, key=org.secret)
    assert body["data"]["setApprovalPolicy"]["userErrors"] == [], body
    return body["data"]["setApprovalPolicy"]["policy"]


async def _approval(api, org, post_id) -> dict:
    return (await api.graphql(POST, {"id": post_id}, key=org.secret))["data"]["post"]


async def _key(api, org, scopes) -> str:
    async with api.runtime.database.write() as session:
        return (await mint_key(session, org.organization_id, scopes)).secret


async def _attempts(api) -> int:
    async with api.runtime.database.read() as session:
        return len((await session.execute(select(Attempt.id))).all())


async def test_the_engine_never_claims_a_due_target_of_an_unapproved_post(api):
    org = await setup_org(api)
    await _policy(api, org)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    assert (await publish(api, org.secret, post_id))["userErrors"] == []  # queued and due now

    scheduler = scheduler_for(api)
    assert await scheduler.tick() == 0
    await scheduler.drain()
    assert await _attempts(api) == 0
    post = await _approval(api, org, post_id)
    assert post["approval"]["status"] == "REQUIRED" and post["targets"] == [{"status": "SCHEDULED"}]

    # Pending is not cleared either, even if someone forces the target due again.
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(next_attempt_at=utcnow() - timedelta(minutes=1)))
    assert await scheduler.tick() == 0
    assert await _attempts(api) == 0

    approved = await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": "ship it"}, key=org.secret)
    assert approved["data"]["approvePost"]["post"]["approval"] == {"status": "APPROVED", "stage": None}
    await scheduler.drain()
    assert (await _approval(api, org, post_id))["status"] == "PUBLISHED"


async def test_a_rejected_post_is_never_claimed_and_the_thread_keeps_who_said_what(api):
    org = await setup_org(api)
    await _policy(api, org)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    await publish(api, org.secret, post_id)
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)

    missing = await api.graphql(REJECT, {"id": post_id, "c": "  "}, key=org.secret)
    assert missing["data"]["rejectPost"]["userErrors"] == [{"field": ["comment"], "code": "COMMENT_REQUIRED"}]
    await api.graphql(COMMENT, {"id": post_id, "c": "the link is wrong"}, key=org.secret)
    rejected = await api.graphql(REJECT, {"id": post_id, "c": "fix the link"}, key=org.secret)
    assert rejected["data"]["rejectPost"] == {"post": {"approval": {"status": "REJECTED"}}, "userErrors": []}
    await scheduler_for(api).drain()
    assert await _attempts(api) == 0

    post = await _approval(api, org, post_id)
    assert [(c["action"], c["stage"], c["comment"]) for c in post["approval"]["comments"]] == [
        ("submitted", "REVIEW", "ready"), ("commented", "REVIEW", "the link is wrong"), ("rejected", "REVIEW", "fix the link"),
    ]
    assert {c["authorKeyId"] for c in post["approval"]["comments"]} == {org.api_key_id}
    assert all(c["via"] == "key" and c["createdAt"] for c in post["approval"]["comments"])
    again = await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": ""}, key=org.secret)
    assert again["data"]["approvePost"]["userErrors"] == [{"field": ["postId"], "code": "NOT_PENDING"}]


async def test_two_stages_each_need_their_own_scope(api):
    org = await setup_org(api)
    await _policy(api, org, stages=["REVIEW", "CLIENT"])
    reviewer = await _key(api, org, ["approvals:review", "posts:read"])
    client = await _key(api, org, ["approvals:client", "posts:read"])
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)

    refused = await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": ""}, key=client)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    early = await api.graphql(APPROVE, {"id": post_id, "stage": "CLIENT", "c": ""}, key=client)
    assert early["data"]["approvePost"]["userErrors"] == [{"field": ["stage"], "code": "WRONG_STAGE"}]
    reviewed = await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": "ok"}, key=reviewer)
    assert reviewed["data"]["approvePost"]["post"]["approval"] == {"status": "PENDING", "stage": "CLIENT"}
    # The reviewer cannot reject at the client's stage: the stage is the post's, the scope the client's.
    blocked = await api.graphql(REJECT, {"id": post_id, "c": "no"}, key=reviewer)
    assert blocked["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    done = await api.graphql(APPROVE, {"id": post_id, "stage": "CLIENT", "c": "lovely"}, key=client)
    assert done["data"]["approvePost"]["post"]["approvalStatus"] == "approved"


async def test_a_sub_org_inherits_its_parents_policy_unless_it_sets_its_own(api):
    org = await setup_org(api)
    await _policy(api, org, stages=["REVIEW", "CLIENT"])
    async with api.runtime.database.write() as session:
        child = await create_organization(session, "Child", parent_id=org.organization_id)
    async with api.runtime.database.read() as session:
        inherited = await effective_policy(session, child.id)
    assert inherited.inherited_from == org.organization_id and inherited.policy.stages == ("review", "client")
    async with api.runtime.database.write() as session:
        own = await set_policy(session, child.id, ApprovalPolicy(requires_approval=False))
    assert own.inherited_from is None and own.policy.requires_approval is False
    async with api.runtime.database.write() as session:
        cleared = await set_policy(session, child.id, None)
    assert cleared.inherited_from == org.organization_id
    body = await api.graphql(POLICY, key=org.secret)
    assert body["data"]["approvalPolicy"] == {"requiresApproval": True, "stages": ["REVIEW", "CLIENT"], "inheritedFrom": None}


async def test_a_bad_policy_is_refused_with_a_code(api):
    org = await setup_org(api)
    for fields, code in (({"stages": ["CLIENT"]}, "INVALID_STAGES"), ({"trustThreshold": -1}, "INVALID_COUNT")):
        body = await api.graphql(SET_POLICY, {"p": {"requiresApproval": True, **fields}}, key=org.secret)
        assert [e["code"] for e in body["data"]["setApprovalPolicy"]["userErrors"]] == [code]
    reader = await _key(api, org, ["posts:write"])
    assert (await api.graphql(SET_POLICY, {"p": {"requiresApproval": True}}, key=reader))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_first_n_posts_of_the_org_and_of_a_new_account_need_approval_even_when_off(api):
    org = await setup_org(api)
    await _policy(api, org, requiresApproval=False, firstNPostsBlocked=2)
    first = await sandbox_account(api, org.secret, "first")
    statuses = [(await _approval(api, org, await new_post(api, org.secret, [first])))["approval"]["status"] for _ in range(3)]
    assert statuses == ["REQUIRED", "REQUIRED", "NOT_REQUIRED"]
    newcomer = await sandbox_account(api, org.secret, "newcomer")
    post = await _approval(api, org, await new_post(api, org.secret, [first, newcomer]))
    assert post["approval"]["status"] == "REQUIRED"


async def test_trust_is_earned_by_approvals_in_a_row_and_lost_by_a_rejection(api):
    org = await setup_org(api)
    await _policy(api, org, trustThreshold=2)
    account = await sandbox_account(api, org.secret)

    async def decide(mutation, variables):
        post_id = await new_post(api, org.secret, [account])
        await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
        await api.graphql(mutation, {"id": post_id, **variables}, key=org.secret)

    await decide(APPROVE, {"stage": "REVIEW", "c": ""})
    assert (await _approval(api, org, await new_post(api, org.secret, [account])))["approval"]["status"] == "REQUIRED"
    await decide(APPROVE, {"stage": "REVIEW", "c": ""})
    assert (await _approval(api, org, await new_post(api, org.secret, [account])))["approval"]["status"] == "NOT_REQUIRED"
    await decide(REJECT, {"c": "off brand"})
    assert (await _approval(api, org, await new_post(api, org.secret, [account])))["approval"]["status"] == "REQUIRED"


async def _overdue_approved_post(api, org, late: str) -> str:
    await _policy(api, org, lateApproval=late)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    await publish(api, org.secret, post_id)
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
    async with api.runtime.database.write() as session:  # its time passed while it waited
        await session.execute(update(Target).values(publish_at=utcnow() - timedelta(hours=1), next_attempt_at=utcnow() - timedelta(hours=1)))
    await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": ""}, key=org.secret)
    await scheduler_for(api).drain()
    return post_id


async def test_approved_after_its_time_publishes_at_once_by_default(api):
    org = await setup_org(api)
    post_id = await _overdue_approved_post(api, org, "PUBLISH")
    assert (await _approval(api, org, post_id))["targets"] == [{"status": "PUBLISHED"}]


async def test_approved_after_its_time_is_missed_when_the_policy_says_so(api):
    org = await setup_org(api)
    post_id = await _overdue_approved_post(api, org, "MISS")
    post = await _approval(api, org, post_id)
    assert post["targets"] == [{"status": "MISSED"}] and post["status"] == "MISSED"
    assert await _attempts(api) == 0
    job = (await api.graphql("{ jobs(first: 1) { edges { node { status progress { done total } } } } }", key=org.secret))
    assert job["data"]["jobs"]["edges"][0]["node"]["progress"] == {"done": 1, "total": 1}


async def test_editing_an_approved_post_sends_it_back_to_pending(api):
    org = await setup_org(api)
    await _policy(api, org)
    account = await sandbox_account(api, org.secret)
    post_id = await new_post(api, org.secret, [account])
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
    await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": ""}, key=org.secret)
    same = await api.graphql(UPDATE, {"id": post_id, "t": "Hello from the engine"}, key=org.secret)
    assert same["data"]["updatePost"]["post"]["approval"] == {"status": "APPROVED", "stage": None}
    edited = await api.graphql(UPDATE, {"id": post_id, "t": "Something else"}, key=org.secret)
    assert edited["data"]["updatePost"]["post"]["approval"] == {"status": "PENDING", "stage": "REVIEW"}
    await publish(api, org.secret, post_id)
    await scheduler_for(api).drain()
    assert await _attempts(api) == 0


async def test_each_decision_is_an_org_event_with_its_payload(api):
    org = await setup_org(api)
    await _policy(api, org, stages=["REVIEW", "CLIENT"])
    account = await sandbox_account(api, org.secret)
    subscription = api.runtime.events.subscribe(org.organization_id)
    post_id = await new_post(api, org.secret, [account])
    await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
    await api.graphql(APPROVE, {"id": post_id, "stage": "REVIEW", "c": "fine"}, key=org.secret)
    await api.graphql(REJECT, {"id": post_id, "c": "not for us"}, key=org.secret)
    seen = [await subscription.next() for _ in range(4)]
    assert [(e.kind, e.payload.get("stage")) for e in seen] == [
        ("post.approval_requested", "review"), ("post.approved", "review"), ("post.approval_requested", "client"),
        ("post.rejected", "client"),
    ]
    assert seen[1].payload == {"postId": post_id, "stage": "review", "final": False, "comment": "fine", "byKeyId": org.api_key_id, "via": "key"}
    async with api.runtime.database.read() as session:
        stored = (await session.execute(select(OrganizationEvent.kind).where(OrganizationEvent.subject_id == post_id))).scalars().all()
    assert stored == [e.kind for e in seen]
