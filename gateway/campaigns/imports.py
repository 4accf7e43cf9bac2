"""Running a CSV import: from the command line (``socialgate import posts``) or as a ``posts.import``
job (``importPosts``), whose progress events a ``jobEvents`` subscriber follows batch by batch.

Each batch commits on its own (``gateway.campaigns.bulk``): a long import never holds the
database's writer for the whole file, and the report says exactly which rows made posts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.campaigns.bulk import create_items
from gateway.campaigns.csv_import import Directory, RowError, decode, errors_of, fetch_media, read_rows
from gateway.core import utcnow
from gateway.engine.queue import create_job, job_payload, lock_jobs
from gateway.events import record_job_event
from gateway.runtime import Runtime
from gateway.storage import Job

JOB_KIND = "posts.import"
MAX_REPORTED_ERRORS = 1_000  # in a job's result; the CLI prints them all


@dataclass
class ImportReport:
    rows: int
    created: int
    scheduled: int
    dry_run: bool
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed_rows(self) -> int:
        return len({e.row for e in self.errors})

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "created": self.created, "scheduled": self.scheduled, "failedRows": self.failed_rows, "dryRun": self.dry_run,
            "errors": [e.__dict__ for e in self.errors[:MAX_REPORTED_ERRORS]], "errorsTruncated": len(self.errors) > MAX_REPORTED_ERRORS,
        }


async def import_posts(
    runtime: Runtime,
    organization_id: str,
    key_id: str | None,
    raw: bytes,
    *,
    dry_run: bool,
    on_rows: Callable[[int], Awaitable[None]] | None = None,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> ImportReport:
    """Read, check and (unless ``dry_run``) create the file's posts; a row's problems never stop the others.

    ``on_rows`` hears how many rows the file has once it is read; ``on_progress`` how many are done.
    """
    text = decode(raw)
    async with runtime.database.read() as session:
        directory = await Directory.load(session, organization_id)
    rows = read_rows(text, directory, runtime.plugins)
    if on_rows is not None:
        await on_rows(len(rows))
    if not dry_run:
        rows = await fetch_media(runtime, organization_id, rows)
    results = await create_items(runtime, organization_id, key_id, [r.item for r in rows], dry_run=dry_run, on_progress=on_progress)
    return ImportReport(
        rows=len(rows),
        created=sum(1 for r in results if r.post_id),
        scheduled=sum(1 for r in results if r.job_id),
        dry_run=dry_run,
        errors=errors_of(rows, results),
    )


async def _job_event(runtime: Runtime, job_id: str, change: Callable[[Job], str]) -> None:
    """Change the job in its own transaction and record (then publish) the event ``change`` names."""
    async with runtime.database.write() as session:
        job = (await lock_jobs(session, [job_id]))[0]
        kind = change(job)
        payload = job_payload(job) | ({"result": job.result} if job.result is not None else {})
        event = await record_job_event(session, job.organization_id, job.id, kind, payload)  # event kinds: job.*
    await runtime.publish(event)


async def run_import_job(runtime: Runtime, organization_id: str, key_id: str | None, raw: bytes, *, dry_run: bool) -> Job:
    """``importPosts``: the import as a job with progress events; returns the finished job.

    A file that cannot be read at all (not UTF-8, a required column missing) fails the job with
    that error; row problems leave it ``partial`` (or ``failed`` when no row made a post).
    """
    async with runtime.database.write() as session:
        job = await create_job(session, organization_id, JOB_KIND, None, 0)
        job_id = job.id

    def running(total: int) -> Callable[[Job], str]:
        def change(job: Job) -> str:
            job.status, job.started_at, job.progress_total = "running", utcnow(), total
            return "job.running"
        return change

    def progressed(done: int) -> Callable[[Job], str]:
        def change(job: Job) -> str:
            job.progress_done = done
            return "job.progress"
        return change

    async def on_rows(total: int) -> None:
        await _job_event(runtime, job_id, running(total))

    async def on_progress(done: int) -> None:
        await _job_event(runtime, job_id, progressed(done))

    try:
        report = await import_posts(runtime, organization_id, key_id, raw, dry_run=dry_run, on_rows=on_rows, on_progress=on_progress)
    except Exception as error:
        code, message = getattr(error, "code", "IMPORT_FAILED"), getattr(error, "message", "The import stopped; see the server's log.")

        def failed(job: Job) -> str:
            job.status, job.finished_at, job.error_code, job.error_message = "failed", utcnow(), code, message
            return "job.failed"

        await _job_event(runtime, job_id, failed)
        if not hasattr(error, "code"):
            raise
    else:

        def finished(job: Job) -> str:
            created = report.rows - report.failed_rows if dry_run else report.created
            job.status = "succeeded" if not report.errors else ("partial" if created else "failed")
            job.finished_at, job.result = utcnow(), report.as_json()
            if report.errors:
                job.error_code, job.error_message = "ROWS_FAILED", f"{report.failed_rows} of {report.rows} rows were not imported."
            return f"job.{job.status}"

        await _job_event(runtime, job_id, finished)
    async with runtime.database.read() as session:
        stored = await session.get(Job, job_id)
    assert stored is not None
    return stored
