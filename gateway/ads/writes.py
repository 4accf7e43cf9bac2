"""Ads writes as jobs: the platform is the source of truth, so a change is stored once it accepted it.

A write runs in two steps. The first, replay-safe under the caller's idempotency key, checks the
input and the organization's spend cap and creates an ``ads_write`` job (status ``running``) in
one transaction; a replay returns that job and nothing is sent twice. The second — only for the
request that created the job — calls the platform outside any transaction, then records the
outcome with the job's end and its events: the object as the platform answered it, or the
refusal with a stable code (``AMOUNT_NOT_REPRESENTABLE``, ``PLATFORM_REJECTED``…).

A refused write leaves ``ads.write.denied`` (and, for the cap, ``ads.budget.cap_exceeded``) in
a transaction of its own: the refused work rolls back, its events must not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.ads.accounts import AdsCall, ads_call, find_ad_account
from gateway.ads.caps import WRITE_JOB, CapExceeded, check_cap, lock_cap
from gateway.ads.events import ACCOUNT_TOKEN_EXPIRED, BUDGET_CAP_EXCEEDED, WRITE_DENIED, WRITE_EXECUTED, publish_all, record_apart
from gateway.ads.objects import find_object, store_accepted
from gateway.core import UserError, utcnow
from gateway.engine.queue import create_job
from gateway.events import BusEvent, record_job_event, record_org_event
from gateway.runtime import Runtime
from gateway.storage import Account, AdAccount, Job, run_idempotent
from providers import AdChanges, AdLevel, AdSpec, AdStatus, AuthExpired, Money, ProviderError, RateLimited, TransientError, Unconfirmed
from providers.ads import PARENT_LEVEL

WriteKind = Literal["create", "update", "status"]
# SDK refusal codes that mean the same on every platform and reach the caller as they are.
PASSED_THROUGH = {
    "AMOUNT_NOT_REPRESENTABLE", "CURRENCY_MISMATCH", "FIELD_NOT_SUPPORTED", "STATUS_NOT_SUPPORTED", "NOT_FOUND", "BUDGET_REQUIRED",
    "PLATFORM_FIELD_NOT_ALLOWED",
}
NOUN = {"campaign": "ad campaign", "ad_set": "ad set", "ad": "ad"}


@dataclass(frozen=True)
class AdWrite:
    """One write as the API asked for it. ``target_id`` is the ad account (creating a campaign),
    the parent (creating an ad set or ad), or the object itself (update, status)."""

    operation: str
    kind: WriteKind
    level: AdLevel
    target_id: str
    spec: AdSpec | None = None
    changes: AdChanges = field(default_factory=AdChanges)
    status: AdStatus | None = None

    def budget(self) -> Money | None:
        if self.spec is not None:
            return self.spec.daily_budget
        return self.changes.daily_budget


@dataclass(frozen=True)
class WriteOutcome:
    job_id: str
    object_id: str | None
    errors: list[UserError]


@dataclass
class _Planned:
    ad_account: AdAccount
    object_id: str | None  # ours, for update and status
    external_id: str | None
    parent_external_id: str | None


async def _plan(session: AsyncSession, organization_id: str, write: AdWrite) -> _Planned:
    """Find what the write acts on, in the caller's organization, or a user error on its id."""
    if write.kind == "create" and write.level == "campaign":
        ad_account = await find_ad_account(session, organization_id, write.target_id)
        if ad_account is None:
            raise UserError("AD_ACCOUNT_NOT_FOUND", "No ad account with that id.", ["adAccountId"])
        return _Planned(ad_account, None, None, None)
    level = PARENT_LEVEL[write.level] if write.kind == "create" else write.level
    assert level is not None
    row = await find_object(session, organization_id, write.target_id, level)
    if row is None:
        field_name = {"campaign": "campaignId", "ad_set": "adSetId", "ad": "id"}[level] if write.kind == "create" else "id"
        raise UserError(f"{level.upper()}_NOT_FOUND", f"No {NOUN[level]} with that id.", [field_name])
    ad_account = await session.get(AdAccount, row.ad_account_id)
    assert ad_account is not None
    if write.kind == "create":
        return _Planned(ad_account, None, None, row.external_id)
    return _Planned(ad_account, row.id, row.external_id, None)


async def _guard_cap(session: AsyncSession, organization_id: str, write: AdWrite, planned: _Planned) -> None:
    budget = write.budget()
    if write.kind == "status" and write.status == "active" and planned.object_id is not None:
        row = await find_object(session, organization_id, planned.object_id)
        if row is not None and row.status not in ("active", "paused") and row.daily_budget_minor:
            budget = Money(row.daily_budget_minor, row.currency)  # back from archived: its budget counts again
    if budget is not None and write.level != "ad":
        await check_cap(session, organization_id, budget, planned.object_id)


async def execute(runtime: Runtime, organization_id: str, write: AdWrite, idempotency_key: str | None, request: Any) -> WriteOutcome:
    """Run ``write`` as a job (see the module's docstring); user errors before the job are raised."""
    created: list[str] = []

    async def start(session: AsyncSession) -> dict[str, Any]:
        planned = await _plan(session, organization_id, write)
        await _guard_cap(session, organization_id, write, planned)
        budget = write.budget()
        job = await create_job(session, organization_id, WRITE_JOB, planned.object_id or write.target_id, 1)
        job.status, job.started_at = "running", utcnow()
        job.result = {"operation": write.operation, "adAccountId": planned.ad_account.id}
        if budget is not None:
            job.result.update(budgetMinor=str(budget.amount_minor), currency=budget.currency)
        await session.flush()
        await record_job_event(session, organization_id, job.id, "job.running", _job_payload(job))
        created.append(job.id)
        return {"jobId": job.id}

    try:
        started = await run_idempotent(runtime.database, organization_id, f"ads.{write.operation}", idempotency_key, request, start)
    except CapExceeded as exceeded:
        await _denied_by_cap(runtime, organization_id, write, exceeded)
        raise UserError(
            "BUDGET_CAP_EXCEEDED",
            f"The organization's daily cap is {exceeded.cap.major_string()} {exceeded.cap.currency}; "
            f"{Money(exceeded.committed, exceeded.cap.currency).major_string()} is already committed.",
            ["input", "dailyBudget"],
        ) from None
    job_id = started["jobId"]
    if job_id not in created:  # a replay: the first request ran (or is running) the job
        return await _replayed(runtime, organization_id, job_id)
    return await _run(runtime, organization_id, write, job_id)


async def _run(runtime: Runtime, organization_id: str, write: AdWrite, job_id: str) -> WriteOutcome:
    async with runtime.database.read() as session:
        planned = await _plan(session, organization_id, write)
        call = await ads_call(runtime, session, planned.ad_account)
    try:
        accepted = await _call_platform(call, write, planned)
    except ProviderError as error:
        return await _failed(runtime, organization_id, write, job_id, call, error)
    except Exception:  # a bug in the adapter: the job must not stay running (nor hold budget under the cap)
        async with runtime.database.write() as session:
            await _hold_cap(session, organization_id, write)
            await _finish(session, job_id, "failed", [], error=UserError("INTERNAL", "The ads adapter failed; see the logs."))
        raise
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        await _hold_cap(session, organization_id, write)
        ad_account = await session.get(AdAccount, call.ad_account.id)
        assert ad_account is not None
        row = await store_accepted(session, ad_account, accepted)
        job = await _finish(session, job_id, "succeeded", events, object_id=row.id)
        events.append(await record_org_event(session, organization_id, WRITE_EXECUTED, {  # event kinds: ads.*
            "jobId": job.id, "operation": write.operation, "level": write.level, "objectId": row.id, "adAccountId": ad_account.id,
        }, row.id))
    await publish_all(runtime, events)
    return WriteOutcome(job_id, row.id, [])


async def _call_platform(call: AdsCall, write: AdWrite, planned: _Planned) -> Any:
    if write.kind == "create":
        assert write.spec is not None
        spec = write.spec
        if planned.parent_external_id is not None:
            spec = replace(spec, parent_id=planned.parent_external_id)
        return await call.adapter.create_object(call.ctx, call.ref, spec)
    assert planned.external_id is not None
    if write.kind == "update":
        return await call.adapter.update_object(call.ctx, call.ref, write.level, planned.external_id, write.changes)
    assert write.status is not None
    return await call.adapter.set_status(call.ctx, call.ref, write.level, planned.external_id, write.status)


def user_error_of(error: ProviderError, provider: str) -> UserError:
    """The stable code a caller sees for a platform's answer; the platform's own code stays in the message."""
    if isinstance(error, AuthExpired):
        return UserError("ACCOUNT_TOKEN_EXPIRED", f"{provider} no longer accepts this account's credentials; connect it again.", ["adAccountId"])
    if isinstance(error, RateLimited | TransientError):
        return UserError("PLATFORM_UNAVAILABLE", f"{provider} did not answer usably ({error.code}); try again.", None)
    if isinstance(error, Unconfirmed):
        return UserError("PLATFORM_UNCONFIRMED", f"{provider} may have applied the change; sync the ad account to see.", None)
    code = error.code if error.code in PASSED_THROUGH else "PLATFORM_REJECTED"
    field_name = ["input", "dailyBudget"] if code == "AMOUNT_NOT_REPRESENTABLE" else None
    return UserError(code, f"{provider} refused: {error.code}: {error.message}"[:500], field_name)


async def _failed(runtime: Runtime, organization_id: str, write: AdWrite, job_id: str, call: AdsCall, error: ProviderError) -> WriteOutcome:
    problem = user_error_of(error, call.ad_account.provider)
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        await _hold_cap(session, organization_id, write)
        await _finish(session, job_id, "failed", events, error=problem)
        events.append(await record_org_event(session, organization_id, WRITE_DENIED, {  # event kinds: ads.*
            "jobId": job_id, "operation": write.operation, "adAccountId": call.ad_account.id, "code": problem.code, "message": problem.message,
        }, call.ad_account.id))
        if isinstance(error, AuthExpired):
            account = await session.get(Account, call.ad_account.account_id)
            if account is not None and account.status != "disconnected":
                account.status = "token_expired"
            events.append(await record_org_event(session, organization_id, ACCOUNT_TOKEN_EXPIRED, {  # event kinds: ads.*
                "adAccountId": call.ad_account.id, "accountId": call.ad_account.account_id, "provider": call.ad_account.provider,
            }, call.ad_account.id))
    await publish_all(runtime, events)
    return WriteOutcome(job_id, None, [problem])


async def _hold_cap(session: AsyncSession, organization_id: str, write: AdWrite) -> None:
    """A write whose budget counts as in flight ends under the cap's lock (``caps.lock_cap``)."""
    budget = write.budget()
    if budget is not None:
        await lock_cap(session, organization_id, budget.currency)


async def _finish(session: AsyncSession, job_id: str, status: str, events: list[BusEvent], *, object_id: str | None = None,
                  error: UserError | None = None) -> Job:
    job = await session.get(Job, job_id)
    assert job is not None
    job.status, job.finished_at, job.progress_done = status, utcnow(), 1
    result = {k: v for k, v in dict(job.result or {}).items() if k not in ("budgetMinor",)}  # no longer in flight
    if object_id is not None:
        result["objectId"] = object_id
    job.result = result
    if error is not None:
        job.error_code, job.error_message = error.code, error.message
    await session.flush()
    events.append(await record_job_event(session, job.organization_id, job.id, f"job.{status}", _job_payload(job)))
    return job


async def _replayed(runtime: Runtime, organization_id: str, job_id: str) -> WriteOutcome:
    async with runtime.database.read() as session:
        job = await session.get(Job, job_id)
    assert job is not None and job.organization_id == organization_id
    errors = [UserError(job.error_code, job.error_message or job.error_code)] if job.error_code else []
    return WriteOutcome(job.id, (job.result or {}).get("objectId"), errors)


async def _denied_by_cap(runtime: Runtime, organization_id: str, write: AdWrite, exceeded: CapExceeded) -> None:
    common = {"operation": write.operation, "currency": exceeded.cap.currency}
    await record_apart(runtime, organization_id, [
        (BUDGET_CAP_EXCEEDED, {**common, "targetId": write.target_id, "capMinor": str(exceeded.cap.amount_minor),
                               "committedMinor": str(exceeded.committed), "requestedMinor": str(exceeded.requested)}, None),
        (WRITE_DENIED, {**common, "code": "BUDGET_CAP_EXCEEDED", "message": "the organization's daily spend cap"}, None),
    ])


async def record_scope_denied(runtime: Runtime, organization_id: str, operation: str, scope: str) -> None:
    """A key without the ``ads:write:*`` scope a write needs: the refusal is an event too."""
    await record_apart(runtime, organization_id, [
        (WRITE_DENIED, {"operation": operation, "code": "FORBIDDEN", "message": f"the API key lacks {scope}"}, None),
    ])


def _job_payload(job: Job) -> dict[str, Any]:
    return {"jobId": job.id, "status": job.status, "progress": {"done": job.progress_done, "total": job.progress_total}}

