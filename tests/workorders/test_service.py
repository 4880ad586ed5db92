"""Orders from calls, on SQLite and PostgreSQL."""
import asyncio
from datetime import UTC, datetime

import pytest

from callcenter.calls.models import Call
from callcenter.workorders.categories import load_categories
from callcenter.workorders.lifecycle import Event, IllegalTransition
from callcenter.workorders.service import WorkOrderService


async def a_call(sessionmaker, call_id: str, category: str | None = "leak") -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number="13812345678", arrived_at=datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
                         category=category, agent_id="1001", disposition="answered", closed=True))


@pytest.fixture
def service(sessionmaker) -> WorkOrderService:
    return WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")


async def test_one_order_per_call_even_when_the_call_end_is_replayed(service, sessionmaker) -> None:
    await a_call(sessionmaker, "call-1")
    orders = await asyncio.gather(*(service.draft_from_call("call-1") for _ in range(4)))
    assert len({o.id for o in orders}) == 1
    order = orders[0]
    assert (order.category, order.unit, order.urgency, order.state) == ("leak", "repair_team", "urgent", "accepted")
    assert (order.dispatch_by - order.created_at).total_seconds() == 180
    assert [e.event for e in await service.history(order.id)] == ["draft"]


async def test_an_unknown_category_is_drafted_for_the_agent_to_correct(service, sessionmaker) -> None:
    await a_call(sessionmaker, "call-2", category="volcano")
    order = await service.draft_from_call("call-2")
    assert order.category == "other" and order.needs_review


async def test_an_illegal_event_changes_nothing_and_every_change_is_audited(service, sessionmaker) -> None:
    await a_call(sessionmaker, "call-3")
    order = await service.draft_from_call("call-3")
    with pytest.raises(IllegalTransition):
        await service.apply(order.id, Event.ARCHIVE, actor="sup")
    await service.apply(order.id, Event.DISPATCH, actor="1001")
    await service.apply(order.id, Event.ACKNOWLEDGE, actor="unit:repair_team")
    moved = await service.apply(order.id, Event.ESCALATE, actor="watcher", reason="not on site in 30 min")
    assert (moved.state, moved.escalation_level) == ("acknowledged", 1)
    history = await service.history(order.id)
    assert [(e.event, e.from_state, e.to_state, e.actor) for e in history] == [
        ("draft", None, "accepted", "1001"), ("dispatch", "accepted", "dispatched", "1001"),
        ("acknowledge", "dispatched", "acknowledged", "unit:repair_team"),
        ("escalate", "acknowledged", "acknowledged", "watcher")]


async def test_a_missing_call_is_a_clear_error(service) -> None:
    with pytest.raises(LookupError, match="no call 'nope'"):
        await service.draft_from_call("nope")
