"""Jobs: every long-running operation, with progress, outcome and a numbered event log.

A publish job's status follows its targets: ``running`` while any is in flight or waiting,
then ``succeeded`` (all published), ``failed`` (none published), ``canceled`` (all canceled) or
``partial`` (mixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import find_owned
from gateway.content import derive_status
from gateway.core import BadInput, Page, PageRequest, new_id, paginate, utcnow
from gateway.engine.rows import lock_job_rows
from gateway.events import BusEvent, record_job_event, seed_job_event_seqs
from gateway.observability import observe_job_finished
from gateway.storage import Job, Target

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "partial", "canceled")
JOB_KINDS = ("publish", "bulk_schedule", "metrics_refresh", "ads_sync", "ads_write", "campaign.schedule", "posts.import")
FINISHED = ("succeeded", "failed", "partial", "canceled")
TERMINAL_TARGET_STATUSES = ("published", "failed", "canceled", "unconfirmed", "missed")


async def create_job(session: AsyncSession, organization_id: str, kind: str, subject_id: str | None, total: int) -> Job:
    """A new job; its events are numbered from 1 without asking the database for its last one
    (a job made in this transaction has none stored, and no other writer knows its id yet)."""
    job = Job(id=new_id("job"), organization_id=organization_id, kind=kind, subject_id=subject_id, progress_total=total)
    session.add(job)
    await session.flush()
    seed_job_event_seqs(session, {job.id: None})
    return job


def outcome_of(statuses: Sequence[str]) -> str:
    """The job status its targets add up to."""
    if any(s not in TERMINAL_TARGET_STATUSES for s in statuses):
        return "running"
    present = set(statuses)
    if present <= {"published"}:
        return "succeeded"
    if present <= {"canceled"}:
        return "canceled"
    if "published" in present:
        return "partial"
    return "failed"


async def refresh_job(session: AsyncSession, job: Any, events: list[BusEvent], targets: Sequence[Any] | None = None) -> None:
    """Recompute progress and status from the job's targets; record an event when it finishes.

    ``targets``, when the caller already holds every target of the job, saves reading them again.
    """
    if targets is None:
        statuses = list((await session.execute(select(Target.status).where(Target.job_id == job.id))).scalars())
    else:
        statuses = [t.status for t in targets if t.job_id == job.id]
    job.progress_total = len(statuses)
    job.progress_done = sum(1 for s in statuses if s in TERMINAL_TARGET_STATUSES)
    status = outcome_of(statuses) if statuses else job.status
    if status != job.status:
        await _enter(session, job, status, statuses, events)


async def mark_running(session: AsyncSession, job: Any, events: list[BusEvent]) -> None:
    """A job one of whose waiting targets was just claimed: it is running, and nothing else moved.

    A claim takes a target from waiting to publishing, neither of them done, so the job's
    progress stays as it was and none of its targets need reading.
    """
    if job.status != "running":
        await _enter(session, job, "running", [], events)


async def _enter(session: AsyncSession, job: Any, status: str, statuses: Sequence[str], events: list[BusEvent]) -> None:
    """Move the job to ``status`` (its targets' ``statuses`` sum up its result) and record the event."""
    job.status = status
    now = utcnow()
    if status == "running" and job.started_at is None:
        job.started_at = now
    if status in FINISHED:
        job.finished_at = now
        if job.started_at is not None:
            observe_job_finished(job.kind, status, (now - job.started_at).total_seconds())
        counts: dict[str, int] = {}
        for s in statuses:
            counts[s] = counts.get(s, 0) + 1
        job.result = {"targets": counts}
        if status in ("failed", "partial"):
            job.error_code = "TARGETS_FAILED"
            job.error_message = f"{len(statuses) - counts.get('published', 0)} of {len(statuses)} targets did not publish."
    events.append(await record_job_event(session, job.organization_id, job.id, f"job.{status}", job_payload(job)))


def job_payload(job: Job) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "status": job.status,
        "progress": {"done": job.progress_done, "total": job.progress_total},
    }


async def lock_jobs(session: AsyncSession, job_ids: Sequence[str]) -> list[Job]:
    """Jobs a command changes through the ORM, locked as the engine locks jobs (``rows.lock_job_rows``:
    in id order, their event numbering readied), in id order."""
    await lock_job_rows(session, job_ids)
    jobs = [await session.get(Job, job_id, populate_existing=True) for job_id in sorted(set(job_ids))]
    return [job for job in jobs if job is not None]


async def find_job(session: AsyncSession, organization_id: str, job_id: str) -> Job | None:
    return await find_owned(session, Job, "job", organization_id, job_id)


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    kind: str | None = None


async def list_jobs(session: AsyncSession, organization_id: str, filters: JobFilter, page: PageRequest) -> Page[Job]:
    query = select(Job).where(Job.organization_id == organization_id)
    if filters.status is not None:
        if filters.status not in JOB_STATUSES:
            raise BadInput(f"Unknown job status {filters.status[:40]!r}.", "status")
        query = query.where(Job.status == filters.status)
    if filters.kind is not None:
        query = query.where(Job.kind == filters.kind)
    return await paginate(session, query, Job, page)


async def post_status_change(
    session: AsyncSession, organization_id: str, post_id: str, job_id: str, before: str, targets: Sequence[Any]
) -> BusEvent | None:
    """The same event from ids and the post's targets (ORM objects or the engine's rows)."""
    after = derive_status([t.status for t in targets])
    if after == before:
        return None
    payload = {"postId": post_id, "status": after, "previousStatus": before}
    return await record_job_event(session, organization_id, job_id, "post.status_changed", payload)
