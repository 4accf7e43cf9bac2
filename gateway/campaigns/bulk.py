"""Creating many posts at once: bulkCreatePosts, the CSV import and importPosts all come here.

Every item gets its own result (index, post, errors); a bad item does not block the others,
unless ``atomic``. Items are checked as ``validatePost`` checks a post (every provider's limits,
the policy hooks), a batch at a time: the facts of a whole batch are read in two queries and
the checks, slow hooks included, run with no transaction open. The write transaction then reads
the facts again and writes only items still as they were checked (an item whose account or
media changed meanwhile is checked again, or refused when policy hooks would have to run inside
the transaction). Rows are written with one multi-row INSERT per table, which is what lets an
import create thousands of posts a second.

An item with a ``publish_at`` is queued as ``schedulePost`` queues a draft: its targets are
``scheduled`` under a ``publish`` job of its own, with the same ``job.queued`` and
``post.status_changed`` events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.campaigns.membership import campaign_refusals
from gateway.content import Facts, PostInput, content_json, evaluate, read_facts_many
from gateway.core import Conflict, UserError, new_id
from gateway.events import BusEvent, record_job_event, seed_job_event_seqs
from gateway.runtime import Runtime
from gateway.storage import Job, Post, Target, run_idempotent

MAX_ITEMS = 500
# A batch is one write transaction: an import of thousands of rows never holds the single SQLite
# writer for the whole file, and a crash loses at most the batch being written.
BATCH_SIZE = 500


@dataclass(frozen=True)
class BulkItem:
    data: PostInput | None  # None when the item could not be read at all (see ``errors``)
    publish_at: datetime | None = None
    errors: tuple[UserError, ...] = ()


@dataclass
class ItemResult:
    index: int
    post_id: str | None = None
    job_id: str | None = None
    errors: list[UserError] = field(default_factory=list)
    checked_with: Any = None  # the facts the item was checked with (``_facts_key``)

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "postId": self.post_id, "jobId": self.job_id,
                "errors": [{"code": e.code, "message": e.message, "field": e.field} for e in self.errors]}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> ItemResult:
        errors = [UserError(e["code"], e["message"], e["field"]) for e in stored["errors"]]
        return cls(stored["index"], stored["postId"], stored["jobId"], errors)


class _Rollback(Exception):
    """Raised out of an atomic write with a failed item, so the transaction writes nothing."""


Found = tuple[Facts, UserError | None]  # an item's facts, and why its campaign refuses it


async def _read(session: AsyncSession, organization_id: str, items: Sequence[BulkItem]) -> list[Found | None]:
    """What checking each item needs, in three queries for the whole batch (None: an unreadable item)."""
    readable = [item.data for item in items if item.data is not None]
    facts = iter(await read_facts_many(session, organization_id, readable))
    refusals = await campaign_refusals(session, organization_id, [d.campaign_id for d in readable if d.campaign_id])
    return [
        (next(facts), refusals[item.data.campaign_id] if item.data.campaign_id else None) if item.data is not None else None
        for item in items
    ]


def _facts_key(facts: Facts) -> Any:
    """What a check read besides the item itself (which does not change): its media and accounts.

    Compared as values rather than through ``Facts.version``: hashing every item's input twice
    per import row cost more than the rest of the comparison.
    """
    return facts.media_ids, facts.media, tuple(sorted((a.id, a.provider, a.status) for a in facts.accounts.values()))


async def _problems(runtime: Runtime, found: Found) -> list[UserError]:
    facts, refusal = found
    return ([refusal] if refusal else []) + list((await evaluate(runtime.plugins, facts)).problems)


async def check_items(runtime: Runtime, organization_id: str, items: Sequence[BulkItem], first_index: int = 0) -> list[ItemResult]:
    """Every item checked (reads only; the policy hooks run after the read session closed)."""
    async with runtime.database.read() as session:
        found = await _read(session, organization_id, items)
    results = []
    for index, (item, entry) in enumerate(zip(items, found, strict=True), start=first_index):
        result = ItemResult(index, errors=list(item.errors))
        if entry is not None:
            result.errors += await _problems(runtime, entry)
            result.checked_with = _facts_key(entry[0])
        results.append(result)
    return results


async def _confirm(
    session: AsyncSession, runtime: Runtime, organization_id: str, items: Sequence[BulkItem], results: Sequence[ItemResult]
) -> dict[str, str]:
    """Inside the write: an item whose facts changed since its check is checked again (or refused,
    rather than run policy hooks in the transaction). Returns each account's provider."""
    pending = [(item, result) for item, result in zip(items, results, strict=True) if item.data is not None and not result.errors]
    found = await _read(session, organization_id, [item for item, _ in pending])
    providers: dict[str, str] = {}
    for (_, result), entry in zip(pending, found, strict=True):
        assert entry is not None
        facts, refusal = entry
        providers.update((a.id, a.provider) for a in facts.accounts.values())
        if _facts_key(facts) == result.checked_with and refusal is None:
            continue
        if runtime.plugins.has_policy_hooks() and _facts_key(facts) != result.checked_with:
            result.errors.append(Conflict("The post's accounts, media or campaign changed while it was being created; send it again."))
        else:
            result.errors += await _problems(runtime, entry)
    return providers


async def _write(
    session: AsyncSession, runtime: Runtime, organization_id: str, key_id: str | None, items: Sequence[BulkItem],
    results: Sequence[ItemResult], events: list[BusEvent], *, atomic: bool,
) -> None:
    """Write every item still clear of errors: posts, jobs, then targets, one INSERT each."""
    events.clear()
    for result in results:  # a transaction run again starts afresh
        result.post_id = result.job_id = None
    providers = await _confirm(session, runtime, organization_id, items, results)
    if atomic and any(r.errors for r in results):
        raise _Rollback()
    posts, jobs, targets, queued = [], [], [], []
    for item, result in zip(items, results, strict=True):
        if item.data is None or result.errors:
            continue
        post_id = result.post_id = new_id("post")
        job_id = result.job_id = new_id("job") if item.publish_at is not None else None
        posts.append({"id": post_id, "organization_id": organization_id, "campaign_id": item.data.campaign_id, "text": item.data.text,
                      "content": content_json(item.data), "created_by_key_id": key_id})
        post_targets = [
            {"id": new_id("tgt"), "post_id": post_id, "account_id": t.account_id, "organization_id": organization_id,
             "provider": providers[t.account_id], "status": "scheduled" if job_id else "draft", "publish_at": item.publish_at,
             "next_attempt_at": item.publish_at, "job_id": job_id}
            for t in item.data.targets
        ]
        targets += post_targets
        if job_id is not None:
            jobs.append({"id": job_id, "organization_id": organization_id, "kind": "publish", "subject_id": post_id,
                         "progress_total": len(post_targets)})
            queued.append((job_id, post_id, item.publish_at, [t["id"] for t in post_targets]))
    for model, rows in ((Post, posts), (Job, jobs), (Target, targets)):
        if rows:
            await session.execute(insert(model.__table__), rows)
    seed_job_event_seqs(session, {job_id: None for job_id, *_ in queued})  # new jobs: no event stored yet
    for job_id, post_id, when, target_ids in queued:
        payload = {"jobId": job_id, "postId": post_id, "publishAt": when.isoformat(), "targetIds": target_ids}
        events.append(await record_job_event(session, organization_id, job_id, "job.queued", payload))
        changed = {"postId": post_id, "status": "scheduled", "previousStatus": "draft"}
        events.append(await record_job_event(session, organization_id, job_id, "post.status_changed", changed))


async def _announce(runtime: Runtime, events: Sequence[BusEvent]) -> None:
    for event in events:
        await runtime.publish(event, subject_id=event.payload.get("postId"))
    if events:
        runtime.wake_scheduler()


async def create_items(
    runtime: Runtime,
    organization_id: str,
    key_id: str | None,
    items: Sequence[BulkItem],
    *,
    dry_run: bool = False,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> list[ItemResult]:
    """An import: check, then (unless a dry run) write the items a batch of ``BATCH_SIZE`` at a time.

    A result per item, in order; a bad item never blocks the others.
    """
    results: list[ItemResult] = []
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start:start + BATCH_SIZE]
        checked = await check_items(runtime, organization_id, batch, start)
        if not dry_run and any(item.data is not None and not result.errors for item, result in zip(batch, checked, strict=True)):
            events: list[BusEvent] = []
            async with runtime.database.write() as session:
                await _write(session, runtime, organization_id, key_id, batch, checked, events, atomic=False)
            await _announce(runtime, events)
        results += checked
        if on_progress is not None:
            await on_progress(len(results))
    return results


async def bulk_create(
    runtime: Runtime,
    organization_id: str,
    key_id: str | None,
    items: Sequence[BulkItem],
    *,
    atomic: bool,
    dry_run: bool,
    idempotency_key: str | None,
    fingerprint: Any,
) -> list[ItemResult]:
    """bulkCreatePosts: at most ``MAX_ITEMS`` in one transaction; replay-safe under an idempotency key."""
    if len(items) > MAX_ITEMS:
        raise UserError("TOO_MANY_ITEMS", f"Send at most {MAX_ITEMS} items; import a CSV file for more.", ["items"])
    if not items:
        raise UserError("ITEMS_REQUIRED", "Send at least one item.", ["items"])
    results = await check_items(runtime, organization_id, items)
    if dry_run or (atomic and any(r.errors for r in results)):
        return results
    events: list[BusEvent] = []

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _write(session, runtime, organization_id, key_id, items, results, events, atomic=atomic)
        return {"items": [r.as_json() for r in results]}

    try:
        stored = await run_idempotent(runtime.database, organization_id, "bulkCreatePosts", idempotency_key, fingerprint, work)
    except _Rollback:
        for result in results:
            result.post_id = result.job_id = None
        return results
    await _announce(runtime, events)
    return [ItemResult.from_json(r) for r in stored["items"]]
