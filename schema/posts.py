"""Posts and targets: create, validate (dry run), update drafts, delete, list with filters."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

import gateway.content as service
from gateway.accounts import shown_accounts
from gateway.auth import find_owned_many
from gateway.core import BadInput, Page, UserError
from gateway.engine import queue as publishing
from gateway.storage import Attempt as AttemptRow
from gateway.storage import Post as PostRow
from gateway.storage import Target as TargetRow
from schema.accounts import AccountType
from schema.approvals import PostApprovalType, approval_of
from schema.context import Info
from schema.loaders import Loaders
from schema.lookahead import selected_paths, selects_below
from schema.media import MediaAssetType
from schema.metrics import PostMetricsType, TargetMetricsType, post_metrics, target_metrics
from schema.payloads import UserErrorType, collect_user_errors, run_create, run_mutation
from schema.plans import PLAIN
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one

if TYPE_CHECKING:
    from schema.jobs import JobType


def job_of(row: Any) -> JobType:
    from schema.jobs import JobType  # schema.jobs imports this module

    return JobType.from_row(row)


PostStatus = strawberry.enum(
    Enum("PostStatus", {s.upper(): s for s in service.POST_STATUSES}),  # type: ignore[misc]
    description="Derived from the targets; partially_published when their outcomes differ.",
)
TargetStatus = strawberry.enum(Enum("TargetStatus", {s.upper(): s for s in service.TARGET_STATUSES}))  # type: ignore[misc]


@strawberry.type
class ProviderText:
    provider: str
    text: str


@strawberry.type
class TargetError:
    code: str
    message: str


@strawberry.type(name="Attempt", description="One provider call for a target: a publish, a reconcile or a delete.")
class AttemptType:
    number: int = strawberry.field(description="1 for the target's first call, counting every kind.")
    started_at: datetime
    finished_at: datetime | None = strawberry.field(description="Null while the call is in flight.")
    outcome: str | None = strawberry.field(
        description="success, rate_limited, transient, auth_expired, rejected, unconfirmed, lease_expired, lease_lost, "
        "deleted or delete_failed; null while in flight."
    )
    error_code: str | None
    http_status: int | None = strawberry.field(description="The platform's HTTP status, when it answered with one.")
    duration_ms: int | None = strawberry.field(description="From start to end; null while in flight.")

    @classmethod
    def from_row(cls, row: AttemptRow) -> AttemptType:
        duration = round((row.finished_at - row.started_at).total_seconds() * 1000) if row.finished_at else None
        return cls(
            number=row.number, started_at=row.started_at, finished_at=row.finished_at, outcome=row.outcome,
            error_code=row.error_code, http_status=row.http_status, duration_ms=duration,
        )


@strawberry.type(name="Target", description="The post going to one account.")
class TargetType(Node):
    id: strawberry.ID
    provider: str
    status: TargetStatus  # type: ignore[valid-type]
    text: str = strawberry.field(description="The text this target publishes (after the provider's override).")
    settings: JSON
    publish_at: datetime | None
    published_at: datetime | None
    platform_post_id: str | None
    platform_url: str | None
    attempt_count: int
    error: TargetError | None
    stage: str | None = strawberry.field(
        description="While PROCESSING: the platform's stage in a word (transcoding, container, uploading…); null otherwise."
    )
    next_check_at: datetime | None = strawberry.field(
        description="While PROCESSING: when the gateway checks on the platform again; null otherwise."
    )
    account_id: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: TargetRow, post: PostRow) -> TargetType:
        content = post.content or {}
        return cls(
            id=strawberry.ID(row.id),
            provider=row.provider,
            status=TargetStatus(row.status),
            text=content.get("overrides", {}).get(row.provider, post.text),
            settings=content.get("settings", {}).get(row.account_id, {}),
            publish_at=row.publish_at,
            published_at=row.published_at,
            platform_post_id=row.platform_post_id,
            platform_url=row.platform_url,
            attempt_count=row.attempt_count,
            error=TargetError(code=row.error_code, message=row.error_message or "") if row.error_code else None,
            stage=row.processing_stage if row.status == "processing" else None,
            next_check_at=row.next_attempt_at if row.status == "processing" else None,
            account_id=row.account_id,
        )

    @strawberry.field(description="Every provider call made for this target, oldest first.")
    async def attempts(self, info: Info) -> list[AttemptType]:
        return [AttemptType.from_row(row) for row in await info.context.loaders.attempts_by_target.load(str(self.id))]
    @strawberry.field(description="The target's figures once published (needs analytics:read).")
    def metrics(self, info: Info) -> TargetMetricsType:
        return target_metrics(info, str(self.id))

    @strawberry.field(description="The account this target publishes to (needs accounts:read).", metadata=PLAIN)
    def account(self, info: Info) -> AccountType | None:
        info.context.require("accounts:read")
        loaders = info.context.loaders
        if self.account_id in loaders.known_accounts:  # read ahead with the page (schema.lookahead): no await
            return _account_type(loaders, loaders.known_accounts[self.account_id])
        return self._load_account(loaders)  # type: ignore[return-value]  # graphql-core awaits what a plain resolver returns

    async def _load_account(self, loaders: Loaders) -> AccountType | None:
        return _account_type(loaders, await loaders.accounts.load(self.account_id))


@strawberry.type(name="Post", description="Content going to one or more accounts.")
class PostType(Node):
    id: strawberry.ID
    text: str
    thread: list[str] = strawberry.field(description="The parts after the first post of a thread.")
    overrides: list[ProviderText]
    approval_status: str
    campaign_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[PostRow]

    @classmethod
    def from_row(cls, row: PostRow) -> PostType:
        content = row.content or {}
        return cls(
            id=strawberry.ID(row.id),
            text=row.text,
            thread=list(content.get("thread", [])),
            overrides=[ProviderText(provider=p, text=t) for p, t in sorted(content.get("overrides", {}).items())],
            approval_status=row.approval_status,
            campaign_id=strawberry.ID(row.campaign_id) if row.campaign_id else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(metadata=PLAIN)
    def targets(self, info: Info) -> list[TargetType]:
        loaders = info.context.loaders
        known = loaders.known_targets.get(self.row.id)
        if known is not None:  # read ahead with the page (schema.lookahead): no await
            return [TargetType.from_row(target, self.row) for target in known]
        return self._load_targets(loaders)  # type: ignore[return-value]  # graphql-core awaits what a plain resolver returns

    async def _load_targets(self, loaders: Loaders) -> list[TargetType]:
        return [TargetType.from_row(target, self.row) for target in await loaders.targets_by_post.load(self.row.id)]

    @strawberry.field(metadata=PLAIN)
    def status(self) -> PostStatus:  # type: ignore[valid-type]
        return PostStatus(self.row.status)  # stored with the targets' changes (gateway.content.post_status)

    @strawberry.field(description="The approval state, the stage it waits at and the comment thread.")
    async def approval(self, info: Info) -> PostApprovalType:
        return approval_of(self.row, await info.context.loaders.approval_threads.load(self.row.id))
    @strawberry.field(description="The post's figures summed over its targets (needs analytics:read).")
    def metrics(self, info: Info) -> PostMetricsType:
        return post_metrics(info, self.row.id)

    @strawberry.field(description="The post's media (needs media:read).")
    async def media(self, info: Info) -> list[MediaAssetType]:
        info.context.require("media:read")
        rows = await info.context.loaders.media.load_many((self.row.content or {}).get("media_ids", []))
        runtime = info.context.runtime
        return [MediaAssetType.from_row(row, runtime) for row in rows if row is not None and row.deleted_at is None]


def _account_type(loaders: Loaders, row: Any) -> AccountType | None:
    """One AccountType per account per request: forty targets of two accounts build two."""
    return loaders.once(("account", row.id), lambda: AccountType.from_row(row)) if row is not None else None


async def post_connection(info: Info, session: Any, page: Page[Any]) -> Connection[PostType]:
    """A page of posts as a connection, with the targets (and their accounts) the query selects read
    ahead in the page's session: one query each, and their fields resolve without an await."""
    paths = selected_paths(info)
    if page.items and selects_below(paths, ("targets",)):
        loaders = info.context.loaders
        grouped = await service.shown_targets_of(session, [row.id for row in page.items])
        loaders.known_targets.update(grouped)
        if selects_below(paths, ("targets", "account")) and info.context.allows("accounts:read"):
            account_ids = {target.account_id for targets in grouped.values() for target in targets}
            loaders.known_accounts.update(await shown_accounts(session, info.context.principal.organization_id, list(account_ids)))
    return Connection.from_page(page, PostType.from_row)


async def _owned(info: Info, id: str) -> PostType | None:
    organization_id = info.context.principal.organization_id
    return await read_one(info, lambda session: service.find_post(session, organization_id, id), PostType.from_row)


async def load_post(info: Info, id: str) -> PostType | None:
    info.context.require("posts:read")
    return await _owned(info, id)


@nodes_resolver("post")
async def load_posts(info: Info, ids: list[str]) -> dict[str, PostType]:
    organization_id = info.context.require("posts:read").organization_id
    return await read_many(info, lambda session: find_owned_many(session, PostRow, "post", organization_id, ids), PostType.from_row)


@nodes_resolver("tgt")
async def load_targets(info: Info, ids: list[str]) -> dict[str, TargetType]:
    organization_id = info.context.require("posts:read").organization_id
    return await read_many(
        info, lambda session: service.find_targets(session, organization_id, ids), lambda found: TargetType.from_row(*found)
    )


@strawberry.input
class TargetInput:
    account_id: strawberry.ID
    settings: JSON | None = strawberry.field(default=None, description="The provider's per-post settings, name → value.")


@strawberry.input
class ProviderTextInput:
    provider: str
    text: str


@strawberry.input(description="A post's content and where it goes.")
class PostContentInput:
    targets: list[TargetInput]
    text: str = ""
    media_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    overrides: list[ProviderTextInput] = strawberry.field(default_factory=list, description="Text for one provider instead of `text`.")
    thread: list[str] = strawberry.field(default_factory=list, description="Further posts of a thread, after the first.")
    campaign_id: strawberry.ID | None = None


@strawberry.input
class CreatePostInput(PostContentInput):
    idempotency_key: str | None = None


@strawberry.input(description="Fields left out keep their value.")
class UpdatePostInput:
    id: strawberry.ID
    text: str | None = strawberry.UNSET
    media_ids: list[strawberry.ID] | None = strawberry.UNSET
    overrides: list[ProviderTextInput] | None = strawberry.UNSET
    targets: list[TargetInput] | None = strawberry.UNSET
    thread: list[str] | None = strawberry.UNSET
    campaign_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input
class PostIdInput:
    id: strawberry.ID
    from_platforms: bool = strawberry.field(
        default=False,
        description="deletePost only: also delete each published target on its platform, as a `delete` job.",
    )


@strawberry.input
class PostFilter:
    status: PostStatus | None = None  # type: ignore[valid-type]
    provider: str | None = None
    account_id: strawberry.ID | None = None
    campaign_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(default=None, name="from", description="Scheduled (or created) at or after.")
    to: datetime | None = strawberry.field(default=None, description="Scheduled (or created) before.")


@strawberry.type
class PostPayload:
    post: PostType | None
    user_errors: list[UserErrorType]
    job: Annotated[JobType, strawberry.lazy("schema.jobs")] | None = strawberry.field(
        default=None, description="The job the change started: deletePost with fromPlatforms on published targets."
    )


@strawberry.type
class TargetValidation:
    index: int
    account_id: strawberry.ID
    provider: str | None
    text_length: int | None = strawberry.field(description="Length of this target's text in the provider's own unit.")
    text_limit: int | None
    text_unit: str | None
    issues: list[UserErrorType]


@strawberry.type
class PostValidation:
    valid: bool
    targets: list[TargetValidation]
    user_errors: list[UserErrorType] = strawberry.field(description="Every problem, post-level and per target.")


def _settings_of(value: Any, index: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError("SETTINGS_NOT_OBJECT", "Settings are an object of name → value.", ["targets", str(index), "settings"])
    return value


def _overrides_of(items: list[ProviderTextInput]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        if item.provider in overrides:
            raise UserError("DUPLICATE_OVERRIDE", f"Two texts for {item.provider[:60]!r}.", ["overrides", item.provider[:60]])
        overrides[item.provider] = item.text
    return overrides


def _targets_of(items: list[TargetInput]) -> tuple[service.TargetInput, ...]:
    return tuple(service.TargetInput(str(t.account_id), _settings_of(t.settings, i)) for i, t in enumerate(items))


def _content_of(input: PostContentInput) -> service.PostInput:
    return service.PostInput(
        text=input.text,
        media_ids=tuple(str(m) for m in input.media_ids),
        overrides=_overrides_of(input.overrides),
        targets=_targets_of(input.targets),
        thread=tuple(input.thread),
        campaign_id=str(input.campaign_id) if input.campaign_id is not None else None,
    )


content_of = _content_of  # bulk creation (schema.bulk_posts) reads each item as createPost reads its input


def _changes_of(input: UpdatePostInput) -> dict[str, Any]:
    """Only the fields the caller sent; null for a list means empty, for text empty text."""
    changes: dict[str, Any] = {}
    if input.text is not strawberry.UNSET:
        changes["text"] = input.text or ""
    if input.media_ids is not strawberry.UNSET:
        changes["media_ids"] = tuple(str(m) for m in input.media_ids or ())
    if input.overrides is not strawberry.UNSET:
        changes["overrides"] = _overrides_of(input.overrides or [])
    if input.targets is not strawberry.UNSET:
        changes["targets"] = _targets_of(input.targets or [])
    if input.thread is not strawberry.UNSET:
        changes["thread"] = tuple(input.thread or ())
    if input.campaign_id is not strawberry.UNSET:
        changes["campaign_id"] = str(input.campaign_id) if input.campaign_id is not None else None
    return changes


def _aware(value: datetime | None, argument: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise BadInput(f"`{argument}` needs a UTC offset, e.g. 2026-05-01T09:00:00+02:00.", argument)
    return value


def _request_of(data: service.PostInput) -> dict[str, Any]:
    return {**data.__dict__, "targets": [t.__dict__ for t in data.targets]}


@strawberry.type
class PostQuery:
    @strawberry.field(description="Posts, newest first.")
    async def posts(
        self,
        info: Info,
        filter: PostFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[PostType] | None:
        principal = info.context.require("posts:read")
        filters = service.PostFilter()
        if filter is not None:
            filters = service.PostFilter(
                status=filter.status.value if filter.status else None,
                provider=filter.provider,
                account_id=str(filter.account_id) if filter.account_id else None,
                campaign_id=str(filter.campaign_id) if filter.campaign_id else None,
                starts=_aware(filter.from_, "from"),
                ends=_aware(filter.to, "to"),
            )
        async with info.context.read() as session:
            page = await service.list_posts(session, principal.organization_id, filters, page_request(first, after, last, before))
            return await post_connection(info, session, page)

    @strawberry.field(description="One post with its targets, or null.")
    async def post(self, info: Info, id: strawberry.ID) -> PostType | None:
        return await load_post(info, str(id))

    @strawberry.field(description="Check a post against every target's provider; a dry run that writes nothing.")
    async def validate_post(self, info: Info, input: PostContentInput) -> PostValidation | None:
        principal = info.context.require("posts:read")

        async def check() -> service.PostCheck:
            runtime = info.context.runtime
            return await service.dry_run(runtime.database, runtime.plugins, principal.organization_id, _content_of(input))

        result, errors = await collect_user_errors(check())
        if result is None:
            return PostValidation(valid=False, targets=[], user_errors=errors)
        return PostValidation(
            valid=result.valid,
            targets=[
                TargetValidation(
                    index=t.index,
                    account_id=strawberry.ID(t.account_id),
                    provider=t.provider_id,
                    text_length=t.text_length,
                    text_limit=t.text_limit,
                    text_unit=t.text_unit,
                    issues=[UserErrorType.from_error(e) for e in t.issues],
                )
                for t in result.targets
            ],
            user_errors=[UserErrorType.from_error(e) for e in result.problems],
        )


@strawberry.type
class PostMutation:
    @strawberry.mutation(description="Create a draft post; every target is validated first.")
    async def create_post(self, info: Info, input: CreatePostInput) -> PostPayload:
        registry = info.context.runtime.plugins

        async def prepare() -> service.PostInput:
            return _content_of(input)

        data, errors = await collect_user_errors(prepare())
        if data is None:
            return PostPayload(post=None, user_errors=errors)

        validator = service.PostValidator(registry)

        written: list[Any] = []  # the post this call wrote; none when an idempotent replay answers

        async def work(session: Any, principal: Any) -> dict[str, Any]:
            row = await service.create_post(session, validator, principal.organization_id, data, created_by_key_id=principal.api_key_id)
            written[:] = [row.post]
            return {"id": row.id}

        result, errors = await run_create(
            info, "posts:write", "createPost", input.idempotency_key, _request_of(data), work, runner=validator.run
        )
        if result is None:
            return PostPayload(post=None, user_errors=errors)
        if written and written[-1].id == result["id"]:  # answered from the rows written, not read again
            return PostPayload(post=PostType.from_row(written[-1]), user_errors=errors)
        return PostPayload(post=await _owned(info, result["id"]), user_errors=errors)

    @strawberry.mutation(description="Change a draft. A post already scheduled or published is a CONFLICT.")
    async def update_post(self, info: Info, input: UpdatePostInput) -> PostPayload:
        validator = service.PostValidator(info.context.runtime.plugins)

        async def work(session: Any, principal: Any) -> PostRow:
            return await service.update_post(session, validator, principal.organization_id, str(input.id), _changes_of(input))

        row, errors = await run_mutation(info, "posts:write", work, runner=validator.run)
        return PostPayload(post=PostType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        description="Delete a post; targets still waiting are canceled (with their events, as cancelPost does). "
        "A post being published right now is a CONFLICT. With `fromPlatforms`, each published target is deleted on its "
        "platform by a `delete` job (in the payload): a target becomes `deleted`, or stays `published` with the "
        "platform's error; the post leaves the API once none is left published. A provider that cannot delete "
        "answers a DELETE_NOT_SUPPORTED user error per target, and nothing changes."
    )
    async def delete_post(self, info: Info, input: PostIdInput) -> PostPayload:
        principal = info.context.require("posts:write")
        deleted, errors = await collect_user_errors(
            publishing.delete(info.context.runtime, principal.organization_id, str(input.id), from_platforms=input.from_platforms)
        )
        post, job = deleted or (None, None)
        return PostPayload(post=PostType.from_row(post) if post else None, user_errors=errors, job=job_of(job) if job else None)
