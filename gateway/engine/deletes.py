"""Deleting a post's published targets on their platforms: ``deletePost(fromPlatforms: true)``.

Why a job: each platform call may be slow or fail on its own, so the command only plans (in one
transaction: waiting targets canceled, published ones ``deleting`` under a ``delete`` job) and
the calls run after the commit, each recorded as an Attempt like a publish call. A target the
platform deleted becomes ``deleted``; one it refused goes back to ``published`` with the error,
so deletePost can be asked again. The post leaves the API once none of its targets is live.

A platform whose provider has no ``delete`` makes the command answer one user error per such
target, and nothing changes: the caller decides whether to delete those posts by hand first.
A process that stops mid-run leaves targets ``deleting``; asking again resumes them, and
deleting a post that is already gone succeeds on every platform (the SDK's contract).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import open_credentials
from gateway.content import derive_status, lock_targets, targets_of
from gateway.core import UserError, new_id, utcnow
from gateway.engine.jobs import create_job, job_payload, lock_jobs, post_status_change
from gateway.events import BusEvent, record_job_event
from gateway.runtime import Runtime
from gateway.storage import Account, Attempt, Job, Post, Target, VaultError
from providers import ProviderError

log = logging.getLogger("socialgate.deletes")

ON_PLATFORM = ("published", "deleting")  # "deleting": a run that stopped half-way, resumed
MAX_ERROR_MESSAGE = 2_000
LEASE_MARGIN = 0.8  # a call ends well within the lease, as publish calls do
DELETE_WORKER = "api/delete"  # the attempt's worker: the API process that ran the command


def deletable_problems(plugins: Any, targets: Sequence[Target]) -> list[UserError]:
    """One user error per target on the platform whose provider cannot delete."""
    problems = []
    for target in targets:
        provider = plugins.get(target.provider)
        if target.status in ON_PLATFORM and (provider is None or not provider.implements("delete")):
            problems.append(UserError(
                "DELETE_NOT_SUPPORTED",
                f"Target {target.id}: {target.provider} cannot delete published posts; delete it there by hand, "
                "or delete the post with fromPlatforms: false.",
                ["fromPlatforms"],
            ))
    return problems


async def plan(session: AsyncSession, plugins: Any, post: Post, targets: Sequence[Target]) -> tuple[Job | None, list[BusEvent]]:
    """Queue the post's targets on their platforms for deletion under a new ``delete`` job.

    ``targets`` are the post's, locked; the waiting ones were withdrawn, and every provider
    checked to delete (``deletable_problems``), by the caller. Returns None when nothing is on
    a platform (the caller then simply deletes the post).
    """
    on_platform = [t for t in targets if t.status in ON_PLATFORM]
    if not on_platform:
        return None, []
    before = derive_status([t.status for t in targets])
    job = await create_job(session, post.organization_id, "delete", post.id, len(on_platform))
    for target in on_platform:
        target.status = "deleting"
        target.job_id = job.id
        target.error_code = target.error_message = None
    await session.flush()
    payload = {"jobId": job.id, "postId": post.id, "targetIds": [t.id for t in on_platform]}
    events = [await record_job_event(session, post.organization_id, job.id, "job.queued", payload)]
    if (changed := await post_status_change(session, post.organization_id, post.id, job.id, before, targets)) is not None:
        events.append(changed)
    return job, events


async def run(runtime: Runtime, job_id: str) -> None:
    """Call each ``deleting`` target's platform, one call per target, then finish the job."""
    async with runtime.database.read() as session:
        targets = list((await session.execute(select(Target).where(Target.job_id == job_id, Target.status == "deleting"))).scalars())
    await _enter(runtime, job_id, "running")
    await asyncio.gather(*(_delete_one(runtime, target) for target in targets))
    await _finish(runtime, job_id)


async def _delete_one(runtime: Runtime, target: Target) -> None:
    attempt_id = new_id("att")
    async with runtime.database.write() as session:
        number = (await session.execute(select(func.count()).where(Attempt.target_id == target.id))).scalar_one() + 1
        session.add(Attempt(id=attempt_id, target_id=target.id, number=number, worker_id=DELETE_WORKER, started_at=utcnow(), kind="delete"))
    error = await _call(runtime, target)
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        await lock_targets(session, Target.id == target.id)
        row = await session.get(Target, target.id, populate_existing=True)
        attempt = await session.get(Attempt, attempt_id)
        assert row is not None and attempt is not None
        attempt.finished_at = utcnow()
        if error is None:
            attempt.outcome, row.status = "deleted", "deleted"
        else:
            attempt.outcome, attempt.error_code, attempt.http_status = "delete_failed", error.code, error.http_status
            attempt.error_message = error.message[:MAX_ERROR_MESSAGE]
            row.status, row.error_code, row.error_message = "published", error.code, error.message[:MAX_ERROR_MESSAGE]
        [job] = await lock_jobs(session, [target.job_id or ""])
        job.progress_done += 1
        payload = {"targetId": row.id, "postId": row.post_id, "provider": row.provider, "status": row.status,
                   "attempt": number, "errorCode": row.error_code, "errorMessage": row.error_message}
        events.append(await record_job_event(
            session, row.organization_id, job.id, "target.deleted" if error is None else "target.delete_failed", payload
        ))
    await _publish(runtime, events)


async def _call(runtime: Runtime, target: Target) -> ProviderError | None:
    """The platform call; the error it ended with, or None when the post is gone."""
    provider = runtime.plugins.get(target.provider)
    async with runtime.database.read() as session:
        account = await session.get(Account, target.account_id)
    if provider is None:
        return ProviderError(f"The {target.provider!r} provider is not installed.", code="PROVIDER_UNAVAILABLE")
    if account is None or account.status == "disconnected" or account.credentials is None:
        return ProviderError("The account was disconnected; reconnect it to delete its posts.", code="ACCOUNT_DISCONNECTED")
    if not target.platform_post_id:
        return None  # the platform never told us an id: there is nothing of ours to delete there
    try:
        context = runtime.provider_context(provider.id, account.id, open_credentials(runtime.secret_key, account))
        async with asyncio.timeout(runtime.settings.lease_seconds * LEASE_MARGIN):
            await provider.delete(context, target.platform_post_id)
    except ProviderError as error:
        return error
    except VaultError:
        return ProviderError("The stored credentials cannot be opened with this secret key.", code="CREDENTIALS_UNREADABLE")
    except TimeoutError:
        return ProviderError("The platform did not answer in time; ask again to retry.", code="TIMEOUT")
    except Exception:  # a bug below us: the target stays on its platform and the job still ends
        log.exception("deleting %s on %s failed unexpectedly", target.id, target.provider)
        return ProviderError("Deleting failed unexpectedly; ask again to retry.", code="ENGINE_ERROR")
    return None


async def _enter(runtime: Runtime, job_id: str, status: str) -> None:
    async with runtime.database.write() as session:
        [job] = await lock_jobs(session, [job_id])
        job.status = status
        job.started_at = job.started_at or utcnow()
        events = [await record_job_event(session, job.organization_id, job.id, f"job.{status}", job_payload(job))]
    await _publish(runtime, events)


async def _finish(runtime: Runtime, job_id: str) -> None:
    """The job's end: succeeded, partial or failed by its targets; the post leaves the API once none is live."""
    async with runtime.database.write() as session:
        job = await session.get(Job, job_id)
        assert job is not None and job.subject_id is not None
        post = await session.get(Post, job.subject_id)
        await lock_targets(session, Target.post_id == job.subject_id)
        [job] = await lock_jobs(session, [job_id])
        siblings = (await targets_of(session, [job.subject_id]))[job.subject_id]
        mine = [t.status for t in siblings if t.job_id == job_id]
        deleted = mine.count("deleted")
        job.status = "succeeded" if deleted == len(mine) else "failed" if deleted == 0 else "partial"
        job.finished_at = utcnow()
        job.result = {"targets": {s: mine.count(s) for s in sorted(set(mine))}}
        if job.status != "succeeded":
            job.error_code = "TARGETS_FAILED"
            job.error_message = f"{len(mine) - deleted} of {len(mine)} targets could not be deleted on their platform."
        events = [await record_job_event(session, job.organization_id, job.id, f"job.{job.status}", job_payload(job))]
        if post is not None and post.deleted_at is None and not any(t.status in (*ON_PLATFORM, "publishing") for t in siblings):
            post.deleted_at = utcnow()
    await _publish(runtime, events)


async def _publish(runtime: Runtime, events: list[BusEvent]) -> None:
    for event in events:
        await runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))
