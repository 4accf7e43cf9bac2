"""Health (issue 17, point 8): the `health` query, and /readyz failing without a live scheduler."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from gateway.core.clock import utcnow
from gateway.core.ids import new_id
from gateway.storage.models import Account, Job, Target, WorkerHeartbeat
from gateway.storage.worker_heartbeats import MISSED_BEATS, heartbeat_seconds
from tests.conftest import make_org_with_key
from tests.engine import engine_app, new_post, publish, sandbox_account

HEALTH = """{ health { accountsNeedingAttention { accountId provider handle status rateLimitedUntil }
  queueDepth dueUnclaimed oldestDueAgeSeconds failedJobsLast24h } }"""
WORKERS = "{ health { workers { workerId startedAt lastHeartbeatAt alive } } }"
SCHEDULE = """mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }"""


async def test_health_gathers_what_needs_attention_in_the_organization(tmp_path):
    async with engine_app(tmp_path) as api:  # no scheduler: due targets stay unclaimed
        org = await make_org_with_key(api.runtime)
        other = await make_org_with_key(api.runtime, name="Other")
        accounts = {name: await sandbox_account(api, org.secret, name) for name in ("fine", "expired", "gone", "limited", "busy")}
        now = utcnow()
        async with api.runtime.database.write() as session:
            await session.execute(update(Account).where(Account.id == accounts["expired"]).values(status="token_expired"))
            await session.execute(update(Account).where(Account.id == accounts["gone"]).values(status="disconnected"))
            await session.execute(update(Account).where(Account.id == accounts["limited"]).values(status="rate_limited"))
            await session.execute(update(Account).where(Account.id == accounts["busy"]).values(rate_limited_until=now + timedelta(minutes=5)))

        due = [await new_post(api, org.secret, [accounts["fine"]]) for _ in range(2)]
        for post_id in due:
            assert (await publish(api, org.secret, post_id))["userErrors"] == []
        later = await new_post(api, org.secret, [accounts["fine"]])
        body = await api.graphql(SCHEDULE, {"id": later, "at": (now + timedelta(hours=1)).isoformat()}, key=org.secret)
        assert body["data"]["schedulePost"]["userErrors"] == []
        async with api.runtime.database.write() as session:  # the oldest due target has waited ten minutes
            await session.execute(update(Target).where(Target.post_id == due[0]).values(next_attempt_at=now - timedelta(minutes=10)))
            for status, finished in [("failed", 1), ("failed", 30), ("succeeded", 1), ("partial", 2)]:
                session.add(Job(id=new_id("job"), organization_id=org.organization_id, kind="publish", status=status,
                                finished_at=now - timedelta(hours=finished)))
            session.add(Job(id=new_id("job"), organization_id=other.organization_id, kind="publish", status="failed", finished_at=now))

        health = (await api.graphql(HEALTH, key=org.secret))["data"]["health"]
        attention = {a["handle"]: a["status"] for a in health["accountsNeedingAttention"]}
        assert attention == {"expired": "token_expired", "gone": "disconnected", "limited": "rate_limited", "busy": "rate_limited"}
        assert (health["queueDepth"], health["dueUnclaimed"], health["failedJobsLast24h"]) == (3, 2, 1)
        assert health["oldestDueAgeSeconds"] >= 600
        empty = (await api.graphql(HEALTH, key=other.secret))["data"]["health"]
        assert (empty["accountsNeedingAttention"], empty["queueDepth"], empty["oldestDueAgeSeconds"]) == ([], 0, None)


async def test_workers_and_their_heartbeats_need_org_admin(tmp_path):
    async with engine_app(tmp_path) as api:
        admin = await make_org_with_key(api.runtime, scopes=["org:admin", "org:read"])
        reader = await make_org_with_key(api.runtime, name="Reader", scopes=["org:read"])
        now = utcnow()
        stale = now - timedelta(seconds=MISSED_BEATS * heartbeat_seconds(api.runtime.settings.scheduler_poll_seconds) + 1)
        async with api.runtime.database.write() as session:
            session.add(WorkerHeartbeat(worker_id="host:1:aaa", started_at=now - timedelta(hours=1), beat_at=now))
            session.add(WorkerHeartbeat(worker_id="host:2:bbb", started_at=now - timedelta(hours=1), beat_at=stale))
        workers = (await api.graphql(WORKERS, key=admin.secret))["data"]["health"]["workers"]
        assert [(w["workerId"], w["alive"]) for w in workers] == [("host:1:aaa", True), ("host:2:bbb", False)]
        refused = await api.graphql(WORKERS, key=reader.secret)
        assert refused["data"]["health"]["workers"] is None and refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_readyz_fails_while_no_scheduler_beats(tmp_path):
    async with engine_app(tmp_path) as api:  # this process runs no scheduler, and no worker has started
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "ok", "scheduler": "no recent heartbeat"}

        await api.runtime.heartbeat.beat("worker-elsewhere")  # a `socialgate worker` started
        assert (await api.http.get("/readyz")).status_code == 200

        window = MISSED_BEATS * heartbeat_seconds(api.runtime.settings.scheduler_poll_seconds)
        async with api.runtime.database.write() as session:  # ...and stopped beating three intervals ago
            await session.execute(update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(seconds=window + 1)))
        assert (await api.http.get("/readyz")).status_code == 503


async def test_a_serve_running_its_own_scheduler_is_ready_from_the_start(api):
    assert (await api.http.get("/readyz")).json()["scheduler"] == "ok"


async def test_health_lists_the_webhook_endpoints_that_fail(api):
    """Endpoints failing now, and those the dispatcher switched off; not a healthy one, not one a
    person switched off, not another organization's."""
    from gateway.storage.models import WebhookEndpoint

    org = await make_org_with_key(api.runtime)
    other = await make_org_with_key(api.runtime, name="Other")
    now = utcnow()
    rows = {
        "healthy": dict(organization_id=org.organization_id),
        "failing": dict(organization_id=org.organization_id, failing_since=now - timedelta(hours=2)),
        "gone": dict(organization_id=org.organization_id, enabled=False, disabled_reason="gone"),
        "paused": dict(organization_id=org.organization_id, enabled=False, disabled_reason="manual"),
        "elsewhere": dict(organization_id=other.organization_id, failing_since=now),
    }
    ids = {name: new_id("whk") for name in rows}
    async with api.runtime.database.write() as session:
        for name, fields in rows.items():
            session.add(WebhookEndpoint(id=ids[name], url="https://hooks.example.com/in", secret=b"sealed", **fields))
    query = "{ health { webhookEndpointsFailing { endpointId failingSince enabled disabledReason } } }"
    body = await api.graphql(query, key=org.secret)
    listed = {e["endpointId"]: e for e in body["data"]["health"]["webhookEndpointsFailing"]}
    assert set(listed) == {ids["failing"], ids["gone"]}
    assert listed[ids["failing"]]["enabled"] is True and listed[ids["failing"]]["failingSince"] is not None
    assert listed[ids["gone"]] == {"endpointId": ids["gone"], "failingSince": None, "enabled": False, "disabledReason": "gone"}
