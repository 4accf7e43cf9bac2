"""Posts and their targets: create, validate, update while draft, delete, list.

A post is validated for every target against that target's provider — text after the provider's
override, measured in the provider's own unit; media count, kinds and sizes; thread length;
per-post settings — and every problem of every target is reported at once. Nothing is written
unless there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import utcnow
from gateway.errors import BadInput, Conflict, UserError, UserErrors
from gateway.ids import is_id_of, new_id
from gateway.pagination import Page, PageRequest, paginate
from gateway.storage.models import Account, MediaAsset, Post, Target
from gateway.tenancy import find_owned, require_owned
from gateway.plugins import PluginRegistry
from providers import DraftMedia, Issue, PostDraft, Provider, validate_draft

MAX_TEXT_CHARACTERS = 100_000
MAX_TARGETS = 50
MAX_MEDIA = 20
MAX_THREAD_PARTS = 100
MAX_SETTINGS_KEYS = 50

TARGET_STATUSES = ("draft", "scheduled", "publishing", "published", "retry_pending", "failed", "canceled", "unconfirmed")
POST_STATUSES = ("draft", "scheduled", "publishing", "published", "partially_published", "failed", "unconfirmed", "canceled")
# Targets in these states may still be published by the scheduler.
PENDING_STATUSES = ("scheduled", "retry_pending")


@dataclass(frozen=True)
class TargetInput:
    account_id: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostInput:
    text: str = ""
    media_ids: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)  # provider id → text for that platform
    targets: tuple[TargetInput, ...] = ()
    thread: tuple[str, ...] = ()
    campaign_id: str | None = None


@dataclass(frozen=True)
class TargetCheck:
    """The outcome of validating one target: its measured text and every issue."""

    index: int
    account_id: str
    provider_id: str | None
    text_length: int | None
    text_limit: int | None
    text_unit: str | None
    issues: tuple[UserError, ...]


@dataclass(frozen=True)
class PostCheck:
    problems: tuple[UserError, ...]  # everything, post-level and per target
    targets: tuple[TargetCheck, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


# -- derived status -------------------------------------------------------------------------------

# First match wins. Each rule is a predicate over "does some target have status s".
StatusRule = tuple[str, Callable[[Callable[[str], Any], Callable[..., Any], Callable[..., Any], Callable[[Any], Any]], Any]]
STATUS_RULES: tuple[StatusRule, ...] = (
    ("publishing", lambda has, all_, any_, not__: has("publishing")),
    ("scheduled", lambda has, all_, any_, not__: any_(has("scheduled"), has("retry_pending"))),
    ("draft", lambda has, all_, any_, not__: all_(*(not__(has(s)) for s in TARGET_STATUSES if s != "draft"))),
    ("published", lambda has, all_, any_, not__: all_(*(not__(has(s)) for s in TARGET_STATUSES if s != "published"))),
    ("partially_published", lambda has, all_, any_, not__: has("published")),
    ("unconfirmed", lambda has, all_, any_, not__: has("unconfirmed")),
    ("failed", lambda has, all_, any_, not__: has("failed")),
    ("canceled", lambda has, all_, any_, not__: True),
)


def derive_status(target_statuses: Sequence[str]) -> str:
    """A post's status from its targets' (``partially_published`` when outcomes are mixed)."""
    present = set(target_statuses)
    for status, rule in STATUS_RULES:
        if rule(lambda s: s in present, lambda *xs: all(xs), lambda *xs: any(xs), lambda x: not x):
            return status
    raise AssertionError("the last rule always matches")


def status_condition(status: str) -> Any:
    """The same rules as ``derive_status``, as SQL over the post's targets, for filtering."""

    def has(target_status: str) -> Any:
        return exists().where(Target.post_id == Post.id, Target.status == target_status)

    def sql(rule: Any) -> Any:
        result = rule(has, lambda *xs: and_(*xs), lambda *xs: or_(*xs), not_)
        return true() if result is True else result

    earlier = []
    for name, rule in STATUS_RULES:
        if name == status:
            return and_(sql(rule), *(not_(condition) for condition in earlier))
        earlier.append(sql(rule))
    raise BadInput(f"Unknown post status {status[:40]!r}.", "status")


# -- validation -----------------------------------------------------------------------------------


def _post_level_problems(data: PostInput) -> list[UserError]:
    problems = []
    if len(data.text) > MAX_TEXT_CHARACTERS:
        problems.append(UserError("TEXT_TOO_LONG", f"Text is at most {MAX_TEXT_CHARACTERS} characters.", ["text"]))
    if not data.targets:
        problems.append(UserError("TARGETS_REQUIRED", "A post needs at least one target account.", ["targets"]))
    if len(data.targets) > MAX_TARGETS:
        problems.append(UserError("TOO_MANY_TARGETS", f"A post goes to at most {MAX_TARGETS} accounts.", ["targets"]))
    if len(data.media_ids) > MAX_MEDIA:
        problems.append(UserError("TOO_MANY_MEDIA", f"A post holds at most {MAX_MEDIA} media.", ["mediaIds"]))
    if len(data.thread) > MAX_THREAD_PARTS:
        problems.append(UserError("THREAD_TOO_LONG", f"A thread has at most {MAX_THREAD_PARTS} parts.", ["thread"]))
    for index, part in enumerate(data.thread):
        if len(part) > MAX_TEXT_CHARACTERS:
            problems.append(UserError("TEXT_TOO_LONG", f"Text is at most {MAX_TEXT_CHARACTERS} characters.", ["thread", str(index)]))
    for provider_id, text in data.overrides.items():
        if len(text) > MAX_TEXT_CHARACTERS:
            problems.append(UserError("TEXT_TOO_LONG", f"Text is at most {MAX_TEXT_CHARACTERS} characters.", ["overrides", provider_id]))
    seen: set[str] = set()
    for index, target in enumerate(data.targets):
        if target.account_id in seen:
            problems.append(UserError("DUPLICATE_TARGET", "An account is listed twice.", ["targets", str(index), "accountId"]))
        seen.add(target.account_id)
        if len(target.settings) > MAX_SETTINGS_KEYS:
            problems.append(UserError("SETTINGS_TOO_LARGE", "Too many settings.", ["targets", str(index), "settings"]))
    return problems


async def _load_media(session: AsyncSession, organization_id: str, media_ids: Sequence[str]) -> tuple[list[MediaAsset], list[UserError]]:
    wanted = [m for m in media_ids if is_id_of(m, "med")]
    rows = {}
    if wanted:
        query = select(MediaAsset).where(
            MediaAsset.id.in_(wanted), MediaAsset.organization_id == organization_id, MediaAsset.deleted_at.is_(None)
        )
        rows = {row.id: row for row in (await session.execute(query)).scalars()}
    problems = [
        UserError("MEDIA_NOT_FOUND", f"No media {media_id[:60]!r} in this organization.", ["mediaIds", str(index)])
        for index, media_id in enumerate(media_ids)
        if media_id not in rows
    ]
    return [rows[m] for m in media_ids if m in rows], problems


async def _load_accounts(session: AsyncSession, organization_id: str, data: PostInput) -> dict[str, Account]:
    wanted = [t.account_id for t in data.targets if is_id_of(t.account_id, "acct")]
    if not wanted:
        return {}
    query = select(Account).where(Account.id.in_(wanted), Account.organization_id == organization_id)
    return {row.id: row for row in (await session.execute(query)).scalars()}


def _issue_to_error(issue: Issue, index: int, provider: Provider) -> UserError:
    return UserError(issue.code, f"{provider.name}: {issue.message}", ["targets", str(index), *issue.field])


def _describe(asset: MediaAsset) -> DraftMedia:
    return DraftMedia(
        kind=asset.kind,
        mime_type=asset.mime_type,
        size_bytes=asset.size_bytes,
        width=asset.width,
        height=asset.height,
        duration_ms=asset.duration_ms,
    )


async def check_post(session: AsyncSession, registry: PluginRegistry, organization_id: str, data: PostInput) -> PostCheck:
    """Validate ``data`` for every target, policy plugins' ``validate_post`` included; writes nothing."""
    providers = registry.providers
    problems = _post_level_problems(data)
    media, media_problems = await _load_media(session, organization_id, data.media_ids)
    problems += media_problems
    accounts = await _load_accounts(session, organization_id, data)
    for provider_id in data.overrides:
        if provider_id not in providers:
            problems.append(UserError("UNKNOWN_PROVIDER", f"No provider {provider_id[:60]!r}.", ["overrides", provider_id]))
    described = tuple(_describe(asset) for asset in media)
    checks = []
    for index, target in enumerate(data.targets):
        where = ["targets", str(index), "accountId"]
        account = accounts.get(target.account_id)
        issues: list[UserError] = []
        provider = providers.get(account.provider) if account else None
        if account is None:
            issues.append(UserError("ACCOUNT_NOT_FOUND", f"No account {target.account_id[:60]!r} in this organization.", where))
        elif account.status == "disconnected":
            issues.append(UserError("ACCOUNT_DISCONNECTED", f"Account {account.id} is disconnected; reconnect it first.", where))
        elif provider is None:
            issues.append(UserError("PROVIDER_UNAVAILABLE", f"The {account.provider!r} provider is not installed or not enabled.", where))
        length = limit = unit = None
        if provider is not None and account is not None and account.status != "disconnected":
            text = data.overrides.get(provider.id, data.text)
            draft = PostDraft(text=text, media=described, settings=dict(target.settings), thread=tuple(data.thread))
            found = validate_draft(provider, draft) + await registry.validate_post(draft, provider, account.id)
            issues += [_issue_to_error(issue, index, provider) for issue in found]
            length, limit, unit = provider.limits.measure(text), provider.limits.max_text_length, provider.limits.text_unit.value
        checks.append(TargetCheck(index, target.account_id, provider.id if provider else None, length, limit, unit, tuple(issues)))
        problems += issues
    return PostCheck(problems=tuple(problems), targets=tuple(checks))


async def _checked(session: AsyncSession, registry: PluginRegistry, organization_id: str, data: PostInput) -> dict[str, Account]:
    check = await check_post(session, registry, organization_id, data)
    if not check.valid:
        raise UserErrors(list(check.problems))
    return await _load_accounts(session, organization_id, data)


def _check_campaign(campaign_id: str | None) -> None:
    # Campaigns arrive with their own issue; until a campaign can exist, no id can name one.
    if campaign_id is not None:
        raise UserError("CAMPAIGN_NOT_FOUND", f"No campaign {campaign_id[:60]!r} in this organization.", ["campaignId"])


def _content(data: PostInput) -> dict[str, Any]:
    return {
        "media_ids": list(data.media_ids),
        "overrides": dict(data.overrides),
        "thread": list(data.thread),
        "settings": {t.account_id: dict(t.settings) for t in data.targets},
    }


async def create_post(
    session: AsyncSession, registry: PluginRegistry, organization_id: str, data: PostInput, *, created_by_key_id: str | None
) -> Post:
    _check_campaign(data.campaign_id)
    accounts = await _checked(session, registry, organization_id, data)
    post = Post(
        id=new_id("post"),
        organization_id=organization_id,
        campaign_id=data.campaign_id,
        text=data.text,
        content=_content(data),
        created_by_key_id=created_by_key_id,
    )
    session.add(post)
    await session.flush()
    for target in data.targets:
        account = accounts[target.account_id]
        session.add(
            Target(id=new_id("tgt"), post_id=post.id, account_id=account.id, organization_id=organization_id, provider=account.provider)
        )
    await session.flush()
    return post


async def find_post(session: AsyncSession, organization_id: str, post_id: str) -> Post | None:
    return await find_owned(session, Post, "post", organization_id, post_id)


async def _owned_post(session: AsyncSession, organization_id: str, post_id: str) -> Post:
    return await require_owned(session, Post, "post", organization_id, post_id, code="POST_NOT_FOUND", noun="post")


async def targets_of(session: AsyncSession, post_ids: Sequence[str]) -> dict[str, list[Target]]:
    rows = (await session.execute(select(Target).where(Target.post_id.in_(post_ids)).order_by(Target.created_at, Target.id))).scalars()
    grouped: dict[str, list[Target]] = {post_id: [] for post_id in post_ids}
    for row in rows:
        grouped[row.post_id].append(row)
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
    session: AsyncSession, registry: PluginRegistry, organization_id: str, post_id: str, changes: Mapping[str, Any]
) -> Post:
    """Change a draft; ``changes`` holds only the PostInput fields the caller sent.

    Only a post all of whose targets are drafts can change: a target that is queued, publishing
    or published was validated (and may have gone out) with the content it has. The targets are
    read under their locks, so a publish committing meanwhile is seen, not overwritten.
    """
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    if any(t.status != "draft" for t in targets):
        raise Conflict("Only a draft can be edited; this post is already scheduled or published.", ["id"])
    current = input_of(post, targets)
    data = PostInput(**{**current.__dict__, **changes})
    if "campaign_id" in changes:
        _check_campaign(data.campaign_id)
    await _checked(session, registry, organization_id, data)
    post.text = data.text
    post.content = _content(data)
    post.campaign_id = data.campaign_id
    post.updated_at = utcnow()
    kept = {t.account_id: t for t in targets}
    wanted = [t.account_id for t in data.targets]
    for target in targets:
        if target.account_id not in wanted:  # a draft: no job counts it, nothing to cancel
            await session.delete(target)
    accounts = await _load_accounts(session, organization_id, data)
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


async def list_posts(session: AsyncSession, organization_id: str, filters: PostFilter, page: PageRequest) -> Page[Post]:
    query = select(Post).where(Post.organization_id == organization_id, Post.deleted_at.is_(None))
    if filters.status is not None:
        query = query.where(status_condition(filters.status))
    if filters.provider is not None:
        query = query.where(exists().where(Target.post_id == Post.id, Target.provider == filters.provider))
    if filters.account_id is not None:
        query = query.where(exists().where(Target.post_id == Post.id, Target.account_id == filters.account_id))
    if filters.campaign_id is not None:
        query = query.where(Post.campaign_id == filters.campaign_id)
    when = func.coalesce(Target.publish_at, Post.created_at)
    if filters.starts is not None:
        query = query.where(exists().where(Target.post_id == Post.id, when >= filters.starts))
    if filters.ends is not None:
        query = query.where(exists().where(Target.post_id == Post.id, when < filters.ends))
    return await paginate(session, query, Post, page)
