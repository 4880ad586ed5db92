"""Agents' phones as they are, on the real Asterisk, with a real softphone (Debian's baresip)
registering with agent 1005's password, auto-answering with audio.

- The softphone unregisters: its agent is shown unreachable within seconds, a call goes to
  another agent and is not rung on the gone phone; it registers again: the agent is
  available again by itself and takes the next call.
- The softphone is killed without a word: qualify finds it gone, and the call is not rung
  on it for the ring timeout.
- The softphone vanishes while it rings: that attempt is stored as `unreachable` (not
  `no_answer`, and no auto-pause), and the caller is answered by the next agent.
Each case records its figures in bench/results/faults.json.
"""
from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.sipp import Key, caller_scenario, expect_ok, speak_to_wav
from tests.e2e.conftest import SOFTPHONE_PASSWORD, Hotline, free_port, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller
from tests.faults.figures import CaseFigures, recordings_mismatched, write_case
from tests.faults.softphone import Softphone

pytestmark = pytest.mark.asterisk

SOFTPHONE_PORT = 5076
PHONE = "PJSIP/1005"


@pytest.fixture
async def softphone(hotline: Hotline, tmp_path: Path) -> AsyncIterator[Softphone]:
    speech = agent_speech(tmp_path)
    phone = Softphone("1005", SOFTPHONE_PASSWORD, tmp_path / "baresip", SOFTPHONE_PORT, free_port(),
                      speech_wav=speech, regint_s=10)
    try:
        yield phone
    finally:
        await phone.stop()


def agent_speech(folder: Path) -> Path:
    """What the agent says, padded with silence: the aufile source ends the call when its file ends."""
    spoken, speech = folder / "spoken.wav", folder / "agent1005.wav"
    speak_to_wav("water hotline, agent one thousand and five speaking", spoken)
    subprocess.run(["sox", str(spoken), str(speech), "pad", "0", "30"], check=True)
    return speech


async def registered(line: Hotline, phone: Softphone, timeout: float = 10) -> float:
    """Start the softphone and wait until the engine counts its phone reachable; seconds taken."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await phone.start()
    try:
        await wait_until(lambda: line.engine.acd.phone_reachable(PHONE), timeout, "the softphone is reachable")
    except AssertionError:
        raise AssertionError(f"baresip did not register:\n{phone.log()[-2000:]}") from None
    return loop.time() - started


async def shown(line: Hotline, agent_id: str, reachable: bool, timeout: float = 10) -> None:
    """The agents API and the wallboard's live state both say so."""
    async def both() -> bool:
        api = next(a for a in await line.engine.agents() if a["id"] == agent_id)
        live = (await line.built.live.snapshot())["agents"].get(agent_id) or {}
        return api["phone_reachable"] is reachable and live.get("phone_reachable") is reachable
    await wait_until(both, timeout, f"agent {agent_id} shown with phone_reachable={reachable}")


def a_call(name: str, hangup_after_ms: int = 4000) -> str:
    return caller_scenario(name=name, keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=hangup_after_ms)


async def test_a_softphone_that_unregisters_is_not_rung_and_takes_calls_again_once_registered(
        hotline: Hotline, softphone: Softphone) -> None:
    line, loop = hotline, asyncio.get_running_loop()
    await registered(line, softphone)
    await line.engine.login("1005")           # first in: idle longest, rung first
    agent = await start_agent(line, "1001", calls=1, hangup_after_ms=3000)
    await wait_until(lambda: line.engine.acd.phone_reachable("PJSIP/1001"), 10, "1001's SIPp phone qualifies")
    await line.engine.login("1001")

    lost_at = loop.time()
    await softphone.unregister()
    await shown(line, "1005", reachable=False)
    detect_s = loop.time() - lost_at
    assert line.engine.acd.agent("1005").state.value == "available"   # logged in, not rung

    caller = await start_caller(line, "caller_phone_gone", a_call("phone_gone"))
    [first] = await line.closed_calls(1, timeout=40)
    await expect_ok(caller, 30)
    await expect_ok(agent, 30)
    assert (first.agent_id, first.disposition) == ("1001", "answered")
    assert [a.agent_id for a in first.attempts] == ["1001"]          # the gone phone was never rung

    await softphone.stop()
    back_at = loop.time()
    await registered(line, softphone)
    await shown(line, "1005", reachable=True)
    recovery_s = loop.time() - back_at
    assert line.engine.acd.agent("1005").state.value == "available"

    caller = await start_caller(line, "caller_phone_back", a_call("phone_back"))
    calls = await line.closed_calls(2, timeout=40)
    await expect_ok(caller, 30)
    second = next(c for c in calls if c.id != first.id)
    assert (second.agent_id, second.disposition) == ("1005", "answered")
    assert [(a.agent_id, a.result) for a in second.attempts] == [("1005", "answered")]
    assert second.recording_path, "the softphone's talk was recorded"
    await line.no_channels_left()
    wrong = sum(1 for c in (first, second) if c.disposition != "answered") + len(first.attempts) - 1
    write_case("softphone_unregisters_and_registers_again", CaseFigures(
        calls_placed=2, records_closed=len(calls), wrong_outcomes=wrong, channels_left=len(line.rig.channels()),
        recordings_mismatched=recordings_mismatched(calls), recovery_s=round(recovery_s, 2),
        notes={"rings_on_gone_phone": len(first.attempts) - 1, "shown_offline_after_s": round(detect_s, 2),
               "recovery": "registered again -> the agent shown available"}))


async def test_a_softphone_killed_without_a_word_is_found_by_qualify_and_not_rung(
        hotline: Hotline, softphone: Softphone) -> None:
    line, loop = hotline, asyncio.get_running_loop()
    await registered(line, softphone)
    await line.engine.login("1005")
    agent = await start_agent(line, "1001", calls=1, hangup_after_ms=3000)
    await wait_until(lambda: line.engine.acd.phone_reachable("PJSIP/1001"), 10, "1001's SIPp phone qualifies")
    await line.engine.login("1001")

    killed_at = loop.time()
    await softphone.kill()                    # no REGISTER Expires: 0: only qualify can tell
    await shown(line, "1005", reachable=False, timeout=15)
    detect_s = loop.time() - killed_at

    caller = await start_caller(line, "caller_phone_dead", a_call("phone_dead"))
    [call] = await line.closed_calls(1, timeout=40)
    await expect_ok(caller, 30)
    await expect_ok(agent, 30)
    assert (call.agent_id, call.disposition) == ("1001", "answered")
    assert [a.agent_id for a in call.attempts] == ["1001"]
    await line.no_channels_left()
    write_case("softphone_killed", CaseFigures(
        calls_placed=1, records_closed=1, wrong_outcomes=int(call.disposition != "answered"),
        channels_left=len(line.rig.channels()), recordings_mismatched=recordings_mismatched([call]),
        recovery_s=round(detect_s, 2),
        notes={"rings_on_gone_phone": len(call.attempts) - 1,
               "recovery": "killed -> qualify shows the agent's phone offline (no call rung on it)"}))


async def test_a_softphone_that_vanishes_mid_ring_is_stored_unreachable(
        hotline: Hotline, softphone: Softphone) -> None:
    line, loop = hotline, asyncio.get_running_loop()
    softphone.answer = False                  # it rings and rings: its person is away
    await registered(line, softphone)
    await line.engine.login("1005")
    agent = await start_agent(line, "1001", calls=1, hangup_after_ms=3000)
    await wait_until(lambda: line.engine.acd.phone_reachable("PJSIP/1001"), 10, "1001's SIPp phone qualifies")
    await line.engine.login("1001")

    caller = await start_caller(line, "caller_phone_vanishes", a_call("phone_vanishes", hangup_after_ms=4000))
    await wait_until(lambda: line.engine.acd.agent("1005").state.value == "ringing", 20, "1005's softphone rings")
    vanished_at = loop.time()
    await softphone.kill()
    await wait_until(lambda: line.engine.acd.agent("1005").state.value != "ringing", 15, "the ring on 1005 ends")
    ring_after_s = loop.time() - vanished_at
    [call] = await line.closed_calls(1, timeout=40)
    await expect_ok(caller, 30)
    await expect_ok(agent, 30)
    results = [(a.agent_id, a.result) for a in call.attempts]
    assert results == [("1005", "unreachable"), ("1001", "answered")], results
    assert (call.agent_id, call.disposition) == ("1001", "answered")
    view = line.engine.acd.agent("1005")
    assert (view.state.value, view.no_answers, view.phone_reachable) == ("available", 0, False)   # no auto-pause
    await line.no_channels_left()
    write_case("softphone_vanishes_mid_ring", CaseFigures(
        calls_placed=1, records_closed=1, wrong_outcomes=int(results != [("1005", "unreachable"), ("1001", "answered")]),
        channels_left=len(line.rig.channels()), recordings_mismatched=recordings_mismatched([call]),
        recovery_s=round(ring_after_s, 2),
        notes={"ring_timeout_s": line.settings.acd.ring_timeout_s,
               "recovery": "vanished while ringing -> that ring ended (the caller goes to the next agent)"}))
