"""publishPost's hot path: a draft queued in Core statements built once (issue 21).

``queue.enqueue_post`` loads the post and its targets as ORM objects, creates the job through the
unit of work and flushes the targets' changes: right for every case it handles (a repeat, a
reschedule), and most of publishPost's CPU for the common one, a draft published once. Here that
case reads the post, its targets and their accounts as rows (one statement on SQLite), inserts
the job and updates the targets with one statement each, and records the same events; anything
else (a target already queued, an unknown post) returns None and ``enqueue_post`` decides.

The writes go out ``DEFERRED`` (nothing reads their result): on SQLite they travel with the
transaction's commit. The job comes back as its columns in a plain namespace, not an ORM object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.content import AccountFacts, PostValidator, derive_status, input_of, lock_targets
from gateway.core import is_id_of, new_id, utcnow
from gateway.engine import processing
from gateway.engine.jobs import post_status_change
from gateway.engine.rows import ACCOUNTS, JOBS, POSTS, TARGET_COLUMNS, TARGETS, target_rows, targets_of_posts
from gateway.events import BusEvent, record_job_event, seed_job_event_seqs
from gateway.storage import DEFERRED


def queued_values(job_id: str, when: datetime) -> dict[str, Any]:
    """What queueing writes on a target, by column: one list for the ORM path and this one."""
    cleared = SimpleNamespace()
    processing.clear(cleared)  # a retry uploads afresh
    return {
        "status": "scheduled", "job_id": job_id, "publish_at": when, "next_attempt_at": when, "attempt_count": 0,
        "error_code": None, "error_message": None, "lease_owner": None, "lease_expires_at": None, **vars(cleared),
    }


def mark_queued(target: Any, job_id: str, when: datetime) -> None:
    """Queue a target (an ORM object or an engine row) in memory, as its row is written."""
    for name, value in queued_values(job_id, when).items():
        setattr(target, name, value)


class _Draft(NamedTuple):
    """What queueing reads of a post (``content.input_of`` and the job's subject)."""

    id: str
    organization_id: str
    text: str
    content: dict[str, Any]
    campaign_id: str | None


_POST_COLUMNS = [POSTS.c[name] for name in _Draft._fields]
_THE_POST = and_(POSTS.c.id == bindparam("post_id"), POSTS.c.organization_id == bindparam("organization_id"), POSTS.c.deleted_at.is_(None))
# PostgreSQL: the post locked first, then its targets (as ``content.lock_post``), then read.
_LOCKED_POST = select(*_POST_COLUMNS).where(_THE_POST).with_for_update()
# SQLite (one writer: nothing to lock): the post, its targets and their accounts in one statement.
_DRAFT = (
    select(*_POST_COLUMNS, *(TARGETS.c[name] for name in TARGET_COLUMNS), ACCOUNTS.c.provider, ACCOUNTS.c.status)
    .select_from(
        POSTS.outerjoin(TARGETS, TARGETS.c.post_id == POSTS.c.id).outerjoin(
            ACCOUNTS, and_(ACCOUNTS.c.id == TARGETS.c.account_id, ACCOUNTS.c.organization_id == POSTS.c.organization_id)
        )
    )
    .where(_THE_POST)
    .order_by(TARGETS.c.created_at, TARGETS.c.id)
)
# Every target of the post is queued (none may be past draft, and the transaction holds them: one
# writer on SQLite, locked on PostgreSQL), so the post's id picks them: no list of ids to expand
# into the statement at each execution, as an IN (…) of bind parameters is.
_QUEUE_TARGETS = (
    update(TARGETS)
    .where(TARGETS.c.post_id == bindparam("queued_post_id"))
    .values({name: bindparam(f"new_{name}") for name in (*queued_values("", datetime.now(UTC)), "updated_at")})
    .execution_options(**DEFERRED)
)
_INSERT_JOB = JOBS.insert().execution_options(**DEFERRED)


async def _read_draft(session: AsyncSession, organization_id: str, post_id: str) -> tuple[_Draft, list[Any], dict[str, AccountFacts] | None] | None:
    """The post, its targets (engine rows, in creation order) and, on SQLite, their accounts' facts."""
    parameters = {"post_id": post_id, "organization_id": organization_id}
    if session.bind.dialect.name == "postgresql":
        locked = (await session.execute(_LOCKED_POST, parameters)).first()
        if locked is None:
            return None
        await lock_targets(session, TARGETS.c.post_id == locked.id)
        return _Draft(*locked), (await targets_of_posts(session, [locked.id]))[locked.id], None  # the checks read the accounts
    result = (await session.execute(_DRAFT, parameters)).all()
    if not result:
        return None
    post, width = _Draft(*result[0][: len(_Draft._fields)]), len(_Draft._fields)
    found = [values for values in result if values[width] is not None]  # a post without targets has one row of NULLs
    targets = target_rows(values[width:-2] for values in found)
    accounts = {t.account_id: AccountFacts(t.account_id, v[-2], v[-1]) for t, v in zip(targets, found, strict=True) if v[-2] is not None}
    return post, targets, accounts


async def enqueue_draft(
    session: AsyncSession, validator: PostValidator, organization_id: str, post_id: str, when: datetime
) -> tuple[Any, list[BusEvent]] | None:
    """Queue every target of a post none of whose targets is queued yet, as ``queue.enqueue_post``
    would: the new job (its columns as attributes) and its events. None for any other post."""
    if not is_id_of(post_id, "post") or (draft := await _read_draft(session, organization_id, post_id)) is None:
        return None
    post, targets, accounts = draft
    if any(t.status not in ("draft", "canceled") for t in targets):
        return None
    await validator.require(session, organization_id, input_of(post, targets), accounts=accounts)  # type: ignore[arg-type]
    now = utcnow()
    job = SimpleNamespace(
        id=new_id("job"), organization_id=organization_id, kind="publish", status="queued", subject_id=post.id, progress_done=0,
        progress_total=len(targets), result=None, error_code=None, error_message=None, started_at=None, finished_at=None,
        created_at=now, updated_at=now,
    )
    await session.execute(_INSERT_JOB, vars(job))
    seed_job_event_seqs(session, {job.id: None})  # a new job: no event stored yet
    before = derive_status([t.status for t in targets])
    for target in targets:
        mark_queued(target, job.id, when)
    if targets:
        new_values = {f"new_{name}": value for name, value in queued_values(job.id, when).items()}
        await session.execute(_QUEUE_TARGETS, {"queued_post_id": post.id, **new_values, "new_updated_at": now})
    payload = {"jobId": job.id, "postId": post.id, "publishAt": when.isoformat(), "targetIds": [t.id for t in targets]}
    events = [await record_job_event(session, organization_id, job.id, "job.queued", payload)]
    if (changed := await post_status_change(session, organization_id, post.id, job.id, before, targets)) is not None:
        events.append(changed)
    return job, events
