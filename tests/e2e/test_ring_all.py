"""Ringing on the real Asterisk: ring_all rings several phones for one call in one Dial (the
first to answer gets the caller, the others stop ringing), and a ring the ACD calls off
(CancelRing) stops that phone while the caller waits on."""
from __future__ import annotations

import pytest

from callcenter.sipp import Key, caller_scenario, expect_ok
from tests.e2e.conftest import Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize("hotline", [{"acd": {"strategy": "ring_all"}}], indirect=True)
async def test_ring_all_rings_three_phones_one_answers_and_the_other_two_stop_ringing(hotline: Hotline) -> None:
    line = hotline
    for agent_id in ("1001", "1002", "1003"):
        await line.engine.login(agent_id)
    answering = await start_agent(line, "1002", ring_ms=2000, hangup_after_ms=30_000)
    silent = [await start_agent(line, agent_id, answers=False) for agent_id in ("1001", "1003")]
    caller = await start_caller(line, "caller_ring_all", caller_scenario(
        number="13966661111", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=7000))
    await wait_until(lambda: all(line.agent_state(a) == "ringing" for a in ("1001", "1002", "1003")), 30,
                     "three phones ring for the one call")
    assert len(line.engine.acd.calls()) == 1
    await wait_until(lambda: line.agent_state("1002") == "on_call", 15, "1002 answers")
    assert (line.agent_state("1001"), line.agent_state("1003")) == ("available", "available")
    for phone in silent:
        await expect_ok(phone, 15)     # each got CANCEL: it stopped ringing
    await expect_ok(caller, 30)
    [call] = await line.closed_calls(1)
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1002", "answered", "caller")
    assert sorted((a.agent_id, a.result) for a in call.attempts) == [
        ("1001", "cancelled"), ("1002", "answered"), ("1003", "cancelled")]
    await expect_ok(answering)
    await line.no_channels_left()


async def test_a_ring_the_acd_calls_off_stops_that_phone_and_the_caller_waits_on(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1004")
    silent = await start_agent(line, "1004", answers=False)
    caller = await start_caller(line, "caller_cancel_ring", caller_scenario(
        number="13966662222", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=9000))
    await wait_until(lambda: line.agent_state("1004") == "ringing", 30, "1004's phone rings")
    session = next(iter(line.engine.sessions.values()))
    await wait_until(lambda: any(r.channel for r in session.machine.rings), 10, "Asterisk named the ringing leg")
    await line.engine.pause("1004", "break")             # the ACD emits CancelRing for that ring
    await expect_ok(silent, 15)                          # the phone got CANCEL
    await wait_until(lambda: session.phase.value == "waiting", 10, "the caller waits again")
    assert [c.state.value for c in line.engine.acd.calls()] == ["waiting"]
    assert line.engine.acd.agent("1004").reason == "break"
    await expect_ok(caller, 30)
    [call] = await line.closed_calls(1)
    assert call.disposition == "abandoned_in_queue"
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1004", "cancelled")]
    await line.no_channels_left()
