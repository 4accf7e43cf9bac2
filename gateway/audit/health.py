"""Health: what needs a person's attention in an organization, and whether anything publishes.

Why: a post that does not go out is usually not an error anywhere. An account whose token
expired, a queue no worker drains, a worker that stopped beating: each leaves due posts waiting
in silence. ``health`` gathers those facts in one read; ``/readyz`` fails while no scheduler has
beaten its heartbeat recently, so a deployment with no live publisher is not called ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import utcnow
from gateway.storage import DUE_STATUSES, MISSED_BEATS, Account, Database, Job, Target, WebhookEndpoint, WorkerHeartbeat, heartbeat_seconds

ATTENTION_STATUSES = ("token_expired", "disconnected", "rate_limited")
FAILED_JOBS_WINDOW = timedelta(hours=24)
MAX_ACCOUNTS = 100  # the accounts listed; an organization with more broken ones has a bigger problem
MAX_ENDPOINTS = 100
# Switched off by the dispatcher, not by a person: the receiver answered 410, or failed for days.
DISPATCHER_DISABLED = ("gone", "failing")


@dataclass(frozen=True)
class Queue:
    depth: int  # targets waiting for their time or their retry
    due_unclaimed: int  # of those, the ones whose time has come and no worker took yet
    oldest_due_at: datetime | None


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    started_at: datetime
    beat_at: datetime
    alive: bool


def recent_after(poll_seconds: float, now: datetime) -> datetime:
    """A heartbeat at or after this time is recent: within MISSED_BEATS of a scheduler's heartbeat
    intervals (one per poll, at least every few seconds)."""
    return now - timedelta(seconds=MISSED_BEATS * heartbeat_seconds(poll_seconds))


async def accounts_needing_attention(session: AsyncSession, organization_id: str, now: datetime) -> list[Account]:
    query = (
        select(Account)
        .where(Account.organization_id == organization_id,
               or_(Account.status.in_(ATTENTION_STATUSES), Account.rate_limited_until > now))
        .order_by(Account.created_at, Account.id)
        .limit(MAX_ACCOUNTS)
    )
    return list((await session.execute(query)).scalars())


async def webhook_endpoints_failing(session: AsyncSession, organization_id: str) -> list[WebhookEndpoint]:
    """Endpoints whose deliveries fail now (``failing_since`` set: no 2xx since), and those the
    dispatcher switched off (410, or failing for days), oldest first."""
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.deleted_at.is_(None),
               or_(WebhookEndpoint.failing_since.is_not(None), WebhookEndpoint.disabled_reason.in_(DISPATCHER_DISABLED)))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(MAX_ENDPOINTS)
    )
    return list((await session.execute(query)).scalars())


async def queue_of(session: AsyncSession, organization_id: str, now: datetime) -> Queue:
    waiting = (Target.organization_id == organization_id, Target.status.in_(DUE_STATUSES))
    depth = (await session.execute(select(func.count()).where(*waiting))).scalar_one()
    due, oldest = (await session.execute(select(func.count(), func.min(Target.next_attempt_at)).where(*waiting, Target.next_attempt_at <= now))).one()
    return Queue(depth=depth, due_unclaimed=due, oldest_due_at=oldest)


async def failed_jobs(session: AsyncSession, organization_id: str, now: datetime) -> int:
    query = select(func.count()).where(
        Job.organization_id == organization_id, Job.status == "failed", Job.finished_at >= now - FAILED_JOBS_WINDOW
    )
    return (await session.execute(query)).scalar_one()


async def workers(session: AsyncSession, poll_seconds: float, now: datetime) -> list[WorkerBeat]:
    """Every scheduler that beat within the last day (older rows are forgotten), most recent first."""
    recent = recent_after(poll_seconds, now)
    rows = (await session.execute(select(WorkerHeartbeat).order_by(WorkerHeartbeat.beat_at.desc()))).scalars()
    return [WorkerBeat(row.worker_id, row.started_at, row.beat_at, row.beat_at >= recent) for row in rows]


async def scheduler_alive(database: Database, poll_seconds: float, now: datetime | None = None) -> bool:
    """Whether any scheduler beat its heartbeat recently (``/readyz``)."""
    async with database.read() as session:
        last = (await session.execute(select(func.max(WorkerHeartbeat.beat_at)))).scalar()
    return last is not None and last >= recent_after(poll_seconds, now or utcnow())
