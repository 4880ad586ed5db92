"""The automated follow-up call (回访) on the real Asterisk: the citizen answers and presses 2."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.sipp import Key, agent_scenario, expect_ok, no_answer_scenario
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.models import FollowUp
from tests.e2e.conftest import Hotline

pytestmark = pytest.mark.asterisk


async def scheduled(line: Hotline, order_id: int) -> FollowUp:
    """The one follow-up the hotline scheduled itself when the order resolved (a leak: always)."""
    async with line.sessionmaker() as session:
        [follow_up] = (await session.execute(select(FollowUp).where(FollowUp.order_id == order_id))).scalars()
    assert follow_up.state == "scheduled"
    return follow_up


async def resolved_order(line: Hotline) -> int:
    call_id = str(uuid.uuid4())
    async with line.sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-x",
                         caller_number="13655550000", arrived_at=datetime.now(UTC), category="leak",
                         agent_id="1001", disposition="answered", closed=True))
    orders = line.built.workorders
    order = await orders.draft_from_call(call_id)
    for event, actor in ((Event.DISPATCH, "1001"), (Event.ACKNOWLEDGE, "unit"), (Event.ARRIVE, "unit"),
                         (Event.RESOLVE, "unit")):
        await orders.apply(order.id, event, actor)
    return order.id


async def test_an_unhappy_answer_lands_on_the_agents_list_and_returns_the_order(hotline: Hotline) -> None:
    line = hotline
    order_id = await resolved_order(line)
    followups, dialer = line.built.followups, line.built.dialer      # the hotline's own dialer
    follow_up = await scheduled(line, order_id)
    citizen = await line.sipp.start("citizen", agent_scenario(ring_ms=500, keys=(Key("2", 2000),),
                                                              hangup_after_ms=20_000),
                                    sip_port=5090, media_port=27000, target=None, calls=1, timeout_s=60)
    assert await followups.call_due(dialer, now=follow_up.due_at) == 1   # as the duties would, when due
    await expect_ok(citizen, 40)
    [listed] = await followups.agent_list()
    assert (listed.id, listed.state, listed.digit) == (follow_up.id, "unsatisfied", "2")
    order = await followups._order(order_id)
    assert order is not None and order.state == "returned" and order.returns == 1
    await line.no_channels_left()


async def test_no_answer_goes_to_an_agent(hotline: Hotline) -> None:
    line = hotline
    order_id = await resolved_order(line)
    followups, dialer = line.built.followups, line.built.dialer      # the hotline's own dialer
    follow_up = await scheduled(line, order_id)
    silent = await line.sipp.start("citizen_away", no_answer_scenario(), sip_port=5090, media_port=27000,
                                   target=None, calls=1, timeout_s=60)
    assert await followups.call_due(dialer, now=follow_up.due_at) == 1   # as the duties would, when due
    [listed] = await followups.agent_list()
    assert listed.state == "no_answer" and listed.needs_agent
    assert (await followups._order(order_id)).state == "resolved"
    await expect_ok(silent, 30)   # it rang until the dialer gave up
    await line.no_channels_left()
