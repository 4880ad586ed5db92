"""What the pages show of an order's deadlines (pure)."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.pages.views import left_text, running_deadlines, working_days_left

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)


def test_working_days_left_skip_the_weekend() -> None:
    friday = datetime(2026, 12, 4, 10, 0, tzinfo=SH)
    tuesday_end = datetime(2026, 12, 8, 23, 59, 59, tzinfo=SH)
    assert working_days_left(friday, tuesday_end, TZ) == 2            # Monday and Tuesday
    assert working_days_left(tuesday_end - timedelta(hours=1), tuesday_end, TZ) == 0   # due today


def test_only_the_deadlines_of_the_state_run_and_the_nearly_due_one_warns() -> None:
    created = datetime(2026, 12, 1, 9, 0, tzinfo=SH)
    deadlines = {"dispatch_by": created + timedelta(minutes=3), "arrive_by": created + timedelta(minutes=33),
                 "result_by": datetime(2026, 12, 1, 23, 59, 59, tzinfo=SH),
                 "reply_by": datetime(2026, 12, 4, 23, 59, 59, tzinfo=SH)}
    now = created + timedelta(minutes=30)
    running = running_deadlines("dispatched", created, deadlines, now, TZ)
    assert [d.name for d in running] == ["arrive_by", "result_by", "reply_by"]   # dispatch_by is done with
    assert running[0].level == "warn" and running[0].seconds_left == 180
    assert running[2].working_days_left == 3
    assert running_deadlines("on_site", created, deadlines, created + timedelta(days=1), TZ)[0].level == "overdue"
    assert running_deadlines("resolved", created, deadlines, now, TZ) == []


def test_the_first_countdown_text() -> None:
    assert left_text(3723) == "01:02:03"
    assert left_text(-300) == "-00:05:00"
    assert left_text(90061) == "1d 01:01:01"
