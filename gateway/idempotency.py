"""Idempotency keys for create mutations (24-hour window).

The first request with a key claims it (committed at once, so a concurrent duplicate sees the
claim), then does its work and records the result in the same transaction as the work itself: a
crash can never leave the work done but unrecorded. A duplicate waits for the first and returns
its recorded result; the same key with a different input is a user error. A claim whose holder
died is taken over once it is stale. A request that ends in user errors releases its claim, so
the caller can correct the input and retry with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import utcnow
from gateway.errors import UserError
from gateway.ids import new_id
from gateway.storage.database import Database
from gateway.storage.models import IdempotencyRecord

WINDOW = timedelta(hours=24)
# A claim older than this whose request never finished belongs to a dead worker.
STALE_CLAIM = timedelta(seconds=60)
POLL_INTERVAL = 0.05
MAX_KEY_LENGTH = 255

Work = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


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


async def _claim(database: Database, organization_id: str, operation: str, key: str, digest: str) -> IdempotencyRecord | None:
    """Claim the key, or return the existing live record (None means: we hold the claim)."""
    now = utcnow()
    async with database.write() as session:
        record = (await session.execute(_record(organization_id, operation, key))).scalar_one_or_none()
        stale = record is not None and (
            record.expires_at <= now or (record.status == "in_progress" and now - record.created_at > STALE_CLAIM)
        )
        if record is not None and not stale:
            return record
        if record is not None:
            await session.delete(record)
            await session.flush()
        session.add(
            IdempotencyRecord(
                id=new_id("idem"),
                organization_id=organization_id,
                operation=operation,
                key=key,
                request_hash=digest,
                created_at=now,
                expires_at=now + WINDOW,
            )
        )
    return None


async def run_idempotent(
    database: Database,
    organization_id: str,
    operation: str,
    key: str | None,
    payload: Any,
    work: Work,
    *,
    wait_timeout: float = 30.0,
) -> dict[str, Any]:
    """Run ``work`` once per (organization, operation, key); replays get the first result."""
    if key is None:
        async with database.write() as session:
            return await work(session)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise UserError("IDEMPOTENCY_KEY_INVALID", f"An idempotency key is 1 to {MAX_KEY_LENGTH} characters.", ["idempotencyKey"])
    digest = fingerprint(payload)
    deadline = asyncio.get_running_loop().time() + wait_timeout
    while True:
        try:
            existing = await _claim(database, organization_id, operation, key, digest)
        except IntegrityError:  # another request inserted the claim between our read and write
            existing = None
            await asyncio.sleep(POLL_INTERVAL)
            continue
        if existing is None:
            break
        if existing.request_hash != digest:
            raise _reused()
        if existing.status == "completed":
            return dict(existing.response or {})
        if asyncio.get_running_loop().time() > deadline:
            raise UserError(
                "IDEMPOTENCY_KEY_IN_USE", "A request with this idempotency key is still running; retry shortly.", ["idempotencyKey"]
            )
        await asyncio.sleep(POLL_INTERVAL)

    try:
        async with database.write() as session:
            result = await work(session)
            record = (await session.execute(_record(organization_id, operation, key))).scalar_one()
            record.status = "completed"
            record.response = result
        return result
    except BaseException:
        async with database.write() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.organization_id == organization_id,
                    IdempotencyRecord.operation == operation,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status == "in_progress",
                )
            )
        raise
