"""The deadline watcher, the repeat-complaint escalation, the follow-up policy and the weekly sample."""
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.models import Call
from callcenter.workorders import watcher
from callcenter.workorders.categories import load_categories
from callcenter.workorders.followups import FollowUpService, iso_week_bounds, weekly_sample
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.models import Customer, FollowUp
from callcenter.workorders.service import WorkOrderService

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)   # Monday 10:00 in Shanghai
POLICY = watcher.Policy(warn_at_fraction=0.8, escalate_every=timedelta(minutes=30), max_level=3)


def watched(state: str = "accepted", level: int = 0, warned: str | None = None, **deadlines) -> watcher.Watched:
    return watcher.Watched(1, state, T0, level, warned, deadlines)


@pytest.mark.parametrize(("state", "deadlines", "expected"), [
    ("accepted", {"dispatch_by": T0 + timedelta(minutes=3), "arrive_by": T0 + timedelta(minutes=33)}, "dispatch_by"),
    ("dispatched", {"dispatch_by": T0 + timedelta(minutes=3), "arrive_by": T0 + timedelta(minutes=33)}, "arrive_by"),
    ("on_site", {"arrive_by": T0 + timedelta(minutes=33), "result_by": T0 + timedelta(hours=5),
                 "reply_by": T0 + timedelta(days=3)}, "result_by"),
    ("returned", {"result_by": T0 + timedelta(hours=5), "reply_by": T0 + timedelta(days=3)}, "reply_by"),
    ("resolved", {"reply_by": T0 + timedelta(days=3)}, None),
])
def test_the_deadline_that_runs_depends_on_the_state(state, deadlines, expected) -> None:
    found = watcher.running_deadline(watched(state, **deadlines))
    assert (found[0] if found else None) == expected


def test_warn_once_before_then_escalate_level_by_level_after() -> None:
    due = T0 + timedelta(minutes=30)
    order = watched("dispatched", arrive_by=due)
    assert watcher.decide(order, T0 + timedelta(minutes=23), POLICY) is None          # 77% of the time used
    assert watcher.decide(order, T0 + timedelta(minutes=24), POLICY) == watcher.Warn(1, "arrive_by", due)
    assert watcher.decide(watched("dispatched", warned="arrive_by", arrive_by=due), T0 + timedelta(minutes=25),
                          POLICY) is None
    assert watcher.decide(order, due, POLICY) == watcher.Escalate(1, "arrive_by", due, 1)
    assert watcher.decide(watched("dispatched", level=1, arrive_by=due), due + timedelta(minutes=29), POLICY) is None
    assert watcher.decide(watched("dispatched", level=1, arrive_by=due), due + timedelta(minutes=30),
                          POLICY).to_level == 2
    assert watcher.decide(watched("dispatched", level=3, arrive_by=due), due + timedelta(hours=9), POLICY) is None


async def a_call(sessionmaker, call_id: str, category: str, number: str = "13812345678",
                 arrived: datetime = T0) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number=number, arrived_at=arrived, category=category, agent_id="1001",
                         disposition="answered", closed=True))


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict] = []

    async def send(self, alert: dict) -> None:
        self.alerts.append(alert)


class BrokenSink:
    async def send(self, alert: dict) -> None:
        raise ConnectionError("webhook host down")


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def service(sessionmaker, sink) -> WorkOrderService:
    return WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai", sinks=[BrokenSink(), sink])


async def test_a_scan_warns_then_escalates_with_an_audited_event_and_alerts(service, sessionmaker, sink) -> None:
    await a_call(sessionmaker, "leak-1", "leak")
    order = await service.draft_from_call("leak-1", now=T0)
    assert [a.__class__.__name__ for a in await watcher.scan(service, POLICY, T0 + timedelta(minutes=1))] == []
    warned = await watcher.scan(service, POLICY, T0 + timedelta(minutes=2, seconds=30))
    assert warned == [watcher.Warn(order.id, "dispatch_by", order.dispatch_by)]
    assert await watcher.scan(service, POLICY, T0 + timedelta(minutes=2, seconds=40)) == []   # warned once
    late = T0 + timedelta(minutes=64)   # 61 min past the dispatch deadline: two levels up
    assert await watcher.scan(service, POLICY, late) == [watcher.Escalate(order.id, "dispatch_by", order.dispatch_by, 3)]
    history = await service.history(order.id)
    assert [(e.event, e.actor) for e in history][-3:] == [("escalate", "deadline watcher")] * 3
    assert "dispatch_by passed 61 min ago" in history[-1].reason
    assert [(a["kind"], a["order_id"]) for a in sink.alerts] == [("warning", order.id), ("escalated", order.id)]
    assert sink.alerts[-1]["escalation_level"] == 3 and sink.alerts[-1]["unit"] == "repair_team"


async def test_a_second_complaint_escalates_at_once_both_orders(service, sessionmaker, sink) -> None:
    await a_call(sessionmaker, "leak-2", "leak", number="13900000001")
    first = await service.draft_from_call("leak-2", now=T0)
    await a_call(sessionmaker, "complaint-2", "complaint", number="13900000001", arrived=T0 + timedelta(hours=2))
    second = await service.draft_from_call("complaint-2", now=T0 + timedelta(hours=2))
    assert (second.repeat_of, second.escalation_level) == (first.id, 1)
    assert [e.event for e in await service.history(first.id)] == ["draft", "escalate"]
    assert sink.alerts[0]["kind"] == "escalated" and "二次投诉" in sink.alerts[0]["reason"]


async def test_the_address_is_looked_up_by_number_and_a_missing_one_is_flagged(service, sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Customer(number="13700000000", account="A-1001", name="王", address="幸福路 1 号"))
    await a_call(sessionmaker, "known", "leak", number="13700000000")
    await a_call(sessionmaker, "unknown", "leak", number="13700000009")
    known, unknown = await service.draft_from_call("known"), await service.draft_from_call("unknown")
    assert (known.address, known.account, known.needs_review) == ("幸福路 1 号", "A-1001", False)
    assert (unknown.address, unknown.needs_review) == (None, True)


async def test_policy_follows_up_complaints_when_resolved_but_not_billing(service, sessionmaker) -> None:
    FollowUpService(sessionmaker, service)   # it listens for resolved orders
    await a_call(sessionmaker, "c", "complaint", number="13600000001")
    await a_call(sessionmaker, "b", "billing", number="13600000002")
    complaint, billing = await service.draft_from_call("c"), await service.draft_from_call("b")
    resolved_at = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)   # 11:30 local: the next window is 14:30
    await service.apply(complaint.id, Event.RESOLVE, actor="1001", now=resolved_at)
    await service.apply(billing.id, Event.RESOLVE, actor="1001", now=resolved_at)
    async with sessionmaker() as session:
        scheduled = list((await session.execute(FollowUp.__table__.select())).all())
    assert [(f.order_id, f.due_at.astimezone(UTC).hour, f.due_at.minute) for f in scheduled] == [(complaint.id, 6, 30)]


def test_the_weekly_sample_is_reproducible_and_at_least_five_percent() -> None:
    ids = list(range(1, 1001))
    sample = weekly_sample(ids, "2026-W48", 5.0, "seed")
    assert len(sample) == 50 and sample == weekly_sample(list(reversed(ids)), "2026-W48", 5.0, "seed")
    assert sample != weekly_sample(ids, "2026-W49", 5.0, "seed")
    assert len(weekly_sample(list(range(7)), "2026-W48", 5.0, "seed")) == 1   # 5% of 7, rounded up
    assert weekly_sample([], "2026-W48", 5.0, "seed") == []


async def test_drawing_the_weekly_sample_twice_schedules_once(service, sessionmaker) -> None:
    followups = FollowUpService(sessionmaker, service)
    start, _ = iso_week_bounds("2026-W48", "Asia/Shanghai")
    for n in range(30):
        await a_call(sessionmaker, f"m{n}", "ic_meter", number=f"135000000{n:02d}",
                     arrived=start.astimezone(UTC) + timedelta(hours=n))
        await service.draft_from_call(f"m{n}")
    first = await followups.draw_weekly_sample("2026-W48", 5.0, "seed")
    again = await followups.draw_weekly_sample("2026-W48", 5.0, "seed")
    async with sessionmaker() as session:
        count = len((await session.execute(FollowUp.__table__.select())).all())
    assert first == again and len(first) == 2 and count == 2
    with pytest.raises(ValueError, match="ISO week like 2026-W47"):
        iso_week_bounds("48", "Asia/Shanghai")


async def test_the_database_filter_never_hides_an_order_the_watcher_must_act_on(sessionmaker) -> None:
    import random

    from sqlalchemy import select

    from callcenter.workorders.models import WorkOrder

    rng = random.Random(7)
    states = list(watcher.RUNNING)
    async with sessionmaker() as session, session.begin():
        for n in range(300):
            def maybe(minutes: int) -> datetime | None:
                return T0 + timedelta(minutes=rng.randrange(1, minutes)) if rng.random() < 0.7 else None
            session.add(WorkOrder(caller_number=f"1{n:010d}", category="leak", urgency="urgent", unit="u",
                                  state=rng.choice(states), created_at=T0, escalation_level=rng.randrange(0, 3),
                                  warned=rng.choice((None, "dispatch_by", "arrive_by")), dispatch_by=maybe(10),
                                  arrive_by=maybe(60), result_by=maybe(600), reply_by=maybe(5000)))
    async with sessionmaker() as session:
        dialect = session.bind.dialect.name
        orders = list((await session.execute(select(WorkOrder))).scalars())
        acted_somewhen = 0
        for minutes in (0, 2, 5, 9, 30, 59, 120, 700, 6000):
            now = T0 + timedelta(minutes=minutes)
            looked = set((await session.execute(select(WorkOrder.id).where(
                watcher.needs_a_look(dialect, now, POLICY)))).scalars())
            acted = {o.id for o in orders if watcher.decide(watcher.Watched(
                o.id, o.state, o.created_at, o.escalation_level, o.warned,
                {k: getattr(o, k) for k in ("dispatch_by", "arrive_by", "result_by", "reply_by")}), now, POLICY)}
            assert acted <= looked, f"at +{minutes} min the filter hid {sorted(acted - looked)}"
            acted_somewhen += len(acted)
        assert acted_somewhen > 100   # the fixture gives the watcher plenty to do


async def test_a_transferred_call_is_followed_up_whatever_its_category(service, sessionmaker) -> None:
    from callcenter.calls.models import AgentAttempt

    FollowUpService(sessionmaker, service)
    await a_call(sessionmaker, "moved", "billing", number="13600000009")
    async with sessionmaker() as session, session.begin():
        session.add_all([AgentAttempt(call_id="moved", agent_id=a, started_at=T0, result="answered")
                         for a in ("1001", "1002")])
    order = await service.draft_from_call("moved")
    assert order.transferred
    await service.apply(order.id, Event.RESOLVE, actor="1002")
    async with sessionmaker() as session:
        assert [f.order_id for f in (await session.execute(FollowUp.__table__.select())).all()] == [order.id]
