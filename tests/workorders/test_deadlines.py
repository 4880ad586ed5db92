from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.workorders.categories import CategoryError, load_categories
from callcenter.workorders.deadlines import add_working_days, next_follow_up_slot, order_deadlines

TZ = "Asia/Shanghai"
CN = ZoneInfo(TZ)
CATEGORIES = load_categories()


def test_three_working_days_across_national_day_and_an_adjusted_saturday() -> None:
    # Tue 30 Sep 2025: 1-8 Oct are holidays; Thu 9, Fri 10 and Saturday 11 Oct (adjusted) are working days.
    start = datetime(2025, 9, 30, 10, 0, tzinfo=CN)
    assert add_working_days(start, 3, TZ) == datetime(2025, 10, 11, 23, 59, 59, tzinfo=CN)


def test_a_weekend_is_skipped() -> None:
    friday = datetime(2026, 11, 20, 16, 0, tzinfo=CN)
    assert add_working_days(friday, 1, TZ).date().isoformat() == "2026-11-23"


def test_a_leak_is_dispatched_in_3_minutes_and_reached_in_30() -> None:
    accepted = datetime(2026, 11, 21, 2, 0, tzinfo=CN)   # a Saturday night: wall-clock deadlines still run
    d = order_deadlines(CATEGORIES.get("leak"), accepted, TZ)
    assert d["dispatch_by"] == accepted + timedelta(minutes=3)
    assert d["arrive_by"] == accepted + timedelta(minutes=33)
    assert d["result_by"] == datetime(2026, 11, 21, 23, 59, 59, tzinfo=CN)
    assert d["reply_by"].date().isoformat() == "2026-11-25"


def test_an_inquiry_needs_no_dispatch() -> None:
    d = order_deadlines(CATEGORIES.get("billing"), datetime(2026, 11, 23, 9, tzinfo=UTC), TZ)
    assert d["dispatch_by"] is None and d["arrive_by"] is None


@pytest.mark.parametrize(("due", "slot"), [
    ("2026-11-23 11:30", "2026-11-23 14:30"),
    ("2026-11-23 10:00", "2026-11-23 10:00"),
    ("2026-11-23 16:30", "2026-11-24 09:00"),
    ("2026-11-23 07:00", "2026-11-23 09:00"),
])
def test_follow_ups_only_in_their_windows(due: str, slot: str) -> None:
    at = datetime.fromisoformat(due).replace(tzinfo=CN)
    assert next_follow_up_slot(at, TZ) == datetime.fromisoformat(slot).replace(tzinfo=CN)


def test_unknown_categories_are_named() -> None:
    with pytest.raises(CategoryError, match="unknown category 'lava'"):
        CATEGORIES.get("lava")
    with pytest.raises(CategoryError, match="sub-category 'ghost' of 'ic_meter'"):
        CATEGORIES.get("ic_meter", "ghost")
    assert CATEGORIES.get("ic_meter", "overdraft").subcategories["overdraft"] == "透支"


def test_a_broken_categories_file_names_the_key(tmp_path) -> None:
    bad = tmp_path / "categories.yaml"
    bad.write_text("categories:\n  leak: {name: 漏水, needs_field_work: maybe, urgency: urgent, unit: x, follow_up: always}\n")
    with pytest.raises(CategoryError, match=r"categories\.leak\.needs_field_work"):
        load_categories(bad)
