"""A cadence's slots: local wall-clock times on chosen days, turned into UTC with zoneinfo.

Times are wall-clock times in the plan's zone: 09:00 Europe/Paris is 07:00 UTC in summer and
08:00 UTC in winter, and stays 09:00 on the day the clocks change. A local time that does not
exist (the spring-forward gap) moves forward by the gap's length, as the clocks do; a local time
that happens twice (the fall-back overlap) takes its first occurrence. Both are reported, so a
plan never shifts a post silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.core import UserError

MAX_TIMES = 24
MAX_SPAN_DAYS = 366
MAX_JITTER_MINUTES = 120
DEFAULT_SPAN_DAYS = 90
ALL_DAYS = frozenset(range(1, 8))  # ISO weekdays, Monday = 1


@dataclass(frozen=True)
class Cadence:
    times: tuple[time, ...]
    start_date: date | None = None  # None: today, or the campaign's first day if later
    end_date: date | None = None  # None: the campaign's last day, or DEFAULT_SPAN_DAYS on
    posts_per_day: int | None = None  # None: one post per time
    days_of_week: frozenset[int] = ALL_DAYS
    skip_dates: frozenset[date] = field(default_factory=frozenset)
    jitter_minutes: int = 0
    max_per_account_per_day: int | None = None

    def checked(self) -> Cadence:
        """The cadence, or a user error naming the field at fault."""
        if not self.times:
            raise UserError("CADENCE_TIMES_REQUIRED", "Give at least one time of day, e.g. 09:00.", ["cadence", "times"])
        if len(self.times) > MAX_TIMES or len(set(self.times)) != len(self.times):
            raise UserError("CADENCE_TIMES_INVALID", f"Give 1 to {MAX_TIMES} different times of day.", ["cadence", "times"])
        per_day = self.posts_per_day if self.posts_per_day is not None else len(self.times)
        if not 1 <= per_day <= len(self.times):
            raise UserError(
                "CADENCE_TIMES_TOO_FEW", "postsPerDay is at least 1 and at most the number of times given.", ["cadence", "postsPerDay"]
            )
        if not self.days_of_week or not self.days_of_week <= ALL_DAYS:
            raise UserError("CADENCE_DAYS_INVALID", "Name at least one day of the week.", ["cadence", "daysOfWeek"])
        if self.start_date is None or self.end_date is None:
            raise UserError("CADENCE_DATES_INVALID", "The plan needs a start and an end date.", ["cadence", "startDate"])
        if self.end_date < self.start_date:
            raise UserError("CADENCE_DATES_INVALID", "endDate comes before startDate.", ["cadence", "endDate"])
        if (self.end_date - self.start_date).days >= MAX_SPAN_DAYS:
            raise UserError("CADENCE_RANGE_TOO_LONG", f"A plan spans at most {MAX_SPAN_DAYS} days.", ["cadence", "endDate"])
        if not 0 <= self.jitter_minutes <= MAX_JITTER_MINUTES:
            raise UserError("CADENCE_JITTER_INVALID", f"jitterMinutes is 0 to {MAX_JITTER_MINUTES}.", ["cadence", "jitterMinutes"])
        if self.max_per_account_per_day is not None and self.max_per_account_per_day < 1:
            raise UserError("CADENCE_QUOTA_INVALID", "maxPerAccountPerDay is at least 1.", ["cadence", "maxPerAccountPerDay"])
        return Cadence(**{**self.__dict__, "times": tuple(sorted(self.times)), "posts_per_day": per_day})


@dataclass(frozen=True)
class Slot:
    """One wall-clock time of the cadence and the instant it names."""

    wanted: datetime  # the local time asked for (naive)
    at: datetime  # UTC
    local: datetime  # ``at`` in the plan's zone: differs from ``wanted`` after a gap
    dst: str | None  # "gap" or "overlap" when the wanted time needed resolving


def resolve_local(wanted: datetime, zone: ZoneInfo) -> Slot:
    """The instant a naive local time names in ``zone``, with how a DST change was resolved.

    zoneinfo reads a time in a gap with the offset from before the change (``fold=0``), which
    lands past the gap by its length: 02:30 on a spring-forward night becomes 03:30. In an
    overlap, ``fold=0`` is the first occurrence.
    """
    first = wanted.replace(tzinfo=zone, fold=0)
    at = first.astimezone(UTC)
    local = at.astimezone(zone)
    if first.utcoffset() == wanted.replace(tzinfo=zone, fold=1).utcoffset():
        return Slot(wanted, at, local, None)
    return Slot(wanted, at, local, "gap" if local.replace(tzinfo=None) != wanted else "overlap")


def parse_times(values: list[str]) -> tuple[time, ...]:
    """``["09:00", "17:30"]`` as times of day; anything else is a user error."""
    parsed = []
    for index, value in enumerate(values):
        try:
            at = time.fromisoformat(value)
        except ValueError:
            at = None
        if at is None or at.tzinfo is not None or len(value) != 5:
            raise UserError("CADENCE_TIMES_INVALID", "A time of day is HH:MM, e.g. 09:00.", ["cadence", "times", str(index)])
        parsed.append(at)
    return tuple(parsed)


def with_dates(cadence: Cadence, today: date, first: date | None, last: date | None) -> Cadence:
    """The cadence with its missing dates filled: from today (or ``first``, if later) to ``last``
    (or ``DEFAULT_SPAN_DAYS`` after the start)."""
    start = cadence.start_date or max(today, first or today)
    end = cadence.end_date or last or start + timedelta(days=DEFAULT_SPAN_DAYS)
    return Cadence(**{**cadence.__dict__, "start_date": start, "end_date": end})


def slots(cadence: Cadence, zone: ZoneInfo) -> Iterator[Slot]:
    """Every slot of the cadence in time order: chosen days, skipped dates left out, ``posts_per_day`` times a day."""
    assert cadence.start_date is not None and cadence.end_date is not None, "a checked cadence has its dates"
    day = cadence.start_date
    times = cadence.times[: cadence.posts_per_day]
    while day <= cadence.end_date:
        if day.isoweekday() in cadence.days_of_week and day not in cadence.skip_dates:
            for at in times:
                yield resolve_local(datetime.combine(day, at), zone)
        day += timedelta(days=1)
