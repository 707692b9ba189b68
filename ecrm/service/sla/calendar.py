"""Business-time arithmetic, pure Python (no Django): working hours per weekday in a time zone,
holidays and make-up working days.

Hours are local wall-clock times in the calendar's zone; elapsed business time is real elapsed time
(so a working window across a DST change is as long as it really was). All datetimes in and out are
time-zone aware. `add_business_minutes` and `business_minutes_between` are inverses:
``business_minutes_between(a, add_business_minutes(a, m, cal), cal) == m`` for every m >= 0, and
``add_business_minutes(a, business_minutes_between(a, b, cal), cal) == b`` whenever b is inside working
time (outside it, the earliest instant with the same business time, i.e. the end of the last window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

Window = tuple[dt.time, dt.time]

# Searching further than this for working time means the calendar has none (misconfigured).
MAX_SEARCH_DAYS = 3 * 366


class CalendarError(ValueError):
    """The calendar is unusable (no working time at all, bad hours)."""


def parse_hours(value: Iterable[Iterable[str]]) -> list[Window]:
    """[["09:00", "12:00"], ["13:00", "18:00"]] -> sorted, non-overlapping windows. "24:00" = midnight
    at the end of the day."""
    windows: list[Window] = []
    for pair in value or []:
        start_text, end_text = list(pair)
        start = _parse_time(start_text)
        end = dt.time.max if end_text.strip() == "24:00" else _parse_time(end_text)
        if end <= start:
            raise CalendarError(f"working window {start_text}–{end_text} ends before it starts")
        windows.append((start, end))
    windows.sort()
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        if start < end:
            raise CalendarError("working windows overlap")
    return windows


def _parse_time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise CalendarError(f"{text!r} is not a time like 09:00") from None


@dataclass(frozen=True)
class Calendar:
    """Working windows per weekday (0 = Monday), in the zone `tz`, with exceptions by date:
    `holidays` have no working time, `workdays` (make-up days) have the windows given (or, if
    empty, Monday's)."""

    tz: str
    weekly: Mapping[int, list[Window]]
    holidays: frozenset[dt.date] = frozenset()
    workdays: Mapping[dt.date, list[Window]] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        tz: str,
        weekly_hours: Mapping[str | int, Iterable[Iterable[str]]],
        holidays: Iterable[dt.date] = (),
        workdays: Mapping[dt.date, Iterable[Iterable[str]]] | None = None,
    ) -> Calendar:
        weekly = {int(day): parse_hours(hours) for day, hours in weekly_hours.items()}
        made_up = {day: parse_hours(hours) for day, hours in (workdays or {}).items()}
        ZoneInfo(tz)  # fail early on an unknown zone
        return cls(tz=tz, weekly=weekly, holidays=frozenset(holidays), workdays=made_up)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def windows_on(self, day: dt.date) -> list[Window]:
        """The local working windows of one date."""
        if day in self.workdays:
            return self.workdays[day] or self.weekly.get(0, [])
        if day in self.holidays:
            return []
        return self.weekly.get(day.weekday(), [])

    def intervals_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The working windows of one date as aware UTC instants."""
        zone = self.zone
        out = []
        for start, end in self.windows_on(day):
            a = _local(day, start, zone)
            b = (
                _local(day + dt.timedelta(days=1), dt.time(0), zone)
                if end == dt.time.max
                else _local(day, end, zone)
            )
            if b > a:
                out.append((a, b))
        return out

    def has_working_time(self) -> bool:
        return any(self.weekly.values()) or any(
            hours or self.weekly.get(0) for hours in self.workdays.values()
        )


def _local(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    # A wall time that does not exist (skipped by DST) resolves, with fold=0, to the instant an hour
    # later in UTC terms; normalising through UTC gives one well-defined instant either way.
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)


def _require_aware(*values: dt.datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("business time needs time-zone aware datetimes")


def _intervals_from(start: dt.datetime, cal: Calendar) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Working intervals (UTC) that end after `start`, clipped to begin no earlier than it, in order."""
    if not cal.has_working_time():
        raise CalendarError("the calendar has no working hours")
    start = start.astimezone(dt.UTC)
    day = start.astimezone(cal.zone).date() - dt.timedelta(days=1)  # a window may run past midnight UTC
    empty_days = 0
    while True:
        intervals = cal.intervals_on(day)
        if intervals:
            empty_days = 0
        else:
            empty_days += 1
            if empty_days > MAX_SEARCH_DAYS:
                raise CalendarError("no working time found within three years")
        for a, b in intervals:
            if b <= start:
                continue
            yield max(a, start), b
        day += dt.timedelta(days=1)


def add_business_minutes(start: dt.datetime, minutes: float, cal: Calendar) -> dt.datetime:
    """The instant `minutes` of working time after `start` (which may be outside working hours).
    Zero minutes is `start` itself. Negative minutes are refused."""
    _require_aware(start)
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    remaining = dt.timedelta(minutes=minutes)
    if not remaining:
        return start
    for a, b in _intervals_from(start, cal):
        length = b - a
        if remaining <= length:
            return (a + remaining).astimezone(start.tzinfo)
        remaining -= length
    raise AssertionError("unreachable: _intervals_from is infinite or raises")  # pragma: no cover


def business_minutes_between(a: dt.datetime, b: dt.datetime, cal: Calendar) -> float:
    """Working minutes from `a` to `b` (negative when b is before a)."""
    _require_aware(a, b)
    if b < a:
        return -business_minutes_between(b, a, cal)
    total = dt.timedelta()
    b_utc = b.astimezone(dt.UTC)
    if a == b:
        return 0.0
    for start, end in _intervals_from(a, cal):
        if start >= b_utc:
            break
        total += min(end, b_utc) - start
    return total.total_seconds() / 60


def is_working_time(at: dt.datetime, cal: Calendar) -> bool:
    _require_aware(at)
    at = at.astimezone(dt.UTC)
    day = at.astimezone(cal.zone).date()
    return any(a <= at < b for d in (day - dt.timedelta(days=1), day) for a, b in cal.intervals_on(d))


# A sensible default: Monday to Friday, 09:00–18:00.
STANDARD_WEEK: dict[str, list[list[str]]] = {
    **{str(d): [["09:00", "18:00"]] for d in range(5)},
    "5": [],
    "6": [],
}
