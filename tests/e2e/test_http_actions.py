"""Every agent and supervisor action as the people do it: over HTTP, logged in with a session
cookie, each POST with its CSRF token, on the real Asterisk with SIPp phones and callers.

The engine underneath is the e2e hotline's own (`web_hotline` serves `serve`'s web app over it),
so what the request carries is what the engine acts on: nothing is dropped by a stand-in.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.ami import events as ami_ev
from callcenter.calls.models import Supervision
from callcenter.recording.finalize import channel_levels
from callcenter.sipp import Key, agent_scenario, caller_scenario, expect_ok
from tests.e2e.conftest import AGENTS, Hotline, WebHotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


def dialled(line: Hotline) -> list[str]:
    """The agent phones Asterisk rings (DialBegin), as Asterisk reports them, in order."""
    rung: list[str] = []

    def watch(event: ami_ev.Event) -> None:
        if isinstance(event, ami_ev.DialBegin):
            rung.append(event.dest_channel.rsplit("-", 1)[0])

    line.engine.observers.append(watch)
    return rung


async def test_an_agent_logs_in_with_no_endpoint_and_a_call_rings_their_own_phone(web_hotline: WebHotline) -> None:
    line = web_hotline.line
    rung = dialled(line)
    agent = await web_hotline.log_in_form("a1001")            # the log-in page, as the agent does it
    assert await agent.post("/api/agents/1001/login") == (200, {"agent_id": "1001", "done": "login"})
    assert (await agent.agent("1001"))["state"] == "available"
    phone = await start_agent(line, "1001", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_http_login", caller_scenario(
        number="13912340001", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=30_000))
    await expect_ok(caller)
    await expect_ok(phone)                                       # 1001's own phone took the one call
    [call] = await line.closed_calls(1)
    assert (call.agent_id, call.disposition) == ("1001", "answered")
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered")]
    assert rung == ["PJSIP/1001"]
    await line.no_channels_left()


async def test_an_agent_pauses_with_a_reason_and_a_waiting_call_rings_when_they_are_ready(
        web_hotline: WebHotline) -> None:
    line = web_hotline.line
    rung = dialled(line)
    agent = await web_hotline.log_in_api("a1001")
    assert (await agent.post("/api/agents/1001/login"))[0] == 200
    status, body = await agent.post("/api/agents/1001/pause", {"reason": "napping"})
    assert status == 400 and "reason" in body["error"]
    assert await agent.post("/api/agents/1001/pause", {"reason": "training"}) == (
        200, {"agent_id": "1001", "done": "pause"})
    seen = await agent.agent("1001")
    assert (seen["state"], seen["reason"]) == ("paused", "training")
    phone = await start_agent(line, "1001", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_http_paused", caller_scenario(
        number="13912340002", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=40_000))
    await wait_until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()), 30,
                     "the caller waits in the queue")
    assert rung == [] and line.agent_state("1001") == "paused"  # a paused agent is not rung
    assert (await agent.post("/api/agents/1001/ready"))[0] == 200
    await wait_until(lambda: line.agent_state("1001") == "on_call", 20, "ready: the waiting call rings 1001")
    await expect_ok(caller)
    await expect_ok(phone)
    [call] = await line.closed_calls(1)
    assert (call.agent_id, call.disposition) == ("1001", "answered") and rung == ["PJSIP/1001"]
    await line.no_channels_left()


async def test_an_agent_transfers_the_caller_to_a_queue(web_hotline: WebHotline) -> None:
    line = web_hotline.line
    agent = await web_hotline.log_in_form("a1001")
    supervisor = await web_hotline.log_in_api("sup")
    assert (await agent.post("/api/agents/1001/login"))[0] == 200
    first = await start_agent(line, "1001", hangup_after_ms=60_000)
    second = await start_agent(line, "1002", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_http_transfer", caller_scenario(
        number="13912340003", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=40_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    assert (await supervisor.post("/api/agents/1002/login"))[0] == 200   # a supervisor acts for anyone
    status, body = await agent.post("/api/agents/1001/transfer", {"queue": "nowhere"})
    assert status == 404 and "nowhere" in body["error"]
    status, body = await agent.post("/api/agents/1001/transfer", {"queue": "billing"})
    assert status == 200 and body["to_queue"] == "billing", body
    await wait_until(lambda: line.agent_state("1002") == "on_call", 30, "1002 takes the call from the billing queue")
    await expect_ok(first)                                       # its leg ended by the transfer
    await expect_ok(caller)
    await expect_ok(second)
    [call] = await line.closed_calls(1)
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1002", "answered")]
    assert (call.queue, call.agent_id, call.disposition) == ("billing", "1002", "answered")
    await line.no_channels_left()


async def test_an_agent_consults_a_colleague_and_may_not_act_for_them(web_hotline: WebHotline) -> None:
    line = web_hotline.line
    agent = await web_hotline.log_in_api("a1001")
    supervisor = await web_hotline.log_in_api("sup")
    assert (await agent.post("/api/agents/1001/login"))[0] == 200
    # Phones send RTP all the time (MixMonitor writes while media flows): 1001 consults after 2 s
    # of talk and hangs up at 10 s; 1003 answers the consult and talks 12 s.
    speech = line.sipp.speech("agent_http_consult.pcap", "one moment please", total_s=30)
    first = await start_agent(line, "1001", hangup_after_ms=10_000, speech=speech)
    colleague = await start_agent(line, "1003", hangup_after_ms=12_000, speech=speech)
    caller = await start_caller(line, "caller_http_consult", caller_scenario(
        number="13912340004", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=60_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    assert (await supervisor.post("/api/agents/1003/login"))[0] == 200
    # An agent acts only for themself: not a log-out, pause or transfer of a colleague.
    for action, body in (("logout", {}), ("pause", {"reason": "break"}), ("transfer", {"queue": "general"})):
        status, _ = await agent.post(f"/api/agents/1003/{action}", body)
        assert status == 403, action
    assert line.agent_state("1003") == "available"
    await line.talked("1001", 2)
    status, body = await agent.post("/api/agents/1001/consult", {"agent": "1003"})
    assert status == 200 and body["consulting"] == "1003", body
    session = line.engine.sessions[body["call_id"]]
    await wait_until(lambda: session.consult is not None and session.consult.answered, 20, "1003 answers the consult")
    await wait_until(lambda: session.agent_id == "1003", 20, "1001 hangs up: the caller is 1003's now")
    await expect_ok(first)
    await expect_ok(colleague)
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1003", "answered")]
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1003", "answered", "agent")
    await line.no_channels_left()


async def test_an_agent_pauses_and_resumes_the_recording_and_a_post_without_csrf_is_refused(
        web_hotline: WebHotline) -> None:
    line = web_hotline.line
    caller_speech = line.sipp.speech("caller_http_card.pcap", "my card number is one two three four five six",
                                     total_s=16)
    agent_speech = line.sipp.speech("agent_http_card.pcap", "please read me the number slowly", total_s=16)
    agent = await web_hotline.log_in_form("a1001")
    assert (await agent.post("/api/agents/1001/login"))[0] == 200
    port = AGENTS["1001"]
    phone = await line.sipp.start("agent_http_rec", agent_scenario(ring_ms=300, speech_pcap=agent_speech,
                                                                   speak_after_ms=200, hangup_after_ms=60_000),
                                  sip_port=port, media_port=20000 + (port - 5070) * 100, target=None, calls=1,
                                  timeout_s=120)
    caller = await start_caller(line, "caller_http_rec", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), speech_pcap=caller_speech, speak_after_ms=500, hangup_after_ms=16_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 takes the call")
    await line.talked("1001", 2)
    session = line.call_of("1001")
    status, body = await agent.post("/api/agents/1001/recording/pause", csrf=False)
    assert status == 403 and "CSRF" in body["error"]
    assert not session.recording_paused                          # refused: nothing happened
    status, body = await agent.post("/api/agents/1001/recording/pause")
    assert status == 200 and body["paused"] is True, body
    await line.talked("1001", 3)
    status, body = await agent.post("/api/agents/1001/recording/resume")
    assert status == 200 and body["paused"] is False, body
    await expect_ok(caller)
    await expect_ok(phone)

    async def recorded() -> bool:
        [c] = await line.calls()
        return c.closed and c.recording_path is not None

    await wait_until(recorded, 20, "the recording is finalised")
    [call] = await line.calls()
    [(start, end)] = call.muted_spans
    assert 2.5 < end - start < 6, call.muted_spans
    levels = channel_levels(Path(call.recording_path), window_s=0.5)
    inside = levels[int(start / 0.5) + 1:int(end / 0.5) - 1]
    assert inside and max(max(left, right) for left, right in inside) < 50, inside
    assert max(max(left, right) for left, right in levels) > 500
    await line.no_channels_left()


async def test_a_supervisor_listens_and_their_own_phone_rings(web_hotline: WebHotline) -> None:
    """Spy takes only the mode; the engine rings the supervisor's own phone (settings: sup's phone 1004)."""
    line = web_hotline.line
    agent = await web_hotline.log_in_api("a1001")
    supervisor = await web_hotline.log_in_api("sup")
    assert (await agent.post("/api/agents/1001/login"))[0] == 200
    phone = await start_agent(line, "1001", hangup_after_ms=60_000)
    supervisor_phone = await start_agent(line, "1004", hangup_after_ms=60_000)   # sup's own phone
    caller = await start_caller(line, "caller_http_spied", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=12_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 on the call")
    status, _ = await agent.post("/api/agents/1001/spy", {"mode": "listen"})
    assert status == 403                                         # agents do not listen in
    status, body = await supervisor.post("/api/agents/1001/spy", {"mode": "listen"})
    assert status == 200, body
    await wait_until(lambda: "ChanSpy" in line.rig.rx("core show channels concise"), 15,
                     "the supervisor's phone runs ChanSpy")
    assert body["agent_channel"].startswith("PJSIP/1001-")
    async with line.sessionmaker() as db:
        [kept] = (await db.execute(select(Supervision))).scalars().all()
    assert (kept.supervisor, kept.agent_id, kept.mode, kept.endpoint) == ("sup", "1001", "listen", "PJSIP/1004")
    await expect_ok(caller)
    await expect_ok(phone)
    await expect_ok(supervisor_phone)                            # rang, answered, ended with the call
    await line.no_channels_left()

