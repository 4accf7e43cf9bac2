"""Stored events: job events numbered per job, and organization events that belong to no job.

Every event is persisted first, in the transaction that made it happen, and put on the bus only
after that transaction commits; the bus is only the fast path, so a subscriber that missed
something replays it from these rows. Organization events (an account connected, its token
expired) are stored too: the process that noticed the change — a worker, the server that took an
OAuth callback — is seldom the one a dashboard is subscribed to, and every process's relay
(``gateway.events.relay``) carries stored rows to its own bus.

Job events are staged and inserted together as the transaction's last statements
(``gateway.storage.staging``, called by ``Database.write``): a publish records several events per
target, and one INSERT for all of them is what keeps the hot path's statement count down.

Every kind must be in the registry (``gateway.events.kinds``), and every event is owed to the
webhook endpoints that want it in the same transaction (``gateway.webhooks.outbox``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import utcnow
from gateway.events.bus import BusEvent
from gateway.events.kinds import check_kind
from gateway.storage import JobEvent, OrganizationEvent, stage_rows
from gateway.webhooks.outbox import stage_event

JOB_EVENTS = JobEvent.__table__
ORG_EVENTS = OrganizationEvent.__table__
NEXT_SEQ = "next_job_event_seq"  # session.info: job id -> the next sequence number this transaction hands out


async def record_job_event(
    session: AsyncSession, organization_id: str, job_id: str, kind: str, payload: dict[str, Any]
) -> BusEvent:
    """Stage a job event with the job's next sequence number, in the caller's transaction.

    Returns the event to publish once that transaction has committed. Two writers cannot take
    the same number: (job_id, seq) is unique, and writes to one job are serialized by the
    transaction that changes the job.
    """
    check_kind(kind)
    next_seq: dict[str, int] = session.sync_session.info.setdefault(NEXT_SEQ, {})
    if job_id not in next_seq:  # read once per transaction and counted on from there
        last = (await session.execute(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id))).scalar()
        next_seq[job_id] = (last or 0) + 1
    seq = next_seq[job_id]
    next_seq[job_id] = seq + 1
    occurred_at = utcnow()
    stage_rows(session, JOB_EVENTS, {
        "job_id": job_id, "organization_id": organization_id, "seq": seq, "kind": kind, "payload": payload, "created_at": occurred_at,
    })
    stage_event(session, organization_id, kind, payload, occurred_at)
    return BusEvent(organization_id, kind, payload, occurred_at, job_id=job_id, seq=seq)


def last_job_event_seq(job_id: Any) -> Any:
    """A scalar subquery: the last stored sequence number of ``job_id``'s events (NULL: none yet).

    Selected beside a job's row by whoever locks the job (``seed_job_event_seqs`` takes it), so
    the numbering of the events that transaction adds costs no query of its own.
    """
    return select(func.max(JOB_EVENTS.c.seq)).where(JOB_EVENTS.c.job_id == job_id).scalar_subquery()


def seed_job_event_seqs(session: AsyncSession, last_seqs: dict[str, int | None]) -> None:
    """Number this transaction's events of these jobs on from their last stored ones, read by the caller.

    Only right while the caller holds the jobs' locks (or SQLite's write turn): another writer
    could otherwise store events after the number read.
    """
    next_seq: dict[str, int] = session.sync_session.info.setdefault(NEXT_SEQ, {})
    for job_id, last in last_seqs.items():
        next_seq.setdefault(job_id, (last or 0) + 1)


async def stored_job_events(session: AsyncSession, job_id: str, after_seq: int = 0) -> list[BusEvent]:
    """A job's stored events after ``after_seq``, in order: what a subscriber replays before following live."""
    rows = (
        await session.execute(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq).order_by(JobEvent.seq))
    ).scalars()
    return [job_event_of(r) for r in rows]


def job_event_of(row: JobEvent) -> BusEvent:
    return BusEvent(row.organization_id, row.kind, dict(row.payload), row.created_at, job_id=row.job_id, seq=row.seq)


async def record_org_event(
    session: AsyncSession, organization_id: str, kind: str, payload: dict[str, Any], subject_id: str | None = None
) -> BusEvent:
    """Store an organization event that belongs to no job, in the caller's transaction.

    Returns the event to publish once that transaction has committed; the relay of every other
    process finds the row and carries it to its own subscribers.
    """
    row = OrganizationEvent(organization_id=organization_id, kind=check_kind(kind), subject_id=subject_id, payload=payload, created_at=utcnow())
    session.add(row)
    await session.flush()
    stage_event(session, organization_id, kind, payload, row.created_at)
    return org_event_of(row)


def org_event_of(row: OrganizationEvent) -> BusEvent:
    return BusEvent(row.organization_id, row.kind, dict(row.payload), row.created_at, event_id=row.id, subject_id=row.subject_id)
