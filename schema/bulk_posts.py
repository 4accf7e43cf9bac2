"""bulkCreatePosts (≤ 500 items, a result per item) and importPosts (a CSV file, run as a job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from gateway.campaigns import bulk
from gateway.campaigns.imports import run_import_job
from gateway.content import PostInput
from gateway.core import UserError, UserErrors
from gateway.engine.queue import resolve_publish_at
from schema.context import Info
from schema.jobs import JobType
from schema.payloads import UserErrorType, collect_user_errors
from schema.posts import PostContentInput, PostType, content_of, load_post


@strawberry.input(description="A post's content and where it goes, and when to publish it (a draft when left out).")
class BulkPostInput(PostContentInput):
    publish_at: datetime | None = strawberry.field(default=None, description="ISO 8601; with an offset, or local time plus `timezone`.")
    timezone: str | None = None


@strawberry.input
class BulkCreatePostsInput:
    items: list[BulkPostInput] = strawberry.field(description=f"At most {bulk.MAX_ITEMS}.")
    campaign_id: strawberry.ID | None = strawberry.field(default=None, description="For every item that names no campaign of its own.")
    atomic: bool = strawberry.field(default=False, description="All items or none: one bad item keeps every other one out.")
    dry_run: bool = strawberry.field(default=False, description="Check every item and write nothing.")
    idempotency_key: str | None = None


@strawberry.type
class BulkItemResult:
    index: int
    post: PostType | None
    job_id: strawberry.ID | None = strawberry.field(description="The publish job of an item given a publishAt.")
    user_errors: list[UserErrorType]


@strawberry.type
class BulkCreatePostsPayload:
    results: list[BulkItemResult] = strawberry.field(description="One per item, in order.")
    created_count: int
    user_errors: list[UserErrorType] = strawberry.field(description="Problems with the request as a whole (too many items…).")


@strawberry.input
class ImportPostsInput:
    file: Upload = strawberry.field(description="A UTF-8 CSV file, columns as in docs/import.md, as a multipart part.")
    dry_run: bool = False


@strawberry.type
class ImportPostsPayload:
    job: JobType | None = strawberry.field(description="The posts.import job: its result lists every row's problems.")
    user_errors: list[UserErrorType]


def _item_of(item: BulkPostInput, campaign_id: str | None) -> bulk.BulkItem:
    """The item as the service reads it; what cannot even be read is the item's own error."""
    try:
        data = content_of(item)
        if data.campaign_id is None and campaign_id is not None:
            data = PostInput(**{**data.__dict__, "campaign_id": campaign_id})
        publish_at = resolve_publish_at(item.publish_at, item.timezone) if item.publish_at is not None else None
    except (UserError, UserErrors) as error:
        # Fields are the item's own (as createPost's would be): the result's index says which item.
        return bulk.BulkItem(None, None, tuple(error.errors if isinstance(error, UserErrors) else [error]))
    return bulk.BulkItem(data, publish_at)


def _fingerprint(items: list[bulk.BulkItem], input: BulkCreatePostsInput) -> dict[str, Any]:
    return {
        "items": [{**i.data.__dict__, "targets": [t.__dict__ for t in i.data.targets], "publish_at": i.publish_at} if i.data else None
                  for i in items],
        "atomic": input.atomic,
    }


async def _item_result(info: Info, result: bulk.ItemResult) -> BulkItemResult:
    return BulkItemResult(
        index=result.index,
        post=await load_post(info, result.post_id) if result.post_id else None,
        job_id=strawberry.ID(result.job_id) if result.job_id else None,
        user_errors=[UserErrorType.from_error(e) for e in result.errors],
    )


@strawberry.type
class BulkPostMutation:
    @strawberry.mutation(
        description="Create up to 500 posts, each checked like createPost, with a result per item. A bad item does not block "
        "the others unless `atomic`; `dryRun` writes nothing."
    )
    async def bulk_create_posts(self, info: Info, input: BulkCreatePostsInput) -> BulkCreatePostsPayload:
        principal = info.context.require("posts:write")
        if any(item.publish_at is not None for item in input.items) and not input.dry_run:
            info.context.require("posts:publish")
        campaign_id = str(input.campaign_id) if input.campaign_id is not None else None
        items = [_item_of(item, campaign_id) for item in input.items]
        results, errors = await collect_user_errors(
            bulk.bulk_create(
                info.context.runtime, principal.organization_id, principal.api_key_id, items, atomic=input.atomic,
                dry_run=input.dry_run, idempotency_key=input.idempotency_key, fingerprint=_fingerprint(items, input),
            )
        )
        shown = [await _item_result(info, r) for r in results or []]
        return BulkCreatePostsPayload(results=shown, created_count=sum(1 for r in results or [] if r.post_id), user_errors=errors)

    @strawberry.mutation(description="Import posts from a CSV file as a posts.import job; its progress events follow each batch.")
    async def import_posts(self, info: Info, input: ImportPostsInput) -> ImportPostsPayload:
        principal = info.context.require("posts:write")
        if not input.dry_run:  # rows with a publish_at are queued
            info.context.require("posts:publish")
        async def run() -> Any:
            if not callable(getattr(input.file, "read", None)):  # e.g. a string sent as JSON instead of a file part
                raise UserError("FILE_REQUIRED", "Send the CSV file as a part of a multipart request.", ["input", "file"])
            raw = await input.file.read()
            return await run_import_job(
                info.context.runtime, principal.organization_id, principal.api_key_id, raw, dry_run=input.dry_run
            )

        job, errors = await collect_user_errors(run())
        return ImportPostsPayload(job=JobType.from_row(job) if job else None, user_errors=errors)
