"""Creating many posts at once: bulkCreatePosts, the CSV import and importPosts all come here.

Every item gets its own result (index, post, errors). By default a bad item does not block the
others: each item is written under a savepoint, and one that fails rolls back alone. With
``atomic`` any failure rolls back everything. A dry run checks every item as ``validatePost``
does and writes nothing. Items are checked before the write transaction (``check_ahead``), so
slow policy hooks never run inside it; the transaction then confirms each check still holds.
An item with a ``publish_at`` is queued in the same savepoint, as schedulePost would queue it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.campaigns.membership import require_open_campaign
from gateway.content.posts import PostInput, PostValidator, create_post
from gateway.core.errors import UserError, UserErrors
from gateway.engine.queue import enqueue_post
from gateway.events import BusEvent
from gateway.runtime import Runtime
from gateway.storage.idempotency import run_idempotent

MAX_ITEMS = 500
# A batch is one write transaction: an import of thousands of rows never holds the single SQLite
# writer for the whole file, and a crash loses at most one batch (whose rows report no post).
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

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "postId": self.post_id, "jobId": self.job_id,
                "errors": [{"code": e.code, "message": e.message, "field": e.field} for e in self.errors]}


class _Rollback(Exception):
    """Raised out of an atomic batch with a failed item, so the transaction writes nothing."""


def _errors_of(error: Exception) -> list[UserError]:
    return list(error.errors) if isinstance(error, UserErrors) else [error] if isinstance(error, UserError) else []


async def check_items(runtime: Runtime, validator: PostValidator, organization_id: str, items: Sequence[BulkItem]) -> list[ItemResult]:
    """Every item checked as ``validatePost`` checks a post (and its campaign), writing nothing."""
    results = []
    async with runtime.database.read() as session:
        for index, item in enumerate(items):
            result = ItemResult(index, errors=list(item.errors))
            if item.data is not None and item.data.campaign_id is not None:
                try:
                    await require_open_campaign(session, organization_id, item.data.campaign_id)
                except UserError as error:
                    result.errors.append(error)
            results.append(result)
    for item, result in zip(items, results, strict=True):
        if item.data is not None:
            result.errors += list((await validator.check_ahead(runtime.database, organization_id, item.data)).problems)
    return results


async def _write_item(
    session: AsyncSession, validator: PostValidator, organization_id: str, key_id: str | None, item: BulkItem, result: ItemResult,
    events: list[BusEvent],
) -> None:
    assert item.data is not None
    try:
        async with session.begin_nested():
            post = await create_post(session, validator, organization_id, item.data, created_by_key_id=key_id)
            queued = await enqueue_post(session, validator, organization_id, post.id, item.publish_at) if item.publish_at else None
    except (UserError, UserErrors) as error:
        result.errors += _errors_of(error)
        return
    result.post_id = post.id
    if queued is not None:
        result.job_id = queued.job.id
        events.extend(queued.events)


async def _write_all(
    session: AsyncSession, validator: PostValidator, organization_id: str, key_id: str | None, items: Sequence[BulkItem],
    results: Sequence[ItemResult], events: list[BusEvent], *, atomic: bool,
) -> None:
    """Inside one transaction: each item not already refused under its own savepoint."""
    events.clear()
    for result in results:  # a transaction run again starts its results afresh
        result.post_id = result.job_id = None
    for item, result in zip(items, results, strict=True):
        if item.data is not None and not result.errors:
            await _write_item(session, validator, organization_id, key_id, item, result, events)
    if atomic and any(r.errors for r in results):
        raise _Rollback()


def _forget_posts(results: Sequence[ItemResult]) -> None:
    for result in results:
        result.post_id = result.job_id = None


async def _announce(runtime: Runtime, events: Sequence[BusEvent]) -> None:
    for event in events:
        await runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))
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
    """An import: check every item, then (unless a dry run) write them in batches of ``BATCH_SIZE``.

    A result per item, in order; a bad item never blocks the others.
    """
    validator = PostValidator(runtime.plugins)
    results: list[ItemResult] = []
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start:start + BATCH_SIZE]
        checked = await check_items(runtime, validator, organization_id, batch)
        for result in checked:
            result.index += start
        if not dry_run:
            events: list[BusEvent] = []

            async def transaction() -> None:
                async with runtime.database.write() as session:
                    await _write_all(session, validator, organization_id, key_id, batch, checked, events, atomic=False)

            await validator.run(transaction)
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
    validator = PostValidator(runtime.plugins)
    results = await check_items(runtime, validator, organization_id, items)
    if dry_run or (atomic and any(r.errors for r in results)):
        return results
    events: list[BusEvent] = []

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _write_all(session, validator, organization_id, key_id, items, results, events, atomic=atomic)
        return {"items": [r.as_json() for r in results]}

    try:
        stored = await run_idempotent(
            runtime.database, organization_id, "bulkCreatePosts", idempotency_key, fingerprint, work, runner=validator.run
        )
    except _Rollback:
        _forget_posts(results)
        return results
    await _announce(runtime, events)
    return [ItemResult(r["index"], r["postId"], r["jobId"], [UserError(e["code"], e["message"], e["field"]) for e in r["errors"]])
            for r in stored["items"]]
