"""scheduleCampaign: place a campaign's posts on a cadence's slots, report every conflict, and
apply the plan as one job, all or nothing.

The plan is computed from what is stored, the same way for a dry run and for the apply (which
plans again inside its write transaction, so it acts on the rows it locked, not on what a dry
run saw). Posts take slots in creation order, one post a slot; each of a post's targets goes at
its post's slot unless its account is full there — the cadence's daily cap per account, or a
posting quota its platform declares — and then at the next slot with room. Jitter is derived
from the campaign and post ids, so a dry run shows exactly the times the apply writes.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.campaigns.cadence import Cadence, Slot, slots, with_dates
from gateway.campaigns.campaigns import check_timezone, require_campaign
from gateway.content import PENDING_STATUSES, PostValidator, input_of
from gateway.core import UserError, utcnow
from gateway.engine.queue import create_job, enqueue_post, job_payload, lock_jobs
from gateway.events import BusEvent, record_job_event
from gateway.plugins import PluginRegistry
from gateway.runtime import Runtime
from gateway.storage import Campaign, Job, Post, Target, run_idempotent

JOB_KIND = "campaign.schedule"
PROGRESS_EVERY = 50  # posts between two job.progress events
MAX_REACH = timedelta(days=2 * 366)  # as far as schedulePost reaches ahead; a plan reaches no further either way


@dataclass(frozen=True)
class PlanRequest:
    campaign_id: str
    cadence: Cadence
    timezone: str | None = None  # None: the campaign's
    include_drafts: bool = True


@dataclass(frozen=True)
class PlannedTarget:
    post_id: str
    target_id: str
    account_id: str
    provider: str
    local: datetime  # aware, in the plan's zone
    publish_at: datetime  # UTC


@dataclass(frozen=True)
class PlanConflict:
    code: str  # OUTSIDE_WINDOW | DAILY_QUOTA | PLATFORM_QUOTA | DST_GAP | DST_OVERLAP | NO_SLOT
    message: str
    resolution: str
    post_id: str | None = None
    target_id: str | None = None
    account_id: str | None = None
    local: datetime | None = None


@dataclass
class Plan:
    campaign_id: str
    timezone: str
    targets: list[PlannedTarget] = field(default_factory=list)
    conflicts: list[PlanConflict] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # target ids no slot could take

    def summary(self) -> dict[str, Any]:
        return {
            "posts": len({t.post_id for t in self.targets}), "targets": len(self.targets),
            "conflicts": len(self.conflicts), "unplaced": len(self.unplaced),
        }


class _Load:
    """What each account already has, and gets, at which times: for its daily cap and its quotas."""

    def __init__(self, zone: ZoneInfo, per_day: int | None, quotas: dict[str, tuple[Any, ...]]) -> None:
        self.zone, self.per_day, self.quotas = zone, per_day, quotas
        self.times: dict[str, list[datetime]] = {}
        self.days: dict[tuple[str, date], int] = {}

    def add(self, account_id: str, at: datetime) -> None:
        bisect.insort(self.times.setdefault(account_id, []), at)
        key = (account_id, at.astimezone(self.zone).date())
        self.days[key] = self.days.get(key, 0) + 1

    def refusal(self, account_id: str, provider: str, at: datetime) -> tuple[str, str] | None:
        """Why ``account_id`` cannot take one more post at ``at`` (code, message), or None."""
        if self.per_day is not None and self.days.get((account_id, at.astimezone(self.zone).date()), 0) >= self.per_day:
            return "DAILY_QUOTA", f"The account already has {self.per_day} posts that day (maxPerAccountPerDay)."
        times = self.times.get(account_id, [])
        for quota in self.quotas.get(provider, ()):
            period = timedelta(seconds=quota.period_seconds)
            before = bisect.bisect_right(times, at) - bisect.bisect_right(times, at - period)
            after = bisect.bisect_left(times, at + period) - bisect.bisect_left(times, at)
            if max(before, after) >= quota.count:
                return "PLATFORM_QUOTA", f"{provider} allows {quota.count} posts per {quota.period_seconds} s per account."
        return None


def _jitter(campaign_id: str, post_id: str, minutes: int) -> timedelta:
    return timedelta(minutes=random.Random(f"{campaign_id}:{post_id}").randint(0, minutes)) if minutes else timedelta()


def _dst_conflict(slot: Slot, post_id: str) -> PlanConflict | None:
    if slot.dst == "gap":
        return PlanConflict(
            "DST_GAP", f"{slot.wanted:%Y-%m-%d %H:%M} does not exist in this timezone (clocks spring forward).",
            f"moved forward to {slot.local:%H:%M}", post_id=post_id, local=slot.local,
        )
    if slot.dst == "overlap":
        return PlanConflict(
            "DST_OVERLAP", f"{slot.wanted:%Y-%m-%d %H:%M} happens twice in this timezone (clocks fall back).",
            f"the first occurrence, UTC offset {slot.local:%z}", post_id=post_id, local=slot.local,
        )
    return None


async def _plannable(session: AsyncSession, campaign: Campaign, include_drafts: bool) -> list[tuple[Post, list[Target]]]:
    """The campaign's posts the plan places, oldest first: drafts (if asked) and posts waiting untouched."""
    rows = (
        await session.execute(
            select(Post, Target)
            .join(Target, Target.post_id == Post.id)
            .where(Post.campaign_id == campaign.id, Post.deleted_at.is_(None))
            .order_by(Post.created_at, Post.id, Target.id)
        )
    ).all()
    grouped: dict[str, tuple[Post, list[Target]]] = {}
    for post, target in rows:
        grouped.setdefault(post.id, (post, []))[1].append(target)
    wanted = {"scheduled"} | ({"draft"} if include_drafts else set())
    chosen = []
    for post, targets in grouped.values():
        statuses = {t.status for t in targets}
        if len(statuses) == 1 and statuses <= wanted and all(t.attempt_count == 0 for t in targets):
            chosen.append((post, targets))
    return chosen


async def _existing_load(session: AsyncSession, load: _Load, account_ids: set[str], skip: set[str], start: datetime, end: datetime) -> None:
    """Count the accounts' other waiting targets around the plan's range."""
    if not account_ids:
        return
    query = select(Target.id, Target.account_id, Target.next_attempt_at).where(
        Target.account_id.in_(sorted(account_ids)), Target.status.in_(PENDING_STATUSES),
        Target.next_attempt_at >= start - timedelta(days=2), Target.next_attempt_at <= end + timedelta(days=2),
    )
    for target_id, account_id, at in (await session.execute(query)).all():
        if target_id not in skip:
            load.add(account_id, at)


async def make_plan(
    session: AsyncSession, registry: PluginRegistry, organization_id: str, request: PlanRequest
) -> tuple[Campaign, Plan, list[tuple[Post, list[Target]]]]:
    campaign = await require_campaign(session, organization_id, request.campaign_id)
    if campaign.status in ("completed", "archived"):
        raise UserError("CAMPAIGN_CLOSED", f"The campaign is {campaign.status}; it cannot be scheduled.", ["campaignId"])
    zone_name = request.timezone or campaign.timezone
    zone = check_timezone(zone_name)
    now = utcnow()
    window = [None if at is None else at.astimezone(zone).date() for at in (campaign.starts_at, campaign.ends_at)]
    if campaign.ends_at is not None and window[1] is not None and campaign.ends_at.astimezone(zone).time() == datetime.min.time():
        window[1] -= timedelta(days=1)  # a window ending at midnight ends the day before
    today = now.astimezone(zone).date()
    if any(d is not None and not today - MAX_REACH <= d <= today + MAX_REACH for d in (request.cadence.start_date, request.cadence.end_date)):
        raise UserError("CADENCE_DATES_INVALID", "A plan's dates lie within two years of today.", ["cadence", "startDate"])
    window = [None if d is None else min(max(d, today - MAX_REACH), today + MAX_REACH) for d in window]
    cadence = with_dates(request.cadence, today, window[0], window[1]).checked()
    posts = await _plannable(session, campaign, request.include_drafts)
    plan = Plan(campaign.id, zone_name)
    available = [s for s in slots(cadence, zone) if s.at > now]
    quotas = {t.provider: provider.limits.quotas for _, ts in posts for t in ts if (provider := registry.get(t.provider)) is not None}
    load = _Load(zone, cadence.max_per_account_per_day, {p: tuple(q for q in qs if q.scope == "account") for p, qs in quotas.items()})
    if available:
        planned_ids = {t.id for _, ts in posts for t in ts}
        await _existing_load(session, load, {t.account_id for _, ts in posts for t in ts}, planned_ids, available[0].at, available[-1].at)
    index = 0
    for post, targets in posts:
        jitter = _jitter(campaign.id, post.id, cadence.jitter_minutes)
        while index < len(available) and not _in_window(campaign, available[index].at + jitter):
            slot = available[index]
            plan.conflicts.append(PlanConflict(
                "OUTSIDE_WINDOW", "The slot falls outside the campaign's window.", "slot skipped", post_id=post.id, local=slot.local,
            ))
            index += 1
        if index >= len(available):
            _unplaced(plan, post, targets, "No slot left in the cadence's dates for this post.")
            continue
        if (dst := _dst_conflict(available[index], post.id)) is not None:
            plan.conflicts.append(dst)
        for target in targets:
            _place(plan, load, campaign, available, index, jitter, post, target, zone)
        index += 1
    return campaign, plan, posts


def _in_window(campaign: Campaign, at: datetime) -> bool:
    return (campaign.starts_at is None or at >= campaign.starts_at) and (campaign.ends_at is None or at < campaign.ends_at)


def _unplaced(plan: Plan, post: Post, targets: Sequence[Target], message: str) -> None:
    for target in targets:
        plan.unplaced.append(target.id)
        plan.conflicts.append(PlanConflict("NO_SLOT", message, "not scheduled", post_id=post.id, target_id=target.id, account_id=target.account_id))


def _place(
    plan: Plan, load: _Load, campaign: Campaign, available: list[Slot], index: int, jitter: timedelta, post: Post, target: Target, zone: ZoneInfo
) -> None:
    """The target at its post's slot, or at the first later slot its account has room in."""
    first_refusal: tuple[str, str] | None = None
    for candidate in range(index, len(available)):
        at = available[candidate].at + jitter
        if not _in_window(campaign, at):
            continue
        refusal = load.refusal(target.account_id, target.provider, at)
        if refusal is None:
            load.add(target.account_id, at)
            local = at.astimezone(zone)
            plan.targets.append(PlannedTarget(post.id, target.id, target.account_id, target.provider, local, at))
            if first_refusal is not None:
                plan.conflicts.append(PlanConflict(
                    first_refusal[0], first_refusal[1], f"moved to {local.isoformat()}", post_id=post.id, target_id=target.id,
                    account_id=target.account_id, local=available[index].local,
                ))
            return
        first_refusal = first_refusal or refusal
    _unplaced(plan, post, [target], (first_refusal or ("", "No slot left in the cadence's dates."))[1])


async def dry_run(runtime: Runtime, organization_id: str, request: PlanRequest) -> Plan:
    """The plan, from a read session: nothing is written."""
    async with runtime.database.read() as session:
        return (await make_plan(session, runtime.plugins, organization_id, request))[1]


async def _apply(
    session: AsyncSession,
    validator: PostValidator,
    runtime: Runtime,
    organization_id: str,
    request: PlanRequest,
    events: list[BusEvent],
    applied: list[Plan],
) -> dict[str, Any]:
    campaign, plan, posts = await make_plan(session, runtime.plugins, organization_id, request)
    applied.append(plan)
    if plan.unplaced:
        raise UserError(
            "PLAN_INCOMPLETE", f"{len(plan.unplaced)} targets found no slot; widen the cadence or run a dry run to see why.", ["cadence"]
        )
    by_target = {t.target_id: t for t in plan.targets}
    job = await create_job(session, organization_id, JOB_KIND, campaign.id, len(posts))
    job.status, job.started_at = "running", utcnow()
    events.append(await record_job_event(session, organization_id, job.id, "job.running", job_payload(job)))
    for done, (post, targets) in enumerate(posts, start=1):
        times = [by_target[t.id].publish_at for t in targets]
        queued = await enqueue_post(session, validator, organization_id, post.id, min(times))
        events.extend(queued.events)
        for target in targets:
            target.publish_at = target.next_attempt_at = by_target[target.id].publish_at
        job.progress_done = done
        if done % PROGRESS_EVERY == 0 or done == len(posts):
            events.append(await record_job_event(session, organization_id, job.id, "job.progress", job_payload(job)))
    await lock_jobs(session, [job.id])
    job.status, job.finished_at = "succeeded", utcnow()
    job.result = {"campaignId": campaign.id, "timezone": plan.timezone, **plan.summary()}
    events.append(await record_job_event(session, organization_id, job.id, "job.succeeded", job_payload(job) | {"result": job.result}))
    await session.flush()
    return {"jobId": job.id}


async def apply(
    runtime: Runtime, organization_id: str, request: PlanRequest, idempotency_key: str | None, fingerprint: Any
) -> tuple[Job, Plan | None]:
    """Schedule every planned target in one transaction (one ``campaign.schedule`` job), or nothing.

    Returns the job and the plan applied. Under an idempotency key a repeat, even a concurrent
    one, schedules nothing again and returns the first apply's job (and no plan: the times are
    on the posts).
    """
    validator = PostValidator(runtime.plugins)
    if runtime.plugins.has_policy_hooks():  # checked before the transaction, never inside it
        async with runtime.database.read() as session:
            campaign = await require_campaign(session, organization_id, request.campaign_id)
            inputs = [input_of(post, targets) for post, targets in await _plannable(session, campaign, request.include_drafts)]
        await validator.check_many(runtime.database, organization_id, inputs)
    events: list[BusEvent] = []
    applied: list[Plan] = []

    async def work(session: AsyncSession) -> dict[str, Any]:
        events.clear()  # a transaction run again (policy hooks checked meanwhile) records its events afresh
        applied.clear()
        return await _apply(session, validator, runtime, organization_id, request, events, applied)

    result = await run_idempotent(
        runtime.database, organization_id, "scheduleCampaign", idempotency_key, fingerprint, work, runner=validator.run
    )
    for event in events:
        await runtime.publish(event, subject_id=event.payload.get("targetId") or event.payload.get("postId"))
    runtime.wake_scheduler()
    async with runtime.database.read() as session:
        job = await session.get(Job, result["jobId"])
    assert job is not None, "the job commits with the idempotency record that names it"
    return job, applied[0] if applied else None
