"""The metrics loop the roof starts beside the scheduler (`serve` in-process, `socialgate worker`).

Each round: run queued ``refreshMetrics`` jobs, start tracking targets published lately, claim
the due reads, read them batched per account and provider (at most the provider's
``batch_size`` ids per call), then the accounts' totals, then, hourly, the retention chore.

Why a loop of its own: publishing must never wait behind metric reads, and the errors mean
other things here. A ``RateLimited`` pauses that account's *metric* reads until the platform's
time (``account_metrics_state``), never its publishing; an ``AuthExpired`` refreshes the token
once, as publishing does; a transient failure tries again at the next step of the cadence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.accounts import open_credentials, refresh_account_token
from gateway.core import WakeableLoop, clock
from gateway.events import BusEvent, record_org_event
from gateway.metrics.cadence import interval_at, next_refresh
from gateway.metrics.records import (
    Due,
    accounts_due,
    claim_due,
    pause_account,
    record_account_reading,
    record_readings,
    reschedule,
    track,
)
from gateway.metrics.refresh import advance_refresh_job, finish_refresh_job, start_refresh_jobs
from gateway.metrics.retention import thin_snapshots
from gateway.runtime import Runtime
from gateway.storage import Account, VaultError
from providers import AuthExpired, MetricSnapshot, Provider, ProviderError, RateLimited

log = logging.getLogger("socialgate.metrics")

ROUND_LIMIT = 500  # due reads claimed per round
ACCOUNT_LIMIT = 100  # accounts whose totals are read per round
GROUPS_AT_ONCE = 8  # accounts read concurrently
DISCOVERY_WINDOW = timedelta(days=2)  # targets published this recently are tracked by the loop itself
ACCOUNT_EVERY = timedelta(hours=1)
UNREADABLE_RETRY = timedelta(hours=1)  # an account that cannot be read now (credentials, token)
DEFAULT_PAUSE_SECONDS = 60.0
CHORE_EVERY = timedelta(hours=1)
UPDATED = "metrics.updated"
PAUSED = "metrics.paused"

Progress = Callable[[int], Awaitable[None]]


@dataclass
class RoundReport:
    """What one round did: figures read per target, targets not read, events published."""

    read: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    events: list[BusEvent] = field(default_factory=list)


class MetricsCollector:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval = runtime.settings.metrics_poll_seconds
        self._loop = WakeableLoop("metrics collector")
        self._last_chore: datetime | None = None

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    def wake(self) -> None:
        """A refresh was asked for: look now rather than at the next poll."""
        self._loop.wake()

    async def _run(self) -> None:
        while not self._loop.stopping:
            try:
                await asyncio.wait_for(self._loop.woken.wait(), self.interval)
            except TimeoutError:
                pass
            if self._loop.stopping:
                return
            self._loop.woken.clear()
            try:
                await self.run_round()
            except Exception:  # a failed round (the database away, say) is logged; the next one tries again
                log.exception("metrics round failed")

    async def run_round(self) -> RoundReport:
        now = clock.utcnow()
        report = RoundReport()
        await self.run_refresh_jobs(report)
        async with self.runtime.database.write() as session:
            await track(session, now, published_since=now - DISCOVERY_WINDOW)
            due = await claim_due(session, now, ROUND_LIMIT)
        await self.read(due, now, report)
        await self.read_accounts(now, report)
        if self._last_chore is None or now - self._last_chore >= CHORE_EVERY:
            self._last_chore = now
            await thin_snapshots(self.runtime.database, now, self.runtime.settings.metrics_raw_days,
                                 self.runtime.settings.metrics_retention_days)
        return report

    async def run_refresh_jobs(self, report: RoundReport) -> None:
        """Read every target of the queued ``refreshMetrics`` jobs, whatever their cadence says."""
        now = clock.utcnow()
        jobs, events = await start_refresh_jobs(self.runtime.database, now)
        await self._publish(events)
        for job_id, target_ids in jobs:
            async with self.runtime.database.write() as session:
                due = await claim_due(session, now, len(target_ids) or 1, target_ids=target_ids)
            job_report = RoundReport()

            async def progress(done: int, job_id: str = job_id) -> None:
                await self._publish(await advance_refresh_job(self.runtime.database, job_id, done))

            await self.read(due, now, job_report, progress)
            outcome = {"read": sorted(set(job_report.read)), "notRead": sorted(set(target_ids) - set(job_report.read))}
            await self._publish(await finish_refresh_job(self.runtime.database, job_id, outcome))
            report.read += job_report.read
            report.skipped += job_report.skipped
            report.events += job_report.events

    async def read(self, due: Sequence[Due], now: datetime, report: RoundReport, progress: Progress | None = None) -> None:
        """Read ``due`` batched per account and provider, several accounts at once; one event per post."""
        groups: dict[tuple[str, str], list[Due]] = defaultdict(list)
        for item in due:
            groups[(item.account_id, item.provider)].append(item)
        gate = asyncio.Semaphore(GROUPS_AT_ONCE)
        updated: dict[str, list[Due]] = defaultdict(list)

        async def one(account_id: str, provider_id: str, items: list[Due]) -> None:
            async with gate:
                for item in await self._read_group(account_id, provider_id, items, now, report, progress):
                    updated[item.post_id].append(item)

        await asyncio.gather(*(one(a, p, items) for (a, p), items in groups.items()))
        if updated:
            async with self.runtime.database.write() as session:
                events = [
                    await record_org_event(
                        session, items[0].organization_id, UPDATED,
                        {"postId": post_id, "targetIds": sorted(i.target_id for i in items), "capturedAt": now.isoformat()}, post_id,
                    )
                    for post_id, items in sorted(updated.items())
                ]
            report.events += events
            await self._publish(events)

    async def _read_group(
        self, account_id: str, provider_id: str, items: list[Due], now: datetime, report: RoundReport, progress: Progress | None
    ) -> list[Due]:
        """Read one account's due targets; the ones whose figures were written."""
        provider = self.runtime.plugins.get(provider_id)
        spec = provider.metrics if provider is not None else None
        if provider is None or spec is None or not spec.post:  # nothing to read, ever: stop
            await self._reschedule(items, None, report, progress)
            return []
        context = await self._context(provider, account_id)
        if context is None:
            await self._reschedule(items, now + UNREADABLE_RETRY, report, progress)
            return []
        written: list[Due] = []
        for start in range(0, len(items), spec.batch_size):
            batch = items[start : start + spec.batch_size]
            try:
                snapshots, context = await self._fetch(provider, context, account_id, batch)
            except RateLimited as limited:
                wait = limited.retry_after if limited.retry_after else DEFAULT_PAUSE_SECONDS
                until = now + timedelta(seconds=wait)
                await self._pause(batch[0].organization_id, account_id, until, limited)
                await self._reschedule(items[start:], until, report, progress)
                return written
            except (ProviderError, VaultError) as error:
                log.warning("metrics of %s on %s not read: %s", account_id, provider_id, getattr(error, "code", type(error).__name__))
                await self._reschedule(batch, now + interval_at(now - batch[0].published_at, spec), report, progress)
                continue
            by_id = {s.platform_post_id: s for s in snapshots}
            readings = []
            for item in batch:
                snapshot = by_id.get(item.platform_post_id)
                # A post the platform no longer answers for (deleted) is not read again.
                readings.append((item, snapshot, next_refresh(item.published_at, now, spec) if snapshot is not None else None))
            async with self.runtime.database.write() as session:
                await record_readings(session, readings, now)
            for item, snapshot, _ in readings:
                (report.read if snapshot is not None else report.skipped).append(item.target_id)
                if snapshot is not None:
                    written.append(item)
            if progress is not None:
                await progress(len(batch))
        return written

    async def _fetch(
        self, provider: Provider, context: Any, account_id: str, batch: list[Due]
    ) -> tuple[list[MetricSnapshot], Any]:
        """One batched call; an expired token is refreshed once and the call sent again."""
        ids = [item.platform_post_id for item in batch]
        try:
            return await provider.fetch_metrics(context, ids), context
        except AuthExpired:
            if not await refresh_account_token(self.runtime, account_id):
                raise
            context = await self._context(provider, account_id)
            if context is None:
                raise
            return await provider.fetch_metrics(context, ids), context

    async def _context(self, provider: Provider, account_id: str) -> Any:
        async with self.runtime.database.read() as session:
            account = await session.get(Account, account_id)
        if account is None or account.status in ("disconnected", "token_expired") or account.credentials is None:
            return None
        try:
            credentials = open_credentials(self.runtime.secret_key, account)
        except VaultError:
            return None
        return self.runtime.provider_context(provider.id, account_id, credentials)

    async def _reschedule(self, items: Sequence[Due], when: datetime | None, report: RoundReport, progress: Progress | None) -> None:
        async with self.runtime.database.write() as session:
            await reschedule(session, [(item.target_id, when) for item in items])
        report.skipped += [item.target_id for item in items]
        if progress is not None:
            await progress(len(items))

    async def _pause(self, organization_id: str, account_id: str, until: datetime, limited: RateLimited) -> None:
        async with self.runtime.database.write() as session:
            await pause_account(session, organization_id, account_id, until, limited.code or "RATE_LIMITED")
            event = await record_org_event(
                session, organization_id, PAUSED, {"accountId": account_id, "until": until.isoformat(), "reason": limited.code or "RATE_LIMITED"},
                account_id,
            )
        log.info("metric reads of %s paused until %s", account_id, until.isoformat())
        await self._publish([event])

    async def read_accounts(self, now: datetime, report: RoundReport) -> None:
        """The totals of accounts whose hourly read is due; accounts whose provider has none are looked at daily."""
        async with self.runtime.database.read() as session:
            due = await accounts_due(session, now, ACCOUNT_LIMIT)
        for account_id, organization_id, provider_id in due:
            provider = self.runtime.plugins.get(provider_id)
            spec = provider.metrics if provider is not None else None
            snapshot = None
            following = now + timedelta(days=1)
            if provider is not None and spec is not None and spec.account:
                following = now + max(ACCOUNT_EVERY, timedelta(seconds=spec.min_interval_seconds))
                context = await self._context(provider, account_id)
                try:
                    snapshot = await provider.fetch_account_metrics(context) if context is not None else None
                except RateLimited as limited:
                    until = now + timedelta(seconds=limited.retry_after or DEFAULT_PAUSE_SECONDS)
                    await self._pause(organization_id, account_id, until, limited)
                    continue
                except ProviderError as error:
                    log.warning("account metrics of %s not read: %s", account_id, error.code)
            async with self.runtime.database.write() as session:
                await record_account_reading(session, organization_id, account_id, snapshot, following)
            if snapshot is not None:
                report.accounts.append(account_id)

    async def _publish(self, events: Sequence[BusEvent]) -> None:
        for event in events:
            await self.runtime.publish(event)

