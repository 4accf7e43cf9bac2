"""Posts and their targets: create, update while draft, lock, list.

Every post written is validated first (``gateway.content.post_checks``); its policy hooks run outside the
write transaction, through the command's ``PostValidator``. Deleting and queueing posts are
commands of ``gateway.engine.queue``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.approvals.gate import content_edited, initial_status
from gateway.auth import find_owned, require_owned
from gateway.campaigns.membership import require_open_campaign
from gateway.content.post_checks import PostCheck, PostInput, PostValidator, TargetCheck, TargetInput, dry_run
from gateway.core import BadInput, Conflict, Page, PageRequest, UserError, is_id_of, new_id, paginate, plain_rows, utcnow
from gateway.storage import DEFERRED, Post, Target, name_answered

T = TypeVar("T")

__all__ = ["PostCheck", "PostInput", "PostValidator", "TargetCheck", "TargetInput", "dry_run"]  # the validation API, re-exported for callers of the posts service

TARGET_STATUSES = (
    "draft", "scheduled", "publishing", "processing", "published", "retry_pending", "failed", "canceled", "unconfirmed", "missed", "deleting", "deleted",
)
POST_STATUSES = (
    "draft", "scheduled", "publishing", "processing", "published", "partially_published", "failed", "unconfirmed", "canceled", "missed", "deleting",
    "deleted",
)
# Targets in these states may still be published by the scheduler.
PENDING_STATUSES = ("scheduled", "retry_pending")


# -- derived status -------------------------------------------------------------------------------

# First match wins. Each rule is a predicate over "does some target have status s": evaluated in
# Python here, and compiled to the SQL of the trigger that stores posts.status (content.post_status).
StatusRule = tuple[str, Callable[[Callable[[str], Any], Callable[..., Any], Callable[..., Any], Callable[[Any], Any]], Any]]
STATUS_RULES: tuple[StatusRule, ...] = (
    ("publishing", lambda has, all_, any_, not__: has("publishing")),
    # The platform accepted the media and is still working on it (a video container): checked again later.
    ("processing", lambda has, all_, any_, not__: has("processing")),
    ("scheduled", lambda has, all_, any_, not__: any_(has("scheduled"), has("retry_pending"))),
    # deletePost(fromPlatforms: true): calls to the platforms under way; then gone where none stayed published.
    ("deleting", lambda has, all_, any_, not__: has("deleting")),
    ("draft", lambda has, all_, any_, not__: all_(*(not__(has(s)) for s in TARGET_STATUSES if s != "draft"))),
    ("published", lambda has, all_, any_, not__: all_(*(not__(has(s)) for s in TARGET_STATUSES if s != "published"))),
    ("partially_published", lambda has, all_, any_, not__: has("published")),
    ("deleted", lambda has, all_, any_, not__: has("deleted")),
    ("unconfirmed", lambda has, all_, any_, not__: has("unconfirmed")),
    ("failed", lambda has, all_, any_, not__: has("failed")),
    # A paused campaign (or a late approval) let its time pass and policy said not to publish late.
    ("missed", lambda has, all_, any_, not__: has("missed")),
    ("canceled", lambda has, all_, any_, not__: True),
)


def derive_status(target_statuses: Sequence[str]) -> str:
    """A post's status from its targets' (``partially_published`` when outcomes are mixed)."""
    present = set(target_statuses)
    for status, rule in STATUS_RULES:
        if rule(lambda s: s in present, lambda *xs: all(xs), lambda *xs: any(xs), lambda x: not x):
            return status
    raise AssertionError("the last rule always matches")


def _content(data: PostInput) -> dict[str, Any]:
    return {
        "media_ids": list(data.media_ids),
        "overrides": dict(data.overrides),
        "thread": list(data.thread),
        "settings": {t.account_id: dict(t.settings) for t in data.targets},
    }


content_json = _content  # bulk creation (gateway.campaigns.bulk) stores the same shape


# Built once; nothing reads their results, so on SQLite they travel with the commit (``storage.DEFERRED``).
_INSERT_POST = Post.__table__.insert().execution_options(**DEFERRED)
_INSERT_TARGETS = Target.__table__.insert().execution_options(**DEFERRED)


@dataclass(frozen=True)
class CreatedPost:
    """What creating a post hands back: its id, and the post as written (``post``, not attached to
    any session), so the payload answers from the rows it wrote instead of reading them again."""

    id: str
    organization_id: str
    post: Any  # a Post's columns as attributes; plain, not an ORM instance (whose instrumented __init__ cost more than the INSERT)


async def create_post(
    session: AsyncSession, validator: PostValidator, organization_id: str, data: PostInput, *, created_by_key_id: str | None
) -> CreatedPost:
    """Write a new draft; run its transaction through ``validator.run``.

    Two Core INSERTs (the post, then its targets in one executemany), no ORM unit of work: this
    is createPost's hot path (issue 21). The targets' trigger stores the post's status, which for
    new drafts is ``derive_status`` of their draft targets, as ``post`` says.
    """
    await require_open_campaign(session, organization_id, data.campaign_id)
    accounts = await validator.require(session, organization_id, data)
    post_id, now = new_id("post"), utcnow()
    row = {
        "id": post_id, "organization_id": organization_id, "campaign_id": data.campaign_id, "text": data.text,
        "content": _content(data), "created_by_key_id": created_by_key_id, "created_at": now, "updated_at": now,
        "approval_status": await initial_status(session, organization_id, [t.account_id for t in data.targets]),
    }
    await session.execute(_INSERT_POST, row)
    if data.targets:
        await session.execute(
            _INSERT_TARGETS,
            [
                {
                    "id": new_id("tgt"), "post_id": post_id, "account_id": target.account_id, "organization_id": organization_id,
                    "provider": accounts[target.account_id].provider, "created_at": now, "updated_at": now,
                }
                for target in data.targets
            ],
        )
    name_answered(session, post_id)
    written = SimpleNamespace(**row, approval_stage=None, deleted_at=None, status=derive_status(["draft"] * len(data.targets)))
    return CreatedPost(post_id, organization_id, written)


async def find_post(session: AsyncSession, organization_id: str, post_id: str) -> Post | None:
    return await find_owned(session, Post, "post", organization_id, post_id)


async def find_targets(session: AsyncSession, organization_id: str, target_ids: Sequence[str]) -> dict[str, tuple[Target, Post]]:
    """The targets among ``target_ids`` whose post ``find_post`` would return, with that post, in one query."""
    wanted = [i for i in dict.fromkeys(target_ids) if is_id_of(i, "tgt")]
    if not wanted:
        return {}
    query = (
        select(Target, Post)
        .join(Post, Post.id == Target.post_id)
        .where(Target.id.in_(wanted), Post.organization_id == organization_id, Post.deleted_at.is_(None))
    )
    return {target.id: (target, post) for target, post in (await session.execute(query)).all()}


async def _owned_post(session: AsyncSession, organization_id: str, post_id: str) -> Post:
    return await require_owned(session, Post, "post", organization_id, post_id, code="POST_NOT_FOUND", noun="post")


async def targets_of(session: AsyncSession, post_ids: Sequence[str]) -> dict[str, list[Target]]:
    """Every target of these posts, grouped by post (each post present, maybe with none)."""
    query = select(Target).where(Target.post_id.in_(post_ids)).order_by(Target.created_at, Target.id)
    return group_by_post(post_ids, (await session.execute(query)).scalars())


# What a read of targets shows (``schema.posts.TargetType``): none of the engine's lease and
# processing bookkeeping, nor the timestamps the order needs but no reader shows.
SHOWN_TARGET_COLUMNS = (
    "id", "post_id", "account_id", "provider", "status", "publish_at", "published_at", "platform_post_id", "platform_url",
    "attempt_count", "error_code", "error_message", "processing_stage", "next_attempt_at",
)
_TARGETS = Target.__table__.c
# Built once with its parameters as bind parameters, so SQLAlchemy computes its cache key once
# and never coerces its columns again: building the statement cost more than running it.
_SHOWN_TARGETS = (
    select(*(_TARGETS[name] for name in SHOWN_TARGET_COLUMNS))
    .where(_TARGETS.post_id.in_(bindparam("post_ids", expanding=True)))
    .order_by(_TARGETS.created_at, _TARGETS.id)
)


async def shown_targets_of(session: AsyncSession, post_ids: Sequence[str]) -> dict[str, list[Any]]:
    """``targets_of`` for reads: Core rows of ``SHOWN_TARGET_COLUMNS``, no ORM object built or tracked."""
    return group_by_post(post_ids, plain_rows(await session.execute(_SHOWN_TARGETS, {"post_ids": list(post_ids)})))


def group_by_post(post_ids: Sequence[str], targets: Iterable[T]) -> dict[str, list[T]]:
    """Targets (ORM objects or the engine's rows) grouped by their post, in the order given."""
    grouped: dict[str, list[T]] = {post_id: [] for post_id in post_ids}
    for target in targets:
        grouped[target.post_id].append(target)  # type: ignore[attr-defined]
    return grouped


def input_of(post: Post, targets: Sequence[Target]) -> PostInput:
    """A stored post as input again, so an update can change some fields and keep the rest."""
    content = post.content or {}
    settings = content.get("settings", {})
    return PostInput(
        text=post.text,
        media_ids=tuple(content.get("media_ids", ())),
        overrides=dict(content.get("overrides", {})),
        targets=tuple(TargetInput(t.account_id, settings.get(t.account_id, {})) for t in targets),
        thread=tuple(content.get("thread", ())),
        campaign_id=post.campaign_id,
    )


async def lock_post(session: AsyncSession, organization_id: str, post_id: str) -> Post:
    """The post and its targets, locked for this transaction (PostgreSQL), read after the lock.

    A command that reads a post and then writes it must not act on what it read before another
    transaction (a claim, a publish, another edit) committed: the row lock makes it wait for that
    one, and ``populate_existing`` makes it see what that one wrote instead of a stale copy.
    SQLite's single writer already gives a write transaction the latest rows.
    """
    post = await _owned_post(session, organization_id, post_id)
    if session.bind.dialect.name == "postgresql":
        locked = select(Post).where(Post.id == post.id).with_for_update().execution_options(populate_existing=True)
        post = (await session.execute(locked)).scalar_one()
        if post.deleted_at is not None:  # deleted while we waited for the lock
            raise UserError("POST_NOT_FOUND", "No post with that id.", ["id"])
    await lock_targets(session, Target.post_id == post.id)
    return post


async def lock_targets(session: AsyncSession, which: Any) -> None:
    """Lock targets (PostgreSQL), in id order, before any job is locked.

    The engine locks the targets it claims or records, then their jobs. An operation here that
    locked a job first and then wrote a target the engine holds would wait on the engine while
    the engine waits on it for the job: a deadlock. Taking targets first, as the engine does,
    leaves one order everywhere.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(Target.id).where(which).order_by(Target.id).with_for_update())


async def update_post(
    session: AsyncSession, validator: PostValidator, organization_id: str, post_id: str, changes: Mapping[str, Any]
) -> Post:
    """Change a draft; ``changes`` holds only the PostInput fields the caller sent.

    Only a post all of whose targets are drafts can change: a target that is queued, publishing
    or published was validated (and may have gone out) with the content it has. The targets are
    read under their locks, so a publish committing meanwhile is seen, not overwritten. Run its
    transaction through ``validator.run``.
    """
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    if any(t.status == "processing" for t in targets):  # the platform holds the uploaded media: it cannot change now
        raise UserError("POST_PROCESSING", "The platform is still processing this post's media; it can no longer be edited.", ["id"])
    if any(t.status != "draft" for t in targets):
        raise Conflict("Only a draft can be edited; this post is already scheduled or published.", ["id"])
    current = input_of(post, targets)
    data = PostInput(**{**current.__dict__, **changes})
    if "campaign_id" in changes:
        await require_open_campaign(session, organization_id, data.campaign_id)
    accounts = await validator.require(session, organization_id, data)
    content = _content(data)
    if (data.text, content) != (post.text, post.content):  # what was approved is not what would publish
        await content_edited(session, post, None)
    post.text = data.text
    post.content = content
    post.campaign_id = data.campaign_id
    post.updated_at = utcnow()
    kept = {t.account_id: t for t in targets}
    wanted = [t.account_id for t in data.targets]
    for target in targets:
        if target.account_id not in wanted:  # a draft: no job counts it, nothing to cancel
            await session.delete(target)
    for account_id in wanted:
        if account_id not in kept:
            account = accounts[account_id]
            session.add(Target(id=new_id("tgt"), post_id=post.id, account_id=account_id, organization_id=organization_id, provider=account.provider))
    await session.flush()
    return post


@dataclass(frozen=True)
class PostFilter:
    status: str | None = None
    provider: str | None = None
    account_id: str | None = None
    campaign_id: str | None = None
    starts: datetime | None = None  # on or after: scheduled time, or creation for unscheduled posts
    ends: datetime | None = None  # before


_POSTS = Post.__table__.c
_LISTED_WHEN = func.coalesce(_TARGETS.publish_at, _POSTS.created_at)


def _target_exists(condition: Any) -> Any:
    return exists().where(_TARGETS.post_id == _POSTS.id, condition)


# Each filter of posts(filter:) as the condition it adds, with its value as a bind parameter.
_FILTER_CONDITIONS = {
    # The stored status (gateway.content.post_status): one range of ix_posts_org_status_created.
    "status": _POSTS.status == bindparam("status"),
    "provider": _target_exists(_TARGETS.provider == bindparam("provider")),
    "account_id": _target_exists(_TARGETS.account_id == bindparam("account_id")),
    "campaign_id": _POSTS.campaign_id == bindparam("campaign_id"),
    "starts": _target_exists(_LISTED_WHEN >= bindparam("starts", type_=_POSTS.created_at.type)),
    "ends": _target_exists(_LISTED_WHEN < bindparam("ends", type_=_POSTS.created_at.type)),
}


@functools.cache
def _listed_posts(filters: frozenset[str]) -> Select[Any]:
    """The posts of an organization with these filters, built once per set of filters used (64 at most)."""
    query = select(*Post.__table__.c).where(_POSTS.organization_id == bindparam("organization_id"), _POSTS.deleted_at.is_(None))
    for name in _FILTER_CONDITIONS:  # in one order, whatever the order the filters came in
        if name in filters:
            query = query.where(_FILTER_CONDITIONS[name])
    return query


async def list_posts(session: AsyncSession, organization_id: str, filters: PostFilter, page: PageRequest) -> Page[Any]:
    """A page of posts as Core rows (every column, attributes named as the ORM's): a list is read, never changed,
    and building and tracking ORM objects cost more than the query."""
    if filters.status is not None and filters.status not in POST_STATUSES:
        raise BadInput(f"Unknown post status {filters.status[:40]!r}.", "status")
    parameters: dict[str, Any] = {"organization_id": organization_id}
    for name in _FILTER_CONDITIONS:
        value = getattr(filters, name)
        if value is not None:
            parameters[name] = value
    query = _listed_posts(frozenset(parameters) - {"organization_id"})
    return await paginate(session, query, _POSTS, page, parameters=parameters)
