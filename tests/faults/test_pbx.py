"""The PBX under the hotline fails: Asterisk restarted with calls up, and Asterisk frozen.

After each case every call has exactly one closed record with the outcome that really
happened, no channel is left in Asterisk, every recording's SHA-256 matches its file, and
the next call is answered normally. Each case writes its figures to bench/results/faults.json
(tests/faults/figures.py), with `recovery_s`: from Asterisk back to the engine answering a
new call.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenter.sipp import ASTERISK_ROOT, Key, caller_scenario, expect_ok
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller
from tests.faults.conftest import Hotline, wait_until
from tests.faults.figures import CaseFigures, recordings_mismatched, write_case

pytestmark = pytest.mark.asterisk

SLACK = timedelta(seconds=2)   # the engine's clock and Asterisk's are the same machine's


def asterisk_pid() -> int:
    """The Asterisk daemon of the test root (`asterisk -f` whose root is the test root's)."""
    root = str(ASTERISK_ROOT.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if Path(argv[0].decode()).name == "asterisk" and b"-f" in argv and os.readlink(proc / "root") == root:
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    assert len(found) == 1, f"the test root's Asterisk: {found}"
    return found[0]


async def asterisk_restarted(line: Hotline, since: float) -> None:
    """Until the Asterisk that restarted at `since` (time.monotonic()) has fully booted: the
    one answering is younger than that (the old one, going down, may still answer at first)."""
    async def younger() -> bool:
        found = re.search(r"System uptime:\s*(\d+)", await asyncio.to_thread(line.rig.rx, "core show uptime seconds"))
        return found is not None and int(found.group(1)) <= time.monotonic() - since
    await wait_until(younger, 30, "Asterisk is back after its restart", every=0.05)
    await asyncio.to_thread(line.rig.rx, "core waitfullybooted")


def voices(line: Hotline, seconds: float) -> tuple[str, str]:
    """Speech for the caller and the agent (RTP all along: MixMonitor writes what flows)."""
    return (line.sipp.speech("fault_caller.pcap", "hello there is water leaking in my kitchen", total_s=seconds),
            line.sipp.speech("fault_agent.pcap", "water hotline agent speaking how can I help", total_s=seconds))


async def reconnected_s(line: Hotline, back_at: float, reconnects_before: int) -> float:
    """Seconds from `back_at` (time.monotonic() when Asterisk was back) to the engine's AMI
    session being up again (a new one: the reconnect count went up)."""
    def again() -> bool:
        return line.engine.connection.stats.reconnects > reconnects_before and line.engine.connection.connected
    await wait_until(again, 15, "the engine reconnects", every=0.02)
    return max(0.0, time.monotonic() - back_at)


async def next_call_answered(line: Hotline, name: str) -> Any:
    """Place a new call (key 2, agent 1001 answers and hangs up first); returns its record."""
    before = {c.id for c in await line.calls()}
    agent = await start_agent(line, "1001", hangup_after_ms=1500)
    caller = await start_caller(line, name, caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                            hangup_after_ms=6000))

    def answered() -> bool:
        return any(s.answered_mono is not None and s.call_id not in before for s in line.engine.sessions.values())
    await wait_until(answered, 30, "the engine answers the next call")
    await expect_ok(caller, 40)
    await expect_ok(agent, 20)

    async def closed() -> list[Any]:
        return [c for c in await line.calls() if c.id not in before and c.closed]
    await wait_until(closed, 15, "the next call's record is closed")
    [call] = await closed()
    assert (call.disposition, call.agent_id, call.hangup_first) == ("answered", "1001", "agent"), call
    return call


async def test_asterisk_restarted_with_calls_talking_waiting_and_in_the_menu(hotline: Hotline) -> None:
    line = hotline
    caller_voice, agent_voice = voices(line, 60)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=120_000, speech=agent_voice)
    talking = await start_caller(line, "cut_talking", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_voice, speak_after_ms=500, hangup_after_ms=120_000))
    await wait_until(lambda: any(s.phase.value == "talking" for s in line.engine.sessions.values()), 30, "talking")
    await line.talked("1001", 1.0)
    waiting = await start_caller(line, "cut_waiting", caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                                      hangup_after_ms=120_000))
    await wait_until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()), 30, "waiting")
    in_menu = await start_caller(line, "cut_in_menu", caller_scenario(hangup_after_ms=120_000))   # presses nothing
    await wait_until(lambda: any(s.phase.value == "ivr" for s in line.engine.sessions.values()), 30, "in the menu")
    phases = sorted(s.phase.value for s in line.engine.sessions.values())
    assert phases == ["ivr", "talking", "waiting"], phases
    cut_ids = set(line.engine.sessions)

    cut_at, reconnects, since = datetime.now(UTC), line.engine.connection.stats.reconnects, time.monotonic()
    await asyncio.to_thread(line.rig.rx, "core restart now")
    await asterisk_restarted(line, since)
    back_at, back_wall = time.monotonic(), datetime.now(UTC)
    for party in (talking, waiting, in_menu, agent):      # Asterisk's BYE ends each SIPp call as scripted
        await expect_ok(party, 30)
    # The next caller dials at once, whether the engine has its AMI link back yet or not.
    next_call = asyncio.ensure_future(next_call_answered(line, "after_restart"))
    reconnect_s = await reconnected_s(line, back_at, reconnects)
    calls = [c for c in await line.closed_calls(3, timeout=20) if c.id in cut_ids]
    assert len(calls) == 3
    assert {(c.disposition, c.hangup_first) for c in calls} == {("cut_by_pbx", "system")}, \
        [(c.disposition, c.hangup_first, c.queue, c.agent_id) for c in calls]
    for call in calls:   # Asterisk's time of the cut, not the engine's time of coming back
        assert call.ended_at is not None and cut_at - SLACK <= call.ended_at <= cut_at + SLACK, (cut_at, call.ended_at)
    talked = next(c for c in calls if c.agent_id == "1001")
    assert talked.agent_answered_at is not None and talked.recording_path
    assert recordings_mismatched(calls) == 0
    after = await next_call
    recovery_s = round((after.engine_answered_at - back_wall).total_seconds(), 3)
    all_calls = await line.calls()
    await line.no_channels_left()
    write_case("asterisk_core_restart_now", CaseFigures(
        calls_placed=4, records_closed=sum(c.closed for c in all_calls),
        wrong_outcomes=sum(c.disposition != "cut_by_pbx" for c in calls), channels_left=len(line.rig.channels()),
        recordings_mismatched=recordings_mismatched(all_calls), recovery_s=recovery_s,
        notes={"cut": "talking, waiting, in the menu", "engine_reconnected_s": round(reconnect_s, 3),
               "recovery": "core waitfullybooted returned -> the engine answered a call dialled at once"}))
    assert len(all_calls) == 4


async def test_asterisk_frozen_for_20_s_then_resumed(hotline: Hotline) -> None:
    """SIGSTOP: the AMI socket stays open but nothing answers; the engine's Ping times out, it
    drops the link and connects again once Asterisk runs. A caller talking through the
    freeze ends as answered when they hang up afterwards; one waiting in the queue who hangs
    up afterwards is abandoned in the queue, by the caller."""
    line = hotline
    caller_voice, agent_voice = voices(line, 50)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=120_000, speech=agent_voice)
    # Both hang up well after the freeze (a BYE sent into it would be retried only ~15 s); the
    # waiting caller first, so the agent freed by the talk is not rung for a caller about to go.
    talking = await start_caller(line, "frozen_talking", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_voice, speak_after_ms=500, hangup_after_ms=40_000))
    await wait_until(lambda: any(s.phase.value == "talking" for s in line.engine.sessions.values()), 30, "talking")
    waiting = await start_caller(line, "frozen_waiting", caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                                         hangup_after_ms=30_000))
    await wait_until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()), 30, "waiting")

    pid, reconnects = asterisk_pid(), line.engine.connection.stats.reconnects
    os.kill(pid, signal.SIGSTOP)
    try:
        await wait_until(lambda: not line.engine.connection.connected, 10, "the engine notices the frozen Asterisk")
        await asyncio.sleep(20 - 1)
    finally:
        os.kill(pid, signal.SIGCONT)
    back_at = time.monotonic()
    reconnect_s = await reconnected_s(line, back_at, reconnects)
    await expect_ok(waiting, 40)
    await expect_ok(talking, 40)
    await expect_ok(agent, 40)
    calls = await line.closed_calls(2, timeout=30)
    outcomes = sorted((c.disposition, c.hangup_first) for c in calls)
    expected = [("abandoned_in_queue", "caller"), ("answered", "caller")]
    wrong = sum(a != b for a, b in zip(outcomes, expected, strict=True))
    assert outcomes == expected, [(c.disposition, c.hangup_first, c.ended_at) for c in calls]
    assert recordings_mismatched(calls) == 0
    await line.no_channels_left()
    await wait_until(lambda: line.agent_state("1001") == "available", 10, "agent 1001 free again")

    after = await next_call_answered(line, "after_freeze")
    recovery_s = round(reconnect_s + after.answer_latency_ms / 1000, 3)
    all_calls = await line.calls()
    await line.no_channels_left()
    write_case("asterisk_frozen_20s", CaseFigures(
        calls_placed=3, records_closed=sum(c.closed for c in all_calls), wrong_outcomes=wrong,
        channels_left=len(line.rig.channels()), recordings_mismatched=recordings_mismatched(all_calls),
        recovery_s=recovery_s,
        notes={"frozen_s": 20, "engine_reconnected_s": round(reconnect_s, 3),
               "recovery": "SIGCONT -> the engine's AMI session up, + its answer time for the next call"}))
    assert len(all_calls) == 3
