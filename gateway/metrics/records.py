"""The metric rows: which targets are tracked, what is due, and the readings written back.

Snapshots are append-only (``target_metric_snapshots``, ``account_metric_snapshots``); each
tracked target's row in ``target_metrics`` holds its latest figures and its next read, so the
API's "latest" and the rollups never scan the history. Every figure is written as the provider
returned it: None stays NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage import Account, AccountMetricsState, Post, Target, TargetMetrics, TargetMetricSnapshot
from gateway.storage import AccountMetricSnapshot as AccountSnapshotRow
from providers import POST_FIGURES, AccountMetricSnapshot, MetricSnapshot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SNAPSHOTS = TargetMetricSnapshot.__table__
LATEST = TargetMetrics.__table__
ACCOUNT_SNAPSHOTS = AccountSnapshotRow.__table__
# A claimed read that never reports back (its process died) comes due again after this.
CLAIM_LEASE = timedelta(minutes=10)


def day_number(moment: datetime) -> int:
    """UTC days since 1970-01-01: the downsampling's grouping, the same on every backend."""
    return (moment - EPOCH) // timedelta(days=1)


@dataclass(frozen=True)
class Due:
    """A tracked target whose figures are due, with what a provider call needs."""

    target_id: str
    organization_id: str
    post_id: str
    account_id: str
    provider: str
    platform_post_id: str
    published_at: datetime


def _insert_ignoring_duplicates(session: AsyncSession, table: Any) -> Any:
    """INSERT that skips rows whose key exists: two collectors may track the same target."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


async def track(session: AsyncSession, now: datetime, *, published_since: datetime | None = None,
                target_ids: Sequence[str] | None = None, limit: int = 1000) -> int:
    """Start tracking published targets not tracked yet, due at once; how many were added.

    The collector passes ``published_since`` (recent publications, found through
    ``ix_targets_published``); ``refreshMetrics`` passes the ``target_ids`` it was asked for.
    """
    query = (
        select(Target.id, Target.organization_id, Target.post_id, Target.account_id, Target.provider, Target.published_at, Post.campaign_id)
        .join(Post, Post.id == Target.post_id)
        .where(Target.status == "published", Target.platform_post_id.is_not(None), Target.published_at.is_not(None),
               ~exists().where(TargetMetrics.target_id == Target.id))
        .limit(limit)
    )
    if published_since is not None:
        query = query.where(Target.published_at >= published_since)
    if target_ids is not None:
        query = query.where(Target.id.in_(list(target_ids)))
    rows = (await session.execute(query)).all()
    if rows:
        await session.execute(_insert_ignoring_duplicates(session, LATEST), [
            {"target_id": r.id, "organization_id": r.organization_id, "post_id": r.post_id, "account_id": r.account_id,
             "provider": r.provider, "campaign_id": r.campaign_id, "published_at": r.published_at, "next_refresh_at": now}
            for r in rows
        ])
    return len(rows)


def _not_paused(now: datetime) -> Any:
    return ~exists().where(
        AccountMetricsState.account_id == TargetMetrics.account_id, AccountMetricsState.paused_until.is_not(None),
        AccountMetricsState.paused_until > now,
    )


async def claim_due(session: AsyncSession, now: datetime, limit: int, *, target_ids: Sequence[str] | None = None) -> list[Due]:
    """Take up to ``limit`` due reads (or the tracked ``target_ids``, due or not) of accounts not paused.

    Their next read moves ``CLAIM_LEASE`` ahead in the same transaction, so another collector
    does not read them too (``SKIP LOCKED`` on PostgreSQL); ``record_readings`` sets the real one.
    """
    query = (
        select(TargetMetrics.target_id, TargetMetrics.organization_id, TargetMetrics.post_id, TargetMetrics.account_id,
               TargetMetrics.provider, TargetMetrics.published_at, Target.platform_post_id)
        .join(Target, Target.id == TargetMetrics.target_id)
        .where(_not_paused(now))
        .limit(limit)
    )
    if target_ids is None:
        query = query.where(TargetMetrics.next_refresh_at <= now).order_by(TargetMetrics.next_refresh_at)
    else:
        query = query.where(TargetMetrics.target_id.in_(list(target_ids)))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=TargetMetrics, skip_locked=True)
    rows = (await session.execute(query)).all()
    if rows:
        await session.execute(
            update(TargetMetrics).where(TargetMetrics.target_id.in_([r.target_id for r in rows])).values(next_refresh_at=now + CLAIM_LEASE)
        )
    return [Due(r.target_id, r.organization_id, r.post_id, r.account_id, r.provider, r.platform_post_id or "", r.published_at) for r in rows]


def _figures(snapshot: MetricSnapshot) -> dict[str, Any]:
    extra = {k: v for k, v in snapshot.extra.items()}
    return {**snapshot.figures(), "extra": extra or None}


async def record_readings(
    session: AsyncSession, readings: Sequence[tuple[Due, MetricSnapshot | None, datetime | None]], now: datetime
) -> None:
    """Append a snapshot per reading and set each target's latest figures and next read.

    A reading without a snapshot (the platform no longer knows the post) only sets the next read.
    """
    snapshots = [
        {"organization_id": due.organization_id, "target_id": due.target_id, "captured_at": snap.captured_at,
         "day": day_number(snap.captured_at), **_figures(snap)}
        for due, snap, _ in readings if snap is not None
    ]
    if snapshots:
        await session.execute(insert(SNAPSHOTS), snapshots)
    read = [{"key": due.target_id, "refreshed": now, "next": following, **_figures(snap)} for due, snap, following in readings if snap is not None]
    if read:
        values = {"refreshed_at": bindparam("refreshed"), "next_refresh_at": bindparam("next")}
        values.update({name: bindparam(name) for name in (*POST_FIGURES, "extra")})
        await session.execute(update(LATEST).where(LATEST.c.target_id == bindparam("key")).values(values), read)
    await reschedule(session, [(due.target_id, following) for due, snap, following in readings if snap is None])


async def reschedule(session: AsyncSession, next_reads: Sequence[tuple[str, datetime | None]]) -> None:
    """Set the next read of targets read without a figure (None: stop reading them)."""
    if next_reads:
        await session.execute(
            update(LATEST).where(LATEST.c.target_id == bindparam("key")).values(next_refresh_at=bindparam("next")),
            [{"key": target_id, "next": following} for target_id, following in next_reads],
        )


async def pause_account(session: AsyncSession, organization_id: str, account_id: str, until: datetime, reason: str) -> None:
    """Hold the account's metric reads (never its publishing) until ``until``."""
    state = await session.get(AccountMetricsState, account_id)
    if state is None:
        session.add(AccountMetricsState(account_id=account_id, organization_id=organization_id, paused_until=until, pause_reason=reason))
    else:
        state.paused_until, state.pause_reason = until, reason
    await session.flush()


async def paused_accounts(session: AsyncSession, account_ids: Sequence[str], now: datetime) -> dict[str, datetime]:
    rows = await session.execute(
        select(AccountMetricsState.account_id, AccountMetricsState.paused_until)
        .where(AccountMetricsState.account_id.in_(list(account_ids)), AccountMetricsState.paused_until > now)
    )
    return {r.account_id: r.paused_until for r in rows}


async def accounts_due(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str, str]]:
    """(account id, organization id, provider) of tracked accounts whose totals are due, not paused."""
    state = AccountMetricsState
    query = (
        select(Account.id, Account.organization_id, Account.provider)
        .outerjoin(state, state.account_id == Account.id)
        .where(Account.status == "active",
               or_(state.account_id.is_(None), and_(or_(state.next_account_refresh_at.is_(None), state.next_account_refresh_at <= now),
                                                    or_(state.paused_until.is_(None), state.paused_until <= now))))
        .limit(limit)
    )
    return [(r.id, r.organization_id, r.provider) for r in (await session.execute(query)).all()]


async def record_account_reading(
    session: AsyncSession, organization_id: str, account_id: str, snapshot: AccountMetricSnapshot | None, following: datetime
) -> None:
    """Append the account's totals (when read) and set when they are read next."""
    if snapshot is not None:
        await session.execute(insert(ACCOUNT_SNAPSHOTS), [{
            "organization_id": organization_id, "account_id": account_id, "captured_at": snapshot.captured_at,
            "day": day_number(snapshot.captured_at), **snapshot.figures(), "extra": dict(snapshot.extra) or None,
        }])
    state = await session.get(AccountMetricsState, account_id)
    if state is None:
        session.add(AccountMetricsState(account_id=account_id, organization_id=organization_id, next_account_refresh_at=following))
    else:
        state.next_account_refresh_at = following
    await session.flush()
