"""Checking a post before it is written or queued, without holding the write transaction meanwhile.

A post is validated for every target against that target's provider — text after the provider's
override, measured in the provider's own unit; media count, kinds and sizes; thread length;
per-post settings — and policy plugins' ``validate_post`` hooks, and every problem of every
target is reported at once. Nothing is written unless there are none.

Policy hooks may be slow (a moderation API). They run outside the write transaction, on what it
read; inside it the command reads again (cheap queries, no hooks) and writes only when what was
checked is still what it is about to write. See ``PostValidator``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import Conflict, UserError, UserErrors, is_id_of
from gateway.plugins import PluginRegistry
from gateway.storage import Account, Database, MediaAsset
from providers import DraftMedia, Issue, PostDraft, Provider, validate_draft

MAX_TEXT_CHARACTERS = 100_000
MAX_TARGETS = 50
MAX_MEDIA = 20
MAX_THREAD_PARTS = 100
MAX_SETTINGS_KEYS = 50


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


async def _load_media(
    session: AsyncSession, organization_id: str, media_ids: Sequence[str], *, share_lock: bool = False
) -> tuple[list[MediaAsset], list[UserError]]:
    wanted = [m for m in media_ids if is_id_of(m, "med")]
    rows = {}
    if wanted:
        query = select(MediaAsset).where(
            MediaAsset.id.in_(wanted), MediaAsset.organization_id == organization_id, MediaAsset.deleted_at.is_(None)
        )
        if share_lock and session.bind.dialect.name == "postgresql":
            # deleteMedia locks the row for update: it waits for this post, or this post sees it gone.
            query = query.order_by(MediaAsset.id).with_for_update(read=True).execution_options(populate_existing=True)
        rows = {row.id: row for row in (await session.execute(query)).scalars()}
    return [rows[m] for m in media_ids if m in rows], _media_problems(media_ids, rows)


def _media_problems(media_ids: Sequence[str], found: Mapping[str, Any]) -> list[UserError]:
    return [
        UserError("MEDIA_NOT_FOUND", f"No media {media_id[:60]!r} in this organization.", ["mediaIds", str(index)])
        for index, media_id in enumerate(media_ids)
        if media_id not in found
    ]


_ACCOUNTS = Account.__table__
# Built once, parameters bound per call: building the statement (its IN, its comparison) cost more
# than running it.
_ACCOUNT_FACTS = select(_ACCOUNTS.c.id, _ACCOUNTS.c.provider, _ACCOUNTS.c.status).where(
    _ACCOUNTS.c.id.in_(bindparam("account_ids", expanding=True)), _ACCOUNTS.c.organization_id == bindparam("organization_id")
)


async def _account_facts(session: AsyncSession, organization_id: str, account_ids: Sequence[str]) -> dict[str, AccountFacts]:
    """The three columns a check reads, as plain values: never the account's credential blob or an ORM row."""
    if not account_ids:
        return {}
    result = await session.execute(_ACCOUNT_FACTS, {"account_ids": list(account_ids), "organization_id": organization_id})
    return {row.id: AccountFacts(row.id, row.provider, row.status) for row in result.all()}


async def _load_accounts(session: AsyncSession, organization_id: str, data: PostInput) -> dict[str, AccountFacts]:
    return await _account_facts(session, organization_id, [t.account_id for t in data.targets if is_id_of(t.account_id, "acct")])


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


@dataclass(frozen=True)
class AccountFacts:
    """What a check knows of a target account; plain values, valid after its session is gone."""

    id: str
    provider: str
    status: str


@dataclass(frozen=True)
class Facts:
    """What a check reads from the database for one input: its media and its target accounts.

    Plain values, not rows: a check runs after the session that read them has closed.
    """

    data: PostInput
    media_ids: tuple[str, ...]  # of the media found, in the order of ``media``
    media: tuple[DraftMedia, ...]
    media_problems: list[UserError]
    accounts: dict[str, AccountFacts]

    @cached_property
    def version(self) -> str:
        """The input and every fact the check looks at: equal versions, equal verdicts."""
        facts = {
            "input": {**self.data.__dict__, "targets": [t.__dict__ for t in self.data.targets]},
            "media": [(media_id, item.__dict__) for media_id, item in zip(self.media_ids, self.media, strict=True)],
            "accounts": sorted((a.id, a.provider, a.status) for a in self.accounts.values()),
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


async def read_facts(
    session: AsyncSession, organization_id: str, data: PostInput, *, share_lock: bool = False, accounts: dict[str, AccountFacts] | None = None
) -> Facts:
    """``accounts``: the target accounts' facts, when the caller read them in this transaction
    already (publishPost reads them with the post and its targets, in one statement)."""
    media, media_problems = await _load_media(session, organization_id, data.media_ids, share_lock=share_lock)
    if accounts is None:
        accounts = await _load_accounts(session, organization_id, data)
    return Facts(
        data,
        tuple(asset.id for asset in media),
        tuple(_describe(asset) for asset in media),
        media_problems,
        accounts,
    )


async def read_facts_many(session: AsyncSession, organization_id: str, inputs: Sequence[PostInput]) -> list[Facts]:
    """``read_facts`` for many inputs in two queries: bulk creation and imports check hundreds at once."""
    media_ids = list(dict.fromkeys(m for data in inputs for m in data.media_ids if is_id_of(m, "med")))
    account_ids = list(dict.fromkeys(t.account_id for data in inputs for t in data.targets if is_id_of(t.account_id, "acct")))
    media: dict[str, MediaAsset] = {}
    if media_ids:
        query = select(MediaAsset).where(
            MediaAsset.id.in_(media_ids), MediaAsset.organization_id == organization_id, MediaAsset.deleted_at.is_(None)
        )
        media = {row.id: row for row in (await session.execute(query)).scalars()}
    accounts = await _account_facts(session, organization_id, account_ids)
    facts = []
    for data in inputs:
        found = [media[m] for m in data.media_ids if m in media]
        facts.append(Facts(
            data, tuple(a.id for a in found), tuple(_describe(a) for a in found), _media_problems(data.media_ids, media),
            {t.account_id: accounts[t.account_id] for t in data.targets if t.account_id in accounts},
        ))
    return facts


async def evaluate(registry: PluginRegistry, facts: Facts) -> PostCheck:
    """Validate the input ``facts`` were read for; runs the policy hooks, touches no database."""
    data = facts.data
    providers = registry.providers
    problems = _post_level_problems(data) + facts.media_problems
    accounts = facts.accounts
    for provider_id in data.overrides:
        if provider_id not in providers:
            problems.append(UserError("UNKNOWN_PROVIDER", f"No provider {provider_id[:60]!r}.", ["overrides", provider_id]))
    described = facts.media
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


async def dry_run(database: Database, registry: PluginRegistry, organization_id: str, data: PostInput) -> PostCheck:
    """``validatePost``: the facts are read and the session closed before the hooks run, so a slow
    hook holds no pooled connection."""
    async with database.read() as session:
        facts = await read_facts(session, organization_id, data)
    return await evaluate(registry, facts)


# -- checking outside the write transaction -------------------------------------------------------

T = TypeVar("T")
# A post that changed under each of this many checks in a row is answered with a conflict.
MAX_CHECKS = 3


class _CheckFirst(Exception):
    """Raised inside a write transaction (which it rolls back): its input needs checking outside it."""

    def __init__(self, facts: Facts) -> None:
        super().__init__("check outside the transaction first")
        self.facts = facts


class PostValidator:
    """Checks a command's post outside its write transaction, and confirms the check inside it.

    The command runs its transaction through ``run``; inside, it calls ``require`` with what it
    is about to write. Without a verdict for exactly that input and those facts, ``require``
    rolls the transaction back, the hooks run with no transaction open, and the transaction runs
    again — reading everything afresh, under its locks. If the post (or its media, or an
    account) changed meanwhile, the versions differ and it is checked again; a post that keeps
    changing is a ``Conflict``. With no policy hook installed, checking is quick and local, and
    happens inside the transaction at once.
    """

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self._verdicts: dict[str, PostCheck] = {}

    async def require(
        self, session: AsyncSession, organization_id: str, data: PostInput, *, accounts: dict[str, AccountFacts] | None = None
    ) -> dict[str, AccountFacts]:
        """Inside the transaction: raise ``data``'s problems, else return its target accounts by id.

        ``accounts``: what ``read_facts`` would read of the target accounts (the organization's
        accounts among them, by id), read by the caller in this transaction."""
        facts = await read_facts(session, organization_id, data, share_lock=True, accounts=accounts)
        if not self.registry.has_policy_hooks():
            check = await evaluate(self.registry, facts)
        elif (check := self._verdicts.get(facts.version)) is None:
            raise _CheckFirst(facts)
        if not check.valid:
            raise UserErrors(list(check.problems))
        return facts.accounts

    async def check_many(self, database: Database, organization_id: str, inputs: Sequence[PostInput]) -> None:
        """Check many posts now, outside any transaction, keeping each verdict for ``require``.

        A command that queues many posts in one transaction (a campaign's plan) checks them all
        first: otherwise each unchecked post would roll that transaction back once, and the
        ``MAX_CHECKS``-th would make it a conflict.
        """
        async with database.read() as session:
            facts = await read_facts_many(session, organization_id, inputs)
        for item in facts:
            self._verdicts[item.version] = await evaluate(self.registry, item)

    async def run(self, transaction: Callable[[], Awaitable[T]]) -> T:
        """Run ``transaction`` until it finds its post checked as it stands (``MAX_CHECKS`` checks at most)."""
        for checks in range(MAX_CHECKS + 1):
            try:
                return await transaction()
            except _CheckFirst as needed:
                if checks == MAX_CHECKS:
                    break
                self._verdicts[needed.facts.version] = await evaluate(self.registry, needed.facts)
        raise Conflict("The post kept changing while it was being checked; look at it again and retry.")
