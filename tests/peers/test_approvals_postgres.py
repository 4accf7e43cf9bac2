"""The approval gate and posting queues on PostgreSQL: the claim's EXISTS predicate under
``FOR UPDATE SKIP LOCKED`` with two schedulers, and revision 0015's tables in use."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from gateway.storage.models import Attempt, Target
from tests.engine import new_post, publish, sandbox_account, scheduler_for, setup_org
from tests.peers.test_postgres import migrated, pg_api, pg_settings, postgres_url  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.e2e

SET_POLICY = """mutation { setApprovalPolicy(input: {policy: {requiresApproval: true}}) { userErrors { code } } }"""
SUBMIT = """mutation($id: ID!) { submitPostForApproval(input: {postId: $id}) { userErrors { code } } }"""
APPROVE = """mutation($id: ID!) { approvePost(input: {postId: $id, stage: REVIEW}) { userErrors { code } } }"""
SET_QUEUE = """mutation($i: SetPostingQueueInput!) { setPostingQueue(input: $i) { moved userErrors { code } } }"""
ADD = """mutation($id: ID!) { addToQueue(input: {postId: $id}) { slots { at } userErrors { code } } }"""


async def test_two_schedulers_claim_only_approved_posts_on_postgres(pg_api):  # noqa: F811
    api = pg_api
    org = await setup_org(api)
    assert (await api.graphql(SET_POLICY, key=org.secret))["data"]["setApprovalPolicy"]["userErrors"] == []
    account = await sandbox_account(api, org.secret, "pg-approvals")
    posts = [await new_post(api, org.secret, [account], text=f"pg approval {i}") for i in range(4)]
    for post_id in posts:
        await publish(api, org.secret, post_id)
        await api.graphql(SUBMIT, {"id": post_id}, key=org.secret)
    for post_id in posts[:2]:
        assert (await api.graphql(APPROVE, {"id": post_id}, key=org.secret))["data"]["approvePost"]["userErrors"] == []
    first, second = scheduler_for(api, worker_id="pg-a"), scheduler_for(api, worker_id="pg-b")
    await asyncio.gather(first.drain(timeout=60), second.drain(timeout=60))
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(Target.post_id, Target.status).where(Target.post_id.in_(posts)))).all()
        attempts = (await session.execute(select(Attempt.target_id).join(Target, Target.id == Attempt.target_id)
                                          .where(Target.post_id.in_(posts)))).all()
    assert {post_id: status for post_id, status in rows} == {
        posts[0]: "published", posts[1]: "published", posts[2]: "scheduled", posts[3]: "scheduled",
    }
    assert len(attempts) == 2


async def test_queues_on_postgres(pg_api):  # noqa: F811
    api = pg_api
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret, "pg-queue")
    made = await api.graphql(SET_QUEUE, {"i": {"timezone": "Europe/Paris", "slots": [{"dayOfWeek": "MONDAY", "time": "09:00"}]}},
                             key=org.secret)
    assert made["data"]["setPostingQueue"]["userErrors"] == []
    for _ in range(2):
        added = await api.graphql(ADD, {"id": await new_post(api, org.secret, [account])}, key=org.secret)
        assert added["data"]["addToQueue"]["userErrors"] == []
    moved = await api.graphql(SET_QUEUE, {"i": {"accountId": account, "timezone": "Europe/Paris",
                                                "slots": [{"dayOfWeek": "TUESDAY", "time": "09:00"}]}}, key=org.secret)
    assert moved["data"]["setPostingQueue"] == {"moved": 2, "userErrors": []}
