"""The session carries out its CallMachine on the real Engine over the fake AMI: what the
engine sends Asterisk and writes down for a call, below the real Asterisk."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.acd import commands as acd_cmd
from callcenter.acd.settings import Strategy
from callcenter.calls import machine as m
from callcenter.calls.engine import ring_groups
from callcenter.calls.models import Call
from tests.calls.fake_line import CALLER, CALLER_ID, FakeLine, agent, running_line

PHONE_1001 = "PJSIP/1001-00000002"
PHONE_1002 = "PJSIP/1002-00000003"


@pytest.fixture(autouse=True)
def every_event_fits(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """What the session feeds its machine in these lives always fits (no IllegalEvent)."""
    with caplog.at_level(logging.WARNING, logger="callcenter.calls.session"):
        yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    refused = [r.getMessage() for r in records if r.name == "callcenter.calls.session"]
    assert refused == []


@pytest.fixture
async def line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    async with running_line(settings, sessionmaker, [agent("1001"), agent("1002")]) as running:
        yield running


async def closed_call(line: FakeLine) -> Call:
    await line.until(lambda: line.engine.calls_closed == 1)
    async with line.engine.store.sessionmaker() as db:
        [call] = (await db.execute(select(Call).options(selectinload(Call.attempts)))).scalars()
        return call


def hangups(line: FakeLine) -> list[str]:
    return [a["Channel"] for a in line.sent("Hangup")]


def state(line: FakeLine, agent_id: str) -> str:
    return line.engine.acd.agent(agent_id).state.value


async def talking_with_1001(line: FakeLine) -> None:
    await line.engine.login("1001")
    line.call_in()
    assert (await line.dial_sent()).startswith('EXEC Dial "PJSIP/1001,')
    line.agent_answers(PHONE_1001)
    await line.until(lambda: state(line, "1001") == "on_call")


async def test_the_caller_walks_the_menu_talks_and_hangs_up_first(line: FakeLine) -> None:
    await talking_with_1001(line)
    assert line.commands[:2] == ["ANSWER", "EXEC StopPlaytones"]
    assert line.commands[2].startswith("GET DATA ") and line.commands[2].endswith("/prompts/menu_quick 2000 1")
    assert "EXEC StartMusicOnHold" in line.commands and "EXEC StopMusicOnHold" in line.commands
    line.hang_up()
    call = await closed_call(line)
    assert (call.disposition, call.hangup_first, call.agent_id, call.queue) == ("answered", "caller", "1001", "leak")
    assert (call.ivr_path, call.ivr_choice) == (["quick", "quick:2"], "2")
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered")]
    assert call.agent_answered_at is not None and call.queued_at is not None
    await line.until(lambda: state(line, "1001") in ("wrap_up", "available"))


async def test_the_agent_hangs_up_first_and_the_caller_rates_the_call(line: FakeLine) -> None:
    await talking_with_1001(line)
    line.dial_returns("0")                   # the agent hung up; the caller stays with us
    await line.until(lambda: any(c.startswith("STREAM FILE") and "survey_thanks" in c for c in line.commands))
    await line.until(lambda: CALLER in hangups(line))        # the engine hangs up after the thanks
    assert any(c.startswith("GET DATA") and "survey_question" in c for c in line.commands)
    line.hang_up()
    call = await closed_call(line)
    assert (call.disposition, call.hangup_first, call.survey_score) == ("answered", "agent", 2)


async def test_a_ring_the_acd_calls_off_is_hung_up_and_the_caller_waits_on(line: FakeLine) -> None:
    await line.engine.login("1001")
    line.call_in()
    await line.dial_sent()
    line.phone_rings(PHONE_1001)
    session = next(iter(line.engine.sessions.values()))
    await line.until(lambda: [r.channel for r in session.machine.rings] == [PHONE_1001])
    await line.engine.pause("1001", "break")              # the ACD emits CancelRing for that leg
    await line.until(lambda: PHONE_1001 in hangups(line))
    line.dial_ends(PHONE_1001, "CANCEL")
    line.dial_returns("0")
    await line.until(lambda: session.phase.value == "waiting"
                     and line.commands[-1] == "EXEC StartMusicOnHold")   # music again: still in line
    assert (state(line, "1001"), line.engine.acd.agent("1001").reason) == ("paused", "break")   # not "no_answer"
    assert [c.state.value for c in line.engine.acd.calls()] == ["waiting"]
    line.hang_up()
    call = await closed_call(line)
    assert call.disposition == "abandoned_in_queue"
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "cancelled")]


async def test_a_blind_transfer_rings_the_colleague_once_the_first_agents_leg_is_over(line: FakeLine) -> None:
    await talking_with_1001(line)
    await line.engine.login("1002")
    with pytest.raises(ValueError, match="one of them"):
        await line.engine.transfer("1001")
    done = await line.engine.transfer("1001", to_agent="1002")
    assert hangups(line) == [PHONE_1001]
    line.dial_returns("0")                                # the first agent's leg is over
    await line.until(lambda: len(line.dials()) == 2)
    assert line.dials()[-1].startswith('EXEC Dial "PJSIP/1002,')
    await line.until(lambda: state(line, "1002") == "ringing")
    assert state(line, "1001") in ("wrap_up", "available")
    line.agent_answers(PHONE_1002)
    await line.until(lambda: state(line, "1002") == "on_call")
    line.hang_up()
    call = await closed_call(line)
    assert call.id == done["call_id"]
    assert (call.agent_id, call.disposition, call.hangup_first) == ("1002", "answered", "caller")
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "answered"), ("1002", "answered")]


async def test_a_caller_who_leaves_while_the_phone_rings_frees_the_agent(line: FakeLine) -> None:
    await line.engine.login("1001")
    line.call_in()
    await line.dial_sent()
    line.phone_rings(PHONE_1001)
    await line.until(lambda: state(line, "1001") == "ringing")
    line.hang_up()
    call = await closed_call(line)
    assert call.disposition == "abandoned_in_queue"
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "cancelled")]
    assert state(line, "1001") == "available"
    assert hangups(line) == []       # the caller's Dial takes the ringing leg with it: nothing to hang up


async def test_an_engine_that_stops_alone_closes_its_calls_as_failed(line: FakeLine) -> None:
    line.call_in()                                       # nobody logged in: the caller waits
    await line.until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()))
    await line.engine.stop()
    call = await closed_call(line)
    assert call.disposition == "failed" and call.queue == "leak"


@pytest.fixture
async def ring_all_line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    ring_all = settings.model_copy(update={"acd": settings.acd.model_copy(update={"strategy": Strategy.RING_ALL})})
    async with running_line(ring_all, sessionmaker, [agent("1001"), agent("1002"), agent("1003")]) as running:
        yield running


async def test_ring_all_rings_three_phones_in_one_dial_the_first_to_answer_gets_the_caller(
        ring_all_line: FakeLine) -> None:
    line = ring_all_line
    for agent_id in ("1001", "1002", "1003"):
        await line.engine.login(agent_id)
    line.call_in()
    dial = await line.dial_sent()
    assert dial.startswith("EXEC Dial \"") and sorted(dial.split('"')[1].split(",")[0].split("&")) == [
        "PJSIP/1001", "PJSIP/1002", "PJSIP/1003"]
    assert len(line.dials()) == 1
    legs = {a: f"PJSIP/{a}-0000000{n}" for n, a in enumerate(("1001", "1002", "1003"), 2)}
    for leg in legs.values():
        line.phone_rings(leg)
    await line.until(lambda: all(state(line, a) == "ringing" for a in legs))
    await line.engine.pause("1003", "break")        # CancelRing: that leg alone is hung up
    await line.until(lambda: legs["1003"] in hangups(line))
    assert (state(line, "1001"), state(line, "1002")) == ("ringing", "ringing")
    line.dial_ends(legs["1002"], "ANSWER")
    await line.until(lambda: state(line, "1002") == "on_call")
    assert state(line, "1001") == "available"       # the ACD let 1001 go; Asterisk stops the phone
    line.dial_ends(legs["1001"], "CANCEL")
    line.dial_ends(legs["1003"], "CANCEL")
    line.hang_up()
    call = await closed_call(line)
    assert (call.agent_id, call.disposition) == ("1002", "answered")
    assert sorted((a.agent_id, a.result) for a in call.attempts) == [
        ("1001", "cancelled"), ("1002", "answered"), ("1003", "cancelled")]
    assert hangups(line) == [legs["1003"]]


def test_the_acds_rings_for_one_call_in_one_batch_become_one_group_at_the_first_ones_place() -> None:
    a, b, c = (acd_cmd.RingAgent("call-1", agent_id, f"PJSIP/{agent_id}", 15) for agent_id in ("1001", "1002", "1003"))
    other = acd_cmd.RingAgent("call-2", "1004", "PJSIP/1004", 15)
    changed = acd_cmd.AgentStateChanged("1001", "ringing", None, "call-1", 1.0)
    assert ring_groups([changed, a, other, b, c]) == [changed, m.RingGroup((a, b, c)), m.RingGroup((other,))]


async def test_asterisk_shutting_down_cuts_the_ringing_call_at_its_own_time_and_frees_the_agent(
        line: FakeLine) -> None:
    await line.engine.login("1001")
    line.call_in()
    await line.dial_sent()
    line.phone_rings(PHONE_1001)
    await line.until(lambda: state(line, "1001") == "ringing")
    # `core restart now`: Asterisk soft-hangs every channel up for the shutdown, then hangs up.
    line.fake.session.send({"Event": "SoftHangupRequest", "Privilege": "call,all", "Channel": CALLER,
                            "Uniqueid": CALLER_ID, "Linkedid": CALLER_ID, "Cause": "4"})
    line.dial_ends(PHONE_1001, "NOANSWER")
    line.fake.session.send({"Event": "Hangup", "Privilege": "call,all", "Channel": CALLER, "Uniqueid": CALLER_ID,
                            "Linkedid": CALLER_ID, "Cause": "16", "Cause-txt": "Normal Clearing",
                            "Timestamp": "1733065200.250000"})
    call = await closed_call(line)
    assert (call.disposition, call.hangup_first) == ("cut_by_pbx", "system")
    assert call.ended_at == datetime.fromtimestamp(1733065200.25, UTC)       # Asterisk's time, not ours
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1001", "cancelled")]
    assert state(line, "1001") == "available"                               # not the agent's failure


async def test_asterisks_shutdown_event_cuts_the_waiting_call(line: FakeLine) -> None:
    line.call_in()                                       # nobody logged in: the caller waits
    await line.until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()))
    line.fake.session.send({"Event": "Shutdown", "Privilege": "system,all", "Shutdown": "Uncleanly",
                            "Restart": "True", "Timestamp": "1733065201.000000"})
    await line.until(lambda: all(s.machine.cut_by_pbx for s in line.engine.sessions.values()))
    line.hang_up()
    call = await closed_call(line)
    assert (call.disposition, call.hangup_first, call.queue) == ("cut_by_pbx", "system", "leak")
    assert call.ended_at == datetime.fromtimestamp(1733065201, UTC)         # when Asterisk said it went down


async def test_after_a_restart_seen_on_reconnect_the_lost_call_is_cut_and_an_unheard_caller_is_taken(
        line: FakeLine) -> None:
    line.engine.pbx_started = "2026-12-01 09:00:00"      # what CoreStatus said when the engine started
    line.fake.replies["CoreStatus"] = lambda session, action: [   # and says after the link broke
        {"Response": "Success", "ActionID": action["ActionID"], "CoreStartupDate": "2026-12-01",
         "CoreStartupTime": "09:00:30"}]
    unheard = "PJSIP/trunk-00000009"

    def channels(session: Any, action: dict[str, str]) -> list[dict[str, str]]:
        aid = action["ActionID"]
        return [{"Response": "Success", "ActionID": aid, "EventList": "start", "Message": "Channels will follow"},
                {"Event": "CoreShowChannel", "ActionID": aid, "Channel": unheard, "ChannelStateDesc": "Ring",
                 "CallerIDNum": "13900139000", "CallerIDName": "", "Context": "from-trunk", "Exten": "96666",
                 "Priority": "4", "Uniqueid": "1732345300.9", "Linkedid": "1732345300.9", "BridgeId": "",
                 "Application": "AGI", "ApplicationData": "agi:async,inbound", "Duration": "00:00:01"},
                {"Event": "CoreShowChannelsComplete", "ActionID": aid, "EventList": "Complete", "ListItems": "1"}]

    line.call_in()                                   # nobody logged in: the caller waits
    await line.until(lambda: any(s.phase.value == "waiting" for s in line.engine.sessions.values()))
    line.fake.replies["CoreShowChannels"] = channels
    line.fake.session.drop()                         # the link breaks; Asterisk restarts meanwhile
    await line.until(lambda: line.engine.calls_closed == 1)
    async with line.engine.store.sessionmaker() as db:
        [call] = (await db.execute(select(Call).where(Call.closed))).scalars()
    assert (call.disposition, call.hangup_first, call.channel) == ("cut_by_pbx", "system", CALLER)
    # The caller who dialled in meanwhile is answered, not left in silence.
    await line.until(lambda: any(a["Channel"] == unheard and a["Command"] == "ANSWER" for a in line.sent("AGI")))
    assert [s.caller_number for s in line.engine.sessions.values() if s.channel == unheard] == ["13900139000"]
