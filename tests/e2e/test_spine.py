"""The telephony spine on the real Asterisk: dial, menu, queue, agent, recording, record."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import pytest

from callcenter.ami import events as ami_ev
from callcenter.calls.engine import Engine
from callcenter.recording.finalize import channel_levels
from callcenter.sipp import (
    Key,
    SippRun,
    agent_scenario,
    caller_scenario,
    expect_failure,
    expect_ok,
    no_answer_scenario,
    register_scenario,
    stop_ok,
)
from tests.e2e.conftest import AGENTS, SHORT_MENU, SOFTPHONE_PASSWORD, AmiProxy, Hotline, wait_until

pytestmark = pytest.mark.asterisk

MENU_KEY_AFTER_MS = 2500   # the welcome is short; the menu takes keys while it plays


async def _count(orders_coro, n: int) -> bool:
    return len(await orders_coro) >= n


async def start_agent(line: Hotline, agent_id: str, *, answers: bool = True, calls: int = 1, ring_ms: int = 400,
                      speech: str | None = None, hangup_after_ms: int = 60_000) -> SippRun:
    scenario = (agent_scenario(ring_ms=ring_ms, speech_pcap=speech, hangup_after_ms=hangup_after_ms)
                if answers else no_answer_scenario())
    port = AGENTS[agent_id]
    return await line.sipp.start(f"agent{agent_id}", scenario, sip_port=port, media_port=20000 + (port - 5070) * 100,
                                 target=None, calls=calls, timeout_s=120)


async def start_caller(line: Hotline, name: str, scenario: str, *, calls: int = 1, rate: float = 1.0,
                       timeout_s: float = 90, concurrent: int | None = None) -> SippRun:
    port = line.next_port()
    return await line.sipp.start(name, scenario, sip_port=port, media_port=30000 + (port - 5100) * 50,
                                 service=line.settings.hotline.number, calls=calls, rate=rate, timeout_s=timeout_s,
                                 concurrent=concurrent, trace_rtt=True)


async def test_caller_presses_2_agent_answers_talk_recorded(hotline: Hotline) -> None:
    line = hotline
    caller_speech = line.sipp.speech("caller_leak.pcap", "hello there is water leaking in my kitchen", total_s=7)
    agent_speech = line.sipp.speech("agent_greeting.pcap", "water hotline agent speaking how can I help", total_s=9)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", speech=agent_speech)
    caller = await start_caller(line, "caller_leak", caller_scenario(
        number="13912345678", keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_speech, speak_after_ms=2500,
        hangup_after_ms=6000))
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.disposition == "answered"
    assert call.caller_number == "13912345678"
    assert call.dialled_number == line.settings.hotline.number
    assert (call.queue, call.category, call.ivr_choice) == ("leak", "leak", "2")
    assert call.ivr_path and call.ivr_path[0].startswith("main")
    assert call.agent_id == "1001" and call.hangup_first == "caller"
    assert call.engine_answered_at is not None and 0 < call.answer_latency_ms < 1000
    assert call.arrived_at <= call.engine_answered_at <= call.agent_answered_at <= call.ended_at
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered")]
    # The recording: in place, its hash right, about the talk's length, both channels heard.
    wav = Path(call.recording_path)
    assert wav.exists() and hashlib.sha256(wav.read_bytes()).hexdigest() == call.recording_sha256
    talk_s = (call.ended_at - call.agent_answered_at).total_seconds()
    assert 3 < call.recording_duration_s <= talk_s + 1
    levels = channel_levels(wav)
    assert max(left for left, _ in levels) > 500, "the caller's channel is silent"
    assert max(right for _, right in levels) > 500, "the agent's channel is silent"
    # Every call leaves a work order, drafted from the call (a leak: dispatch within 3 minutes).
    await wait_until(lambda: line.work_orders(), 10, "the call's work order is drafted")
    [order] = await line.work_orders()
    assert (order.call_id, order.category, order.unit, order.state) == (call.id, "leak", "repair_team", "accepted")
    # The agent is free again after wrap-up (2 s in the test settings).
    await wait_until(lambda: line.agent_state("1001") == "available", 10, "agent 1001 available after wrap-up")
    await expect_ok(agent)   # its one call, as scripted
    await line.no_channels_left()


async def test_agent_hangs_up_first_caller_rates_the_call(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1002")
    agent = await start_agent(line, "1002", hangup_after_ms=2500)
    # The agent hangs up about 3 s after answering; the caller then hears the survey and presses 4.
    caller = await start_caller(line, "caller_survey", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS), Key("4", 7000)), hangup_after_ms=30_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert call.disposition == "answered" and call.hangup_first == "agent"
    assert call.survey_score == 4
    await expect_ok(caller, 30)
    await expect_ok(agent)
    await line.no_channels_left()


async def test_no_agent_logged_in_offers_a_callback(hotline: Hotline) -> None:
    line = hotline
    caller = await start_caller(line, "caller_noagent", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS), Key("1", 3000)), hangup_after_ms=20_000))
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.disposition == "callback" and call.queue == "leak" and call.agent_id is None
    await line.no_channels_left()


async def test_agent_who_does_not_answer_is_passed_over(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1003")   # logged in first: idle longest, rung first
    since = line.engine.acd.agent("1003").since
    await wait_until(lambda: line.engine.clock.monotonic() > since, 1, "the clock moved on after 1003's log-in")
    await line.engine.login("1004")
    silent = await start_agent(line, "1003", answers=False)
    answering = await start_agent(line, "1004", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_passover", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=40_000))
    [call] = await line.closed_calls(1, timeout=60)
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1003", "no_answer"), ("1004", "answered")]
    assert call.disposition == "answered" and call.agent_id == "1004"
    assert line.engine.acd.agent("1003").no_answers == 1
    await expect_ok(caller, 30)
    for party in (silent, answering):
        await expect_ok(party)   # one call each: cancelled while ringing, and answered
    await line.no_channels_left()


async def test_caller_hangs_up_in_the_menu(hotline: Hotline) -> None:
    line = hotline
    caller = await start_caller(line, "caller_ivr_gone", caller_scenario(hangup_after_ms=1500))
    await expect_ok(caller, 30)
    [call] = await line.closed_calls(1)
    assert call.disposition == "abandoned_in_ivr" and call.queue is None and call.agent_id is None
    await line.no_channels_left()


async def test_caller_hangs_up_while_an_agent_rings(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1003")
    silent = await start_agent(line, "1003", answers=False)
    caller = await start_caller(line, "caller_queue_gone", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=3000))
    await expect_ok(caller, 30)
    [call] = await line.closed_calls(1)
    assert call.disposition == "abandoned_in_queue" and call.queue == "leak" and call.agent_id is None
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1003", "cancelled")]
    await wait_until(lambda: line.agent_state("1003") == "available", 10, "agent 1003 free again")
    await expect_ok(silent)   # rang, then cancelled
    await line.no_channels_left()


@pytest.mark.parametrize("hotline", [{"ivr": {"menu_file": str(SHORT_MENU)}}], indirect=True)
async def test_invalid_key_then_timeouts_go_to_the_default_queue(hotline: Hotline) -> None:
    line = hotline
    caller = await start_caller(line, "caller_invalid", caller_scenario(
        keys=(Key("9", 500),), hangup_after_ms=40_000))
    await wait_until(lambda: any(s.queue for s in line.engine.sessions.values()), 30, "the call reached a queue")
    session = next(iter(line.engine.sessions.values()))
    assert session.queue == "general"
    await line.engine.gateway.hangup(session.channel)
    [call] = await line.closed_calls(1)
    assert call.disposition == "abandoned_in_queue" and call.queue == "general"
    assert call.ivr_path == ["quick", "quick:invalid:9", "quick:timeout", "quick:default"], call.ivr_path
    assert call.ivr_choice == "default"
    await expect_ok(caller, 30)
    await line.no_channels_left()


async def test_twenty_callers_three_agents(hotline: Hotline) -> None:
    line = hotline
    busy: dict[str, set[str]] = defaultdict(set)
    overlaps: list[str] = []
    def watch(event: ami_ev.Event) -> None:
        # An agent never has two calls: count each agent phone's live channels from Asterisk's own events.
        if isinstance(event, ami_ev.DialBegin) and event.dest_channel.startswith("PJSIP/100"):
            agent = event.dest_channel.split("/")[1].split("-")[0]
            busy[agent].add(event.dest_channel)
            if len(busy[agent]) > 1:
                overlaps.append(f"{agent}: {sorted(busy[agent])}")
        if isinstance(event, ami_ev.Hangup) and event.channel.startswith("PJSIP/100"):
            busy[event.channel.split("/")[1].split("-")[0]].discard(event.channel)

    line.engine.observers.append(watch)
    agents = []
    for agent_id in ("1001", "1002", "1003"):
        await line.engine.login(agent_id)
        agents.append(await start_agent(line, agent_id, calls=20, ring_ms=200, hangup_after_ms=1500))
    # Three agents take about 4 s a call (ring, talk, wrap-up): the last of twenty waits about
    # half a minute. Callers are patient for 90 s after the hotline answers; none may be lost.
    caller = await start_caller(line, "caller_load", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=90_000), calls=20, rate=10, timeout_s=100)
    await expect_ok(caller, 100)                           # SIPp: all twenty calls went as scripted
    calls = await line.closed_calls(20, timeout=30)
    assert len(calls) == 20 and len({c.uniqueid for c in calls}) == 20
    assert all(c.closed and c.ended_at for c in calls)
    lost = [(c.caller_number, c.disposition, [(a.agent_id, a.result) for a in c.attempts]) for c in calls
            if not ((c.disposition == "answered" and c.agent_id in ("1001", "1002", "1003"))
                    or any(a.result == "callback_answered" for a in c.attempts))]
    assert not lost, lost                                  # every caller talked to an agent or was called back
    assert not overlaps, overlaps
    await wait_until(lambda: _count(line.work_orders(), 20), 20, "one work order per call")
    assert sorted(o.call_id for o in await line.work_orders()) == sorted(c.id for c in calls)
    for party in agents:
        await stop_ok(party)                               # no phone had a call that failed
    await line.no_channels_left(timeout=30)


@pytest.mark.parametrize("hotline", [{}], indirect=True)
async def test_ami_link_cut_mid_call_record_still_ends_right(hotline: Hotline) -> None:
    line = hotline
    # A second engine talks to Asterisk through a relay the test can cut.
    await line.engine.stop()
    proxy = AmiProxy()
    port = await proxy.start()
    settings = line.settings.model_copy(update={"ami": line.settings.ami.model_copy(update={"port": port})})
    engine = Engine(settings, line.sessionmaker, line.engine.menu, engine_id="e2e-proxy")
    await engine.start()
    line.engine = engine
    try:
        await engine.login("1001")
        agent = await start_agent(line, "1001")
        caller = await start_caller(line, "caller_cut", caller_scenario(
            keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=9000))
        await wait_until(lambda: any(s.phase.value == "talking" for s in engine.sessions.values()), 30, "talking")
        proxy.cut()
        await wait_until(lambda: not engine.connection.connected, 10, "the engine notices the cut")
        await wait_until(lambda: proxy.refused >= 1, 10, "the engine tries again while the link is down")
        proxy.restore()
        await wait_until(lambda: engine.connection.connected, 15, "the engine reconnects")
        await expect_ok(caller, 40)
        [call] = await line.closed_calls(1, timeout=30)
        assert call.disposition == "answered" and call.agent_id == "1001" and call.closed
        assert call.hangup_first == "caller"
        await expect_ok(agent)
        await line.no_channels_left()
    finally:
        await engine.stop()
        await proxy.close()


async def test_caller_id_with_control_characters_is_cleaned_and_the_call_goes_on(hotline: Hotline) -> None:
    line = hotline
    evil = "1380%0D%0AAction%3A%20Originate%0D%0AChannel%3A%20PJSIP%2F1001" + "9" * 500
    caller = await start_caller(line, "caller_evil", caller_scenario(number=evil, hangup_after_ms=2500))
    await expect_ok(caller, 30)
    [call] = await line.closed_calls(1)
    assert "\r" not in call.caller_number and "\n" not in call.caller_number
    assert len(call.caller_number) <= 32
    assert call.disposition == "abandoned_in_ivr"
    await line.no_channels_left()


async def test_a_softphone_registers_with_its_password_and_takes_the_call(hotline: Hotline) -> None:
    line = hotline
    wrong = await line.sipp.start("phone_wrong", register_scenario("1005", "not-the-password"), sip_port=5075,
                                  media_port=25000, timeout_s=5)
    await expect_failure(wrong, 15)   # a wrong SIP password is refused
    right = await line.sipp.start("phone_right", register_scenario("1005", SOFTPHONE_PASSWORD), sip_port=5075,
                                  media_port=25000, timeout_s=10)
    await expect_ok(right, 15)
    phone = await line.sipp.start("phone1005", agent_scenario(hangup_after_ms=2000), sip_port=5075, media_port=25000,
                                  target=None, calls=1, timeout_s=60)
    await line.engine.login("1005")
    caller = await start_caller(line, "caller_softphone", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=30_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert call.agent_id == "1005" and call.disposition == "answered"
    await expect_ok(caller, 30)
    await expect_ok(phone)
    line.rig.rx("pjsip send unregister 1005")
    await line.no_channels_left()
