"""The automated follow-up call (回访) on the real Asterisk: the citizen answers and presses 2."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from callcenter.calls.models import Call
from callcenter.calls.outbound import FollowUpCalls
from callcenter.sipp import Key, agent_scenario, expect_ok, no_answer_scenario
from callcenter.workorders.categories import load_categories
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.service import WorkOrderService
from tests.e2e.conftest import Hotline

pytestmark = pytest.mark.asterisk


async def resolved_order(line: Hotline) -> tuple[WorkOrderService, int]:
    call_id = str(uuid.uuid4())
    async with line.sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-x",
                         caller_number="13655550000", arrived_at=datetime.now(UTC), category="leak",
                         agent_id="1001", disposition="answered", closed=True))
    orders = WorkOrderService(line.sessionmaker, load_categories(), line.settings.hotline.timezone)
    order = await orders.draft_from_call(call_id)
    for event, actor in ((Event.DISPATCH, "1001"), (Event.ACKNOWLEDGE, "unit"), (Event.ARRIVE, "unit"),
                         (Event.RESOLVE, "unit")):
        await orders.apply(order.id, event, actor)
    return orders, order.id


async def test_an_unhappy_answer_lands_on_the_agents_list_and_returns_the_order(hotline: Hotline) -> None:
    line = hotline
    orders, order_id = await resolved_order(line)
    followups = FollowUpService(line.sessionmaker, orders)
    dialer = FollowUpCalls(line.engine, followups)
    follow_up = await followups.schedule(order_id)
    citizen = await line.sipp.start("citizen", agent_scenario(ring_ms=500, keys=(Key("2", 2000),),
                                                              hangup_after_ms=20_000),
                                    sip_port=5090, media_port=27000, target=None, calls=1, timeout_s=60)
    await dialer.place_followup_call(follow_up.id, follow_up.number)
    await expect_ok(citizen, 40)
    [listed] = await followups.agent_list()
    assert (listed.id, listed.state, listed.digit) == (follow_up.id, "unsatisfied", "2")
    order = await followups._order(order_id)
    assert order is not None and order.state == "returned" and order.returns == 1
    await line.no_channels_left()


async def test_no_answer_goes_to_an_agent(hotline: Hotline) -> None:
    line = hotline
    orders, order_id = await resolved_order(line)
    followups = FollowUpService(line.sessionmaker, orders)
    dialer = FollowUpCalls(line.engine, followups)
    follow_up = await followups.schedule(order_id)
    silent = await line.sipp.start("citizen_away", no_answer_scenario(), sip_port=5090, media_port=27000,
                                   target=None, calls=1, timeout_s=60)
    await dialer.place_followup_call(follow_up.id, follow_up.number)
    [listed] = await followups.agent_list()
    assert listed.state == "no_answer" and listed.needs_agent
    assert (await followups._order(order_id)).state == "resolved"
    await expect_ok(silent, 30)   # it rang until the dialer gave up
    await line.no_channels_left()
