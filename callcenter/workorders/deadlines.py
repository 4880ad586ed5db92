"""Deadlines on the hotline's clock and calendar. Pure.

Wall-clock deadlines (dispatch in 3 minutes, on site in 30 minutes) run day and night: the
hotline never closes. Working-day deadlines (a unit answers in 3 working days) skip weekends
and holidays and count adjusted working Saturdays, from `chinese_calendar`. Times are
aware datetimes; the calendar is read in the hotline's time zone.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from callcenter.workdays import is_working_day
from callcenter.workorders.categories import Category

__all__ = ["add_working_days", "end_of_day", "is_working_day", "next_follow_up_slot", "order_deadlines"]

# Follow-up calls only in these windows (so as not to disturb): 09:00–11:00, 14:30–16:00.
FOLLOW_UP_WINDOWS = ((time(9, 0), time(11, 0)), (time(14, 30), time(16, 0)))


def add_working_days(start: datetime, days: int, tz: str) -> datetime:
    """The end of the `days`-th working day after `start`'s day (local 23:59:59)."""
    zone = zoneinfo.ZoneInfo(tz)
    day = start.astimezone(zone).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def end_of_day(moment: datetime, tz: str) -> datetime:
    zone = zoneinfo.ZoneInfo(tz)
    return datetime.combine(moment.astimezone(zone).date(), time(23, 59, 59), tzinfo=zone)


def order_deadlines(category: Category, accepted_at: datetime, tz: str) -> dict[str, datetime | None]:
    """dispatch_by, arrive_by (counted from the dispatch deadline), result_by, reply_by."""
    dispatch_by = accepted_at + timedelta(minutes=category.dispatch_min) if category.needs_field_work else None
    arrive_by = (dispatch_by + timedelta(minutes=category.arrive_min)
                 if dispatch_by is not None and category.arrive_min else None)
    return {
        "dispatch_by": dispatch_by,
        "arrive_by": arrive_by,
        "result_by": end_of_day(accepted_at, tz) if category.result == "same_day" else None,
        "reply_by": add_working_days(accepted_at, category.unit_reply_working_days, tz),
    }


def next_follow_up_slot(due: datetime, tz: str) -> datetime:
    """The first moment at or after `due` inside a follow-up window (11:30 → 14:30)."""
    zone = zoneinfo.ZoneInfo(tz)
    local = due.astimezone(zone)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        for start, end in FOLLOW_UP_WINDOWS:
            window_start = datetime.combine(day, start, tzinfo=zone)
            window_end = datetime.combine(day, end, tzinfo=zone)
            if local < window_end:
                return max(local, window_start)
    raise AssertionError("a follow-up window comes every day")
