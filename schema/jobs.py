"""Jobs and publishing: schedulePost, publishPost, cancelPost, retryPost, cancelJob; jobs, job."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from gateway.auth import find_owned_many
from gateway.engine import queue
from gateway.events import BusEvent, stored_job_events
from gateway.observability import trace_job_command
from gateway.storage import Job as JobRow
from schema.context import Info
from schema.payloads import UserErrorType, collect_user_errors
from schema.posts import PostPayload, PostType
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one

JobStatus = strawberry.enum(Enum("JobStatus", {s.upper(): s for s in queue.JOB_STATUSES}))  # type: ignore[misc]


@strawberry.type
class JobProgress:
    done: int
    total: int


@strawberry.type
class JobError:
    code: str
    message: str


@strawberry.type(name="JobEvent", description="One event of a job; `seq` numbers them from 1 per job.")
class JobEventType:
    job_id: strawberry.ID
    seq: int
    kind: str = strawberry.field(description="e.g. job.queued, target.publishing, target.published, post.status_changed, job.succeeded.")
    payload: JSON
    occurred_at: datetime

    @classmethod
    def from_event(cls, event: BusEvent) -> JobEventType:
        return cls(
            job_id=strawberry.ID(event.job_id or ""),
            seq=event.seq or 0,
            kind=event.kind,
            payload=dict(event.payload),
            occurred_at=event.occurred_at,
        )


@strawberry.type(name="Job", description="A long-running operation: publishing a post, a bulk schedule, a sync.")
class JobType(Node):
    id: strawberry.ID
    kind: str
    status: JobStatus  # type: ignore[valid-type]
    progress: JobProgress
    result: JSON | None
    error: JobError | None
    subject_id: strawberry.ID | None = strawberry.field(description="What the job works on: a post for a publish job.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: JobRow) -> JobType:
        return cls(
            id=strawberry.ID(row.id),
            kind=row.kind,
            status=JobStatus(row.status),
            progress=JobProgress(done=row.progress_done, total=row.progress_total),
            result=row.result,
            error=JobError(code=row.error_code, message=row.error_message or "") if row.error_code else None,
            subject_id=strawberry.ID(row.subject_id) if row.subject_id else None,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    @strawberry.field(description="The post a publish job publishes.")
    async def post(self, info: Info) -> PostType | None:
        from schema.posts import load_post

        return await load_post(info, str(self.subject_id)) if self.subject_id else None

    @strawberry.field(description="The job's events after `afterSeq`, in order.")
    async def events(self, info: Info, after_seq: int = 0) -> list[JobEventType]:
        async with info.context.read() as session:
            return [JobEventType.from_event(e) for e in await stored_job_events(session, str(self.id), after_seq)]


async def load_job(info: Info, id: str) -> JobType | None:
    principal = info.context.require("jobs:read")
    return await read_one(info, lambda session: queue.find_job(session, principal.organization_id, id), JobType.from_row)


@nodes_resolver("job")
async def load_jobs(info: Info, ids: list[str]) -> dict[str, JobType]:
    organization_id = info.context.require("jobs:read").organization_id
    return await read_many(info, lambda session: find_owned_many(session, JobRow, "job", organization_id, ids), JobType.from_row)


@strawberry.input
class SchedulePostInput:
    post_id: strawberry.ID
    publish_at: datetime = strawberry.field(description="ISO 8601; with an offset, or local time plus `timezone`.")
    timezone: str | None = strawberry.field(default=None, description="IANA zone, e.g. Europe/Paris.")


@strawberry.input
class PostRefInput:
    post_id: strawberry.ID


@strawberry.input
class JobIdInput:
    id: strawberry.ID


@strawberry.input
class JobFilter:
    status: JobStatus | None = None  # type: ignore[valid-type]
    kind: str | None = None


@strawberry.type
class JobPayload:
    job: JobType | None
    user_errors: list[UserErrorType]


@strawberry.type
class CancelPostPayload:
    post: PostType | None
    user_errors: list[UserErrorType]


@strawberry.type
class JobQuery:
    @strawberry.field(description="Jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        filter: JobFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[JobType] | None:
        principal = info.context.require("jobs:read")
        filters = queue.JobFilter(status=filter.status.value if filter and filter.status else None, kind=filter.kind if filter else None)
        async with info.context.read() as session:
            page = await queue.list_jobs(session, principal.organization_id, filters, page_request(first, after, last, before))
        return Connection.from_page(page, JobType.from_row)

    @strawberry.field(description="One job with its progress, result, error and events.")
    async def job(self, info: Info, id: strawberry.ID) -> JobType | None:
        return await load_job(info, str(id))


async def _job_payload(work: Awaitable[JobRow]) -> JobPayload:
    started = time.time_ns()
    row, errors = await collect_user_errors(work)
    if row is not None:
        trace_job_command(row.id, row.kind, started)
    return JobPayload(job=JobType.from_row(row) if row else None, user_errors=errors)


@strawberry.type
class PublishingMutation:
    @strawberry.mutation(description="Publish a post at a time. Rescheduling a post not yet started moves it.")
    async def schedule_post(self, info: Info, input: SchedulePostInput) -> JobPayload:
        principal = info.context.require("posts:publish")

        async def work() -> JobRow:
            when = queue.resolve_publish_at(input.publish_at, input.timezone)
            return await queue.schedule(info.context.runtime, principal.organization_id, str(input.post_id), when)

        return await _job_payload(work())

    @strawberry.mutation(description="Publish a post now. Repeating it returns the same job, never a second publish.")
    async def publish_post(self, info: Info, input: PostRefInput) -> JobPayload:
        principal = info.context.require("posts:publish")
        return await _job_payload(queue.schedule(info.context.runtime, principal.organization_id, str(input.post_id), None))

    @strawberry.mutation(description="Publish a post's failed and unconfirmed targets again, as a new job.")
    async def retry_post(self, info: Info, input: PostRefInput) -> JobPayload:
        principal = info.context.require("posts:publish")
        return await _job_payload(queue.retry(info.context.runtime, principal.organization_id, str(input.post_id)))

    @strawberry.mutation(
        description="Ask the platform of each `unconfirmed` target whether the post is there: found, the target is "
        "`published`; not found, it stays `unconfirmed` (retryPost is then the human's call). Never publishes."
    )
    async def reconcile_post(self, info: Info, input: PostRefInput) -> PostPayload:
        principal = info.context.require("posts:publish")
        row, errors = await collect_user_errors(queue.reconcile(info.context.runtime, principal.organization_id, str(input.post_id)))
        return PostPayload(post=PostType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Cancel the targets of a post not yet started.")
    async def cancel_post(self, info: Info, input: PostRefInput) -> CancelPostPayload:
        principal = info.context.require("posts:publish")
        row, errors = await collect_user_errors(queue.cancel(info.context.runtime, principal.organization_id, str(input.post_id)))
        return CancelPostPayload(post=PostType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Stop a job: its targets not yet started are canceled.")
    async def cancel_job(self, info: Info, input: JobIdInput) -> JobPayload:
        principal = info.context.require("jobs:write")
        return await _job_payload(queue.stop_job(info.context.runtime, principal.organization_id, str(input.id)))
