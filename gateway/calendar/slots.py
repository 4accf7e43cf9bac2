"""Weekly slots in a timezone, as instants: the arithmetic queues and the calendar share.

A slot is a day of the week (Monday 0) and a local time. Its instants are found day by day in
the queue's zone with ``zoneinfo``, so 09:00 Europe/Paris stays 09:00 local across a change of
daylight-saving time; a local time that does not exist that day (the spring-forward gap) is
moved forward by the gap's length, as ``zoneinfo`` resolves it with ``fold=0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core import UserError

TIME_PATTERN = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
MAX_SLOTS = 7 * 24


@dataclass(frozen=True, order=True)
class Slot:
    day_of_week: int  # Monday 0 … Sunday 6, as date.weekday()
    time: str  # "HH:MM", local


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long to be a file
        raise UserError("INVALID_TIMEZONE", f"{name[:60]!r} is not an IANA timezone such as Europe/Paris.", [field]) from None


def parse_slots(raw: Sequence[tuple[int, str]]) -> tuple[Slot, ...]:
    """Validated, de-duplicated and sorted slots."""
    slots = set()
    for index, (day, at) in enumerate(raw):
        if not 0 <= day <= 6:
            raise UserError("INVALID_SLOT", "dayOfWeek is 0 (Monday) to 6 (Sunday).", ["slots", str(index), "dayOfWeek"])
        if not TIME_PATTERN.fullmatch(at):
            raise UserError("INVALID_SLOT", "time is HH:MM, 00:00 to 23:59.", ["slots", str(index), "time"])
        slots.add(Slot(day, at))
    if len(slots) > MAX_SLOTS:
        raise UserError("TOO_MANY_SLOTS", f"A queue has at most {MAX_SLOTS} slots a week.", ["slots"])
    return tuple(sorted(slots))


def local_instant(day: date, at: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of local ``at`` on ``day`` in ``tz`` (a time in a DST gap moves forward)."""
    hours, minutes = (int(part) for part in at.split(":"))
    local = datetime.combine(day, time(hours, minutes), tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).astimezone(UTC)


def instants(slots: Sequence[Slot], tz: ZoneInfo, after: datetime, until: datetime | None = None) -> Iterator[datetime]:
    """Every slot instant strictly after ``after`` (and before ``until``), in order; endless without ``until``."""
    if not slots:
        return
    by_day: dict[int, list[str]] = {}
    for slot in slots:
        by_day.setdefault(slot.day_of_week, []).append(slot.time)
    day = after.astimezone(tz).date() - timedelta(days=1)
    while True:
        for at in sorted(by_day.get(day.weekday(), ())):
            when = local_instant(day, at, tz)
            if until is not None and when >= until:
                return
            if when > after:
                yield when
        day += timedelta(days=1)
        if until is not None and datetime.combine(day, time(0), tzinfo=tz) >= until + timedelta(days=1):
            return
