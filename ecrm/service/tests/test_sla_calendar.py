"""Business-time arithmetic (pure, no database): nights, weekends, holidays, make-up days, a
DST-free zone (Asia/Shanghai) and a DST zone (Europe/London), long targets, and the inverse
property between add_business_minutes and business_minutes_between."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from ecrm.service.sla.calendar import (
    STANDARD_WEEK,
    Calendar,
    CalendarError,
    add_business_minutes,
    business_minutes_between,
    is_working_time,
)

SH = ZoneInfo("Asia/Shanghai")
LON = ZoneInfo("Europe/London")


def sh(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def lon(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LON)


@pytest.fixture
def china():
    """Mon–Fri 09:00–12:00 + 13:00–18:00 (8 h), National Day 2026-10-01..07 off, Sunday 2026-09-27 and
    Saturday 2026-10-10 made-up working days (as China's State Council moves them)."""
    week = {str(d): [["09:00", "12:00"], ["13:00", "18:00"]] for d in range(5)}
    return Calendar.from_config(
        "Asia/Shanghai",
        week,
        holidays=[dt.date(2026, 10, d) for d in range(1, 8)],
        workdays={dt.date(2026, 9, 27): [], dt.date(2026, 10, 10): [["10:00", "16:00"]]},
    )


@pytest.fixture
def london():
    return Calendar.from_config("Europe/London", STANDARD_WEEK, holidays=[dt.date(2026, 12, 25)])


def test_inside_one_window(china):
    assert add_business_minutes(sh(2026, 9, 14, 9, 0), 60, china) == sh(2026, 9, 14, 10, 0)
    assert business_minutes_between(sh(2026, 9, 14, 9, 0), sh(2026, 9, 14, 10, 0), china) == 60


def test_lunch_break_is_skipped(china):
    assert add_business_minutes(sh(2026, 9, 14, 11, 30), 60, china) == sh(2026, 9, 14, 13, 30)
    assert business_minutes_between(sh(2026, 9, 14, 11, 0), sh(2026, 9, 14, 14, 0), china) == 120


def test_across_the_night(china):
    assert add_business_minutes(sh(2026, 9, 14, 17, 0), 120, china) == sh(2026, 9, 15, 10, 0)
    assert business_minutes_between(sh(2026, 9, 14, 17, 0), sh(2026, 9, 15, 10, 0), china) == 120


def test_a_start_at_night_or_at_the_weekend_counts_from_the_next_opening(china):
    assert add_business_minutes(sh(2026, 9, 14, 22, 0), 30, china) == sh(2026, 9, 15, 9, 30)
    # Friday 17:30 + 60 min -> Monday 09:30 (2026-09-19/20 is a normal weekend)
    assert add_business_minutes(sh(2026, 9, 18, 17, 30), 60, china) == sh(2026, 9, 21, 9, 30)
    assert business_minutes_between(sh(2026, 9, 19, 10, 0), sh(2026, 9, 20, 23, 0), china) == 0


def test_holidays_are_skipped_and_make_up_days_count(china):
    # Wednesday 2026-09-30 17:00 + 2 h: holiday week 10-01..07 skipped -> Thursday 10-08 10:00
    assert add_business_minutes(sh(2026, 9, 30, 17, 0), 120, china) == sh(2026, 10, 8, 10, 0)
    # Sunday 2026-09-27 is a make-up working day with Monday's hours
    assert is_working_time(sh(2026, 9, 27, 9, 30), china)
    assert add_business_minutes(sh(2026, 9, 26, 12, 0), 30, china) == sh(2026, 9, 27, 9, 30)
    # Saturday 2026-10-10 is a make-up day with its own hours (10:00–16:00)
    assert add_business_minutes(sh(2026, 10, 9, 18, 0), 60, china) == sh(2026, 10, 10, 11, 0)
    assert business_minutes_between(sh(2026, 10, 10, 0, 0), sh(2026, 10, 11, 0, 0), china) == 360


def test_a_target_spanning_many_days(china):
    # 40 business hours from Monday 2026-09-21 09:00 at 8 h a day: Monday to Friday -> Friday 18:00
    assert add_business_minutes(sh(2026, 9, 21, 9, 0), 40 * 60, china) == sh(2026, 9, 25, 18, 0)
    # 10 days of work from 2026-09-28 (Mon): 09-28, 09-29, 09-30, (holiday 10-01..07), 10-08, 10-09, 10-10 (6 h),
    # 10-12, 10-13, 10-14, 10-15 -> 9 full days + 6 h = 78 h; 80 h ends at 10-16 11:00
    assert add_business_minutes(sh(2026, 9, 28, 9, 0), 80 * 60, china) == sh(2026, 10, 16, 11, 0)
    assert business_minutes_between(sh(2026, 9, 28, 9, 0), sh(2026, 10, 16, 11, 0), china) == 80 * 60


def test_london_across_the_spring_dst_change(london):
    # Clocks go forward on Sunday 2026-03-29; Friday 17:00 GMT + 2 h -> Monday 10:00 BST
    end = add_business_minutes(lon(2026, 3, 27, 17, 0), 120, london)
    assert end == lon(2026, 3, 30, 10, 0)
    assert end.utcoffset() == dt.timedelta(hours=1)
    assert business_minutes_between(lon(2026, 3, 27, 17, 0), lon(2026, 3, 30, 10, 0), london) == 120


def test_london_across_the_autumn_dst_change_and_a_holiday(london):
    # Clocks go back on Sunday 2026-10-25
    assert add_business_minutes(lon(2026, 10, 23, 17, 30), 60, london) == lon(2026, 10, 26, 9, 30)
    # Christmas Day (Friday) is a holiday
    assert add_business_minutes(lon(2026, 12, 24, 17, 0), 120, london) == lon(2026, 12, 28, 10, 0)


def test_a_24_hour_calendar_measures_real_time_on_dst_days():
    always = Calendar.from_config("Europe/London", {str(d): [["00:00", "24:00"]] for d in range(7)})
    # 2026-03-29 has 23 hours in London
    assert business_minutes_between(lon(2026, 3, 29, 0, 0), lon(2026, 3, 30, 0, 0), always) == 23 * 60
    assert business_minutes_between(lon(2026, 10, 25, 0, 0), lon(2026, 10, 26, 0, 0), always) == 25 * 60


def test_inputs_in_another_zone_give_the_same_instants(china):
    start_utc = sh(2026, 9, 14, 17, 0).astimezone(dt.UTC)
    end = add_business_minutes(start_utc, 120, china)
    assert end == sh(2026, 9, 15, 10, 0) and end.tzinfo == dt.UTC


def test_zero_and_negative(china):
    at = sh(2026, 9, 19, 3, 0)
    assert add_business_minutes(at, 0, china) == at
    assert business_minutes_between(sh(2026, 9, 15, 10, 0), sh(2026, 9, 14, 17, 0), china) == -120
    with pytest.raises(ValueError):
        add_business_minutes(at, -1, china)
    with pytest.raises(ValueError):
        add_business_minutes(dt.datetime(2026, 9, 14, 9, 0), 1, china)  # noqa: DTZ001 - naive on purpose


def test_a_calendar_without_working_time_or_with_bad_hours_is_refused():
    empty = Calendar.from_config("Asia/Shanghai", {})
    with pytest.raises(CalendarError):
        add_business_minutes(sh(2026, 1, 1, 9, 0), 1, empty)
    with pytest.raises(CalendarError):
        Calendar.from_config("Asia/Shanghai", {"0": [["18:00", "09:00"]]})
    with pytest.raises(CalendarError):
        Calendar.from_config("Asia/Shanghai", {"0": [["09:00", "13:00"], ["12:00", "18:00"]]})
    with pytest.raises(CalendarError):
        Calendar.from_config("Asia/Shanghai", {"0": [["nine", "18:00"]]})


@pytest.mark.parametrize("zone", ["china", "london"])
def test_add_and_between_are_inverse(zone, request):
    """Property test (seeded, 400 cases each): between(a, add(a, m)) == m for any start and minutes,
    and add(a, between(a, b)) == b for b inside working time."""
    cal = request.getfixturevalue(zone)
    tz = cal.zone
    rng = random.Random(20261001)
    base = dt.datetime(2026, 1, 1, tzinfo=tz)
    for _ in range(400):
        a = base + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        minutes = rng.choice([1, 7, 59, 60, 61, 480, 481, 2400, rng.randrange(1, 20000)])
        b = add_business_minutes(a, minutes, cal)
        assert b > a
        assert business_minutes_between(a, b, cal) == pytest.approx(minutes, abs=1e-9)
        assert is_working_time(b - dt.timedelta(seconds=1), cal)
        # the other way round, from a point inside working time
        inside = add_business_minutes(a, rng.randrange(1, 5000), cal) - dt.timedelta(seconds=30)
        if is_working_time(inside, cal) and inside > a:
            measured = business_minutes_between(a, inside, cal)
            assert add_business_minutes(a, measured, cal) == inside
