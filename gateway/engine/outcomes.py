"""Outcomes: what a call's answer does to its target, its account and its job, in one transaction.

The retry policy (what retries, when, and when the engine gives up) and the write of a batch of
outcomes live here. The group commit that gathers a batch, and the claims that refill the call
slots it frees in the same transaction, are the scheduler's: they are about when to write, this
module about what.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select

from gateway.content import derive_status
from gateway.engine import processing
from gateway.engine.calls import Outcome
from gateway.engine.jobs import post_status_change, refresh_job
from gateway.engine.rows import (
    ACCOUNTS,
    ATTEMPTS,
    TARGETS,
    AccountChange,
    JobRow,
    TargetRow,
    finish_attempts,
    finished_attempt,
    save_accounts,
    save_targets,
    targets_of_posts,
)
from gateway.events import BusEvent, record_job_event
from providers import RateLimited

log = logging.getLogger("socialgate.scheduler")

DEFAULT_RATE_LIMIT_WAIT = 60.0
MAX_ERROR_MESSAGE = 2_000
OUTCOME_BATCH = 64


@dataclass
class PendingOutcome:
    """An outcome waiting for the group commit; ``done`` tells its caller whether it was written."""

    target_id: str
    attempt_id: str
    outcome: Outcome
    done: asyncio.Future[bool]


@dataclass
class RetryPolicy:
    """When a target is tried again after an outcome, and when the engine gives up on it."""

    base_seconds: float
    max_seconds: float
    max_attempts: int
    # Tests replace this to make backoff deterministic.
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))

    def backoff(self, failures: int) -> timedelta:
        seconds = min(self.max_seconds, self.base_seconds * 2 ** max(0, failures - 1))
        return timedelta(seconds=seconds * self.jitter())

    def apply(self, target: TargetRow, account: AccountChange, outcome: Outcome, now: datetime) -> None:
        """Move the target (and its account's rate limit) to where this outcome leaves them."""
        if outcome.kind == "success" and outcome.result is not None:
            target.status = "published"
            target.platform_post_id = outcome.result.platform_post_id
            target.platform_url = outcome.result.url
            target.published_at = now
            target.error_code = target.error_message = None
            target.next_attempt_at = None
            processing.clear(target)
            account.lift_rate_limit()
            return
        if outcome.kind != "processing":
            target.error_code = outcome.code or (outcome.error.code if outcome.error else "ERROR")
            target.error_message = (outcome.message or (outcome.error.message if outcome.error else ""))[:MAX_ERROR_MESSAGE]
        wait = outcome.error.retry_after if isinstance(outcome.error, RateLimited) and outcome.error.retry_after else DEFAULT_RATE_LIMIT_WAIT
        if outcome.kind == "rate_limited":
            account.rate_limit(now + timedelta(seconds=wait))
        poll_delay = {"rate_limited": timedelta(seconds=wait), "transient": self.backoff(1)}.get(outcome.kind, timedelta(0))
        if processing.wait(target, outcome, now, poll_delay):  # Processing, or a poll's passing trouble
            return
        processing.clear(target)  # any other outcome leaves the processing path
        if outcome.kind == "rate_limited":
            target.status = "retry_pending"
            target.next_attempt_at = now + timedelta(seconds=wait)
            # Rate limits do not count against the retry ladder: the platform told us when.
            target.attempt_count = max(0, target.attempt_count - 1)
        elif outcome.kind == "transient":
            if target.attempt_count >= self.max_attempts:
                target.status = "failed"
                target.error_message = f"Gave up after {target.attempt_count} attempts: {target.error_message}"[:MAX_ERROR_MESSAGE]
                target.next_attempt_at = None
            else:
                target.status = "retry_pending"
                target.next_attempt_at = now + self.backoff(target.attempt_count)
        elif outcome.kind == "auth_expired":  # refreshed: try again at once
            target.status = "retry_pending"
            target.next_attempt_at = now
        elif outcome.kind == "unconfirmed":
            target.status = "unconfirmed"
            target.next_attempt_at = None
        else:  # rejected, or anything else final
            target.status = "failed"
            target.next_attempt_at = None


_OUTCOME_ATTEMPTS = (
    select(ATTEMPTS.c.id, ATTEMPTS.c.target_id, ATTEMPTS.c.number, ATTEMPTS.c.finished_at,
           TARGETS.c.post_id, TARGETS.c.job_id, ACCOUNTS.c.status.label("account_status"))
    .join_from(ATTEMPTS, TARGETS, TARGETS.c.id == ATTEMPTS.c.target_id)
    .join(ACCOUNTS, ACCOUNTS.c.id == TARGETS.c.account_id)
    .where(ATTEMPTS.c.id.in_(bindparam("attempt_ids", expanding=True)))
    .order_by(TARGETS.c.id)
)  # built once, as every round runs it
_OUTCOME_ATTEMPTS_LOCKED = _OUTCOME_ATTEMPTS.with_for_update(of=TARGETS)


async def lock_outcome_targets(session: Any, batch: list[PendingOutcome], *, lock: bool) -> dict[str, Row[Any]]:
    """The batch's attempts with their targets' post, job and account status; with ``lock`` (PostgreSQL) the targets locked, in id order."""
    query = _OUTCOME_ATTEMPTS_LOCKED if lock else _OUTCOME_ATTEMPTS
    return {row.id: row for row in await session.execute(query, {"attempt_ids": [item.attempt_id for item in batch]})}


async def write_outcomes(
    session: Any, batch: list[PendingOutcome], attempts: dict[str, Row[Any]], jobs: dict[str, JobRow],
    events: list[BusEvent], now: datetime, policy: RetryPolicy,
) -> dict[str, bool]:
    """One transaction's outcomes; for each attempt, whether it still held its target's lease.

    The batch's targets and their jobs are locked by the caller: the lease each outcome is
    checked against cannot move meanwhile, and the job's progress is written by one transaction
    at a time. The posts' other targets are read unlocked, after the job lock: whatever changes
    them with effect on progress (another outcome, a cancel) holds that lock too.
    """
    siblings = await targets_of_posts(session, sorted({a.post_id for a in attempts.values()}))
    targets = {t.id: t for post_targets in siblings.values() for t in post_targets}
    finished: list[dict[str, Any]] = []
    accounts: dict[str, AccountChange] = {}
    results = {}
    for item in batch:
        attempt = attempts.get(item.attempt_id)
        target = targets.get(item.target_id) if attempt is not None and attempt.target_id == item.target_id else None
        if target is None or target.status != "publishing" or target.lease_owner != item.attempt_id:
            log.warning("lease on %s lost before its outcome (%s) was recorded", item.target_id, item.outcome.kind)
            if attempt is not None and attempt.finished_at is None:
                finished.append(finished_attempt(attempt.id, now, "lease_lost"))
            results[item.attempt_id] = False
            continue
        outcome = item.outcome
        error = outcome.error
        post_targets = siblings[target.post_id]
        # A check on a processing target is no new step of the post: it was processing before it.
        polled = processing.Polled.of(target)
        before = derive_status([polled.status if t is target else t.status for t in post_targets])
        finished.append(finished_attempt(
            attempt.id, now, outcome.kind, outcome.code or (error.code if error else None),
            (outcome.message or (error.message if error else None) or "")[:MAX_ERROR_MESSAGE] or None,
            error.http_status if error else None,
        ))
        account = accounts.setdefault(target.account_id, AccountChange(target.account_id, attempt.account_status))
        policy.apply(target, account, outcome, now)
        target.lease_owner = target.lease_expires_at = None
        job = jobs.get(target.job_id) if target.job_id else None
        if job is not None:
            payload = {
                "targetId": target.id, "postId": target.post_id, "provider": target.provider, "status": target.status,
                "attempt": attempt.number, "errorCode": target.error_code, "errorMessage": target.error_message,
                "platformPostId": target.platform_post_id, "platformUrl": target.platform_url,
                "nextAttemptAt": target.next_attempt_at.isoformat() if target.next_attempt_at else None,
            }
            if target.status == "processing":  # what people see while the platform works: its stage, the next check
                payload["stage"] = target.processing_stage
            if not polled.unchanged(target):  # a check that found nothing new says nothing
                events.append(await record_job_event(session, target.organization_id, job.id, f"target.{target.status}", payload))
            changed = await post_status_change(session, target.organization_id, target.post_id, job.id, before, post_targets)
            if changed is not None:
                events.append(changed)
            if job.subject_id == target.post_id:  # a publish job: its targets are this post's
                await refresh_job(session, job, events, post_targets)
            else:  # a job over other targets too: they are read back, so write ours first
                await save_targets(session, targets.values(), now)
                await refresh_job(session, job, events)
        results[item.attempt_id] = True
    await finish_attempts(session, finished)
    await save_targets(session, targets.values(), now)
    await save_accounts(session, accounts.values(), now)
    return results
