"""Putting posts in the scheduler's hands, and taking them back: schedule, publish now, cancel,
retry, cancel a job.

Every operation runs in one write transaction that serializes with any other on the same post
(SQLite's BEGIN IMMEDIATE; ``FOR UPDATE`` on the post row on PostgreSQL), so a replayed or
concurrent ``publishPost`` finds the targets already queued and returns the same job instead of
making a second. The events it produces are returned, to be published after the commit.

Queueing validates the post; policy hooks run outside the transaction (``PostValidator``), which
then confirms that the post it locked is the one that was checked. Every operation that cancels
targets — cancelPost, cancelJob, deletePost — does it through ``withdraw``, so each leaves the
same events and finishes the jobs it empties.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import require_owned
from gateway.content import PENDING_STATUSES, PostValidator, derive_status, find_post, input_of, lock_post, lock_targets, targets_of
from gateway.core import Conflict, UserError, UserErrors, utcnow
from gateway.engine import deletes, processing
from gateway.engine.drafts import enqueue_draft, mark_queued

# JOB_STATUSES, JobFilter, find_job and list_jobs are re-exported: the job reads the API serves go
# through this door too, so nothing outside the engine reaches into it.
from gateway.engine.jobs import (  # noqa: F401
    FINISHED,
    JOB_STATUSES,
    JobFilter,
    create_job,
    find_job,
    job_payload,
    list_jobs,
    lock_jobs,
    post_status_change,
    refresh_job,
)
from gateway.engine.rows import lock_job_rows
from gateway.engine.scheduler import Scheduler
from gateway.events import BusEvent, record_job_event
from gateway.runtime import Runtime
from gateway.storage import Job, Post, Target, name_answered

# How far in the past a publishAt may lie (clock skew between caller and us) before it is refused.
PAST_TOLERANCE = timedelta(minutes=5)
MAX_SCHEDULE_AHEAD = timedelta(days=2 * 366)
RETRYABLE = ("failed", "unconfirmed")
# Targets a cancel stops: not started, or processing on the platform (polling stops; a delete
# of such a post therefore cancels it locally, and media the platform holds stays there).
CANCELABLE = ("draft", *PENDING_STATUSES, "processing")


@dataclass(frozen=True)
class Enqueued:
    job: Job
    events: list[BusEvent]
    created: bool  # False when the post was already queued and its job is returned


def resolve_publish_at(value: datetime, timezone: str | None, now: datetime | None = None) -> datetime:
    """An aware UTC time from an ISO time with an offset, or a local time plus an IANA zone."""
    now = now or utcnow()
    if timezone is not None:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long to be a file
            raise UserError("INVALID_TIMEZONE", f"{timezone[:60]!r} is not an IANA timezone such as Europe/Paris.", ["timezone"]) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
    if value.tzinfo is None:
        raise UserError("TIMEZONE_REQUIRED", "Give publishAt a UTC offset, or pass a timezone.", ["publishAt"])
    try:
        value = value.astimezone(ZoneInfo("UTC"))
    except OverflowError:  # a local time at the edge of year 1 or 9999 has no UTC equivalent
        value = datetime.max.replace(tzinfo=UTC) if value.year > now.year else datetime.min.replace(tzinfo=UTC)
    if value < now - PAST_TOLERANCE:
        raise UserError("PUBLISH_AT_IN_PAST", "publishAt is in the past; use publishPost to publish now.", ["publishAt"])
    if value > now + MAX_SCHEDULE_AHEAD:
        raise UserError("PUBLISH_AT_TOO_FAR", "publishAt is more than two years ahead.", ["publishAt"])
    return value


async def enqueue_post(
    session: AsyncSession, validator: PostValidator, organization_id: str, post_id: str, publish_at: datetime | None
) -> Enqueued:
    """Queue every target of a post for ``publish_at`` (None: now), or return the job that has it.

    A post whose targets are all still waiting is rescheduled in place by a new ``publish_at``;
    one that has started publishing cannot be rescheduled.
    """
    now = utcnow()
    when = publish_at or now
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    live = [t for t in targets if t.status not in ("draft", "canceled")]
    if live:
        job = await session.get(Job, live[0].job_id) if live[0].job_id else None
        if job is None:
            raise Conflict("The post is already being handled.", ["postId"])
        if any(t.status != "scheduled" for t in live):
            if publish_at is None:  # publishing or done already: a repeat gets the same job
                return Enqueued(job, [], created=False)
            raise Conflict("The post has started publishing; it can no longer be rescheduled.", ["postId"])
        if publish_at is None and all(t.next_attempt_at is not None and t.next_attempt_at <= when for t in live):
            return Enqueued(job, [], created=False)  # already due: a repeat gets the same job
        await lock_job_rows(session, [job.id])
        for target in live:  # nothing has started: move the time
            target.publish_at = target.next_attempt_at = when
        event = await record_job_event(
            session, organization_id, job.id, "job.rescheduled", {"jobId": job.id, "publishAt": when.isoformat()}
        )
        return Enqueued(job, [event], created=False)
    await validator.require(session, organization_id, input_of(post, targets))
    return await _new_job(session, post, targets, targets, when)


async def _new_job(
    session: AsyncSession, post: Post, targets: Sequence[Target], queued: Sequence[Target], when: datetime, *, retry: bool = False
) -> Enqueued:
    """A publish job for ``queued`` (some or all of the post's ``targets``), its job.queued event,
    and the post's status change."""
    before = derive_status([t.status for t in targets])
    job = await create_job(session, post.organization_id, "publish", post.id, len(queued))
    for target in queued:
        mark_queued(target, job.id, when)
    await session.flush()
    payload = {"jobId": job.id, "postId": post.id, "publishAt": when.isoformat(), "targetIds": [t.id for t in queued]}
    events = [await record_job_event(session, post.organization_id, job.id, "job.queued", payload | ({"retry": True} if retry else {}))]
    if (changed := await post_status_change(session, post.organization_id, post.id, job.id, before, targets)) is not None:
        events.append(changed)
    return Enqueued(job, events, created=True)




async def _cancel_targets(
    session: AsyncSession, targets: Sequence[Target], job_ids: set[str], events: list[BusEvent], status: str = "canceled"
) -> int:
    canceled = 0
    for target in targets:
        if target.status in CANCELABLE:
            target.status = status
            target.next_attempt_at = None
            processing.clear(target)  # a processing target stops being polled; what the platform holds stays there
            canceled += 1
            if target.job_id:
                job_ids.add(target.job_id)
                events.append(
                    await record_job_event(
                        session, target.organization_id, target.job_id, f"target.{status}",
                        {"targetId": target.id, "postId": target.post_id, "status": status},
                    )
                )
    await session.flush()
    return canceled


async def withdraw(session: AsyncSession, post: Post | None, targets: Sequence[Target], status: str = "canceled") -> list[BusEvent]:
    """Cancel the targets not yet started, and say so: the one cancellation path of every command.

    ``status`` is ``missed`` when an approval let the targets' time pass and policy says not to
    publish late (``gateway.approvals``): the same path, so their jobs finish the same way.

    ``targets`` are locked already (``lock_post``/``lock_targets``). Their jobs are locked next,
    as the engine orders them; each canceled target gets ``target.canceled``, each job its new
    progress and, once nothing of it is left to run, its final ``job.*`` event, so a ``jobEvents``
    subscriber always sees the job end. ``post.status_changed`` goes on the post's job.
    """
    # The post's status is its targets' (all of them, not only one job's), before and after.
    siblings = (await targets_of(session, [post.id]))[post.id] if post is not None else []
    before = derive_status([t.status for t in siblings])
    events: list[BusEvent] = []
    job_ids: set[str] = set()
    await lock_job_rows(session, [t.job_id for t in targets])
    await _cancel_targets(session, targets, job_ids, events, status)
    jobs = [job for job_id in sorted(job_ids) if (job := await session.get(Job, job_id)) is not None]
    for job in jobs:
        await refresh_job(session, job, events)
    if post is not None and jobs and (changed := await post_status_change(session, post.organization_id, post.id, jobs[0].id, before, siblings)) is not None:
        events.append(changed)
    return events


async def cancel_post(session: AsyncSession, organization_id: str, post_id: str) -> tuple[Post, list[BusEvent]]:
    """Cancel every target not yet started, or still processing on the platform; what is publishing or published stays."""
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    if not any(t.status in CANCELABLE for t in targets):
        raise UserError("NOTHING_TO_CANCEL", "No target of this post is waiting to be published.", ["postId"])
    return post, await withdraw(session, post, targets)


async def delete_post(
    session: AsyncSession, organization_id: str, post_id: str, plugins: Any = None
) -> tuple[tuple[Post, Job | None], list[BusEvent]]:
    """Remove a post from the API; targets still waiting are canceled as ``cancelPost`` cancels them.

    Without ``plugins``, published posts stay on their platforms. With them (``fromPlatforms``),
    the published targets are queued for deletion there under a ``delete`` job
    (``engine.deletes``), and the post leaves the API when that job has removed them.
    A target being published right now is a conflict: what the platform answers must land on a
    post that still exists.
    """
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    if any(t.status == "publishing" for t in targets):
        raise Conflict("The post is being published right now; try again in a moment.", ["id"])
    if plugins is not None and (problems := deletes.deletable_problems(plugins, targets)):
        raise UserErrors(problems)  # before anything is withdrawn: nothing changes
    events = await withdraw(session, post, targets)
    job = None
    if plugins is not None:
        job, planned = await deletes.plan(session, plugins, post, targets)
        events += planned
    if job is None:
        post.deleted_at = utcnow()
    await session.flush()
    return (post, job), events


async def retry_post(session: AsyncSession, validator: PostValidator, organization_id: str, post_id: str) -> Enqueued:
    """Queue the post's failed and unconfirmed targets again, as a new job.

    An ``unconfirmed`` target may have been published: retrying it is the human's decision,
    taken after checking the platform. The provider's idempotency (where it has one) still
    guards the retry.
    """
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    retryable = [t for t in targets if t.status in RETRYABLE]
    if not retryable:
        raise UserError("NOTHING_TO_RETRY", "Only failed or unconfirmed targets can be retried.", ["postId"])
    await validator.require(session, organization_id, input_of(post, targets))
    return await _new_job(session, post, targets, retryable, utcnow(), retry=True)


async def cancel_job(session: AsyncSession, organization_id: str, job_id: str) -> tuple[Job, list[BusEvent]]:
    job = await require_owned(session, Job, "job", organization_id, job_id, code="JOB_NOT_FOUND", noun="job")
    await lock_targets(session, Target.job_id == job.id)
    await lock_job_rows(session, [job.id])
    if job.status in FINISHED:
        raise UserError("JOB_FINISHED", f"The job already ended ({job.status}).", ["id"])
    targets = list((await session.execute(select(Target).where(Target.job_id == job.id))).scalars())
    post = await find_post(session, organization_id, job.subject_id) if job.subject_id else None
    events = await withdraw(session, post, targets)
    await refresh_job(session, job, events)  # a job with nothing left to cancel still ends now
    return job, events


# -- the operations as the API calls them: one transaction, then the events go out ----------------

T = TypeVar("T")


async def _commit_and_announce(
    runtime: Runtime,
    work: Callable[[AsyncSession], Awaitable[tuple[T, list[BusEvent]]]],
    validator: PostValidator | None = None,
) -> T:
    """Run ``work`` in one write transaction (through ``validator``, which checks posts outside
    it), then publish its events."""

    async def transaction() -> tuple[T, list[BusEvent]]:
        async with runtime.database.write() as session:
            return await work(session)

    result, events = await (validator.run(transaction) if validator is not None else transaction())
    for event in events:
        await runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))
    runtime.wake_scheduler()
    return result


async def schedule(runtime: Runtime, organization_id: str, post_id: str, publish_at: datetime | None) -> Job:
    """Queue a post for ``publish_at``, or now when it is None; returns its (possibly existing) job."""
    validator = PostValidator(runtime.plugins)

    async def work(session: AsyncSession) -> tuple[Job, list[BusEvent]]:
        fresh = await enqueue_draft(session, validator, organization_id, post_id, publish_at or utcnow())
        queued = Enqueued(*fresh, created=True) if fresh is not None else await enqueue_post(session, validator, organization_id, post_id, publish_at)
        name_answered(session, queued.job.id)  # the payload's job: its audit entry is final as it commits
        return queued.job, queued.events

    return await _commit_and_announce(runtime, work, validator)


async def retry(runtime: Runtime, organization_id: str, post_id: str) -> Job:
    validator = PostValidator(runtime.plugins)

    async def work(session: AsyncSession) -> tuple[Job, list[BusEvent]]:
        queued = await retry_post(session, validator, organization_id, post_id)
        return queued.job, queued.events

    return await _commit_and_announce(runtime, work, validator)


async def cancel(runtime: Runtime, organization_id: str, post_id: str) -> Post:
    return await _commit_and_announce(runtime, lambda session: cancel_post(session, organization_id, post_id))


async def delete(runtime: Runtime, organization_id: str, post_id: str, *, from_platforms: bool = False) -> tuple[Post, Job | None]:
    """deletePost; with ``from_platforms``, also on the platforms, as a job whose calls start after the commit."""
    plugins = runtime.plugins if from_platforms else None
    post, job = await _commit_and_announce(runtime, lambda session: delete_post(session, organization_id, post_id, plugins))
    if job is not None:
        runtime.background.spawn(deletes.run(runtime, job.id), f"deleting the targets of {job.id}")
    return post, job


async def reconcile(runtime: Runtime, organization_id: str, post_id: str) -> Post:
    """reconcilePost: ask the platform of each ``unconfirmed`` target whether the post is there.

    The targets go through the very steps recovery takes after a worker died mid-call: each
    gets an attempt holding a fresh lease, then the provider's ``reconcile`` answers and the
    outcome is recorded (``published``, or ``unconfirmed`` still). Nothing is published again.
    If this process stops in between, the lease runs out and a scheduler's recovery finishes it.
    """
    scheduler = runtime.scheduler if runtime.scheduler is not None else Scheduler(runtime)
    async with runtime.database.write() as session:
        post = await lock_post(session, organization_id, post_id)
        unconfirmed = sorted(t.id for t in (await targets_of(session, [post.id]))[post.id] if t.status == "unconfirmed")
        if not unconfirmed:
            raise UserError("NOTHING_TO_RECONCILE", "No target of this post is unconfirmed.", ["postId"])
        tokens = await scheduler.recovery.take_over(session, unconfirmed, utcnow())
    await asyncio.gather(*(scheduler.recovery.reconcile_taken_over(target_id, attempt_id) for target_id, attempt_id in tokens.items()))
    return post


async def stop_job(runtime: Runtime, organization_id: str, job_id: str) -> Job:
    return await _commit_and_announce(runtime, lambda session: cancel_job(session, organization_id, job_id))
