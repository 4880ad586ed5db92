"""The engine down past the caller's hang-up, then started again: nobody was there to see the
call end, so Asterisk's own note of it (the dialplan's `h` extension, in AstDB) gives the
record its end time and who hung up first; the recording MixMonitor finished is finalised."""
from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.app import build_hotline
from callcenter.sipp import Key, caller_scenario, expect_ok
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller
from tests.faults.conftest import Hotline, free_port, wait_until
from tests.faults.figures import CaseFigures, recordings_mismatched, write_case
from tests.faults.test_pbx import next_call_answered, voices

pytestmark = pytest.mark.asterisk


async def test_an_engine_started_again_after_the_caller_hung_up_closes_the_call_with_asterisks_end(
        hotline: Hotline) -> None:
    line = hotline
    caller_voice, agent_voice = voices(line, 20)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=120_000, speech=agent_voice)
    caller = await start_caller(line, "gone_caller", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_voice, speak_after_ms=500, hangup_after_ms=8000))
    await wait_until(lambda: any(s.phase.value == "talking" for s in line.engine.sessions.values()), 30, "talking")
    await line.talked("1001", 1.0)
    await line.engine.stop()               # the engine goes (a shared hotline's stop hands the call over)
    [open_call] = await line.calls()
    assert not open_call.closed
    await expect_ok(caller, 30)            # the caller hangs up while no engine runs
    hung_up_seen = datetime.now(UTC)
    await expect_ok(agent, 20)
    await line.no_channels_left()

    settings = line.settings.model_copy(update={"web": line.settings.web.model_copy(update={"port": free_port()})})
    started = time.monotonic()
    async with build_hotline(settings) as again:
        ready_s = time.monotonic() - started      # the hotline built again, its AMI session up
        async def closed() -> bool:
            return any(c.closed for c in await line.calls())
        await wait_until(closed, 30, "the engine started again closes the call")
        [call] = await line.calls()
        assert (call.disposition, call.agent_id, call.hangup_first) == ("answered", "1001", "caller"), call
        # Asterisk's time of the hang-up: before the test saw the caller's SIPp end, not the restart's.
        assert call.ended_at is not None
        assert hung_up_seen - timedelta(seconds=5) <= call.ended_at <= hung_up_seen, (call.ended_at, hung_up_seen)
        assert call.recording_path and recordings_mismatched([call]) == 0
        # The next call is answered normally by the engine that came back.
        line.engine = again.engine
        with contextlib.suppress(ValueError):
            await again.engine.login("1001")    # unless its state came back with the shared hotline
        await wait_until(lambda: line.agent_state("1001") == "available", 15, "agent 1001 available again")
        answer_s = (await next_call_answered(line, "after_engine_restart")).answer_latency_ms / 1000
        all_calls = await line.calls()
        await line.no_channels_left()
        write_case("engine_down_past_the_hang_up", CaseFigures(
            calls_placed=2, records_closed=sum(c.closed for c in all_calls),
            wrong_outcomes=int((call.disposition, call.hangup_first) != ("answered", "caller")),
            channels_left=len(line.rig.channels()), recordings_mismatched=recordings_mismatched(all_calls),
            recovery_s=round(ready_s + answer_s, 3),
            notes={"ended_at_from": "Asterisk's note of the end (AstDB, the dialplan's h extension)",
                   "recovery": "the hotline started again -> its engine connected, + its answer time for the "
                               "next call"}))
        assert len(all_calls) == 2
