"""Provider quotas: hold a post back until the platform's quota has room, rather than let the platform refuse it.

A provider declares its posting quotas (``providers.Quota``: Instagram's 50 posts per 24 hours
per account, YouTube's 10,000 units a day per app of which an upload costs 1,600). The quota's
use is read from the database, not counted in memory: every call that went out has an Attempt
row, started at the moment it went out, so the publish Attempts of the quota's window (not the
polls of a processing publish, reconciles or deletes) are what the platform has counted, whichever process or worker made them and across restarts. A failed call
counts too: platforms that meter calls count it, and for those that count posts the gateway errs
on the side of waiting.

When a due target's quota is spent, the claim leaves it and moves its ``next_attempt_at`` to the
moment the oldest counted call leaves the window (a ``target.deferred`` job event says why and
until when), so it is neither claimed nor read again before then and no attempt is used up. On
PostgreSQL, claims of one quota are serialized by a transaction-scoped advisory lock, so two
workers cannot both spend the last unit; SQLite writers are serialized already.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update

from gateway.engine.rows import ATTEMPTS, TARGETS
from gateway.events import BusEvent, record_job_event
from gateway.plugins import PluginRegistry
from providers import Quota


@dataclass(frozen=True)
class Deferral:
    """A due target whose quota is spent: not claimed, due again at ``until``.

    ``row`` is the due query's row (``id``, ``provider``, ``account_id``, ``job_id``…).
    """

    row: Any
    until: datetime
    quota: Quota


def _scope_key(quota: Quota, provider: str, account_id: str) -> tuple[str, str]:
    return (provider, account_id if quota.scope == "account" else "*")


def _lock_id(provider: str, scope: str) -> int:
    """A stable signed 64-bit advisory-lock key for one quota scope (``hash()`` differs per process)."""
    digest = hashlib.blake2b(f"socialgate.quota:{provider}:{scope}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class QuotaGate:
    """Decides, inside a claim's transaction, which due targets their quotas let start now."""

    def __init__(self, plugins: PluginRegistry, *, postgres: bool) -> None:
        self.plugins = plugins
        self.postgres = postgres

    def quotas_of(self, provider_id: str) -> tuple[Quota, ...]:
        provider = self.plugins.get(provider_id)
        # Only quotas on publishing hold a post back (Threads' 100 deletes a day do not).
        return tuple(q for q in provider.limits.quotas if q.operation == "publish") if provider is not None else ()

    async def check(self, session: Any, now: datetime, rows: list[Any], taken: Counter[tuple[str, str]]) -> tuple[list[Any], list[Deferral]]:
        """Split ``rows`` (due targets with ``id``, ``provider``, ``account_id``) into those that fit and those deferred.

        ``taken`` counts the calls this claim already chose per quota scope (the caller keeps it
        across the claim's reads); it is updated for the rows that fit.
        """
        fitting, deferred = [], []
        used: dict[tuple[Quota, str, str], list[datetime]] = {}
        for row in rows:
            # A check on a processing publish is no new post: its publish was counted when it went out.
            quotas = self.quotas_of(row.provider) if row.status != "processing" else ()
            until: tuple[datetime, Quota] | None = None
            for quota in quotas:
                provider, scope = _scope_key(quota, row.provider, row.account_id)
                started = used.get((quota, provider, scope))
                if started is None:
                    started = used[(quota, provider, scope)] = await self._started(session, quota, provider, scope, now)
                free_at = self._free_at(quota, started + [now] * taken[(provider, scope)])
                if free_at is not None and (until is None or free_at > until[0]):
                    until = (free_at, quota)
            if until is None:
                for quota in quotas:
                    taken[_scope_key(quota, row.provider, row.account_id)] += 1
                fitting.append(row)
            else:
                deferred.append(Deferral(row, until[0], until[1]))
        return fitting, deferred

    async def _started(self, session: Any, quota: Quota, provider: str, scope: str, now: datetime) -> list[datetime]:
        """When each call counted in the quota's window went out, oldest first."""
        if self.postgres:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_id(provider, scope)})
        since = now - timedelta(seconds=quota.period_seconds)
        query = (
            select(ATTEMPTS.c.started_at)
            .join(TARGETS, TARGETS.c.id == ATTEMPTS.c.target_id)
            .where(ATTEMPTS.c.started_at > since, ATTEMPTS.c.kind == "publish", TARGETS.c.provider == provider)
            .order_by(ATTEMPTS.c.started_at)
        )
        if scope != "*":
            query = query.where(TARGETS.c.account_id == scope)
        return list((await session.execute(query)).scalars())

    @staticmethod
    def _free_at(quota: Quota, started: list[datetime]) -> datetime | None:
        """None when one more call fits; otherwise when enough counted calls have left the window for it.

        ``started`` holds the window's calls oldest first, then those this claim chose (starting ``now``).
        """
        over = len(started) + 1 - quota.count // max(1, quota.cost)
        if over <= 0:
            return None
        return started[over - 1] + timedelta(seconds=quota.period_seconds)



async def write_deferrals(session: Any, deferrals: list[Deferral], now: datetime, events: list[BusEvent]) -> None:
    """Move deferred targets' due time to when their quota has room; a ``target.deferred`` job event each.

    The caller holds the targets (the claim read them ``FOR UPDATE``) and their jobs' locks
    (``rows.lock_job_rows``), as for any job event.
    """
    if not deferrals:
        return
    await session.execute(
        update(TARGETS).where(TARGETS.c.id == bindparam("target_id")).values(next_attempt_at=bindparam("until"), updated_at=now),
        [{"target_id": d.row.id, "until": d.until} for d in deferrals],
    )
    for deferral in deferrals:
        row, quota = deferral.row, deferral.quota
        if row.job_id is None:
            continue
        events.append(
            await record_job_event(
                session, row.organization_id, row.job_id, "target.deferred",
                {
                    "targetId": row.id, "postId": row.post_id, "provider": row.provider, "status": row.status,
                    "reason": "QUOTA_EXHAUSTED", "until": deferral.until.isoformat(),
                    "quota": {"count": quota.count, "periodSeconds": quota.period_seconds, "scope": quota.scope, "cost": quota.cost,
                              "description": quota.description},
                },
            )
        )
