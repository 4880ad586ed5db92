"""What the agent's desk and the floor's screen show of the live state, decided here. Pure.

The live state (callcenter/acd/live.py) gives agents, calls and queues as they are now; the
call records give the figures over a window. The window of the wallboard is the last 24 hours
rolling, not "since midnight": a 24-hour centre's counters never drop to zero at 00:00. A
second view counts from the start of the running shift (two shifts a day, `shift_hours`).

Colours follow thresholds from the settings (`[wallboard]`): a caller waiting over the first
is "warn", over the second "bad"; a pause and a wrap-up likewise. The browser re-colours
as the seconds pass with the same thresholds (they are written into the page).
"""
from __future__ import annotations

import zoneinfo
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from callcenter.pages.views import N_

AGENT_STATE_LABELS = {
    "available": N_("Ready"), "ringing": N_("Ringing"), "on_call": N_("On a call"), "wrap_up": N_("Wrap-up"),
    "paused": N_("Paused"), "logged_out": N_("Logged out"),
}
# The reasons an agent chooses (web/agents_http.PAUSE_REASONS) and those the engine sets itself.
PAUSE_REASON_LABELS = {
    "break": N_("Break"), "training": N_("Training"), "follow_up": N_("Follow-up calls"), "meeting": N_("Meeting"),
    "after_call_work": N_("After-call work"), "other": N_("Other"),
    "no_answer": N_("Did not answer"), "unavailable": N_("Phone unreachable"), "elsewhere": N_("Busy elsewhere"),
    "consult": N_("Consulting"), "adopted_call": N_("Call taken over"),
}
# Beside the state: Asterisk cannot reach the agent's phone (unregistered, or no answer to
# qualify), so the agent is not rung until it is back.
PHONE_LABELS = {"offline": N_("Phone offline")}
CALL_STATE_LABELS = {"waiting": N_("Waiting"), "ringing": N_("Ringing"), "on_call": N_("On a call"),
                     "callback": N_("Callback kept"), "calling_back": N_("Calling back")}
DISPOSITION_LABELS = {
    "answered": N_("Answered"), "abandoned_in_queue": N_("Hung up waiting"), "abandoned_in_ivr": N_("Hung up in the menu"),
    "callback": N_("Called back"), "transferred": N_("Transferred"), "closed_queue": N_("Queue closed"),
    "cut_by_pbx": N_("Cut by the PBX"),
}
FOLLOWUP_LABELS = {"scheduled": N_("Scheduled"), "calling": N_("Being called"), "unsatisfied": N_("Not satisfied"),
                   "no_answer": N_("No answer"), "refused": N_("Number not allowed to dial"),
                   "satisfied": N_("Satisfied")}
ALERT_LABELS = {"warning": N_("Nearly due"), "escalated": N_("Escalated"), "breached": N_("Overdue")}


@dataclass(frozen=True)
class Thresholds:
    """Seconds after which a wait, a pause or a wrap-up is shown as warn, then bad."""
    wait_warn_s: float = 60
    wait_bad_s: float = 300
    pause_warn_s: float = 600
    pause_bad_s: float = 1800
    wrapup_warn_s: float = 60
    wrapup_bad_s: float = 180

    def level(self, kind: str, seconds: float) -> str:
        warn, bad = {"wait": (self.wait_warn_s, self.wait_bad_s), "paused": (self.pause_warn_s, self.pause_bad_s),
                     "wrap_up": (self.wrapup_warn_s, self.wrapup_bad_s)}.get(kind, (float("inf"), float("inf")))
        return "bad" if seconds >= bad else "warn" if seconds >= warn else "ok"

    @classmethod
    def of(cls, settings: Any) -> Thresholds:
        """From the settings' `[wallboard]` section."""
        w = settings.wallboard
        return cls(w.wait_warn_s, w.wait_bad_s, w.pause_warn_s, w.pause_bad_s, w.wrapup_warn_s, w.wrapup_bad_s)

    def as_dict(self) -> dict[str, list[float]]:
        """For the page's script, which re-colours as the seconds pass."""
        return {"wait": [self.wait_warn_s, self.wait_bad_s], "paused": [self.pause_warn_s, self.pause_bad_s],
                "wrap_up": [self.wrapup_warn_s, self.wrapup_bad_s]}


def seconds_since(moment: str | None, now: datetime) -> int:
    """Seconds from an ISO moment of the live state to now (0 when it is missing or unreadable)."""
    if not moment:
        return 0
    try:
        since = datetime.fromisoformat(moment)
    except ValueError:
        return 0
    return max(0, int((now - since).total_seconds()))


def clock_text(seconds: float) -> str:
    """A time in state or a wait as the page's script shows it: 04:05, 1:02:03."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def free_colleagues(snapshot: dict[str, Any], me: str | None) -> list[str]:
    """Agents ready for a transfer or a consult now, by id (not the agent asking); not one
    whose phone is offline."""
    agents = snapshot.get("agents") or {}
    return sorted(a for a, data in agents.items() if a != me and (data or {}).get("state") == "available"
                  and (data or {}).get("phone_reachable", True) is not False)


def agent_rows(snapshot: dict[str, Any], now: datetime, thresholds: Thresholds) -> list[dict[str, Any]]:
    """Every logged-in agent with state, reason, time in state, its colour and whether the
    phone is offline, by id."""
    rows = []
    for agent_id, data in sorted((snapshot.get("agents") or {}).items()):
        data = data or {}
        state = str(data.get("state", "logged_out"))
        in_state = seconds_since(data.get("since"), now)
        rows.append({"id": agent_id, "state": state, "reason": data.get("reason"), "since": data.get("since") or "",
                     "in_state_s": in_state, "queues": data.get("queues") or [], "call_id": data.get("call_id"),
                     "level": thresholds.level(state, in_state),
                     "phone_offline": data.get("phone_reachable", True) is False})
    return rows


def waiting_callers(snapshot: dict[str, Any], now: datetime, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The callers waiting in a queue, longest wait first."""
    rows = []
    for call_id, data in (snapshot.get("calls") or {}).items():
        data = data or {}
        if data.get("state") not in ("waiting", "callback"):
            continue
        wait = seconds_since(data.get("since"), now)
        rows.append({"id": call_id, "queue": data.get("queue") or "", "state": data.get("state"),
                     "since": data.get("since") or "", "wait_s": wait, "priority": data.get("priority"),
                     "level": thresholds.level("wait", wait)})
    return sorted(rows, key=lambda r: -r["wait_s"])


def queue_rows(snapshot: dict[str, Any], figures: dict[str, dict[str, Any]], queue_names: list[str],
               thresholds: Thresholds) -> list[dict[str, Any]]:
    """Per queue: waiting and longest wait now, agents by state now, and the window's figures."""
    live_queues = snapshot.get("queues") or {}
    agents = snapshot.get("agents") or {}
    names = list(queue_names) + sorted(set(live_queues) - set(queue_names))
    rows = []
    for name in names:
        q = live_queues.get(name) or {}
        by_state = Counter(str((a or {}).get("state")) for a in agents.values() if name in ((a or {}).get("queues") or []))
        longest = float(q.get("longest_wait_s") or 0.0)
        rows.append({"name": name, "waiting": int(q.get("waiting") or 0), "longest_wait_s": int(longest),
                     "callbacks": int(q.get("callbacks") or 0), "level": thresholds.level("wait", longest),
                     "agents": dict(by_state), **window_defaults(figures.get(name))})
    return rows


def window_defaults(figures: dict[str, Any] | None) -> dict[str, Any]:
    f = figures or {}
    calls, answered = int(f.get("calls") or 0), int(f.get("answered") or 0)
    within = int(f.get("within") or 0)
    return {"calls": calls, "answered": answered, "abandoned": int(f.get("abandoned") or 0),
            "service_level_pct": round(100.0 * within / answered, 1) if answered else None,
            "asa_s": round(float(f["asa_s"]), 1) if f.get("asa_s") is not None else None}


def _changes(now: datetime, tz: str, shift_hours: list[int]) -> list[datetime]:
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    return sorted(local.replace(hour=h, minute=0, second=0, microsecond=0) + timedelta(days=d)
                  for d in (-1, 0, 1) for h in shift_hours)


def shift_start(now: datetime, tz: str, shift_hours: list[int]) -> datetime:
    """When the running shift began: the latest of the day's shift changes (08:00 and 20:00)."""
    return max(c for c in _changes(now, tz, shift_hours) if c <= now)


def shift_bounds(now: datetime, tz: str, shift_hours: list[int]) -> tuple[datetime, datetime]:
    """The running shift: from its start to the next change of shift."""
    return shift_start(now, tz, shift_hours), min(c for c in _changes(now, tz, shift_hours) if c > now)
