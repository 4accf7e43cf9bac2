"""Recurring (evergreen) posts: setPostRecurrence, stopPostRecurrence, recurrence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from gateway.campaigns import recurrence as service
from gateway.campaigns.campaigns import commit_and_announce
from gateway.storage import Recurrence as RecurrenceRow
from schema.context import Info
from schema.payloads import UserErrorType, collect_user_errors
from schema.relay import read_one


@strawberry.type(name="Recurrence", description="A post repeated every few days, each occurrence anchored to the first.")
class RecurrenceType:
    series_id: strawberry.ID = strawberry.field(description="The first post of the series.")
    every_days: int
    count: int | None = strawberry.field(description="Occurrences in all, the first included.")
    until: datetime | None
    timezone: str
    anchor_at: datetime = strawberry.field(description="The first occurrence's time; occurrence k is k·everyDays days on, local time.")
    latest_post_id: strawberry.ID
    latest_index: int = strawberry.field(description="0 for the first post; occurrences skipped while nothing ran are not made.")
    status: str = strawberry.field(description="active, finished or stopped.")
    next_publish_at: datetime | None = strawberry.field(description="When the occurrence after the latest is due, if the series goes on.")

    @classmethod
    def from_row(cls, row: RecurrenceRow) -> RecurrenceType:
        following = service.next_occurrence(row, max(row.anchor_at, service.occurrence_at(
            row.anchor_at, row.every_days, row.last_index, row.timezone))) if row.status == "active" else None
        return cls(
            series_id=strawberry.ID(row.id), every_days=row.every_days, count=row.count, until=row.until, timezone=row.timezone,
            anchor_at=row.anchor_at, latest_post_id=strawberry.ID(row.last_post_id), latest_index=row.last_index, status=row.status,
            next_publish_at=following[1] if following else None,
        )


@strawberry.input(description="Give count or until.")
class SetPostRecurrenceInput:
    post_id: strawberry.ID = strawberry.field(description="A scheduled post: its publish time anchors the series.")
    every_days: int
    count: int | None = None
    until: datetime | None = None
    timezone: str = strawberry.field(default="UTC", description="IANA zone whose wall-clock time each occurrence keeps.")


@strawberry.input
class StopPostRecurrenceInput:
    series_id: strawberry.ID


@strawberry.type
class RecurrencePayload:
    recurrence: RecurrenceType | None
    user_errors: list[UserErrorType]


async def _command(info: Info, work: Any) -> RecurrencePayload:
    principal = info.context.require("posts:publish")
    row, errors = await collect_user_errors(
        commit_and_announce(info.context.runtime, lambda session: work(session, principal.organization_id))
    )
    return RecurrencePayload(recurrence=RecurrenceType.from_row(row) if row else None, user_errors=errors)


@strawberry.type
class RecurrenceQuery:
    @strawberry.field(description="A recurring post's series by its first post's id, or null.")
    async def recurrence(self, info: Info, series_id: strawberry.ID) -> RecurrenceType | None:
        organization_id = info.context.require("posts:read").organization_id
        return await read_one(info, lambda session: service.find_recurrence(session, organization_id, str(series_id)), RecurrenceType.from_row)


@strawberry.type
class RecurrenceMutation:
    @strawberry.mutation(description="Repeat a scheduled post every N days, count times or until a time; a backlog never fires a burst.")
    async def set_post_recurrence(self, info: Info, input: SetPostRecurrenceInput) -> RecurrencePayload:
        rule = service.RecurrenceRule(every_days=input.every_days, count=input.count, until=input.until, timezone=input.timezone)
        return await _command(info, lambda session, org: service.set_recurrence(session, org, str(input.post_id), rule))

    @strawberry.mutation(description="Make no further occurrences; the one already scheduled stays.")
    async def stop_post_recurrence(self, info: Info, input: StopPostRecurrenceInput) -> RecurrencePayload:
        return await _command(info, lambda session, org: service.stop_recurrence(session, org, str(input.series_id)))
