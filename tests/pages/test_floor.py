"""What the live pages show of the live state, decided in callcenter/pages/floor.py (pure)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.pages import floor

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)          # 11:00 in Beijing
T = floor.Thresholds(wait_warn_s=60, wait_bad_s=300, pause_warn_s=600, pause_bad_s=1800)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


SNAPSHOT = {
    "queues": {"leak": {"waiting": 2, "longest_wait_s": 400.0, "callbacks": 1}},
    "agents": {"1001": {"state": "available", "since": ago(5), "queues": ["leak", "general"]},
               "1002": {"state": "paused", "since": ago(700), "reason": "break", "queues": ["leak"]},
               "1003": {"state": "on_call", "since": ago(30), "queues": ["general"], "call_id": "c1"},
               "1004": {"state": "available", "since": ago(1), "queues": ["billing"]}},
    "calls": {"c1": {"state": "on_call", "queue": "general", "since": ago(30)},
              "c2": {"state": "waiting", "queue": "leak", "since": ago(400), "priority": 100},
              "c3": {"state": "waiting", "queue": "leak", "since": ago(70), "priority": 0}},
}


def test_levels_follow_the_thresholds() -> None:
    assert [T.level("wait", s) for s in (0, 59, 60, 299, 300)] == ["ok", "ok", "warn", "warn", "bad"]
    assert [T.level("paused", s) for s in (599, 600, 1800)] == ["ok", "warn", "bad"]
    assert T.level("on_call", 10_000) == "ok"          # a long call is not a fault


def test_free_colleagues_are_the_ready_agents_but_me() -> None:
    assert floor.free_colleagues(SNAPSHOT, "1001") == ["1004"]
    assert floor.free_colleagues(SNAPSHOT, None) == ["1001", "1004"]


def test_agent_rows_carry_state_reason_time_and_colour() -> None:
    rows = {r["id"]: r for r in floor.agent_rows(SNAPSHOT, NOW, T)}
    assert rows["1002"]["reason"] == "break" and rows["1002"]["in_state_s"] == 700 and rows["1002"]["level"] == "warn"
    assert rows["1001"]["level"] == "ok"


def test_waiting_callers_longest_first_without_those_on_a_call() -> None:
    rows = floor.waiting_callers(SNAPSHOT, NOW, T)
    assert [(r["id"], r["wait_s"], r["level"], r["priority"]) for r in rows] == [("c2", 400, "bad", 100),
                                                                                ("c3", 70, "warn", 0)]


def test_queue_rows_count_agents_by_state_and_the_windows_figures() -> None:
    figures = {"leak": {"calls": 10, "answered": 8, "within": 6, "abandoned": 2, "asa_s": 12.345}}
    rows = {r["name"]: r for r in floor.queue_rows(SNAPSHOT, figures, ["general", "leak"], T)}
    leak = rows["leak"]
    assert (leak["waiting"], leak["longest_wait_s"], leak["level"]) == (2, 400, "bad")
    assert leak["agents"] == {"available": 1, "paused": 1}
    assert (leak["calls"], leak["service_level_pct"], leak["abandoned"], leak["asa_s"]) == (10, 75.0, 2, 12.3)
    assert rows["general"]["service_level_pct"] is None and rows["general"]["waiting"] == 0


def test_the_shift_began_at_the_last_change_of_shift_in_the_hotlines_time() -> None:
    tz = "Asia/Shanghai"
    assert floor.shift_start(NOW, tz, [8, 20]).isoformat() == "2026-12-01T08:00:00+08:00"
    night = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)        # 03:00 in Beijing the next day
    assert floor.shift_start(night, tz, [8, 20]).isoformat() == "2026-12-01T20:00:00+08:00"
    start, end = floor.shift_bounds(night, tz, [8, 20])
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T20:00:00+08:00", "2026-12-02T08:00:00+08:00")


def test_clock_text_is_the_scripts() -> None:
    assert [floor.clock_text(s) for s in (0, 65, 3723, -5)] == ["00:00", "01:05", "1:02:03", "00:00"]


def test_a_moment_missing_or_unreadable_counts_as_now() -> None:
    assert floor.seconds_since(None, NOW) == 0 and floor.seconds_since("yesterday", NOW) == 0


def test_an_agent_whose_phone_is_offline_is_shown_so_and_is_no_free_colleague() -> None:
    snapshot = {**SNAPSHOT, "agents": {**SNAPSHOT["agents"],
                                       "1004": {**SNAPSHOT["agents"]["1004"], "phone_reachable": False}}}
    rows = {r["id"]: r for r in floor.agent_rows(snapshot, NOW, T)}
    assert rows["1004"]["phone_offline"] is True and rows["1004"]["state"] == "available"
    assert rows["1001"]["phone_offline"] is False            # a row from before phones were followed
    assert floor.free_colleagues(snapshot, None) == ["1001"]
