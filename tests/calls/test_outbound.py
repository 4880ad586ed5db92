"""Numbers the engine dials out (callbacks, follow-ups) pass the dial policy before anything is
originated; a refused one is recorded as refused. On the real Engine over the fake AMI."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from callcenter.acd import events as acd_ev
from callcenter.calls.models import AgentAttempt
from callcenter.calls.outbound import FollowUpCalls
from callcenter.workorders.followups import FollowUpService
from tests.calls.fake_line import FakeLine, agent, running_line
from tests.workorders.test_followups import resolved
from tests.workorders.test_service import a_call

FRAUD_NUMBER = "00882161234567"


@pytest.fixture
async def line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    async with running_line(settings, sessionmaker, [agent("1001")]) as running:
        yield running


async def attempts(sessionmaker, call_id: str) -> list[str | None]:
    async with sessionmaker() as session:
        rows = await session.execute(select(AgentAttempt.result).where(AgentAttempt.call_id == call_id))
        return list(rows.scalars())


async def kept_place(line: FakeLine, sessionmaker, call_id: str, number: str) -> None:
    """A caller who asked to be called back at `number` (kept in line, e.g. after a restart)."""
    await a_call(sessionmaker, call_id)
    await line.engine.feed_acd(acd_ev.CallQueued(call_id=call_id, queue="general", at=line.engine.clock.monotonic(),
                                                 callback_number=number))


async def test_a_callback_to_a_refused_number_rings_nobody_and_is_recorded_refused(line: FakeLine,
                                                                                  sessionmaker) -> None:
    await line.engine.login("1001")
    await kept_place(line, sessionmaker, "cb-1", FRAUD_NUMBER)
    await line.until(lambda: not line.engine.acd.calls())          # the kept place is dropped
    assert await attempts(sessionmaker, "cb-1") == ["callback_refused"]
    assert line.engine.acd.agent("1001").state.value == "available"
    assert line.sent("Originate") == [] and line.dials() == []


async def test_a_callback_dials_the_number_the_policy_accepted_through_the_trunk(line: FakeLine,
                                                                                sessionmaker) -> None:
    line.originate_answered = True
    await line.engine.login("1001")
    await kept_place(line, sessionmaker, "cb-2", "+8613800138000")
    await line.until(lambda: bool(line.sent("Originate")))
    [ring] = line.sent("Originate")
    assert (ring["Channel"], ring["Exten"], ring["CallerID"]) == ("PJSIP/1001", "callback", "13800138000")
    line.call_in(channel="PJSIP/1001-00000009", uniqueid="1732345300.9", args=("callback", "cb-2", "fake-line"))
    assert await line.dial_sent() == 'EXEC Dial "PJSIP/13800138000@trunk,30,g"'
    line.hang_up(channel="PJSIP/1001-00000009", uniqueid="1732345300.9")
    await line.until(lambda: not line.engine.acd.calls())


async def test_no_callback_is_offered_to_a_caller_the_policy_would_not_call_back(line: FakeLine) -> None:
    line.call_in(caller_number=FRAUD_NUMBER)       # nobody logged in: a callback would be offered at once
    await line.until(lambda: bool(line.engine.acd.calls()))   # queued: the ACD's offer is in the call's inbox
    await line.engine.login("1001")                # the ring comes after whatever the offer did
    assert await line.dial_sent() == 'EXEC Dial "PJSIP/1001,15,gmt"'
    assert not any("callback_offer" in c for c in line.commands)
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def test_a_caller_with_a_number_the_policy_accepts_is_offered_a_callback(line: FakeLine) -> None:
    line.call_in(caller_number="13800138000")
    await line.until(lambda: bool(line.engine.acd.calls()))
    await line.engine.login("1001")
    await line.dial_sent()
    assert any("callback_offer" in c for c in line.commands)
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def test_a_follow_up_to_a_refused_number_is_not_placed_and_goes_to_a_person(line: FakeLine,
                                                                                 sessionmaker) -> None:
    orders, order_id = await resolved(sessionmaker, "fu-1")
    followups = FollowUpService(sessionmaker, orders)
    dialer = FollowUpCalls(line.engine, followups)
    refused = await followups.schedule(order_id)
    await dialer.place_followup_call(refused.id, FRAUD_NUMBER)
    assert line.sent("Originate") == []
    [listed] = await followups.agent_list()
    assert (listed.id, listed.state, listed.needs_agent, listed.digit) == (refused.id, "refused", True, None)
    assert (await followups._order(order_id)).state == "resolved"     # no answer was made up


async def test_a_follow_up_dials_the_normalised_number_through_the_trunk(line: FakeLine, sessionmaker) -> None:
    orders, order_id = await resolved(sessionmaker, "fu-2")
    followups = FollowUpService(sessionmaker, orders)
    follow_up = await followups.schedule(order_id)
    await FollowUpCalls(line.engine, followups).place_followup_call(follow_up.id, "+8613812345678")
    [call] = line.sent("Originate")
    assert (call["Channel"], call["Exten"]) == ("PJSIP/13812345678@trunk", "followup")
    [listed] = await followups.agent_list()
    assert listed.state == "no_answer"            # the fake Asterisk says busy
