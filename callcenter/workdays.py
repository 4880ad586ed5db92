"""The Chinese working-day calendar (holidays and adjusted working Saturdays), shared by
deadlines, follow-ups, notices and opening hours."""
from __future__ import annotations

from datetime import date

import chinese_calendar


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:   # beyond the years the calendar knows: weekdays
        return day.weekday() < 5
