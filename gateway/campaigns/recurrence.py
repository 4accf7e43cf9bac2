"""Recurring (evergreen) posts: ``recurrence: {everyDays, count | until}`` on a scheduled post.

Occurrence k is anchored to the first publish time: the anchor's wall-clock time in the series'
timezone, k·everyDays days later (``cadence.resolve_local``: 09:00 stays 09:00 across a DST
change; a time in a spring-forward gap moves forward). It is never timed from when the last one
ran. Only one occurrence is scheduled at a time: when the latest ends (published, failed,
canceled, missed), ``advance_recurrences`` — a chore of the scheduler — copies the post to the
first occurrence time still ahead. Occurrences whose time passed while nothing ran (a worker
down for days) are skipped and counted, never published late in a burst.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.campaigns.cadence import resolve_local
from gateway.campaigns.campaigns import check_timezone
from gateway.content import PostValidator, create_post, input_of, lock_post, targets_of
from gateway.core import UserError, utcnow
from gateway.engine.queue import enqueue_post
from gateway.events import BusEvent, record_org_event
from gateway.runtime import Runtime
from gateway.storage import Post, Recurrence, Target

MAX_EVERY_DAYS = 366
MAX_COUNT = 1_000
# A target in one of these states may still publish: its occurrence has not ended.
LIVE_STATUSES = ("draft", "scheduled", "publishing", "retry_pending", "processing")
SWEEP_BATCH = 200


@dataclass(frozen=True)
class RecurrenceRule:
    every_days: int
    count: int | None = None
    until: datetime | None = None
    timezone: str = "UTC"

    def checked(self) -> RecurrenceRule:
        if not 1 <= self.every_days <= MAX_EVERY_DAYS:
            raise UserError("RECURRENCE_INTERVAL_INVALID", f"everyDays is 1 to {MAX_EVERY_DAYS}.", ["everyDays"])
        if (self.count is None) == (self.until is None):
            raise UserError("RECURRENCE_END_REQUIRED", "Give either count or until.", ["count"])
        if self.count is not None and not 2 <= self.count <= MAX_COUNT:
            raise UserError("RECURRENCE_COUNT_INVALID", f"count is 2 to {MAX_COUNT} occurrences, the first included.", ["count"])
        if self.until is not None and self.until.tzinfo is None:
            raise UserError("TIMEZONE_REQUIRED", "`until` needs a UTC offset.", ["until"])
        check_timezone(self.timezone)
        return self


def occurrence_at(anchor: datetime, every_days: int, index: int, timezone: str) -> datetime:
    """When occurrence ``index`` is due: the anchor's local time, ``index``·``every_days`` days on (UTC)."""
    zone = check_timezone(timezone)
    local = anchor.astimezone(zone).replace(tzinfo=None)
    return resolve_local(local + timedelta(days=every_days * index), zone).at


def next_occurrence(series: Recurrence, now: datetime) -> tuple[int, datetime] | None:
    """The first occurrence after the last one made whose time is still ahead, or None when the series is over."""
    index = series.last_index + 1
    step_seconds = series.every_days * 86_400
    behind = (now - occurrence_at(series.anchor_at, series.every_days, index, series.timezone)).total_seconds()
    if behind > 0:  # jump over the backlog at once (DST shifts an occurrence by an hour at most)
        index += max(0, int(behind // step_seconds) - 1)
    while (at := occurrence_at(series.anchor_at, series.every_days, index, series.timezone)) <= now:
        index += 1
    if series.count is not None and index >= series.count:
        return None
    if series.until is not None and at > series.until:
        return None
    return index, at


async def set_recurrence(session: AsyncSession, organization_id: str, post_id: str, rule: RecurrenceRule) -> tuple[Recurrence, list[BusEvent]]:
    """Make a scheduled post the first occurrence of a series (or change the series it starts)."""
    rule = rule.checked()
    post = await lock_post(session, organization_id, post_id)
    targets = (await targets_of(session, [post.id]))[post.id]
    times = [t.publish_at for t in targets if t.status == "scheduled" and t.publish_at is not None]
    if not times or len(times) != len(targets):
        raise UserError("POST_NOT_SCHEDULED", "Schedule the post first: its publish time is the series' anchor.", ["postId"])
    series = await session.get(Recurrence, post.id)
    if series is None:
        series = Recurrence(id=post.id, organization_id=organization_id, last_post_id=post.id, last_index=0, anchor_at=min(times),
                            every_days=rule.every_days, timezone=rule.timezone)
        session.add(series)
    series.every_days, series.count, series.until, series.timezone, series.status = (
        rule.every_days, rule.count, rule.until, rule.timezone, "active",
    )
    await session.flush()
    event = await record_org_event(session, organization_id, "post.recurrence_set", _payload(series), post.id)
    return series, [event]


async def stop_recurrence(session: AsyncSession, organization_id: str, series_id: str) -> tuple[Recurrence, list[BusEvent]]:
    """No further occurrences; the one already scheduled stays (cancel it with cancelPost)."""
    series = await find_recurrence(session, organization_id, series_id)
    if series is None:
        raise UserError("RECURRENCE_NOT_FOUND", "No recurring post with that id.", ["postId"])
    series.status = "stopped"
    await session.flush()
    return series, [await record_org_event(session, organization_id, "post.recurrence_stopped", _payload(series), series.id)]


async def find_recurrence(session: AsyncSession, organization_id: str, series_id: str) -> Recurrence | None:
    series = await session.get(Recurrence, series_id)
    return series if series is not None and series.organization_id == organization_id else None


def _payload(series: Recurrence, **extra: Any) -> dict[str, Any]:
    return {"seriesId": series.id, "postId": series.last_post_id, "index": series.last_index, "status": series.status,
            "everyDays": series.every_days, **extra}


def _ready() -> Any:
    """Active series whose latest occurrence has ended (no target of it can still publish)."""
    live = exists().where(Target.post_id == Recurrence.last_post_id, Target.status.in_(LIVE_STATUSES))
    return select(Recurrence).where(Recurrence.status == "active", ~live).order_by(Recurrence.id).limit(SWEEP_BATCH)


async def _advance(session: AsyncSession, validator: PostValidator, series: Recurrence, now: datetime) -> list[BusEvent]:
    last = await session.get(Post, series.last_post_id)
    step = next_occurrence(series, now) if last is not None and last.deleted_at is None else None
    if step is None:
        series.status = "finished"
        return [await record_org_event(session, series.organization_id, "post.recurrence_finished", _payload(series), series.id)]
    index, at = step
    data = input_of(last, (await targets_of(session, [last.id]))[last.id])
    copy = await create_post(session, validator, series.organization_id, data, created_by_key_id=last.created_by_key_id)
    queued = await enqueue_post(session, validator, series.organization_id, copy.id, at)
    skipped = index - series.last_index - 1
    series.last_post_id, series.last_index = copy.id, index
    payload = _payload(series, publishAt=at.isoformat(), skipped=skipped)
    return [*queued.events, await record_org_event(session, series.organization_id, "post.recurrence_scheduled", payload, series.id)]


async def advance_recurrences(runtime: Runtime, now: datetime | None = None) -> int:
    """Schedule the next occurrence of every series whose latest one ended; returns how many series moved.

    A series whose next post cannot be made (its account disconnected, say) is finished with
    ``post.recurrence_finished`` carrying the reason, rather than retried forever.
    """
    now = now or utcnow()
    validator = PostValidator(runtime.plugins)
    async with runtime.database.read() as session:
        ready = [s.id for s in (await session.execute(_ready())).scalars()]
    moved = 0
    for series_id in ready:
        events: list[BusEvent] = []

        async def transaction(series_id: str = series_id) -> None:
            events.clear()
            async with runtime.database.write() as session:
                series = (await session.execute(_ready().where(Recurrence.id == series_id))).scalar_one_or_none()
                if series is not None:  # another worker may have moved it meanwhile
                    events.extend(await _advance(session, validator, series, now))

        try:
            await validator.run(transaction)
        except UserError as error:
            async with runtime.database.write() as session:
                series = await session.get(Recurrence, series_id)
                assert series is not None
                series.status = "finished"
                payload = _payload(series, reason={"code": error.code, "message": error.message})
                events = [await record_org_event(session, series.organization_id, "post.recurrence_finished", payload, series.id)]
        for event in events:
            await runtime.publish(event)
        moved += 1
    if moved:
        runtime.wake_scheduler()
    return moved
