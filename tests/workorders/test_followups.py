from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callcenter.workorders.categories import load_categories
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.service import WorkOrderService
from tests.workorders.test_service import a_call


class RecordingDialer:
    def __init__(self) -> None:
        self.placed: list[tuple[str, str]] = []

    async def place_followup_call(self, followup_id: str, number: str) -> None:
        self.placed.append((followup_id, number))


async def resolved(sessionmaker, call_id: str) -> tuple[WorkOrderService, int]:
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    await a_call(sessionmaker, call_id)
    order = await orders.draft_from_call(call_id)
    for event in (Event.DISPATCH, Event.ACKNOWLEDGE, Event.ARRIVE, Event.RESOLVE):
        await orders.apply(order.id, event, "unit")
    return orders, order.id


async def test_scheduled_in_a_window_and_placed_when_due(sessionmaker) -> None:
    orders, order_id = await resolved(sessionmaker, "f-1")
    followups = FollowUpService(sessionmaker, orders)
    at_1130 = datetime(2026, 11, 23, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    follow_up = await followups.schedule(order_id, now=at_1130)
    assert follow_up.due_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == "14:30"
    dialer = RecordingDialer()
    assert await followups.call_due(dialer, now=at_1130) == 0
    assert await followups.call_due(dialer, now=follow_up.due_at) == 1
    assert dialer.placed == [(follow_up.id, "13812345678")]
    assert await followups.call_due(dialer, now=follow_up.due_at) == 0     # placed once


async def test_satisfied_closes_the_loop_and_two_contradictions_reach_a_supervisor(sessionmaker) -> None:
    orders, order_id = await resolved(sessionmaker, "f-2")
    followups = FollowUpService(sessionmaker, orders)
    first = await followups.schedule(order_id, now=datetime.now(UTC))
    await followups.record_answer(first.id, "2")
    assert (await followups._order(order_id)).state == "returned"
    for event in (Event.ACKNOWLEDGE, Event.ARRIVE, Event.RESOLVE):
        await orders.apply(order_id, event, "unit")
    second = await followups.schedule(order_id, now=datetime.now(UTC))
    await followups.record_answer(second.id, "2")
    assert (await followups._order(order_id)).state == "adjudicating"
    assert {f.id for f in await followups.agent_list()} == {first.id, second.id}

    orders2, order2 = await resolved(sessionmaker, "f-3")
    happy = await FollowUpService(sessionmaker, orders2).schedule(order2, now=datetime.now(UTC))
    done = await FollowUpService(sessionmaker, orders2).record_answer(happy.id, "1")
    assert done.state == "satisfied" and not done.needs_agent
    assert (await followups._order(order2)).state == "followed_up"


async def test_a_refused_number_is_recorded_refused_and_goes_to_a_person(sessionmaker) -> None:
    orders, order_id = await resolved(sessionmaker, "f-9")
    followups = FollowUpService(sessionmaker, orders)
    follow_up = await followups.schedule(order_id, now=datetime.now(UTC))
    refused = await followups.record_refused(follow_up.id, "international numbers are not dialled")
    assert (refused.state, refused.needs_agent, refused.digit, refused.answered_at) == ("refused", True, None, None)
    assert [f.id for f in await followups.agent_list()] == [follow_up.id]
    assert (await followups._order(order_id)).state == "resolved"     # not an answer: the order waits
    done = await followups.record_answer(follow_up.id, "1")            # a person reached the citizen
    assert done.state == "satisfied" and (await followups._order(order_id)).state == "followed_up"
