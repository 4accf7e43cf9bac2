"""Targets and jobs as the publishing engine reads and writes them: plain rows, Core statements.

The engine claims and records outcomes for hundreds of targets a second. Loading each row as an
ORM object (identity map, instance state, attribute history) and writing it back through a
unit-of-work flush cost more CPU per post than the provider's HTTP call. Here a row is read into
a small mutable dataclass and written back by one executemany UPDATE per table, with only the
rows that changed. The attribute names are the models' own, so the rules that decide a target's
or a job's next state (``outcomes.RetryPolicy.apply``, ``jobs.refresh_job``, ``posts.derive_status``) work
on these rows and on ORM objects alike.

On PostgreSQL the engine locks targets before their jobs, in claims and in outcomes alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.content import group_by_post
from gateway.events import last_job_event_seq, seed_job_event_seqs
from gateway.storage import Account, Attempt, Job, MediaAsset, Post, Target

TARGETS: Table = Target.__table__  # type: ignore[assignment]
JOBS: Table = Job.__table__  # type: ignore[assignment]
ATTEMPTS: Table = Attempt.__table__  # type: ignore[assignment]
POSTS: Table = Post.__table__  # type: ignore[assignment]
ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
MEDIA: Table = MediaAsset.__table__  # type: ignore[assignment]


def _row_class(model: Any, name: str, doc: str) -> type:
    """A slotted dataclass with one field per column of ``model``'s table (timestamps aside), and
    ``saved``, the writable state as read, so only rows that changed are written.

    Derived, not declared: the model is the one list of a row's columns, and a column added to
    it reaches the engine's rows, reads and writes without a second list to keep in step.
    """
    columns = [(c.name, Any) for c in model.__table__.columns if c.name not in ("created_at", "updated_at")]
    row_type = make_dataclass(name, [*columns, ("saved", tuple, field(default=(), repr=False, compare=False))], slots=True)
    row_type.__doc__ = doc
    row_type.__module__ = __name__
    return row_type


TargetRow = _row_class(Target, "TargetRow", "A target as the engine changes it.")
JobRow = _row_class(Job, "JobRow", "A job as the engine changes it (progress, status, outcome).")


def _columns(row_type: type) -> list[str]:
    return [f.name for f in fields(row_type) if f.name != "saved"]


TARGET_COLUMNS = _columns(TargetRow)
JOB_COLUMNS = _columns(JobRow)
# What identifies a row, and never changes once written; the engine may change the rest.
TARGET_WRITABLE = tuple(c for c in TARGET_COLUMNS if c not in ("id", "post_id", "account_id", "organization_id", "provider", "job_id", "publish_at"))
JOB_WRITABLE = tuple(c for c in JOB_COLUMNS if c not in ("id", "organization_id", "kind", "subject_id"))


def _writable_state(row: Any, writable: Sequence[str]) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in writable)


def _rows(row_type: type, writable: Sequence[str], result: Iterable[Any]) -> list[Any]:
    rows = []
    for values in result:
        row = row_type(*values)
        row.saved = _writable_state(row, writable)
        rows.append(row)
    return rows


def target_select() -> Any:
    """SELECT every column a TargetRow holds; add the WHERE."""
    return select(*(TARGETS.c[name] for name in TARGET_COLUMNS))


def target_rows(result: Iterable[Any]) -> list[TargetRow]:
    """TargetRows from rows of ``TARGET_COLUMNS``' values, in that order (a join's slice of them)."""
    return _rows(TargetRow, TARGET_WRITABLE, result)


async def read_targets(session: AsyncSession, query: Any) -> list[TargetRow]:
    """The targets ``query`` (from ``target_select``, or an UPDATE returning the same columns) finds."""
    return _rows(TargetRow, TARGET_WRITABLE, (await session.execute(query)).all())


# Statements of every round, built once: one built per round costs its construction and its
# cache key each time (``bench/publish_overhead.py --profile``).
_TARGETS_OF_POSTS = (
    target_select().where(TARGETS.c.post_id.in_(bindparam("post_ids", expanding=True))).order_by(TARGETS.c.created_at, TARGETS.c.id)
)
_JOBS_WITH_LAST_SEQ = select(*(JOBS.c[name] for name in JOB_COLUMNS), last_job_event_seq(JOBS.c.id)).where(
    JOBS.c.id.in_(bindparam("job_ids", expanding=True))
)


async def targets_of_posts(session: AsyncSession, post_ids: Sequence[str]) -> dict[str, list[TargetRow]]:
    """Every target of these posts, grouped by post in creation order (as ``posts.targets_of``)."""
    rows = _rows(TargetRow, TARGET_WRITABLE, (await session.execute(_TARGETS_OF_POSTS, {"post_ids": list(post_ids)})).all())
    return group_by_post(post_ids, rows)


async def lock_job_rows(session: AsyncSession, job_ids: Iterable[str | None]) -> dict[str, JobRow]:
    """Jobs whose progress and events this transaction writes, locked on PostgreSQL, their event
    numbering readied (``events.seed_job_event_seqs``) by the same query.

    Events are numbered per job from the last stored one: two transactions writing events of
    one job must take turns or both would take the same number. SQLite's single writer already
    makes them; PostgreSQL needs the row lock (in id order, so two lockers never deadlock). A
    target without a job brings ``None``, which is passed over.
    """
    wanted = sorted({job_id for job_id in job_ids if job_id})
    if not wanted:
        return {}
    columns = [JOBS.c[name] for name in JOB_COLUMNS]
    if session.bind.dialect.name != "postgresql":  # one writer at a time: the number read with the row stays the last
        result = (await session.execute(_JOBS_WITH_LAST_SEQ, {"job_ids": wanted})).all()
        seed_job_event_seqs(session, {values[0]: values[-1] for values in result})
        return {row.id: row for row in _rows(JobRow, JOB_WRITABLE, (values[:-1] for values in result))}
    # Read committed: a subquery in the locking SELECT would see the snapshot from before it
    # waited for the lock, so the last numbers are read once the locks are held.
    locked = (await session.execute(select(*columns).where(JOBS.c.id.in_(wanted)).order_by(JOBS.c.id).with_for_update())).all()
    last = (await session.execute(select(JOBS.c.id, last_job_event_seq(JOBS.c.id)).where(JOBS.c.id.in_(wanted)))).all()
    seed_job_event_seqs(session, dict(last))
    return {row.id: row for row in _rows(JobRow, JOB_WRITABLE, locked)}


# The number the Attempt of a call starting now takes: one more than the attempts its target has,
# read by the very statement that starts the call (``read_started_targets``), not by a query of its own.
# The target's id is named with its table: in an UPDATE's RETURNING, SQLAlchemy leaves the updated
# table's columns unqualified, and a bare `id` inside the subquery would be the attempt's own.
NEXT_ATTEMPT_NUMBER = (
    select(func.count()).where(ATTEMPTS.c.target_id == literal_column(f"{TARGETS.name}.id")).scalar_subquery() + 1
).label("next_attempt_number")


# A target's attempt count once its call starts: one more, unless the call is a poll of a
# processing target (``engine.processing``), which is no new attempt at publishing.
STARTED_ATTEMPT_COUNT = TARGETS.c.attempt_count + case((TARGETS.c.processing_handle.is_(None), 1), else_=0)


async def read_started_targets(session: AsyncSession, statement: Any) -> tuple[list[TargetRow], dict[str, int]]:
    """The targets an UPDATE starting their calls changed, and the number each one's Attempt takes."""
    result = (await session.execute(statement.returning(*(TARGETS.c[name] for name in TARGET_COLUMNS), NEXT_ATTEMPT_NUMBER))).all()
    targets = _rows(TargetRow, TARGET_WRITABLE, (values[:-1] for values in result))
    return targets, {target.id: values[-1] for target, values in zip(targets, result, strict=True)}


def _update_by_id(table: Table, writable: Sequence[str]) -> Any:
    # Bound names carry a prefix: SQLAlchemy reserves a column's own name in an UPDATE's SET.
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(f"new_{name}") for name in (*writable, "updated_at")})
    )


UPDATE_TARGET = _update_by_id(TARGETS, TARGET_WRITABLE)
UPDATE_JOB = _update_by_id(JOBS, JOB_WRITABLE)


async def _save(session: AsyncSession, statement: Any, writable: Sequence[str], rows: Iterable[Any], now: datetime) -> int:
    changes = []
    for row in rows:
        state = _writable_state(row, writable)
        if state != row.saved:
            values = {f"new_{name}": value for name, value in zip(writable, state, strict=True)}
            values["row_id"], values["new_updated_at"] = row.id, now
            changes.append(values)
            row.saved = state
    if changes:
        await session.execute(statement, changes)
    return len(changes)


FINISH_ATTEMPT = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in ("finished_at", "outcome", "error_code", "error_message", "http_status")})
)


def finished_attempt(
    attempt_id: str, at: datetime, outcome: str, error_code: str | None = None, error_message: str | None = None,
    http_status: int | None = None,
) -> dict[str, Any]:
    """One row of ``finish_attempts``."""
    return {
        "row_id": attempt_id, "new_finished_at": at, "new_outcome": outcome, "new_error_code": error_code,
        "new_error_message": error_message, "new_http_status": http_status,
    }


async def next_attempt_numbers(session: AsyncSession, target_ids: Sequence[str]) -> dict[str, int]:
    """The number each target's next Attempt takes: one more than the attempts it already has."""
    counts = dict(
        (await session.execute(
            select(ATTEMPTS.c.target_id, func.count()).where(ATTEMPTS.c.target_id.in_(target_ids)).group_by(ATTEMPTS.c.target_id)
        )).all()
    )
    return {target_id: counts.get(target_id, 0) + 1 for target_id in target_ids}


async def finish_attempts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Close attempts (rows from ``finished_attempt``) in one statement."""
    if rows:
        await session.execute(FINISH_ATTEMPT, rows)


@dataclass(slots=True)
class AccountChange:
    """An account's rate-limit state as a batch of outcomes moves it; written only if it moved.

    The status was read without a lock, so the write is conditional: an account disconnected or
    expired meanwhile keeps that status.
    """

    id: str
    status: str
    rate_limited_until: datetime | None = None
    changed: bool = False

    def rate_limit(self, until: datetime) -> None:
        if self.status in ("active", "rate_limited"):
            self.status, self.rate_limited_until, self.changed = "rate_limited", until, True

    def lift_rate_limit(self) -> None:
        if self.status == "rate_limited":
            self.status, self.rate_limited_until, self.changed = "active", None, True


async def save_accounts(session: AsyncSession, accounts: Iterable[AccountChange], now: datetime) -> None:
    for account in accounts:
        if account.changed:
            await session.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account.id, ACCOUNTS.c.status.in_(("active", "rate_limited")))
                .values(status=account.status, rate_limited_until=account.rate_limited_until, updated_at=now)
            )
            account.changed = False


def release_claims(now: datetime, *where: Any) -> Any:
    """An UPDATE handing claimed targets whose call never started back to the queue.

    Such a claim consumed no attempt (the Attempt row is written when the call starts), so the
    target goes back as it was: ``processing`` when it was a poll (it keeps its handle),
    ``retry_pending`` when an earlier attempt failed (its error is kept), ``scheduled``
    otherwise; its due time is unchanged, so it stays first in line.
    """
    return (
        update(TARGETS)
        .where(TARGETS.c.status == "publishing", *where)
        .values(
            status=case(
                (TARGETS.c.processing_handle.is_not(None), "processing"), (TARGETS.c.error_code.is_(None), "scheduled"), else_="retry_pending"
            ),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


async def save_targets(session: AsyncSession, rows: Iterable[TargetRow], now: datetime) -> int:
    """Write the targets that changed since they were read, in one statement; returns how many."""
    return await _save(session, UPDATE_TARGET, TARGET_WRITABLE, rows, now)


async def save_jobs(session: AsyncSession, rows: Iterable[JobRow], now: datetime) -> int:
    """Write the jobs that changed since they were read, in one statement; returns how many."""
    return await _save(session, UPDATE_JOB, JOB_WRITABLE, rows, now)


__all__ = [
    "ACCOUNTS", "ATTEMPTS", "JOBS", "MEDIA", "POSTS", "STARTED_ATTEMPT_COUNT", "TARGETS", "TARGET_COLUMNS", "AccountChange", "JobRow", "TargetRow",
    "finish_attempts", "finished_attempt", "lock_job_rows", "next_attempt_numbers", "read_started_targets", "read_targets", "release_claims", "save_accounts", "save_jobs", "save_targets",
    "target_select", "targets_of_posts",
]
