"""``refreshMetrics``: read chosen targets now, as a job with progress, whatever their cadence says.

The command only records the job (``metrics_refresh``, queued, its target ids in ``result``);
the collector of whichever process runs one claims it, reads the targets batched like any
round, advances the job's progress after each batch and finishes it: ``succeeded`` when every
target was read, ``partial`` when some were, ``failed`` when none could be (a paused account,
say). Its events are the usual job events, so ``jobEvents(jobId)`` follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from gateway.auth import require_owned
from gateway.core import UserError, clock, new_id
from gateway.events import BusEvent, record_job_event
from gateway.metrics.records import track
from gateway.runtime import Runtime
from gateway.storage import Account, Database, Job, Post, Target

KIND = "metrics_refresh"
MAX_TARGETS = 1000  # one job reads at most this many targets
JOBS_PER_ROUND = 5


async def request_refresh(
    runtime: Runtime, organization_id: str, *, target_ids: Sequence[str] | None = None, post_id: str | None = None,
    account_id: str | None = None, campaign_id: str | None = None,
) -> Job:
    """Queue a refresh of exactly one selection: targets, a post's, an account's or a campaign's."""
    chosen = [name for name, value in (("targetIds", target_ids), ("postId", post_id), ("accountId", account_id),
                                       ("campaignId", campaign_id)) if value]
    if len(chosen) != 1:
        raise UserError("ONE_SELECTION_REQUIRED", "Give exactly one of targetIds, postId, accountId or campaignId.", ["input"])
    now = clock.utcnow()
    async with runtime.database.write() as session:
        query = select(Target.id).where(Target.organization_id == organization_id, Target.status == "published",
                                        Target.platform_post_id.is_not(None))
        if target_ids:
            ids = list(dict.fromkeys(str(t) for t in target_ids))
            found = set((await session.execute(query.where(Target.id.in_(ids)))).scalars())
            missing = [t for t in ids if t not in found]
            if missing:
                raise UserError("TARGET_NOT_PUBLISHED", f"Not a published target of this organization: {', '.join(missing[:5])}.", ["input", "targetIds"])
        elif post_id:
            await require_owned(session, Post, "post", organization_id, post_id, code="POST_NOT_FOUND", noun="post")
            ids = list((await session.execute(query.where(Target.post_id == post_id))).scalars())
        elif account_id:
            await require_owned(session, Account, "acct", organization_id, account_id, code="ACCOUNT_NOT_FOUND", noun="account")
            ids = list((await session.execute(query.where(Target.account_id == account_id).limit(MAX_TARGETS + 1))).scalars())
        else:
            posts = select(Post.id).where(Post.organization_id == organization_id, Post.campaign_id == campaign_id)
            ids = list((await session.execute(query.where(Target.post_id.in_(posts)).limit(MAX_TARGETS + 1))).scalars())
        if not ids:
            raise UserError("NOTHING_TO_REFRESH", "No published target to read figures of.", ["input", chosen[0]])
        if len(ids) > MAX_TARGETS:
            raise UserError("TOO_MANY_TARGETS", f"One refresh reads at most {MAX_TARGETS} targets; narrow the selection.", ["input", chosen[0]])
        await track(session, now, target_ids=ids)
        subject = post_id or account_id or campaign_id
        job = Job(id=new_id("job"), organization_id=organization_id, kind=KIND, subject_id=subject, progress_total=len(ids),
                  result={"targetIds": ids})
        session.add(job)
        await session.flush()
        event = await record_job_event(session, organization_id, job.id, "job.queued", _payload(job))
    await runtime.publish(event)
    collector = getattr(runtime, "metrics", None)
    if collector is not None:
        collector.wake()
    return job


def _payload(job: Job) -> dict[str, Any]:
    return {"jobId": job.id, "kind": job.kind, "status": job.status, "progress": {"done": job.progress_done, "total": job.progress_total}}


async def start_refresh_jobs(database: Database, now: datetime) -> tuple[list[tuple[str, list[str]]], list[BusEvent]]:
    """Claim queued refresh jobs (a conditional UPDATE each, so two collectors never share one)."""
    claimed: list[tuple[str, list[str]]] = []
    events: list[BusEvent] = []
    async with database.write() as session:
        queued = (await session.execute(
            select(Job).where(Job.kind == KIND, Job.status == "queued").order_by(Job.created_at).limit(JOBS_PER_ROUND)
        )).scalars().all()
        for job in queued:
            taken = await session.execute(
                update(Job).where(Job.id == job.id, Job.status == "queued").values(status="running", started_at=now, updated_at=now)
            )
            if taken.rowcount != 1:
                continue
            await session.refresh(job)
            claimed.append((job.id, list((job.result or {}).get("targetIds", []))))
            events.append(await record_job_event(session, job.organization_id, job.id, "job.running", _payload(job)))
    return claimed, events


async def advance_refresh_job(database: Database, job_id: str, done: int) -> list[BusEvent]:
    """``done`` more targets dealt with (read or not): progress, and a ``job.progress`` event."""
    async with database.write() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return []
        job.progress_done = min(job.progress_total, job.progress_done + done)
        return [await record_job_event(session, job.organization_id, job.id, "job.progress", _payload(job))]


async def finish_refresh_job(database: Database, job_id: str, outcome: dict[str, list[str]]) -> list[BusEvent]:
    """End the job: succeeded (all read), partial (some), failed (none); ``result`` lists which."""
    async with database.write() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return []
        read, not_read = outcome["read"], outcome["notRead"]
        job.status = "succeeded" if not not_read else "partial" if read else "failed"
        job.progress_done = job.progress_total
        job.finished_at = clock.utcnow()
        job.result = {"targetIds": (job.result or {}).get("targetIds", []), "read": read, "notRead": not_read}
        if not_read:
            job.error_code = "TARGETS_NOT_READ"
            job.error_message = f"{len(not_read)} of {job.progress_total} targets could not be read now (see result.notRead)."
        return [await record_job_event(session, job.organization_id, job.id, f"job.{job.status}", _payload(job))]
