"""A week with known calls, orders and follow-ups (2026-W48, Asia/Shanghai), written through the
database layer, and the reports the hotline writes by itself for the Monday after it.

The figures, by hand (the same week as tests/workorders/test_reports.py): 4 calls (a fifth
arrives on the Sunday before), 2 answered, 3 reached a queue, 1 abandoned in the queue; one
answered within three rings (10 s; the other waited 20 s); 4 orders, 1 finished, 2 complaints
of which 1 a repeat; 2 field orders, one dispatched in time, one on site in time; 2 follow-ups
answered in the week, 1 satisfied."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from callcenter.calls.models import Call
from callcenter.workorders.models import FollowUp, WorkOrder, WorkOrderEvent

WEEK = "2026-W48"
MON = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - timedelta(hours=8)   # Monday 00:00 in Asia/Shanghai


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time in week 2026-W48: day 0 is Monday."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


@dataclass
class Week:
    calls: dict[str, str]     # what each call is -> its id
    orders: dict[str, int]    # what each order is -> its id


def _call(arrived: datetime, disposition: str, queued: bool = True, wait_s: float | None = None,
          talk_s: float | None = None, survey: int | None = None, agent: str | None = None) -> Call:
    cid = str(uuid.uuid4())
    answered = arrived + timedelta(seconds=wait_s) if wait_s is not None else None
    ended = (answered + timedelta(seconds=talk_s)) if answered and talk_s else arrived + timedelta(seconds=30)
    return Call(id=cid, uniqueid=f"u-{cid}", linkedid=f"u-{cid}", channel="PJSIP/trunk-1", caller_number="13800000000",
                arrived_at=arrived, queued_at=arrived + timedelta(seconds=5) if queued else None, queue="leak" if queued else None,
                agent_id=agent, agent_answered_at=answered, ended_at=ended, disposition=disposition,
                survey_score=survey, closed=True)


def _order(category: str, created: datetime, state: str, unit: str, field: bool, arrive_min: int | None = None,
           sub: str | None = None, repeat_of: int | None = None, level: int = 0, call_id: str | None = None) -> WorkOrder:
    dispatch_by = created + timedelta(minutes=3) if field else None
    return WorkOrder(caller_number="13900000000", category=category, subcategory=sub, urgency="normal",
                     unit=unit, state=state, created_at=created, dispatch_by=dispatch_by, call_id=call_id,
                     arrive_by=dispatch_by + timedelta(minutes=arrive_min) if dispatch_by and arrive_min else None,
                     repeat_of=repeat_of, escalation_level=level, description=f"{category} {created:%d %H:%M}")


async def seed_week(sessionmaker) -> Week:
    calls = {
        "quick": _call(at(0, 10), "answered", wait_s=10, talk_s=120, survey=5, agent="1001"),
        "slow": _call(at(0, 11), "answered", wait_s=20, talk_s=60, survey=3, agent="1002"),
        "abandoned": _call(at(1, 9), "abandoned_in_queue"),
        "in_menu": _call(at(1, 9, 30), "abandoned_in_ivr", queued=False),
        "sunday_before": _call(at(-1, 23, 30), "answered", wait_s=5, talk_s=10, agent="1001"),
    }
    async with sessionmaker() as session, session.begin():
        session.add_all(calls.values())
    orders = {
        "leak": _order("leak", at(0, 10), "resolved", "repair_team", True, 30, call_id=calls["quick"].id),
        "meter": _order("ic_meter", at(0, 11), "on_site", "meter_service", True, 180, sub="low_flow",
                        call_id=calls["slow"].id),
        "complaint": _order("complaint", at(1, 9), "accepted", "customer_service", False),
        "week_before": _order("leak", at(-3, 10), "resolved", "repair_team", True, 30),
    }
    async with sessionmaker() as session, session.begin():
        session.add_all(orders.values())
    async with sessionmaker() as session, session.begin():
        repeat = _order("complaint", at(1, 10), "accepted", "customer_service", False,
                        repeat_of=orders["complaint"].id, level=1)
        session.add(repeat)
        leak, meter = orders["leak"].id, orders["meter"].id
        session.add_all([
            WorkOrderEvent(order_id=leak, at=at(0, 10, 2), actor="1001", event="dispatch", to_state="dispatched"),
            WorkOrderEvent(order_id=leak, at=at(0, 10, 40), actor="unit", event="arrive", to_state="on_site"),
            WorkOrderEvent(order_id=meter, at=at(0, 11, 5), actor="1002", event="dispatch", to_state="dispatched"),
            WorkOrderEvent(order_id=meter, at=at(0, 12), actor="unit", event="arrive", to_state="on_site"),
            FollowUp(id=str(uuid.uuid4()), order_id=leak, number="13800000000", due_at=at(0, 14, 30), state="satisfied",
                     digit="1", created_at=at(0, 12), answered_at=at(0, 14, 40)),
            FollowUp(id=str(uuid.uuid4()), order_id=orders["week_before"].id, number="13800000000", due_at=at(1, 9),
                     state="unsatisfied", digit="2", created_at=at(-3, 12), answered_at=at(1, 9, 10)),
        ])
    ids = {name: o.id for name, o in orders.items()}
    ids["repeat"] = repeat.id
    return Week({name: c.id for name, c in calls.items()}, ids)
