"""Opening hours and holidays switch routing: a closed queue's callers go to its when_closed."""
from datetime import datetime

import pytest
from pydantic import ValidationError

from callcenter.acd.settings import RoutingPolicy
from callcenter.config import ConfigError, load_settings
from callcenter.workdays import is_working_day

POLICY = RoutingPolicy.model_validate({"acd": {}, "queues": [
    {"name": "general"},
    {"name": "night", "when_closed": None},
    {"name": "billing", "open_hours": ["08:30-12:00", "13:30-17:30"], "open_days": "working_days",
     "when_closed": "general"},
    {"name": "meters", "open_hours": ["09:00-17:00"], "when_closed": "billing"},
]})


def route(queue: str, when: str) -> str:
    local = datetime.fromisoformat(when)
    return POLICY.open_queue(queue, local, is_working_day(local.date()))


@pytest.mark.parametrize(("when", "expected"), [
    ("2026-11-23T08:29:59", "general"),   # Monday, before opening
    ("2026-11-23T08:30:00", "billing"),
    ("2026-11-23T12:30:00", "general"),   # lunch
    ("2026-11-23T17:29:00", "billing"),
    ("2026-11-23T17:30:00", "general"),
    ("2026-11-28T10:00:00", "general"),   # Saturday
    ("2026-10-05T10:00:00", "general"),   # National Day week, a Monday
    ("2026-09-20T10:00:00", "billing"),   # Sunday 20 Sep 2026 is an adjusted working day
])
def test_billing_keeps_office_hours_on_working_days(when: str, expected: str) -> None:
    assert route("billing", when) == expected


def test_a_closed_queue_follows_the_chain_and_an_always_open_queue_never_closes() -> None:
    assert route("meters", "2026-11-23T18:00:00") == "general"   # meters closed → billing closed → general
    assert route("meters", "2026-11-23T12:30:00") == "meters"
    assert route("meters", "2026-11-23T08:45:00") == "billing"   # meters not yet open, billing is
    assert route("general", "2026-10-01T03:00:00") == "general"


@pytest.mark.parametrize(("queue", "message"), [
    ({"name": "b", "open_hours": ["8:30"], "when_closed": "general"}, "not like '08:30-17:30'"),
    ({"name": "b", "open_hours": ["17:00-09:00"], "when_closed": "general"}, "closes before it opens"),
    ({"name": "b", "open_hours": ["09:00-17:00"]}, "needs when_closed"),
    ({"name": "b", "open_hours": ["09:00-17:00"], "when_closed": "nowhere"}, "when_closed 'nowhere' is not a queue"),
])
def test_bad_hours_name_the_queue_and_the_problem(queue: dict, message: str) -> None:
    with pytest.raises((ValidationError, ConfigError), match=message):
        load_settings(overrides={"queues": [{"name": "general"}, queue]})
