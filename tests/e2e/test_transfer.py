"""Blind transfer on the real Asterisk: agent 1001 sends the caller to agent 1002; the record
keeps both legs and one recording covers the whole call."""
from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.sipp import Key, caller_scenario, expect_ok, stop_ok
from tests.e2e.conftest import Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


async def test_an_agent_transfers_the_caller_to_a_colleague(hotline: Hotline) -> None:
    line = hotline
    # Both sides speak the whole time: MixMonitor writes only while media flows.
    caller_speech = line.sipp.speech("caller_transfer.pcap", "i would like to ask about my water bill please "
                                     "and also about the meter reading", total_s=30)
    agent_speech = line.sipp.speech("agent_transfer.pcap", "let me put you through to my colleague", total_s=30)
    await line.engine.login("1001")
    await line.engine.login("1002")
    first = await start_agent(line, "1001", speech=agent_speech, hangup_after_ms=60_000)
    second = await start_agent(line, "1002", speech=agent_speech, hangup_after_ms=60_000)
    caller = await start_caller(line, "caller_transferred", caller_scenario(
        number="13977778888", keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_speech, speak_after_ms=500,
        hangup_after_ms=16_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    with pytest.raises(ValueError, match="one of them"):
        await line.engine.transfer("1001")
    with pytest.raises(LookupError, match="unknown queue"):
        await line.engine.transfer("1001", queue="nowhere")
    await line.talked("1001", 3)   # they talk a little first
    done = await line.engine.transfer("1001", to_agent="1002")
    await wait_until(lambda: line.agent_state("1002") == "on_call", 30, "agent 1002 takes the transferred call")
    assert line.agent_state("1001") in ("wrap_up", "available")
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.id == done["call_id"]
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1002", "answered")]
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1002", "answered", "caller")

    async def recorded() -> bool:
        [c] = await line.calls()
        return c.recording_path is not None

    await wait_until(recorded, 20, "the one recording is finalised")
    [call] = await line.calls()
    assert Path(call.recording_path).exists()
    assert call.recording_duration_s > (call.ended_at - call.agent_answered_at).total_seconds() + 1   # both legs
    for phone in (first, second):
        await expect_ok(phone)   # one call each
    await line.no_channels_left()


async def test_an_agent_consults_a_colleague_then_hands_the_caller_over(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1001")
    await line.engine.login("1003")
    # 1001 talks 4 s to the caller, consults 1003 and hangs up at 10 s; 1003 talks until ~19 s.
    # Their phones send RTP all the time (the recording, which marks the talk, grows while media flows).
    speech = line.sipp.speech("agent_consult.pcap", "one moment please", total_s=30)
    first = await start_agent(line, "1001", hangup_after_ms=10_000, speech=speech)
    colleague = await start_agent(line, "1003", hangup_after_ms=15_000, speech=speech)
    caller = await start_caller(line, "caller_consulted", caller_scenario(
        number="13977776666", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=60_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    with pytest.raises(ValueError, match="themself"):
        await line.engine.consult("1001", "1001")
    await line.talked("1001", 4)
    done = await line.engine.consult("1001", "1003")
    assert line.agent_state("1003") == "paused"          # held for this call: nobody else rings them
    session = line.engine.sessions[done["call_id"]]
    await wait_until(lambda: session.consult is not None and session.consult.answered, 20, "1003 answers the consult")
    assert session.agent_id == "1001"                    # still 1001's call while they consult
    await wait_until(lambda: session.agent_id == "1003", 20, "1001 hangs up: the caller is 1003's now")
    await wait_until(lambda: line.agent_state("1001") in ("wrap_up", "available"), 10, "1001 is done")
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1003", "answered")]
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1003", "answered", "agent")
    await wait_until(lambda: line.agent_state("1003") == "available", 15, "1003 free again after the call")
    for phone in (first, colleague):
        await expect_ok(phone)
    await line.no_channels_left()


async def test_a_consult_nobody_answers_leaves_the_caller_with_the_agent(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1001")
    await line.engine.login("1004")
    first = await start_agent(line, "1001", hangup_after_ms=26_000)
    deaf = await start_agent(line, "1004", answers=False)
    caller = await start_caller(line, "caller_consult_unanswered", caller_scenario(
        number="13977775555", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=60_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    done = await line.engine.consult("1001", "1004")
    session = line.engine.sessions[done["call_id"]]
    # The call's machine drops the consult at once; the colleague is freed just after.
    await wait_until(lambda: session.consult is None and line.agent_state("1004") == "available", 25,
                     "the consult rings out and the colleague is free again")
    assert line.agent_state("1001") == "on_call"
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1004", "no_answer")]
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1001", "answered", "agent")
    await expect_ok(first)
    await stop_ok(deaf)   # rang for the consult and was cancelled
    await line.no_channels_left()
