"""The Chinese working-day calendar (holidays and adjusted working Saturdays), shared by
deadlines, follow-ups, notices and opening hours; and the span of time a date given to the
hotline may name (a search, a report, a week, a shift, a deadline).

A date outside FIRST_YEAR..LAST_YEAR, or a time with an offset no zone uses (outside -12:00 to
+14:00), is a typo or a probe: year 0001 and 9999 break date arithmetic and the database's time types.
"""
from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

import chinese_calendar


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:   # beyond the years the calendar knows: weekdays
        return day.weekday() < 5


FIRST_YEAR, LAST_YEAR = 2000, 2099
# The offsets time zones use: Baker Island -12:00 to the Line Islands +14:00.
UTC_OFFSETS = (timedelta(hours=-12), timedelta(hours=14))


def check_day(day: date, name: str) -> date:
    """`day`, if it lies in the years the hotline's dates may name; else ValueError naming `name`."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{name}: {day.isoformat()} is not between {FIRST_YEAR} and {LAST_YEAR}")
    return day



def iso_week(week: str, tz: str) -> tuple[datetime, datetime]:
    """'2026-W47' → (its Monday 00:00, the next Monday 00:00) in the zone `tz`; ValueError if
    it is not an ISO week."""
    year, number = (int(part) for part in str(week).split("-W"))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"week {week!r}: not between {FIRST_YEAR} and {LAST_YEAR}")
    monday = date.fromisocalendar(year, number, 1)
    start = datetime.combine(monday, time(0), tzinfo=zoneinfo.ZoneInfo(tz))
    return start, start + timedelta(days=7)
