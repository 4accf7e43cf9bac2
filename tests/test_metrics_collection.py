"""Collection: the age-based cadence walked with a fake clock, batching per account and provider,
rate-limit pacing that pauses metric reads only, the retention chore, and refresh jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.core.errors import UserError
from gateway.events import stored_job_events
from gateway.metrics.cadence import next_refresh
from gateway.metrics.records import day_number
from gateway.metrics.refresh import request_refresh
from gateway.metrics.retention import thin_snapshots
from gateway.storage.models import Account, AccountMetricSnapshot, Job, OrganizationEvent, TargetMetricSnapshot
from plugins.sandbox import Sandbox
from providers import MetricsSpec
from tests.engine import engine_app, sandbox_account, setup_org
from tests.metrics_helpers import Clock, collector, published_post, set_credentials, tracked

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def expected_schedule() -> list[timedelta]:
    """The cadence of docs/metrics.md, spelled out for a provider with a 90-day lookback."""
    ages = [timedelta(minutes=15 * n) for n in range(8)]  # every 15 minutes for 2 hours
    ages += [HOUR * h for h in range(2, 48)]  # hourly to 48 hours
    ages += [DAY * d for d in range(2, 30)]  # daily to 30 days
    ages += [DAY * d for d in range(30, 90, 7)]  # weekly until the lookback ends…
    return ages + [DAY * 90]  # …with a last read at its end, then none


def test_the_cadence_steps_from_quarter_hours_to_weeks_and_stops_at_the_lookback():
    spec = MetricsSpec(post=("likes",), lookback_days=90, min_interval_seconds=60)
    published = datetime(2026, 1, 1, tzinfo=UTC)
    reads, at = [], published
    while at is not None:
        reads.append(at - published)
        at = next_refresh(published, at, spec)
    assert reads == expected_schedule()


def test_the_cadence_never_reads_faster_than_the_provider_allows_and_stops_by_default_after_90_days():
    published = datetime(2026, 1, 1, tzinfo=UTC)
    slow = MetricsSpec(post=("likes",), min_interval_seconds=3600)
    assert next_refresh(published, published, slow) == published + HOUR  # not 15 minutes
    unlimited = MetricsSpec(post=("likes",))  # no lookback: the default horizon, 90 days
    assert next_refresh(published, published + DAY * 89, unlimited) == published + DAY * 90
    assert next_refresh(published, published + DAY * 90, unlimited) is None


async def test_a_fake_clock_walks_a_published_post_through_its_refresh_schedule(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        _, (target,) = await published_post(api, org.secret, [account])
        clock = Clock(monkeypatch, target.published_at)
        loop = collector(api)
        seen = []
        while True:
            report = await loop.run_round()
            if target.id in report.read:
                seen.append(clock.at - target.published_at)
            # Five minutes on (every step is at least 15), a round reads nothing of this post.
            clock.at += timedelta(minutes=5)
            assert target.id not in (await loop.run_round()).read
            row = await tracked(api, target.id)
            if row.next_refresh_at is None:
                break
            clock.at = row.next_refresh_at
        assert seen == expected_schedule()
        final = await tracked(api, target.id)
        assert final.views > 0 and final.likes == final.views // 20
        assert final.quotes is None and final.video_watch_seconds is None  # never reported: stays NULL
        clock.at += DAY * 30
        assert target.id not in (await loop.run_round()).read  # past the lookback: never again


async def test_reads_are_batched_per_account_and_provider_at_the_providers_batch_size(tmp_path, monkeypatch):
    calls = []
    fetch = Sandbox.fetch_metrics

    async def counting(self, ctx, ids):
        calls.append((ctx.account_id, len(ids)))
        return await fetch(self, ctx, ids)

    monkeypatch.setattr(Sandbox, "metrics", MetricsSpec(post=("views", "likes"), account=("followers",), batch_size=2, lookback_days=90, min_interval_seconds=60))
    monkeypatch.setattr(Sandbox, "fetch_metrics", counting)
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        first, second = await sandbox_account(api, org.secret, "one"), await sandbox_account(api, org.secret, "two")
        for n in range(3):
            await published_post(api, org.secret, [first, second], text=f"post {n}")
        report = await collector(api).run_round()
        assert len(report.read) == 6
        assert sorted(calls) == sorted([(first, 2), (first, 1), (second, 2), (second, 1)])
        # One metrics.updated event per post, listing its targets: coalesced, not one per target.
        async with api.runtime.database.read() as session:
            events = list((await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "metrics.updated"))).scalars())
        assert len(events) == 3 and all(len(e.payload["targetIds"]) == 2 for e in events)
        assert {e.payload["postId"] for e in events} == {e.subject_id for e in events}


async def test_a_rate_limit_pauses_that_accounts_metric_reads_only(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        limited, other = await sandbox_account(api, org.secret, "limited"), await sandbox_account(api, org.secret, "other")
        _, targets = await published_post(api, org.secret, [limited, other])
        by_account = {t.account_id: t.id for t in targets}
        await set_credentials(api, limited, handle="limited", failure_mode="rate_limited", failure_count="1")
        clock = Clock(monkeypatch, targets[0].published_at)
        loop = collector(api)

        report = await loop.run_round()
        assert report.read == [by_account[other]] and by_account[limited] in report.skipped
        async with api.runtime.database.read() as session:
            account = await session.get(Account, limited)
            paused = (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "metrics.paused"))).scalar_one()
        # Publishing is untouched: the account is neither rate-limited nor anything but active.
        assert (account.status, account.rate_limited_until) == ("active", None)
        assert paused.payload["accountId"] == limited and paused.payload["reason"] == "RATE_LIMITED"

        clock.at += timedelta(seconds=20)  # the sandbox said 30 s: still paused, even when asked for
        assert (await tracked(api, by_account[limited])).refreshed_at is None
        assert by_account[limited] not in (await loop.run_round()).read
        clock.at += timedelta(seconds=15)
        assert by_account[limited] in (await loop.run_round()).read


async def test_a_post_the_platform_no_longer_knows_is_not_read_again(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        _, (target,) = await published_post(api, org.secret, [account])
        Clock(monkeypatch, target.published_at)
        await Sandbox().delete(api.runtime.provider_context("sandbox", account, {"handle": "me"}), target.platform_post_id)
        report = await collector(api).run_round()
        assert report.skipped == [target.id] and (await tracked(api, target.id)).next_refresh_at is None


async def test_account_totals_are_read_hourly_for_providers_that_declare_them(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        _, (target,) = await published_post(api, org.secret, [account])
        clock = Clock(monkeypatch, target.published_at)
        loop = collector(api)
        assert (await loop.run_round()).accounts == [account]
        assert (await loop.run_round()).accounts == []  # not due again yet
        clock.at += HOUR
        assert (await loop.run_round()).accounts == [account]
        async with api.runtime.database.read() as session:
            rows = list((await session.execute(select(AccountMetricSnapshot).order_by(AccountMetricSnapshot.id))).scalars())
        assert [r.posts for r in rows] == [1, 1] and rows[1].followers == rows[0].followers + 1


async def test_retention_keeps_every_reading_for_a_week_then_the_last_of_each_day(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        _, (target,) = await published_post(api, org.secret, [account])
        now = target.published_at + DAY * 10
        async with api.runtime.database.write() as session:
            for n in range(10 * 24):  # hourly readings over ten days
                at = target.published_at + HOUR * n
                session.add(TargetMetricSnapshot(organization_id=org.organization_id, target_id=target.id, captured_at=at, day=day_number(at), likes=n))
        deleted = await thin_snapshots(api.runtime.database, now, raw_days=7, retention_days=0)
        async with api.runtime.database.read() as session:
            kept = list((await session.execute(select(TargetMetricSnapshot).order_by(TargetMetricSnapshot.captured_at))).scalars())
        cutoff = now - DAY * 7
        old = [k for k in kept if k.captured_at < cutoff]
        recent = [k for k in kept if k.captured_at >= cutoff]
        assert len(recent) == 7 * 24  # every reading of the last week
        assert len({k.day for k in old}) == len(old)  # one a day before it…
        before_cutoff = [n for n in range(240) if target.published_at + HOUR * n < cutoff]
        assert [k.likes for k in old] == [max(n for n in before_cutoff if day_number(target.published_at + HOUR * n) == k.day) for k in old]  # …its last
        assert deleted == 240 - len(kept)
        await thin_snapshots(api.runtime.database, now, raw_days=7, retention_days=5)
        async with api.runtime.database.read() as session:
            oldest = (await session.execute(select(func.min(TargetMetricSnapshot.captured_at)))).scalar()
        assert oldest >= now - DAY * 5


async def test_refresh_metrics_runs_as_a_job_with_progress(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        post_id, targets = await published_post(api, org.secret, [account])
        loop = collector(api)
        Clock(monkeypatch, targets[0].published_at + timedelta(minutes=3))
        job = await request_refresh(api.runtime, org.organization_id, post_id=post_id)
        assert (job.kind, job.status, job.progress_total) == ("metrics_refresh", "queued", 1)
        await loop.run_round()
        async with api.runtime.database.read() as session:
            done = await session.get(Job, job.id)
            kinds = [e.kind for e in await stored_job_events(session, job.id)]
        assert (done.status, done.progress_done, done.result["read"]) == ("succeeded", 1, [targets[0].id])
        assert kinds == ["job.queued", "job.running", "job.progress", "job.succeeded"]


@pytest.mark.parametrize("selection", [{}, {"post_id": "post_x", "account_id": "acct_x"}])
async def test_refresh_metrics_needs_exactly_one_selection(tmp_path, selection):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        with pytest.raises(UserError) as refused:
            await request_refresh(api.runtime, org.organization_id, **selection)
        assert refused.value.code == "ONE_SELECTION_REQUIRED"
