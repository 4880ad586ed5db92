"""The desk files a call while it lasts: its own order from the form, or attached to the caller's
open order or to the running outage's order (one case per outage). On SQLite and PostgreSQL."""
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.models import Call
from callcenter.notices.models import Outage
from callcenter.workorders.categories import load_categories
from callcenter.workorders.lifecycle import Event, IllegalTransition
from callcenter.workorders.models import Customer, WorkOrderCall
from callcenter.workorders.service import CallAlreadyFiled, WorkOrderService

NUMBER = "13812345678"
ARRIVED = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


async def a_call(sessionmaker, call_id: str, category: str | None = "leak", closed: bool = False) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number=NUMBER, arrived_at=ARRIVED, category=category, agent_id="1001",
                         closed=closed))


@pytest.fixture
def service(sessionmaker) -> WorkOrderService:
    return WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")


async def test_the_form_opens_the_calls_order_and_its_end_drafts_no_other(service, sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Customer(number=NUMBER, account="YH-1", name="张三", address="幸福路 12 号", area="幸福小区"))
    await a_call(sessionmaker, "c1")
    order = await service.take_call("c1", "1001", description="厨房水管破裂")
    # As every call's draft: the menu's category, the customer's address, the category's rules.
    assert (order.category, order.unit, order.urgency, order.address) == ("leak", "repair_team", "urgent", "幸福路 12 号")
    assert (order.dispatch_by - ARRIVED, order.arrive_by - ARRIVED) == (timedelta(minutes=3), timedelta(minutes=33))
    assert order.description == "厨房水管破裂" and order.agent_id == "1001"
    again = await service.take_call("c1", "1001", category="water_pressure")   # the agent changes the category
    assert (again.id, again.category, again.unit) == (order.id, "water_pressure", "supply_network")
    await service.call_closed("c1")
    assert (await service.draft_from_call("c1")).id == order.id
    found, attached = await service.order_of_call("c1")
    assert found.id == order.id and not attached


async def test_a_call_attached_to_the_callers_open_order_opens_none(service, sessionmaker) -> None:
    await a_call(sessionmaker, "first", closed=True)
    earlier = await service.draft_from_call("first")
    await a_call(sessionmaker, "again")
    order = await service.attach_call("again", earlier.id, "1002")
    assert order.id == earlier.id
    assert (await service.attach_call("again", earlier.id, "1002")).id == earlier.id   # a second click: no change
    await service.call_closed("again")
    assert (await service.draft_from_call("again")).id == earlier.id
    found, attached = await service.order_of_call("again")
    assert found.id == earlier.id and attached
    assert await service.attached_calls(earlier.id) == ["again"]
    history = await service.history(earlier.id)
    assert [(e.event, e.actor, e.reason) for e in history][-1] == ("attach_call", "1002", f"call again from {NUMBER}")
    with pytest.raises(CallAlreadyFiled):
        await service.take_call("again", "1002")      # attached: the form opens no second case


async def test_a_call_with_its_own_order_or_a_closed_order_is_refused(service, sessionmaker) -> None:
    await a_call(sessionmaker, "own")
    own = await service.take_call("own", "1001")
    await a_call(sessionmaker, "other", closed=True)
    other = await service.draft_from_call("other")
    with pytest.raises(CallAlreadyFiled, match=f"already in order {own.id}"):
        await service.attach_call("own", other.id, "1001")
    await service.apply(other.id, Event.RESOLVE, "1001")
    await a_call(sessionmaker, "late")
    with pytest.raises(IllegalTransition, match="open a new order"):
        await service.attach_call("late", other.id, "1001")
    with pytest.raises(LookupError):
        await service.attach_call("late", 999_999, "1001")
    async with sessionmaker() as session:
        assert await session.get(WorkOrderCall, "late") is None


async def test_a_complaint_attached_to_the_callers_open_order_escalates_it(service, sessionmaker) -> None:
    await a_call(sessionmaker, "leak", closed=True)
    earlier = await service.draft_from_call("leak")
    await a_call(sessionmaker, "complaint", category="complaint")
    order = await service.attach_call("complaint", earlier.id, "1001")
    assert order.escalation_level == 1   # 二次投诉


async def test_an_outage_is_one_order_whatever_the_number_of_calls(service, sessionmaker) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        outage = Outage(kind="temporary", areas=["幸福小区"], starts_at=now - timedelta(hours=1),
                        ends_at=now + timedelta(hours=3), text="幸福小区管道抢修停水", created_at=now, created_by="sup")
        ended = Outage(kind="temporary", areas=["幸福小区"], starts_at=now - timedelta(hours=5),
                       ends_at=now - timedelta(hours=1), text="已结束", created_at=now, created_by="sup")
        session.add_all([outage, ended])
    for call_id in ("o1", "o2", "o3"):
        await a_call(sessionmaker, call_id)
    first = await service.attach_to_outage("o1", outage.id, "1001", now=now)
    assert (first.call_id, first.outage_id, first.category, first.unit) == ("o1", outage.id, "outage", "supply_network")
    assert first.description == "幸福小区管道抢修停水"
    assert (await service.attach_to_outage("o2", outage.id, "1002", now=now)).id == first.id
    assert (await service.attach_to_outage("o3", outage.id, "1003", now=now)).id == first.id
    assert await service.attached_calls(first.id) == ["o2", "o3"]
    await a_call(sessionmaker, "o4")
    with pytest.raises(ValueError, match=r"outage_id: .* not running"):
        await service.attach_to_outage("o4", ended.id, "1001", now=now)
