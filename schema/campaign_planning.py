"""scheduleCampaign: a cadence plan per post and target, with its conflicts; a dry run, or applied as one job."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

from gateway.campaigns import planning
from gateway.campaigns.cadence import ALL_DAYS, Cadence, parse_times
from gateway.core import UserError
from schema.calendar import DayOfWeek
from schema.context import Info
from schema.jobs import JobType
from schema.payloads import UserErrorType, collect_user_errors


@strawberry.input(description="When posts go out: local times on chosen days, in the plan's timezone.")
class CadenceInput:
    times: list[str] = strawberry.field(description='Local times of day, "HH:MM".')
    posts_per_day: int | None = strawberry.field(default=None, description="How many of `times` to use each day; all by default.")
    days_of_week: list[DayOfWeek] | None = None  # type: ignore[valid-type]
    start_date: date | None = strawberry.field(default=None, description="Today, or the campaign's first day if later, by default.")
    end_date: date | None = strawberry.field(default=None, description="The campaign's last day, or 90 days on, by default.")
    skip_dates: list[date] = strawberry.field(default_factory=list)
    jitter_minutes: int = strawberry.field(default=0, description="Each post goes up to this many minutes late (0-120), the same in a dry run.")
    max_per_account_per_day: int | None = strawberry.field(default=None, description="An account's daily quota: more moves to the next slot.")


@strawberry.input
class ScheduleCampaignInput:
    campaign_id: strawberry.ID
    cadence: CadenceInput
    timezone: str | None = strawberry.field(default=None, description="IANA zone of the cadence's times; the campaign's by default.")
    include_drafts: bool = strawberry.field(default=True, description="Plan draft posts too, not only re-time posts already waiting.")
    dry_run: bool = strawberry.field(default=False, description="Return the plan and change nothing.")
    idempotency_key: str | None = None


@strawberry.type
class PlannedTarget:
    post_id: strawberry.ID
    target_id: strawberry.ID
    account_id: strawberry.ID
    provider: str
    local_time: str = strawberry.field(description="The local time with its UTC offset, e.g. 2026-03-30T09:00:00+02:00.")
    publish_at: datetime


@strawberry.type
class PlanConflict:
    code: str = strawberry.field(description="OUTSIDE_WINDOW, DAILY_QUOTA, PLATFORM_QUOTA, DST_GAP, DST_OVERLAP or NO_SLOT.")
    message: str
    resolution: str = strawberry.field(description="What the plan did about it.")
    post_id: strawberry.ID | None
    target_id: strawberry.ID | None
    account_id: strawberry.ID | None
    local_time: str | None


@strawberry.type
class CampaignPlan:
    campaign_id: strawberry.ID
    timezone: str
    dry_run: bool
    targets: list[PlannedTarget]
    conflicts: list[PlanConflict]
    unplaced_target_ids: list[strawberry.ID] = strawberry.field(description="Targets no slot could take; a plan with any cannot be applied.")

    @classmethod
    def from_plan(cls, plan: planning.Plan, dry_run: bool) -> CampaignPlan:
        def opt(value: str | None) -> strawberry.ID | None:
            return strawberry.ID(value) if value else None

        return cls(
            campaign_id=strawberry.ID(plan.campaign_id), timezone=plan.timezone, dry_run=dry_run,
            targets=[
                PlannedTarget(post_id=strawberry.ID(t.post_id), target_id=strawberry.ID(t.target_id), account_id=strawberry.ID(t.account_id),
                              provider=t.provider, local_time=t.local.isoformat(), publish_at=t.publish_at)
                for t in plan.targets
            ],
            conflicts=[
                PlanConflict(code=c.code, message=c.message, resolution=c.resolution, post_id=opt(c.post_id), target_id=opt(c.target_id),
                             account_id=opt(c.account_id), local_time=c.local.isoformat() if c.local else None)
                for c in plan.conflicts
            ],
            unplaced_target_ids=[strawberry.ID(i) for i in plan.unplaced],
        )


@strawberry.type
class ScheduleCampaignPayload:
    plan: CampaignPlan | None = strawberry.field(description="The plan; null when a repeated idempotencyKey returns the first apply's job.")
    job: JobType | None = strawberry.field(description="The campaign.schedule job; null for a dry run.")
    user_errors: list[UserErrorType]


def _request_of(input: ScheduleCampaignInput) -> planning.PlanRequest:
    c = input.cadence
    if input.timezone is not None and not input.timezone:
        raise UserError("INVALID_TIMEZONE", "timezone is an IANA zone such as Europe/Paris.", ["timezone"])
    cadence = Cadence(
        times=parse_times(c.times), start_date=c.start_date, end_date=c.end_date, posts_per_day=c.posts_per_day,
        # One DayOfWeek in the API (the posting queues' MONDAY … SUNDAY, 0-6); cadences count ISO days, 1-7.
        days_of_week=frozenset(d.value + 1 for d in c.days_of_week) if c.days_of_week is not None else ALL_DAYS,
        skip_dates=frozenset(c.skip_dates), jitter_minutes=c.jitter_minutes, max_per_account_per_day=c.max_per_account_per_day,
    )
    return planning.PlanRequest(str(input.campaign_id), cadence, input.timezone, input.include_drafts)


def _fingerprint(request: planning.PlanRequest) -> dict[str, Any]:
    cadence = request.cadence
    return {
        **request.__dict__,
        "cadence": {**cadence.__dict__, "times": [t.isoformat() for t in cadence.times], "days_of_week": sorted(cadence.days_of_week),
                    "skip_dates": sorted(d.isoformat() for d in cadence.skip_dates)},
    }


@strawberry.type
class CampaignPlanningMutation:
    @strawberry.mutation(
        description="Plan the campaign's posts on a cadence: per post and target the local and UTC time, and every conflict. "
        "dryRun changes nothing; otherwise the plan is applied as one campaign.schedule job, all or nothing."
    )
    async def schedule_campaign(self, info: Info, input: ScheduleCampaignInput) -> ScheduleCampaignPayload:
        principal = info.context.require("campaigns:read" if input.dry_run else "campaigns:write")
        if not input.dry_run:
            info.context.require("posts:publish")
        runtime = info.context.runtime

        async def run() -> tuple[planning.Plan | None, Any]:
            request = _request_of(input)
            if input.dry_run:
                return await planning.dry_run(runtime, principal.organization_id, request), None
            job, plan = await planning.apply(runtime, principal.organization_id, request, input.idempotency_key, _fingerprint(request))
            return plan, job

        result, errors = await collect_user_errors(run())
        if result is None:
            return ScheduleCampaignPayload(plan=None, job=None, user_errors=errors)
        plan, job = result
        return ScheduleCampaignPayload(
            plan=CampaignPlan.from_plan(plan, input.dry_run) if plan is not None else None,
            job=JobType.from_row(job) if job is not None else None,
            user_errors=[],
        )
