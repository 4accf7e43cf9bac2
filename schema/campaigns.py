"""Campaigns: campaigns, campaign; createCampaign, updateCampaign, pause/resume/archiveCampaign,
movePostsToCampaign. Cadence planning and bulk creation live in ``schema.campaign_planning``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

import gateway.content as post_service
from gateway.auth import find_owned, find_owned_many
from gateway.campaigns import campaigns as service
from gateway.events import BusEvent
from gateway.storage import Campaign as CampaignRow
from schema.context import Info
from schema.metrics import CampaignMetricsType, campaign_metrics
from schema.payloads import UserErrorType, collect_user_errors, run_create
from schema.posts import PostType, post_connection
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one

CampaignStatus = strawberry.enum(Enum("CampaignStatus", {s.upper(): s for s in service.CAMPAIGN_STATUSES}))  # type: ignore[misc]
LatePolicy = strawberry.enum(  # type: ignore[misc]
    Enum("LatePolicy", {p.upper(): p for p in service.LATE_POLICIES}),
    description="What resuming a paused campaign does with a target whose time passed: publish it now, or mark it missed.",
)


@strawberry.type
class StatusCount:
    status: str
    count: int


@strawberry.type
class CampaignCountsType:
    posts: list[StatusCount] = strawberry.field(description="Posts by their derived status.")
    targets: list[StatusCount] = strawberry.field(description="Targets by status.")


def _counted(counts: dict[str, int]) -> list[StatusCount]:
    return [StatusCount(status=s, count=n) for s, n in sorted(counts.items())]


@strawberry.type(name="Campaign", description="Posts planned together, with a window, a timezone and a status.")
class CampaignType(Node):
    id: strawberry.ID
    name: str
    description: str
    status: CampaignStatus  # type: ignore[valid-type]
    timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    tags: list[str]
    metadata: JSON = strawberry.field(description="Your own string→string map (≤ 50 keys).")
    late_policy: LatePolicy  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: CampaignRow) -> CampaignType:
        return cls(
            id=strawberry.ID(row.id), name=row.name, description=row.description, status=CampaignStatus(row.status),
            timezone=row.timezone, starts_at=row.starts_at, ends_at=row.ends_at, tags=list(row.tags or []),
            metadata=dict(row.metadata_ or {}), late_policy=LatePolicy(row.late_policy), created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="The campaign's posts, newest first (needs posts:read).")
    async def posts(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> Connection[PostType]:
        principal = info.context.require("posts:read")
        filters = post_service.PostFilter(campaign_id=str(self.id))
        async with info.context.read() as session:
            page = await post_service.list_posts(session, principal.organization_id, filters, page_request(first, after, last, before))
            return await post_connection(info, session, page)

    @strawberry.field(description="How many posts and targets are in each status.")
    async def counts(self, info: Info) -> CampaignCountsType:
        counts = await info.context.loaders.campaign_counts.load(str(self.id))
        return CampaignCountsType(posts=_counted(counts.posts), targets=_counted(counts.targets))

    @strawberry.field(description="The campaign's posts' latest figures, summed (needs analytics:read).")
    def metrics(self, info: Info) -> CampaignMetricsType:
        return campaign_metrics(info, str(self.id))

    @strawberry.field(description="When the campaign's next waiting target is due; null when none waits.")
    async def next_publish_at(self, info: Info) -> datetime | None:
        return (await info.context.loaders.campaign_counts.load(str(self.id))).next_publish_at


async def load_campaign(info: Info, id: str) -> CampaignType | None:
    organization_id = info.context.require("campaigns:read").organization_id
    return await read_one(info, lambda session: find_owned(session, CampaignRow, "camp", organization_id, id), CampaignType.from_row)


@nodes_resolver("camp")
async def load_campaigns(info: Info, ids: list[str]) -> dict[str, CampaignType]:
    organization_id = info.context.require("campaigns:read").organization_id
    return await read_many(
        info, lambda session: find_owned_many(session, CampaignRow, "camp", organization_id, ids), CampaignType.from_row
    )


@strawberry.input
class CampaignFilter:
    status: CampaignStatus | None = None  # type: ignore[valid-type]
    tag: str | None = None
    search: str | None = strawberry.field(default=None, description="A part of the name, any case.")


@strawberry.input
class CreateCampaignInput:
    name: str
    description: str = ""
    status: CampaignStatus = CampaignStatus("draft")  # type: ignore[valid-type]
    timezone: str = strawberry.field(default="UTC", description="IANA zone the campaign is planned in, e.g. Europe/Paris.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    metadata: JSON | None = None
    late_policy: LatePolicy = LatePolicy("publish")  # type: ignore[valid-type]
    idempotency_key: str | None = None


@strawberry.input(description="Fields left out keep their value.")
class UpdateCampaignInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: CampaignStatus | None = strawberry.UNSET  # type: ignore[valid-type]
    timezone: str | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    metadata: JSON | None = strawberry.field(default=strawberry.UNSET, description='Merged key by key: "" removes a key; null clears them all.')
    late_policy: LatePolicy | None = strawberry.UNSET  # type: ignore[valid-type]


@strawberry.input
class CampaignIdInput:
    id: strawberry.ID


@strawberry.input
class MovePostsInput:
    post_ids: list[strawberry.ID]
    campaign_id: strawberry.ID | None = strawberry.field(description="null takes the posts out of any campaign.")


@strawberry.type
class CampaignPayload:
    campaign: CampaignType | None
    user_errors: list[UserErrorType]


@strawberry.type
class MovePostsPayload:
    posts: list[PostType] | None
    user_errors: list[UserErrorType]


def _value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _changes_of(input: UpdateCampaignInput) -> dict[str, Any]:
    """Only what the caller sent; null text means empty, a null list none."""
    changes: dict[str, Any] = {}
    for name in ("name", "description", "status", "timezone", "starts_at", "ends_at", "late_policy"):
        value = getattr(input, name)
        if value is not strawberry.UNSET:
            if value is None and name in ("name", "status", "timezone", "late_policy"):
                continue  # a required field sent as null keeps its value
            changes[name] = _value(value) if value is not None else ("" if name == "description" else None)
    if input.tags is not strawberry.UNSET:
        changes["tags"] = tuple(input.tags or ())
    if input.metadata is not strawberry.UNSET:
        changes["metadata"] = input.metadata
    return changes


async def _announce(info: Info, events: list[BusEvent]) -> None:
    for event in events:
        await info.context.runtime.publish(event)


async def _command(info: Info, command: Any, id: strawberry.ID) -> CampaignPayload:
    principal = info.context.require("campaigns:write")
    runtime = info.context.runtime
    row, errors = await collect_user_errors(
        service.commit_and_announce(runtime, lambda session: command(session, principal.organization_id, str(id)))
    )
    return CampaignPayload(campaign=CampaignType.from_row(row) if row else None, user_errors=errors)


@strawberry.type
class CampaignQuery:
    @strawberry.field(description="Campaigns, newest first.")
    async def campaigns(
        self,
        info: Info,
        filter: CampaignFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[CampaignType] | None:
        principal = info.context.require("campaigns:read")
        filters = service.CampaignFilter()
        if filter is not None:
            filters = service.CampaignFilter(status=_value(filter.status), tag=filter.tag, search=filter.search)
        async with info.context.runtime.database.read() as session:
            page = await service.list_campaigns(session, principal.organization_id, filters, page_request(first, after, last, before))
        return Connection.from_page(page, CampaignType.from_row)

    @strawberry.field(description="One campaign, or null.")
    async def campaign(self, info: Info, id: strawberry.ID) -> CampaignType | None:
        return await load_campaign(info, str(id))


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(description="Create a campaign (draft unless told active).")
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        fields = service.CampaignFields(
            name=input.name, description=input.description, status=_value(input.status), timezone=input.timezone,
            starts_at=input.starts_at, ends_at=input.ends_at, tags=tuple(input.tags), metadata=input.metadata or {},
            late_policy=_value(input.late_policy),
        )
        events: list[BusEvent] = []

        async def work(session: Any, principal: Any) -> dict[str, Any]:
            row, created = await service.create_campaign(session, principal.organization_id, fields)
            events.extend(created)
            return {"id": row.id}

        request = dict(fields.__dict__)  # metadata as given: the service refuses one that is not an object
        result, errors = await run_create(info, "campaigns:write", "createCampaign", input.idempotency_key, request, work)
        await _announce(info, events)
        if result is None:
            return CampaignPayload(campaign=None, user_errors=errors)
        organization_id = info.context.principal.organization_id
        campaign = await read_one(
            info, lambda session: find_owned(session, CampaignRow, "camp", organization_id, result["id"]), CampaignType.from_row
        )
        return CampaignPayload(campaign=campaign, user_errors=errors)

    @strawberry.mutation(description="Change a campaign's fields; an archived campaign is frozen.")
    async def update_campaign(self, info: Info, input: UpdateCampaignInput) -> CampaignPayload:
        changes = _changes_of(input)

        async def command(session: Any, organization_id: str, id: str) -> Any:
            return await service.update_campaign(session, organization_id, id, changes)

        return await _command(info, command, input.id)

    @strawberry.mutation(description="Hold every post of the campaign: the engine claims none of its targets until it resumes.")
    async def pause_campaign(self, info: Info, input: CampaignIdInput) -> CampaignPayload:
        return await _command(info, service.pause_campaign, input.id)

    @strawberry.mutation(
        description="Active again. A target whose time passed while paused publishes now, or is marked missed, per latePolicy."
    )
    async def resume_campaign(self, info: Info, input: CampaignIdInput) -> CampaignPayload:
        return await _command(info, service.resume_campaign, input.id)

    @strawberry.mutation(description="Archive for good: targets still waiting are canceled; published ones stay.")
    async def archive_campaign(self, info: Info, input: CampaignIdInput) -> CampaignPayload:
        return await _command(info, service.archive_campaign, input.id)

    @strawberry.mutation(description="Move unpublished posts into a campaign (or out of any), all or none.")
    async def move_posts_to_campaign(self, info: Info, input: MovePostsInput) -> MovePostsPayload:
        principal = info.context.require("campaigns:write")
        info.context.require("posts:write")
        campaign_id = str(input.campaign_id) if input.campaign_id is not None else None
        ids = [str(i) for i in input.post_ids]
        rows, errors = await collect_user_errors(
            service.commit_and_announce(
                info.context.runtime, lambda session: service.move_posts(session, principal.organization_id, ids, campaign_id)
            )
        )
        return MovePostsPayload(posts=[PostType.from_row(r) for r in rows] if rows is not None else None, user_errors=errors)
