"""What the pages show of a work order, decided here and not in the browser. Pure.

The deadline that runs depends on the order's state (the deadline watcher's table, RUNNING).
Wall-clock deadlines count down in seconds in the page (a small script reads the moment from a
data attribute); the unit's working-day reply also says how many working days are left, on
the hotline's calendar (weekends and holidays skipped, adjusted Saturdays counted), which
only the server knows.
"""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

from callcenter.workdays import is_working_day
from callcenter.workorders.lifecycle import TRANSITIONS, State
from callcenter.workorders.watcher import RUNNING, Policy


def N_(message: str) -> str:
    """Marks a word for the catalogue; the template translates it when it is shown."""
    return message


STATE_LABELS = {
    "accepted": N_("Accepted"), "dispatched": N_("Dispatched"), "acknowledged": N_("Acknowledged"),
    "on_site": N_("On site"), "resolved": N_("Resolved"), "returned": N_("Returned"),
    "adjudicating": N_("Adjudicating"), "followed_up": N_("Followed up"), "archived": N_("Archived"),
}
DEADLINE_LABELS = {
    "dispatch_by": N_("Dispatch by"), "arrive_by": N_("On site by"), "result_by": N_("Resolved by"),
    "reply_by": N_("Unit's reply by"),
}
EVENT_LABELS = {
    "draft": N_("Taken"), "correct": N_("Corrected"), "dispatch": N_("Dispatched"),
    "acknowledge": N_("Acknowledged"), "arrive": N_("On site"), "resolve": N_("Resolved"),
    "send_back": N_("Sent back by the unit"), "follow_up_agrees": N_("Follow-up: satisfied"),
    "follow_up_contradicts": N_("Follow-up: not resolved"), "adjudicate": N_("Adjudicated"),
    "archive": N_("Archived"), "extend": N_("Extended"), "escalate": N_("Escalated"),
    "photo": N_("Photo added"), "attach_call": N_("Call attached"), "outage_order": N_("Opened for the outage"),
}
ACTION_LABELS = {"dispatch": N_("Dispatch"), "resolve": N_("Resolve"), "escalate": N_("Escalate"),
                 "adjudicate": N_("Adjudicate"), "archive": N_("Archive"), "extend": N_("Extend")}
URGENCY_LABELS = {"urgent": N_("Urgent"), "high": N_("High"), "normal": N_("Normal"), "low": N_("Low")}
# What a field unit may do in each state (the lifecycle table decides in the end).
UNIT_STEPS = {
    "dispatched": ("acknowledge", "return", "extend"),
    "returned": ("acknowledge", "extend"),
    "acknowledged": ("arrive", "resolve", "return", "extend"),
    "on_site": ("resolve", "extend"),
}


WATCHER_POLICY = Policy()   # warn at the same fraction as the deadline watcher


@dataclass(frozen=True)
class Deadline:
    name: str            # dispatch_by, arrive_by, result_by, reply_by
    label: str           # its English words (translated in the template)
    at: datetime
    seconds_left: int    # negative when overdue
    level: str           # ok, warn, overdue
    working_days_left: int | None = None   # reply_by only: working days after today up to its day


def working_days_left(now: datetime, deadline: datetime, tz: str) -> int:
    """Working days after today's date up to and including the deadline's date (0: due today)."""
    zone = zoneinfo.ZoneInfo(tz)
    today, last = now.astimezone(zone).date(), deadline.astimezone(zone).date()
    count, day = 0, today
    while day < last:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count


def running_deadlines(state: str, created_at: datetime, deadlines: dict[str, datetime | None], now: datetime,
                      tz: str, policy: Policy = WATCHER_POLICY) -> list[Deadline]:
    """The deadlines that still apply in this state, earliest first."""
    found = []
    for name in RUNNING.get(state, ()):
        at = deadlines.get(name)
        if at is None:
            continue
        left = at - now
        span = (at - created_at).total_seconds()
        elapsed = (now - created_at).total_seconds()
        level = ("overdue" if left.total_seconds() < 0
                 else "warn" if span > 0 and elapsed >= policy.warn_at_fraction * span else "ok")
        found.append(Deadline(name, DEADLINE_LABELS[name], at, int(left.total_seconds()), level,
                              working_days_left(now, at, tz) if name == "reply_by" else None))
    return sorted(found, key=lambda d: d.at)


def order_deadlines(order: object, now: datetime, tz: str) -> list[Deadline]:
    return running_deadlines(str(getattr(order, "state")), getattr(order, "created_at"),  # noqa: B009
                             {n: getattr(order, n) for n in DEADLINE_LABELS}, now, tz)


def desk_actions(state: str, allowed: set[str]) -> list[str]:
    """The desk's actions that fit the order's state (the API and the lifecycle decide in the end)."""
    fits = {e.value for e in TRANSITIONS.get(State(state), {})} if state in State.__members__.values() else set()
    return [event for event in ACTION_LABELS if event in allowed and event in fits]


def local(moment: datetime | None, tz: str) -> str:
    """A moment as the hotline reads it: 2026-11-23 18:00."""
    if moment is None:
        return "—"
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def left_text(seconds: int) -> str:
    """The countdown's first text (the page's script keeps it running): 1d 02:03:04, -00:05:00."""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{f'{days}d ' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
