"""Rows staged during a write transaction and inserted together, by one call, just before it commits.

Why: a publish records several job events per target, and a round trip per row is what a hot
path pays for (``bench/publish_overhead.py`` counts SQL statements per post). A writer stages its
rows here; ``Database.write`` calls ``write_staged`` as the last statement of the transaction, so
the rows commit or roll back with everything else in it. The call is explicit in the transaction's
code rather than a global SQLAlchemy ``before_commit`` listener: nothing writes behind the back of
a session that did not ask for it, and a transaction that needs its staged rows earlier (to read
them back) calls ``write_staged`` itself.

A context may also ask that every write transaction it opens carry a row of its own
(``every_write_in_context``): a mutation's audit entry commits with whatever the mutation wrote,
whichever service wrote it, so a change never commits without its entry.
A service that writes an object its mutation will answer names it (``name_answered``), so that
guest can write the entry as the mutation will end it; ``Database.write`` runs the transaction's
``on_commit`` callbacks once it has committed, so the guest learns which of its rows stand.
A writer whose rows depend on everything the transaction staged (the webhook outbox: one lookup
of the endpoints for all of a transaction's events) stages a *finisher* instead; ``write_staged``
runs the transaction's finishers first, and the rows they stage are inserted with the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.sqlite_driver import DEFERRED

STAGED_ROWS = "socialgate_staged_rows"  # session.info: {table: [row, ...]}, in staging order
FINISHERS = "socialgate_staged_finishers"  # session.info: {name: finisher}, each run once per write_staged
ANSWERED = "socialgate_answered_ids"  # session.info: ids of objects written here that the mutation answers
ON_COMMIT = "socialgate_on_commit"  # session.info: callbacks run once the transaction has committed

Finisher = Callable[[AsyncSession], Awaitable[None]]

# Statements every write transaction of the current context runs before it commits. Each must be
# idempotent (an INSERT … ON CONFLICT DO NOTHING): a context may open several transactions.
TransactionGuest = Callable[[AsyncSession], Awaitable[None]]
_guests: ContextVar[tuple[TransactionGuest, ...]] = ContextVar("socialgate_transaction_guests", default=())


@contextmanager
def every_write_in_context(guest: TransactionGuest) -> Iterator[None]:
    """While the block runs, every write transaction it opens (and tasks it starts) runs ``guest`` last."""
    token = _guests.set((*_guests.get(), guest))
    try:
        yield
    finally:
        _guests.reset(token)


def stage_rows(session: AsyncSession, table: Table, *rows: dict[str, Any]) -> None:
    """Add rows to ``table``'s batch of this transaction; ``write_staged`` inserts them."""
    staged: dict[Table, list[dict[str, Any]]] = session.sync_session.info.setdefault(STAGED_ROWS, {})
    staged.setdefault(table, []).extend(rows)


def staged_count(session: AsyncSession) -> int:
    """How many rows wait for ``write_staged`` in this session."""
    return sum(len(rows) for rows in session.sync_session.info.get(STAGED_ROWS, {}).values())


def stage_finisher(session: AsyncSession, name: str, finish: Finisher) -> None:
    """Run ``finish`` once, at ``write_staged``, however many times it is staged under ``name``."""
    session.sync_session.info.setdefault(FINISHERS, {}).setdefault(name, finish)


def name_answered(session: AsyncSession, *ids: str) -> None:
    """Say that this transaction writes objects the mutation will answer (a new post, its job).

    Only a hint to the transaction's guests (the audit entry): a guest that knows the ids as it
    writes its row can write it final, and the mutation needs no second write once it answers.
    """
    session.sync_session.info.setdefault(ANSWERED, []).extend(ids)


def answered_ids(session: AsyncSession) -> list[str]:
    """The ids ``name_answered`` gave this transaction, in order."""
    return list(session.sync_session.info.get(ANSWERED, ()))


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once this transaction has committed (never if it rolls back)."""
    session.sync_session.info.setdefault(ON_COMMIT, []).append(callback)


def committed(session: AsyncSession) -> None:
    """Called by ``Database.write`` after the commit: run and forget the transaction's callbacks."""
    for callback in session.sync_session.info.pop(ON_COMMIT, ()):
        callback()


async def write_staged(session: AsyncSession) -> None:
    """Run the staged finishers, then insert every staged row: one multi-row INSERT per table
    (Core: the ORM's bulk path costs more per row)."""
    for finish in session.sync_session.info.pop(FINISHERS, {}).values():
        await finish(session)
    staged: dict[Table, list[dict[str, Any]]] = session.sync_session.info.pop(STAGED_ROWS, {})
    for table, rows in staged.items():
        if rows:  # nothing reads their result: on SQLite they travel with the commit
            await session.execute(insert(table), rows, execution_options=DEFERRED)
    for guest in _guests.get():
        await guest(session)
