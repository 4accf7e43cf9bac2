"""Sync: pull an ad account's campaigns, ad sets, ads and recent insights into our tables, as a job.

What is new on the platform is imported; what changed there is recorded as drift on the row
(``gateway.ads.objects.record_synced``) and announced with ``ads.sync.drift``, never written over
ours. ``SyncLoop`` runs it for every active ad account every ``interval`` seconds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gateway.ads.accounts import ads_call, find_ad_account
from gateway.ads.events import ACCOUNT_TOKEN_EXPIRED, SYNC_DRIFT, publish_all
from gateway.ads.insights import store_insights
from gateway.ads.objects import record_synced
from gateway.core import Periodic, UserError, utcnow
from gateway.engine.queue import create_job
from gateway.events import BusEvent, record_job_event, record_org_event
from gateway.runtime import Runtime
from gateway.storage import Account, AdAccount, Job
from providers import AuthExpired, ProviderError
from providers.ads import AD_LEVELS

SYNC_JOB = "ads_sync"
INSIGHT_DAYS = 7  # each sync re-reads the last week: platforms revise recent days (Meta: up to 28)
log = logging.getLogger("socialgate.ads")


def _payload(job: Job) -> dict[str, Any]:
    return {"jobId": job.id, "status": job.status, "progress": {"done": job.progress_done, "total": job.progress_total}}


async def sync_ad_account(runtime: Runtime, organization_id: str, ad_account_id: str) -> Job:
    """Run one sync job to its end and return it (``succeeded``, or ``failed`` with the platform's reason)."""
    async with runtime.database.write() as session:
        ad_account = await find_ad_account(session, organization_id, ad_account_id)
        if ad_account is None:
            raise UserError("AD_ACCOUNT_NOT_FOUND", "No ad account with that id.", ["adAccountId"])
        job = await create_job(session, organization_id, SYNC_JOB, ad_account.id, len(AD_LEVELS) + 1)
        job.status, job.started_at = "running", utcnow()
        await session.flush()
        started = [await record_job_event(session, organization_id, job.id, "job.running", _payload(job))]
        call = await ads_call(runtime, session, ad_account)
    await publish_all(runtime, started)
    today = call.ctx.now().date()
    try:
        found = {level: await call.adapter.list_objects(call.ctx, call.ref, level) for level in AD_LEVELS}
        insights = {
            obj.external_id: await call.adapter.fetch_insights(call.ctx, call.ref, "campaign", obj.external_id, today - timedelta(days=INSIGHT_DAYS - 1), today)
            for obj in found["campaign"] if obj.status != "deleted"
        }
    except ProviderError as error:
        return await _failed(runtime, organization_id, job.id, ad_account_id, error)
    except Exception:  # a bug in the adapter: the job ends failed, the traceback goes to the log
        await _failed(runtime, organization_id, job.id, ad_account_id, ProviderError("The ads adapter failed; see the logs.", code="INTERNAL"))
        raise
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        ad_account_row = await session.get(AdAccount, ad_account_id)
        assert ad_account_row is not None
        counts = {"imported": 0, "drifted": 0, "insightDays": 0}
        for level in AD_LEVELS:  # parents first, so children find their parent's row
            for obj in found[level]:
                synced = await record_synced(session, ad_account_row, obj)
                counts["imported"] += synced.imported
                if synced.drifted:
                    counts["drifted"] += 1
                    events.append(await record_org_event(session, organization_id, SYNC_DRIFT, {  # event kinds: ads.*
                        "objectId": synced.row.id, "level": level, "fields": list(synced.drifted),
                    }, synced.row.id))
                if level == "campaign" and obj.external_id in insights:
                    counts["insightDays"] += await store_insights(session, synced.row, insights[obj.external_id])
        ad_account_row.synced_at = utcnow()
        job_row = await session.get(Job, job.id)
        assert job_row is not None
        job_row.status, job_row.finished_at, job_row.progress_done = "succeeded", utcnow(), job_row.progress_total
        job_row.result = {"adAccountId": ad_account_id, **{name: len(objs) for name, objs in (("campaigns", found["campaign"]), ("adSets", found["ad_set"]), ("ads", found["ad"]))}, **counts}
        await session.flush()
        events.append(await record_job_event(session, organization_id, job.id, "job.succeeded", _payload(job_row)))
    await publish_all(runtime, events)
    return job_row


async def _failed(runtime: Runtime, organization_id: str, job_id: str, ad_account_id: str, error: ProviderError) -> Job:
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        job.status, job.finished_at = "failed", utcnow()
        job.error_code, job.error_message = error.code[:64], error.message[:500]
        await session.flush()
        events.append(await record_job_event(session, organization_id, job.id, "job.failed", _payload(job)))
        if isinstance(error, AuthExpired):
            ad_account = await session.get(AdAccount, ad_account_id)
            account = await session.get(Account, ad_account.account_id) if ad_account else None
            if account is not None and account.status != "disconnected":
                account.status = "token_expired"
            events.append(await record_org_event(session, organization_id, ACCOUNT_TOKEN_EXPIRED, {  # event kinds: ads.*
                "adAccountId": ad_account_id, "accountId": account.id if account else None, "provider": account.provider if account else None,
            }, ad_account_id))
    await publish_all(runtime, events)
    return job


class SyncLoop:
    """Sync every active ad account of every organization, one after another, each ``interval`` seconds."""

    def __init__(self, runtime: Runtime, interval: float) -> None:
        self.runtime = runtime
        self._rounds = Periodic("ads sync", interval, self.sync_all, log, "syncing ad accounts failed")

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def sync_all(self) -> int:
        """One round; returns how many ad accounts it synced (a failing one is logged, the rest go on)."""
        async with self.runtime.database.read() as session:
            rows = (await session.execute(
                select(AdAccount.organization_id, AdAccount.id).join(Account, Account.id == AdAccount.account_id)
                .where(AdAccount.status == "active", Account.status == "active").order_by(AdAccount.id)
            )).all()
        for organization_id, ad_account_id in rows:
            try:
                await sync_ad_account(self.runtime, organization_id, ad_account_id)
            except Exception:
                log.exception("ads sync of %s failed", ad_account_id)
        return len(rows)
