"""The audit log: one entry per mutation, written so that a change never commits without it.

Why two writes: an entry must name the objects the mutation made (known only from its answer)
and how it ended, yet must not be lost if the process dies right after the mutation's own commit.
So the entry is first inserted, provisionally ``ok``, as the last statement of every write
transaction the mutation opens (``gateway.storage.staging.every_write_in_context``): it commits
with the change or not at all. When the mutation answers, ``record`` writes the final entry (ids,
outcome, error codes) over it, or inserts it when nothing was written (a refused or failed call).

Most mutations succeed, and a service that names the objects it writes for the answer
(``storage.name_answered``: createPost's post, publishPost's job) lets the provisional entry be
the final one already: it carries those ids, and ``record`` finds the row committed with the
change equal to the one it would write, and writes nothing. The second write (a turn of SQLite's
one writer) is left for mutations that failed, answered user errors, or named something else.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal
from gateway.core import BadInput, Page, PageRequest, Periodic, new_id, paginate, utcnow
from gateway.storage import DEFERRED, AuditEntry, Database, Organization, answered_ids, on_commit

OUTCOMES = ("ok", "user_errors", "error")
MAX_OBJECT_IDS = 50  # a bulk mutation names its first ids; the entry stays a row, not a dump
PRUNE_BATCH = 5_000  # rows deleted per statement, so pruning never holds the write lock long
PRUNE_INTERVAL = 3600.0  # seconds between two prunings

log = logging.getLogger("socialgate.audit")


@dataclass
class Draft:
    """An entry in the making: what is known when the mutation starts, completed when it answers."""

    organization_id: str
    actor_key_id: str
    actor_organization_id: str
    operation: str
    request_id: str | None
    object_ids: list[str] = field(default_factory=list)
    outcome: str = "ok"
    error_codes: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: new_id("aud"))
    created_at: datetime = field(default_factory=utcnow)
    final: bool = False  # the final entry is written: nothing is left to stage
    committed: dict[str, Any] | None = None  # the row a transaction of the mutation committed first

    @classmethod
    def of(cls, principal: Principal, operation: str, request_id: str | None) -> Draft:
        return cls(
            organization_id=principal.organization_id,
            actor_key_id=principal.api_key_id,
            actor_organization_id=principal.acting_from_organization_id or principal.organization_id,
            operation=operation,
            request_id=request_id,
        )

    def add_ids(self, ids: Sequence[str]) -> None:
        for object_id in ids:
            if object_id not in self.object_ids and len(self.object_ids) < MAX_OBJECT_IDS:
                self.object_ids.append(object_id)

    def row(self, answered: Sequence[str] = ()) -> dict[str, Any]:
        """The entry as a row; ``answered``: ids the mutation's transaction wrote for its answer."""
        object_ids = list(self.object_ids)
        for object_id in answered:
            if object_id not in object_ids and len(object_ids) < MAX_OBJECT_IDS:
                object_ids.append(object_id)
        return {
            "id": self.id,
            "organization_id": self.organization_id,
            "actor_key_id": self.actor_key_id,
            "actor_organization_id": self.actor_organization_id,
            "action": self.operation,
            "subject_id": object_ids[0] if object_ids else None,
            "details": {},
            "request_id": self.request_id,
            "created_at": self.created_at,
            "outcome": self.outcome,
            "object_ids": object_ids,
            "error_codes": list(self.error_codes),
        }


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(AuditEntry.__table__)


# Both statements are built once per dialect and given their rows as parameters: built per
# mutation, ``excluded`` alone (an alias with a proxy of every column) cost more than the write.
@functools.cache
def _provisional_insert(dialect: str) -> Any:
    # Its result is never read: on SQLite it travels with the commit (``storage.DEFERRED``).
    return _insert(dialect).on_conflict_do_nothing(index_elements=["id"]).execution_options(**DEFERRED)


@functools.cache
def _final_upsert(dialect: str) -> Any:
    insert = _insert(dialect)
    final = {name: insert.excluded[name] for name in ("subject_id", "outcome", "object_ids", "error_codes")}
    return insert.on_conflict_do_update(index_elements=["id"], set_=final)


async def stage_provisional(session: AsyncSession, draft: Draft) -> None:
    """Insert the entry as it stands, unless a transaction of the same mutation already did.

    Tasks the mutation started inherit its context and so this guest; once the final entry is
    written (``draft.final``) their transactions carry no statement of it.
    """
    if draft.final:
        return
    row = draft.row(answered_ids(session))
    await session.execute(_provisional_insert(session.get_bind().dialect.name), row)

    def stands() -> None:  # ON CONFLICT DO NOTHING: the first committed row is the one stored
        if draft.committed is None:
            draft.committed = row

    on_commit(session, stands)


class _FinalEntries:
    """The final entries of one database, written together (a group commit).

    Every mutation ends with its final entry, in a write transaction of its own: on SQLite a turn
    of the one writer for one row. Entries that arrive while one batch is written go together in
    the next, and each mutation still answers only once its entry is committed. The batch is
    written by a task of its own, so a caller that is cancelled (a client gone) never leaves the
    others' entries unwritten.
    """

    def __init__(self, database: Database) -> None:
        # Weakly: this object is the value of a WeakKeyDictionary keyed by the database, and a
        # strong reference back would keep every database (engines, pools) alive for good.
        self._database = weakref.ref(database)
        self._queued: list[tuple[Draft, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, draft: Draft) -> None:
        committed = asyncio.get_running_loop().create_future()
        self._queued.append((draft, committed))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="audit-final-entries")
        await committed

    async def _write_all(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                database = self._database()
                try:
                    if database is None:
                        raise RuntimeError("the database of these audit entries is gone")
                    async with database.write() as session:
                        await session.execute(_final_upsert(session.get_bind().dialect.name), [draft.row() for draft, _ in batch])
                except BaseException as error:
                    for _draft, committed in batch:
                        if not committed.done():
                            committed.set_exception(error if isinstance(error, Exception) else asyncio.CancelledError())
                    if not isinstance(error, Exception):
                        raise
                else:
                    for _draft, committed in batch:
                        if not committed.done():
                            committed.set_result(None)
        finally:
            self._writer = None
            for _draft, committed in self._queued:  # left by a writer cancelled at shutdown
                if not committed.done():
                    committed.set_exception(asyncio.CancelledError())


_FINAL_ENTRIES: weakref.WeakKeyDictionary[Database, _FinalEntries] = weakref.WeakKeyDictionary()


async def record(database: Database, draft: Draft) -> None:
    """Write the final entry, over the provisional one if a transaction of the mutation committed it.

    Nothing is written when the committed row already is the final entry (see the module).
    """
    if draft.committed is not None and draft.committed == draft.row():
        return
    writer = _FINAL_ENTRIES.get(database)
    if writer is None:
        writer = _FINAL_ENTRIES[database] = _FinalEntries(database)
    await writer.record(draft)


@dataclass(frozen=True)
class AuditFilter:
    actor_key_id: str | None = None
    operation: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def visible_organizations(principal: Principal) -> Any:
    """The organization acted in and its direct children: a parent reads its children's entries."""
    acted_in = principal.organization_id
    return select(Organization.id).where(or_(Organization.id == acted_in, Organization.parent_id == acted_in))


async def list_entries(session: AsyncSession, principal: Principal, filters: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
    for name, value in (("from", filters.since), ("to", filters.until)):
        if value is not None and value.tzinfo is None:
            raise BadInput(f"`filter.{name}` needs a UTC offset, e.g. 2026-01-01T00:00:00Z.", f"filter.{name}")
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise BadInput("`filter.from` must be before `filter.to`.", "filter.from")
    query = select(AuditEntry).where(AuditEntry.organization_id.in_(visible_organizations(principal)))
    if filters.actor_key_id is not None:
        query = query.where(AuditEntry.actor_key_id == filters.actor_key_id)
    if filters.operation is not None:
        query = query.where(AuditEntry.action == filters.operation)
    if filters.since is not None:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.created_at < filters.until)
    return await paginate(session, query, AuditEntry, page)


async def prune(database: Database, retention: timedelta, now: datetime | None = None) -> int:
    """Delete entries older than ``retention``, a batch per transaction; returns how many."""
    cutoff = (now or utcnow()) - retention
    removed = 0
    while True:
        async with database.write() as session:
            batch = select(AuditEntry.id).where(AuditEntry.created_at < cutoff).limit(PRUNE_BATCH)
            result = await session.execute(delete(AuditEntry).where(AuditEntry.id.in_(batch)))
        removed += result.rowcount or 0
        if (result.rowcount or 0) < PRUNE_BATCH:
            return removed


class AuditRetention:
    """The pruning chore: every ``interval`` seconds, entries older than the retention go.

    Every process runs it; deletes are idempotent, so two processes pruning at once only share the work.
    """

    def __init__(self, database: Database, *, retention_days: int, interval: float = PRUNE_INTERVAL) -> None:
        self.database = database
        self.retention = timedelta(days=retention_days)
        self._rounds = Periodic("audit retention", interval, self.prune_once, log, "pruning the audit log failed")

    async def prune_once(self) -> int:
        removed = await prune(self.database, self.retention)
        if removed:
            log.info("pruned audit entries past their retention", extra={"count": removed})
        return removed

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
