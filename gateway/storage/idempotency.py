"""Idempotency keys for create mutations (24-hour window).

The first request with a key claims it (committed at once, so a concurrent duplicate sees the
claim), then does its work and records the result in the same transaction as the work itself: a
crash can never leave the work done but unrecorded. A duplicate waits for the first — looking
with reads, never taking a write turn — and returns its recorded result; the same key with a
different input is a user error. A request that ends in user errors releases its claim, so the
caller can correct the input and retry with the same key.

A claim lives as long as its holder: while the work runs (a slow policy check, a large file) the
holder refreshes the claim's time every few seconds. A claim that has not been refreshed for
``STALE_CLAIM`` belongs to a dead worker and is taken over; the holder's result is then refused
in its own transaction, so the work is never recorded twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import Conflict, UserError, new_id, utcnow
from gateway.storage.database import Database
from gateway.storage.models import IdempotencyRecord

WINDOW = timedelta(hours=24)
# A claim not refreshed for this long belongs to a dead worker. (``created_at`` holds the time of
# the claim's last refresh while it is in progress.)
STALE_CLAIM = timedelta(seconds=60)
# How often a live holder refreshes its claim: several refreshes fit in STALE_CLAIM.
HEARTBEAT_SECONDS = STALE_CLAIM.total_seconds() / 6
POLL_INTERVAL = 0.05
MAX_KEY_LENGTH = 255

Work = Callable[[AsyncSession], Awaitable[dict[str, Any]]]
# How the work's transaction is run: at once by default, or by a runner that may run it more than
# once (``PostValidator.run``: it checks the post outside the transaction between two runs).
Runner = Callable[[Callable[[], Awaitable[dict[str, Any]]]], Awaitable[dict[str, Any]]]

log = logging.getLogger("socialgate.idempotency")


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _record(organization_id: str, operation: str, key: str) -> Any:
    return select(IdempotencyRecord).where(
        IdempotencyRecord.organization_id == organization_id,
        IdempotencyRecord.operation == operation,
        IdempotencyRecord.key == key,
    )


def _reused() -> UserError:
    return UserError(
        "IDEMPOTENCY_KEY_REUSED", "This idempotency key was used with a different input.", ["idempotencyKey"]
    )


def _is_live(record: IdempotencyRecord, now: datetime) -> bool:
    if record.expires_at <= now:
        return False
    return record.status == "completed" or now - record.created_at <= STALE_CLAIM


async def _claim(database: Database, organization_id: str, operation: str, key: str, digest: str) -> IdempotencyRecord | str:
    """Claim the key and return the claim's id, or return the live record that holds it.

    A live record is found with a read; only a missing or dead one costs a write transaction.
    """
    async with database.read() as session:
        record = (await session.execute(_record(organization_id, operation, key))).scalar_one_or_none()
    if record is not None and _is_live(record, utcnow()):
        return record
    now = utcnow()
    async with database.write() as session:
        record = (await session.execute(_record(organization_id, operation, key))).scalar_one_or_none()
        if record is not None and _is_live(record, now):
            return record
        if record is not None:
            await session.delete(record)
            await session.flush()
        claim_id = new_id("idem")
        session.add(
            IdempotencyRecord(
                id=claim_id,
                organization_id=organization_id,
                operation=operation,
                key=key,
                request_hash=digest,
                created_at=now,
                expires_at=now + WINDOW,
            )
        )
    return claim_id


async def _refresh(database: Database, claim_id: str) -> None:
    """Mark the claim alive now (a claim taken over or completed is left alone)."""
    async with database.write() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == claim_id, IdempotencyRecord.status == "in_progress")
            .values(created_at=utcnow())
        )


async def _keep_alive(database: Database, claim_id: str, done: asyncio.Event) -> None:
    """Refresh the claim every ``HEARTBEAT_SECONDS`` until ``done``; a failed refresh is retried.

    Stopped by an event rather than cancelled: a cancellation can be lost inside the write
    turn's ``wait_for`` (Python 3.11), and the holder must never wait on a heartbeat that missed it.
    """
    while True:
        try:
            await asyncio.wait_for(done.wait(), HEARTBEAT_SECONDS)
            return
        except TimeoutError:
            pass
        try:
            await _refresh(database, claim_id)
        except Exception:  # never the request's failure: the next beat tries again
            log.warning("could not refresh idempotency claim %s", claim_id, exc_info=True)


async def _direct(transaction: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    return await transaction()


async def run_idempotent(
    database: Database,
    organization_id: str,
    operation: str,
    key: str | None,
    payload: Any,
    work: Work,
    *,
    wait_timeout: float = 30.0,
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Run ``work`` once per (organization, operation, key); replays get the first result."""
    runner = runner or _direct
    if key is None:

        async def plain() -> dict[str, Any]:
            async with database.write() as session:
                return await work(session)

        return await runner(plain)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise UserError("IDEMPOTENCY_KEY_INVALID", f"An idempotency key is 1 to {MAX_KEY_LENGTH} characters.", ["idempotencyKey"])
    digest = fingerprint(payload)
    deadline = asyncio.get_running_loop().time() + wait_timeout
    while True:
        try:
            claimed = await _claim(database, organization_id, operation, key, digest)
        except IntegrityError:  # another request inserted the claim between our read and write
            await asyncio.sleep(POLL_INTERVAL)
            continue
        if isinstance(claimed, str):
            break
        if claimed.request_hash != digest:
            raise _reused()
        if claimed.status == "completed":
            return dict(claimed.response or {})
        if asyncio.get_running_loop().time() > deadline:
            raise UserError(
                "IDEMPOTENCY_KEY_IN_USE", "A request with this idempotency key is still running; retry shortly.", ["idempotencyKey"]
            )
        await asyncio.sleep(POLL_INTERVAL)

    async def transaction() -> dict[str, Any]:
        async with database.write() as session:
            result = await work(session)
            completed = await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == claimed, IdempotencyRecord.status == "in_progress")
                .values(status="completed", response=result)
            )
            if completed.rowcount != 1:  # our claim was taken over as dead: the other request's work counts
                raise Conflict("This idempotency key was taken over by a retry of this request; use its result.", ["idempotencyKey"])
        return result

    done = asyncio.Event()
    heartbeat = asyncio.create_task(_keep_alive(database, claimed, done), name=f"idempotency claim {claimed}")
    try:
        return await runner(transaction)
    except BaseException:
        async with database.write() as session:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id == claimed, IdempotencyRecord.status == "in_progress")
            )
        raise
    finally:
        done.set()
        await asyncio.shield(heartbeat)  # at most one refresh in flight; a cancelled caller leaves it to end alone
