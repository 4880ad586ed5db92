"""Pausing the recording for sensitive data, on the real Asterisk: the agent presses * (the
pause key) and the API resumes it; the paused stretch is silent on both channels and kept on
the call so transcription skips it."""
from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.recording.finalize import channel_levels
from callcenter.sipp import Key, agent_scenario, caller_scenario, expect_ok
from tests.e2e.conftest import AGENTS, Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_caller

pytestmark = pytest.mark.asterisk


async def test_the_agent_pauses_with_the_keypad_and_the_api_resumes(hotline: Hotline) -> None:
    line = hotline
    caller_speech = line.sipp.speech("caller_card.pcap", "my card number is one two three four five six seven",
                                     total_s=12)
    agent_speech = line.sipp.speech("agent_card.pcap", "please read me the number slowly and clearly", total_s=12)
    await line.engine.login("1001")
    port = AGENTS["1001"]
    agent = await line.sipp.start("agent_pause", agent_scenario(ring_ms=300, keys=(Key("*", 1000),),
                                                                speech_pcap=agent_speech, hangup_after_ms=60_000),
                                  sip_port=port, media_port=20000 + (port - 5070) * 100, target=None, calls=1,
                                  timeout_s=120)
    caller = await start_caller(line, "caller_pause", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_speech, speak_after_ms=1000, hangup_after_ms=9000))

    def paused() -> bool:
        return any(s.recording_paused for s in line.engine.sessions.values())

    await wait_until(paused, 30, "the agent's * pauses the recording")
    await line.talked("1001", 3)   # three seconds of the call go by paused
    resumed = await line.engine.pause_recording("1001", False)
    assert resumed["paused"] is False
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    await wait_until(lambda: _recorded(line), 20, "the recording is finalised")
    [call] = await line.closed_calls(1)
    [(start, end)] = call.muted_spans
    assert 2.5 < end - start < 6, call.muted_spans
    levels = channel_levels(Path(call.recording_path), window_s=0.5)
    inside = levels[int(start / 0.5) + 1:int(end / 0.5) - 1]
    assert inside and max(max(left, right) for left, right in inside) < 50, inside
    assert max(max(left, right) for left, right in levels) > 500   # the rest was recorded
    await expect_ok(agent)
    await line.no_channels_left()


async def _recorded(line: Hotline) -> bool:
    calls = await line.calls()
    return bool(calls) and calls[0].recording_path is not None
