"""The Chinese working-day calendar (holidays and adjusted working Saturdays), shared by
deadlines, follow-ups, notices and opening hours."""
from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

import chinese_calendar


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:   # beyond the years the calendar knows: weekdays
        return day.weekday() < 5


def iso_week(week: str, tz: str) -> tuple[datetime, datetime]:
    """'2026-W47' → (its Monday 00:00, the next Monday 00:00) in the zone `tz`; ValueError if
    it is not an ISO week."""
    year, number = (int(part) for part in str(week).split("-W"))
    monday = date.fromisocalendar(year, number, 1)
    start = datetime.combine(monday, time(0), tzinfo=zoneinfo.ZoneInfo(tz))
    return start, start + timedelta(days=7)
