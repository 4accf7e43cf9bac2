"""Posting queues (setPostingQueue, addToQueue, queue) and the calendar of local days."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

import strawberry

from gateway.calendar import days as calendar_service
from gateway.calendar import queues as queue_service
from gateway.calendar.slots import zone as slot_zone
from gateway.content import TARGET_STATUSES
from gateway.core import BadInput, UserError
from gateway.storage import PostingQueue as QueueRow
from schema.context import Info
from schema.payloads import UserErrorType, collect_user_errors, run_mutation

DAY_NAMES = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DayOfWeek = strawberry.enum(Enum("DayOfWeek", {name: index for index, name in enumerate(DAY_NAMES)}))  # type: ignore[misc]
MAX_QUEUE_PREVIEW = 100


@strawberry.type
class QueueSlotRule:
    day_of_week: DayOfWeek  # type: ignore[valid-type]
    time: str = strawberry.field(description="Local HH:MM in the queue's timezone.")


@strawberry.type(name="PostingQueue", description="Weekly posting slots of one account, or the organization's default.")
class PostingQueueType:
    id: strawberry.ID
    account_id: strawberry.ID | None = strawberry.field(description="null for the organization's default queue.")
    timezone: str
    slots: list[QueueSlotRule]
    max_per_slot: int

    @classmethod
    def from_row(cls, row: QueueRow) -> PostingQueueType:
        return cls(
            id=strawberry.ID(row.id), account_id=strawberry.ID(row.account_scope) if row.account_scope else None, timezone=row.timezone,
            slots=[QueueSlotRule(day_of_week=DayOfWeek(s["dayOfWeek"]), time=s["time"]) for s in row.slots], max_per_slot=row.max_per_slot,
        )


@strawberry.type
class QueueSlot:
    at: dt.datetime
    target_ids: list[strawberry.ID] = strawberry.field(description="The queued targets filling the slot, oldest first.")
    free: int

    @classmethod
    def from_fill(cls, fill: queue_service.SlotFill) -> QueueSlot:
        return cls(at=fill.at, target_ids=[strawberry.ID(t) for t in fill.target_ids], free=fill.free)


@strawberry.type
class QueuePreview:
    queue: PostingQueueType | None = strawberry.field(description="The account's own queue, else the org's default; null if neither.")
    slots: list[QueueSlot]


@strawberry.input
class QueueSlotInput:
    day_of_week: DayOfWeek  # type: ignore[valid-type]
    time: str


@strawberry.input
class SetPostingQueueInput:
    account_id: strawberry.ID | None = strawberry.field(default=None, description="null sets the organization's default queue.")
    timezone: str
    slots: list[QueueSlotInput]
    max_per_slot: int = 1


@strawberry.type
class SetPostingQueuePayload:
    queue: PostingQueueType | None
    moved: int = strawberry.field(description="How many queued targets the new slots moved to another time.")
    user_errors: list[UserErrorType]


@strawberry.input
class AddToQueueInput:
    post_id: strawberry.ID


@strawberry.type
class QueuedTargetSlot:
    target_id: strawberry.ID
    at: dt.datetime


@strawberry.type
class AddToQueuePayload:
    slots: list[QueuedTargetSlot]
    user_errors: list[UserErrorType]


@strawberry.input
class CalendarFilterInput:
    account_ids: list[strawberry.ID] | None = None
    providers: list[str] | None = None
    statuses: list[str] | None = strawberry.field(default=None, description="Target statuses, e.g. scheduled, published.")


@strawberry.type
class CalendarTarget:
    target_id: strawberry.ID
    post_id: strawberry.ID
    account_id: strawberry.ID
    provider: str
    status: str
    at: dt.datetime = strawberry.field(description="When it publishes, or published.")
    local_time: str = strawberry.field(description="HH:MM in the calendar's timezone.")
    text: str


@strawberry.type
class CalendarSlot:
    account_id: strawberry.ID
    at: dt.datetime
    local_time: str
    target_ids: list[strawberry.ID]
    free: int


@strawberry.type
class CalendarDay:
    date: dt.date
    targets: list[CalendarTarget]
    slots: list[CalendarSlot]


def _day_of(day: calendar_service.CalendarDay, timezone: str) -> CalendarDay:
    zone = slot_zone(timezone)

    def local(at: dt.datetime) -> str:
        return at.astimezone(zone).strftime("%H:%M")

    return CalendarDay(
        date=day.day,
        targets=[
            CalendarTarget(target_id=strawberry.ID(e.target_id), post_id=strawberry.ID(e.post_id), account_id=strawberry.ID(e.account_id),
                           provider=e.provider, status=e.status, at=e.at, local_time=local(e.at), text=e.text)
            for e in day.entries
        ],
        slots=[
            CalendarSlot(account_id=strawberry.ID(s.account_id), at=s.fill.at, local_time=local(s.fill.at),
                         target_ids=[strawberry.ID(t) for t in s.fill.target_ids], free=s.fill.free)
            for s in day.slots
        ],
    )


def _statuses(values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    unknown = [v for v in values if v.lower() not in TARGET_STATUSES]
    if unknown:
        raise BadInput(f"Unknown target status {unknown[0][:40]!r}.", "filter.statuses")
    return tuple(v.lower() for v in values)


@strawberry.type
class CalendarQuery:
    @strawberry.field(description="An account's next slots (its own queue, else the org's default) and what fills them.")
    async def queue(self, info: Info, account_id: strawberry.ID, first: int = 10) -> QueuePreview | None:
        principal = info.context.require("posts:read")
        if not 1 <= first <= MAX_QUEUE_PREVIEW:
            raise BadInput(f"first is between 1 and {MAX_QUEUE_PREVIEW}.", "first")
        async with info.context.runtime.database.read() as session:
            try:
                row, fills = await queue_service.preview(session, principal.organization_id, str(account_id), first)
            except UserError as error:
                raise BadInput(error.message, "accountId") from None
        return QueuePreview(queue=PostingQueueType.from_row(row) if row else None, slots=[QueueSlot.from_fill(f) for f in fills])

    @strawberry.field(description="Local days from `from` to `to` (inclusive, at most 62) with their targets and queue slots ahead.")
    async def calendar(
        self,
        info: Info,
        from_: Annotated[dt.date, strawberry.argument(name="from")],
        to: dt.date,
        timezone: str = "UTC",
        filter: CalendarFilterInput | None = None,
    ) -> list[CalendarDay] | None:
        principal = info.context.require("posts:read")
        filters = calendar_service.CalendarFilter()
        if filter is not None:
            filters = calendar_service.CalendarFilter(
                account_ids=tuple(str(a) for a in filter.account_ids) if filter.account_ids is not None else None,
                providers=tuple(filter.providers) if filter.providers is not None else None,
                statuses=_statuses(filter.statuses),
            )
        async with info.context.runtime.database.read() as session:
            try:
                days = await calendar_service.calendar(session, principal.organization_id, from_, to, timezone, filters)
            except UserError as error:
                raise BadInput(error.message, (error.field or ["to"])[0]) from None
        return [_day_of(day, timezone) for day in days]


@strawberry.type
class CalendarMutation:
    @strawberry.mutation(description="Set the weekly slots of an account's queue (or the org's default); what is queued moves to fit.")
    async def set_posting_queue(self, info: Info, input: SetPostingQueueInput) -> SetPostingQueuePayload:
        async def work(session: Any, principal: Any) -> tuple[QueueRow, int]:
            return await queue_service.set_queue(
                session, principal.organization_id, str(input.account_id) if input.account_id else None, input.timezone,
                [(s.day_of_week.value, s.time) for s in input.slots], input.max_per_slot,
            )

        result, errors = await run_mutation(info, "accounts:write", work)
        if result is None:
            return SetPostingQueuePayload(queue=None, moved=0, user_errors=errors)
        return SetPostingQueuePayload(queue=PostingQueueType.from_row(result[0]), moved=result[1], user_errors=[])

    @strawberry.mutation(description="Put each target of a draft post in its account's next free queue slot.")
    async def add_to_queue(self, info: Info, input: AddToQueueInput) -> AddToQueuePayload:
        principal = info.context.require("posts:write")
        chosen, errors = await collect_user_errors(queue_service.add_to_queue(info.context.runtime, principal.organization_id, str(input.post_id)))
        slots = [QueuedTargetSlot(target_id=strawberry.ID(t), at=at) for t, at in (chosen or {}).items()]
        return AddToQueuePayload(slots=slots, user_errors=errors)
