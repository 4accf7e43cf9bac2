"""Campaigns: create, edit, list with filters, their counts and next publish time; pause, resume,
archive; moving posts between campaigns while they are unpublished.

Pausing is enforced where publishing happens: the engine's claim skips every target of a paused
campaign (``gateway.campaigns.holds``), so no API path can publish one by mistake. Resuming
applies the campaign's ``late_policy`` to the targets whose time passed during the pause: with
``publish`` they stay due and go out at once; with ``miss`` they become ``missed``, their jobs
end, and nothing is published late.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import require_owned
from gateway.campaigns.membership import require_open_campaign
from gateway.content import PENDING_STATUSES, derive_status, lock_post, lock_targets, targets_of
from gateway.core import BadInput, Conflict, Page, PageRequest, UserError, new_id, paginate, utcnow
from gateway.engine.queue import lock_jobs, post_status_change, refresh_job, withdraw
from gateway.events import BusEvent, record_job_event, record_org_event
from gateway.orgs import merge_metadata, validate_metadata
from gateway.runtime import Runtime
from gateway.storage import Campaign, Post, Target

CAMPAIGN_STATUSES = ("draft", "active", "paused", "completed", "archived")
# Statuses updateCampaign may set; pausing, resuming and archiving have their own commands.
EDITABLE_STATUSES = ("draft", "active", "completed")
LATE_POLICIES = ("publish", "miss")
# A target in one of these states has not reached the platform: its post may change campaign.
UNSTARTED = ("draft", "scheduled", "retry_pending", "canceled", "missed")
MAX_NAME = 200
MAX_DESCRIPTION = 5_000
MAX_TAGS = 20
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,39}")

T = TypeVar("T")


@dataclass(frozen=True)
class CampaignFields:
    """What a caller may set on a campaign; ``updateCampaign`` passes only what it sent."""

    name: str = ""
    description: str = ""
    status: str = "draft"
    timezone: str = "UTC"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    late_policy: str = "publish"


@dataclass(frozen=True)
class CampaignFilter:
    status: str | None = None
    tag: str | None = None
    search: str | None = None  # a part of the name, any case


@dataclass(frozen=True)
class CampaignCounts:
    targets: dict[str, int]  # target status → how many
    posts: dict[str, int]  # derived post status → how many
    next_publish_at: datetime | None


def check_timezone(name: str, field_name: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError("INVALID_TIMEZONE", f"{name[:60]!r} is not an IANA timezone such as Europe/Paris.", [field_name]) from None


def _check(fields: CampaignFields) -> CampaignFields:
    name = fields.name.strip()
    if not name:
        raise UserError("NAME_REQUIRED", "A campaign needs a name.", ["name"])
    if len(name) > MAX_NAME:
        raise UserError("NAME_TOO_LONG", f"A name is at most {MAX_NAME} characters.", ["name"])
    if len(fields.description) > MAX_DESCRIPTION:
        raise UserError("DESCRIPTION_TOO_LONG", f"A description is at most {MAX_DESCRIPTION} characters.", ["description"])
    check_timezone(fields.timezone)
    for value, argument in ((fields.starts_at, "startsAt"), (fields.ends_at, "endsAt")):
        if value is not None and value.tzinfo is None:
            raise UserError("TIMEZONE_REQUIRED", f"`{argument}` needs a UTC offset.", [argument])
    if fields.starts_at and fields.ends_at and fields.ends_at <= fields.starts_at:
        raise UserError("WINDOW_INVALID", "endsAt must come after startsAt.", ["endsAt"])
    if len(fields.tags) > MAX_TAGS:
        raise UserError("TOO_MANY_TAGS", f"A campaign has at most {MAX_TAGS} tags.", ["tags"])
    for index, tag in enumerate(fields.tags):
        if not TAG_PATTERN.fullmatch(tag):
            raise UserError("TAG_INVALID", "A tag is 1 to 40 letters, digits, spaces, '_', '.' or '-'.", ["tags", str(index)])
    if fields.late_policy not in LATE_POLICIES:
        raise UserError("LATE_POLICY_INVALID", f"latePolicy is one of {', '.join(LATE_POLICIES)}.", ["latePolicy"])
    if fields.status not in EDITABLE_STATUSES:
        raise UserError(
            "STATUS_NOT_SETTABLE", "Set draft, active or completed here; pause, resume and archive have their own mutations.", ["status"]
        )
    return CampaignFields(**{**fields.__dict__, "name": name, "tags": tuple(dict.fromkeys(fields.tags))})


def _apply(campaign: Campaign, fields: CampaignFields) -> None:
    campaign.name = fields.name
    campaign.description = fields.description
    campaign.status = fields.status
    campaign.timezone = fields.timezone
    campaign.starts_at = fields.starts_at
    campaign.ends_at = fields.ends_at
    campaign.tags = list(fields.tags)
    campaign.late_policy = fields.late_policy


def _fields_of(campaign: Campaign) -> CampaignFields:
    return CampaignFields(
        name=campaign.name, description=campaign.description, status=campaign.status, timezone=campaign.timezone,
        starts_at=campaign.starts_at, ends_at=campaign.ends_at, tags=tuple(campaign.tags or ()),
        metadata=dict(campaign.metadata_ or {}), late_policy=campaign.late_policy,
    )


def _event_payload(campaign: Campaign, **extra: Any) -> dict[str, Any]:
    return {"campaignId": campaign.id, "status": campaign.status, **extra}


async def require_campaign(session: AsyncSession, organization_id: str, campaign_id: str) -> Campaign:
    return await require_owned(session, Campaign, "camp", organization_id, campaign_id, code="CAMPAIGN_NOT_FOUND", noun="campaign")


async def campaign_post_ids(session: AsyncSession, organization_id: str, campaign_id: str) -> list[str]:
    """The campaign's posts (deleted ones aside), oldest first: what a client preview of the campaign shows."""
    await require_campaign(session, organization_id, campaign_id)
    query = (
        select(Post.id).where(Post.organization_id == organization_id, Post.campaign_id == campaign_id, Post.deleted_at.is_(None))
        .order_by(Post.created_at, Post.id)
    )
    return list((await session.execute(query)).scalars())


async def create_campaign(session: AsyncSession, organization_id: str, fields: CampaignFields) -> tuple[Campaign, list[BusEvent]]:
    checked = _check(fields)
    campaign = Campaign(id=new_id("camp"), organization_id=organization_id, metadata_=validate_metadata(fields.metadata))
    _apply(campaign, checked)
    session.add(campaign)
    await session.flush()
    event = await record_org_event(session, organization_id, "campaign.created", _event_payload(campaign, name=campaign.name), campaign.id)
    return campaign, [event]


async def update_campaign(
    session: AsyncSession, organization_id: str, campaign_id: str, changes: Mapping[str, Any]
) -> tuple[Campaign, list[BusEvent]]:
    """Change the fields in ``changes`` (metadata merges key by key); an archived campaign is frozen."""
    campaign = await require_campaign(session, organization_id, campaign_id)
    if campaign.status == "archived":
        raise UserError("CAMPAIGN_ARCHIVED", "An archived campaign can no longer change.", ["id"])
    paused = campaign.status == "paused"
    if paused and "status" in changes:
        raise UserError("STATUS_NOT_SETTABLE", "The campaign is paused: resumeCampaign applies its late policy.", ["status"])
    current = _fields_of(campaign)
    wanted = {k: v for k, v in changes.items() if k != "metadata"} | ({"status": "active"} if paused else {})
    checked = _check(CampaignFields(**{**current.__dict__, **wanted}))  # a paused campaign's fields check as an active one's
    _apply(campaign, checked)
    if paused:
        campaign.status = "paused"
    if "metadata" in changes:
        campaign.metadata_ = merge_metadata(campaign.metadata_ or {}, changes["metadata"])
    campaign.updated_at = utcnow()
    await session.flush()
    event = await record_org_event(
        session, organization_id, "campaign.updated", _event_payload(campaign, fields=sorted(changes)), campaign.id
    )
    return campaign, [event]


async def list_campaigns(session: AsyncSession, organization_id: str, filters: CampaignFilter, page: PageRequest) -> Page[Campaign]:
    query = select(Campaign).where(Campaign.organization_id == organization_id)
    if filters.status is not None:
        if filters.status not in CAMPAIGN_STATUSES:
            raise BadInput(f"Unknown campaign status {filters.status[:40]!r}.", "status")
        query = query.where(Campaign.status == filters.status)
    if filters.tag is not None:
        if not TAG_PATTERN.fullmatch(filters.tag):
            raise BadInput("A tag is 1 to 40 letters, digits, spaces, '_', '.' or '-'.", "tag")
        # Tags hold no quote, so the quoted tag matches one whole element of the JSON list.
        query = query.where(cast(Campaign.tags, String).contains(f'"{filters.tag}"'))
    if filters.search:
        query = query.where(func.lower(Campaign.name).contains(filters.search.lower(), autoescape=True))
    return await paginate(session, query, Campaign, page)


def _campaign_targets(campaign_id: str) -> Any:
    return select(Target).join(Post, Post.id == Target.post_id).where(Post.campaign_id == campaign_id, Post.deleted_at.is_(None))


async def counts_of(session: AsyncSession, campaign_ids: Sequence[str]) -> dict[str, CampaignCounts]:
    """Per campaign: targets and posts by status and the next time one is due, in one query."""
    rows = (
        await session.execute(
            select(Post.campaign_id, Post.id, Target.status, Target.next_attempt_at)
            .join(Target, Target.post_id == Post.id)
            .where(Post.campaign_id.in_(list(campaign_ids)), Post.deleted_at.is_(None))
        )
    ).all()
    targets: dict[str, dict[str, int]] = {c: {} for c in campaign_ids}
    by_post: dict[tuple[str, str], list[str]] = {}
    upcoming: dict[str, datetime] = {}
    for campaign_id, post_id, status, due in rows:
        targets[campaign_id][status] = targets[campaign_id].get(status, 0) + 1
        by_post.setdefault((campaign_id, post_id), []).append(status)
        if status in PENDING_STATUSES and due is not None and (campaign_id not in upcoming or due < upcoming[campaign_id]):
            upcoming[campaign_id] = due
    posts: dict[str, dict[str, int]] = {c: {} for c in campaign_ids}
    for (campaign_id, _), statuses in by_post.items():
        status = derive_status(statuses)
        posts[campaign_id][status] = posts[campaign_id].get(status, 0) + 1
    return {c: CampaignCounts(targets[c], posts[c], upcoming.get(c)) for c in campaign_ids}


async def _lock_campaign_targets(session: AsyncSession, campaign_id: str) -> list[Target]:
    """Lock the campaign's targets (PostgreSQL), as the engine orders locks, and read them afresh.

    A claim that already holds one of them finishes first; a claim that starts later skips the
    locked rows, then sees the campaign's new status.
    """
    await lock_targets(session, Target.post_id.in_(select(Post.id).where(Post.campaign_id == campaign_id)))
    query = _campaign_targets(campaign_id).order_by(Target.id).execution_options(populate_existing=True)
    return list((await session.execute(query)).scalars())


async def pause_campaign(session: AsyncSession, organization_id: str, campaign_id: str) -> tuple[Campaign, list[BusEvent]]:
    campaign = await require_campaign(session, organization_id, campaign_id)
    if campaign.status not in ("draft", "active"):
        raise UserError("CAMPAIGN_NOT_PAUSABLE", f"Only a draft or active campaign can pause; this one is {campaign.status}.", ["id"])
    targets = await _lock_campaign_targets(session, campaign.id)
    campaign.status = "paused"
    campaign.updated_at = utcnow()
    held = sum(1 for t in targets if t.status in PENDING_STATUSES)
    event = await record_org_event(session, organization_id, "campaign.paused", _event_payload(campaign, heldTargets=held), campaign.id)
    return campaign, [event]


async def resume_campaign(session: AsyncSession, organization_id: str, campaign_id: str) -> tuple[Campaign, list[BusEvent]]:
    """Active again; targets whose time passed while paused publish now or become ``missed``."""
    campaign = await require_campaign(session, organization_id, campaign_id)
    if campaign.status != "paused":
        raise UserError("CAMPAIGN_NOT_PAUSED", f"Only a paused campaign can resume; this one is {campaign.status}.", ["id"])
    targets = await _lock_campaign_targets(session, campaign.id)
    now = utcnow()
    overdue = [t for t in targets if t.status in PENDING_STATUSES and t.next_attempt_at is not None and t.next_attempt_at <= now]
    events: list[BusEvent] = []
    if campaign.late_policy == "miss" and overdue:
        events += await _mark_missed(session, overdue)
    campaign.status = "active"
    campaign.updated_at = now
    payload = _event_payload(campaign, overdueTargets=len(overdue), missedTargets=len(overdue) if campaign.late_policy == "miss" else 0)
    events.append(await record_org_event(session, organization_id, "campaign.resumed", payload, campaign.id))
    return campaign, events


async def _mark_missed(session: AsyncSession, targets: Sequence[Target]) -> list[BusEvent]:
    """``missed`` for each target, with its event; each job's progress, and each post's status, follow."""
    post_ids = sorted({t.post_id for t in targets})
    before = {p: derive_status([t.status for t in ts]) for p, ts in (await targets_of(session, post_ids)).items()}
    jobs = {job.id: job for job in await lock_jobs(session, [t.job_id for t in targets if t.job_id])}
    events: list[BusEvent] = []
    for target in targets:
        target.status = "missed"
        target.next_attempt_at = None
        target.error_code = "MISSED"
        target.error_message = "Its time passed while the campaign was paused, and the campaign's policy is not to publish late."
        if target.job_id in jobs:
            payload = {"targetId": target.id, "postId": target.post_id, "status": "missed"}
            events.append(await record_job_event(session, target.organization_id, target.job_id, "target.missed", payload))
    await session.flush()
    for job in jobs.values():
        await refresh_job(session, job, events)
    for post_id in post_ids:
        post = await session.get(Post, post_id)
        job = next((jobs[t.job_id] for t in targets if t.post_id == post_id and t.job_id in jobs), None)
        if post is None or job is None:
            continue
        current = (await targets_of(session, [post_id]))[post_id]
        if (changed := await post_status_change(session, post.organization_id, post_id, job.id, before[post_id], current)) is not None:
            events.append(changed)
    return events


async def archive_campaign(session: AsyncSession, organization_id: str, campaign_id: str) -> tuple[Campaign, list[BusEvent]]:
    """Archived for good: targets still waiting are canceled (as cancelPost cancels them)."""
    campaign = await require_campaign(session, organization_id, campaign_id)
    if campaign.status == "archived":
        raise UserError("CAMPAIGN_ARCHIVED", "The campaign is archived already.", ["id"])
    targets = await _lock_campaign_targets(session, campaign.id)
    events: list[BusEvent] = []
    waiting: dict[str, list[Target]] = {}
    for target in targets:
        if target.status in PENDING_STATUSES:
            waiting.setdefault(target.post_id, []).append(target)
    for post_id, post_targets in sorted(waiting.items()):
        events += await withdraw(session, await session.get(Post, post_id), post_targets)
    campaign.status = "archived"
    campaign.updated_at = utcnow()
    canceled = sum(len(ts) for ts in waiting.values())
    events.append(
        await record_org_event(session, organization_id, "campaign.archived", _event_payload(campaign, canceledTargets=canceled), campaign.id)
    )
    return campaign, events


async def move_posts(
    session: AsyncSession, organization_id: str, post_ids: Sequence[str], campaign_id: str | None
) -> tuple[list[Post], list[BusEvent]]:
    """Put posts in ``campaign_id`` (None: out of any campaign), all or none.

    A post with a target that reached the platform (publishing, published, unconfirmed) stays
    where it is: its campaign's history would change under it.
    """
    if not post_ids:
        raise UserError("POST_IDS_REQUIRED", "Name at least one post.", ["postIds"])
    if len(post_ids) > 500:
        raise UserError("TOO_MANY_POSTS", "Move at most 500 posts at a time.", ["postIds"])
    await require_open_campaign(session, organization_id, campaign_id)
    moved: list[Post] = []
    for index, post_id in enumerate(dict.fromkeys(post_ids)):
        try:
            post = await lock_post(session, organization_id, post_id)
        except UserError:
            raise UserError("POST_NOT_FOUND", f"No post {post_id[:60]!r}.", ["postIds", str(index)]) from None
        statuses = [t.status for t in (await targets_of(session, [post.id]))[post.id]]
        if any(s not in UNSTARTED for s in statuses):
            raise Conflict("This post has started publishing; it stays in its campaign.", ["postIds", str(index)])
        post.campaign_id = campaign_id
        post.updated_at = utcnow()
        moved.append(post)
    await session.flush()
    payload = {"campaignId": campaign_id, "postIds": [p.id for p in moved]}
    return moved, [await record_org_event(session, organization_id, "campaign.posts_moved", payload, campaign_id)]


async def commit_and_announce(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[tuple[T, list[BusEvent]]]]) -> T:
    """Run ``work`` in one write transaction, then publish its events and wake the scheduler."""
    async with runtime.database.write() as session:
        result, events = await work(session)
    for event in events:
        await runtime.publish(event)
    runtime.wake_scheduler()
    return result
