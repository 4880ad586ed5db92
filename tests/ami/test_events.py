from __future__ import annotations

import dataclasses

import pytest

from callcenter.ami.errors import MalformedMessage
from callcenter.ami.events import (
    ENGINE_EVENTS,
    AsyncAGIEnd,
    AsyncAGIExec,
    AsyncAGIStart,
    BridgeEnter,
    BridgeLeave,
    CoreShowChannel,
    DialBegin,
    DialEnd,
    DTMFEnd,
    Hangup,
    MixMonitorStart,
    MixMonitorStop,
    Newchannel,
    Newstate,
    OriginateResponse,
    Shutdown,
    SoftHangupRequest,
    parse_agi_reply,
    parse_event,
)
from callcenter.ami.protocol import read_fields
from tests.ami.fake_ami import trace


def messages(name: str, **values: str) -> list[dict[str, str]]:
    return [read_fields(block.split("\n")) for block in trace(name, **values).strip().split("\n\n")]


def test_an_inbound_call_trace_becomes_the_engine_events_in_order() -> None:
    events = [parse_event(m) for m in messages("inbound_call.ami", CommandID="cmd-1")]
    kinds = [type(e).__name__ if e else None for e in events]
    assert kinds == [
        "Newchannel", "Newstate", "AsyncAGIStart", "AsyncAGIExec", "DTMFEnd", "AsyncAGIExec",
        "Newchannel", "DialBegin", "Newstate", "Newstate", "DialEnd", "BridgeEnter", "BridgeEnter",
        "MixMonitorStart", None, "BridgeLeave", "BridgeLeave", "Hangup", "MixMonitorStop",
        "AsyncAGIExec", "AsyncAGIEnd", "Hangup",
    ]
    # One call: every event carries the caller channel's Uniqueid as its call key.
    assert {e.call_key for e in events if e is not None} == {"1732345200.1"}


def test_async_agi_start_decodes_the_environment() -> None:
    start = parse_event(messages("inbound_call.ami")[2])
    assert isinstance(start, AsyncAGIStart)
    assert start.channel == "PJSIP/trunk-00000001"
    assert start.caller_number == "13800138000"
    assert start.caller_name == "张三"
    assert start.extension == "96666"
    assert start.dnid == "96666"
    assert start.env["agi_uniqueid"] == "1732345200.1"
    assert start.env["agi_accountcode"] == ""
    with pytest.raises(TypeError):
        start.env["agi_callerid"] = "1"  # type: ignore[index]


def test_async_agi_exec_decodes_the_result() -> None:
    exec_ = parse_event(messages("inbound_call.ami", CommandID="cmd-1")[3])
    assert isinstance(exec_, AsyncAGIExec)
    assert (exec_.command_id, exec_.code, exec_.result, exec_.data) == ("cmd-1", 200, "0", "")
    assert exec_.agi_result.raw == "200 result=0"


@pytest.mark.parametrize(
    ("reply", "code", "result", "data", "extra"),
    [
        ("200 result=0", 200, "0", "", ""),
        ("200 result=1 (speech) endpos=3200", 200, "1", "speech", "endpos=3200"),
        ("200 result= (timeout)", 200, "", "timeout", ""),
        ("200 result=12 (timeout)", 200, "12", "timeout", ""),
        ("200 result=1 (张三)", 200, "1", "张三", ""),
        ("200 result=-1", 200, "-1", "", ""),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", ""),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "",
         "Command Not Permitted on a dead channel or intercept routine", ""),
        ("520-Invalid command syntax.  Proper usage follows:\nUsage: ANSWER", 520, "",
         "Invalid command syntax.  Proper usage follows:\nUsage: ANSWER", ""),
    ],
)
def test_agi_replies(reply: str, code: int, result: str, data: str, extra: str) -> None:
    parsed = parse_agi_reply(reply)
    assert (parsed.code, parsed.result, parsed.data, parsed.extra) == (code, result, data, extra)


def test_agi_reply_without_a_code_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="AsyncAGIExec: field 'Result' has no AGI reply code"):
        parse_agi_reply("HANGUP")


def test_channel_events_carry_their_fields() -> None:
    m = messages("inbound_call.ami")
    newchannel, dial_begin, dial_end = parse_event(m[0]), parse_event(m[7]), parse_event(m[10])
    bridge_enter, dtmf, hangup = parse_event(m[12]), parse_event(m[4]), parse_event(m[17])
    assert newchannel == Newchannel("PJSIP/trunk-00000001", "1732345200.1", "1732345200.1", "Ring",
                                    "13800138000", "张三", "hotline", "96666")
    assert isinstance(parse_event(m[1]), Newstate)
    assert dial_begin == DialBegin("PJSIP/trunk-00000001", "1732345200.1", "1732345200.1",
                                   "PJSIP/1001-00000002", "1732345207.2", "1732345200.1", "1001")
    assert isinstance(dial_end, DialEnd) and dial_end.dial_status == "ANSWER"
    assert isinstance(bridge_enter, BridgeEnter)
    assert (bridge_enter.bridge_id, bridge_enter.bridge_type, bridge_enter.bridge_num_channels) == (
        "3f1e9c2a-5b7d-4e21-9a0c-7d2b1c4e5f60", "basic", 2)
    assert dtmf == DTMFEnd("PJSIP/trunk-00000001", "1732345200.1", "1732345200.1", "2", "Received", 120)
    assert hangup == Hangup("PJSIP/1001-00000002", "1732345207.2", "1732345200.1", 16, "Normal Clearing")
    assert isinstance(parse_event(m[13]), MixMonitorStart)
    assert isinstance(parse_event(m[15]), BridgeLeave)
    assert isinstance(parse_event(m[18]), MixMonitorStop)
    assert isinstance(parse_event(m[20]), AsyncAGIEnd)


def test_events_are_frozen() -> None:
    hangup = parse_event(messages("inbound_call.ami")[17])
    with pytest.raises(dataclasses.FrozenInstanceError):
        hangup.cause = 17  # type: ignore[union-attr]


def test_dial_of_an_originate_has_no_calling_channel_and_keys_on_the_destination() -> None:
    fields = {"Event": "DialBegin", "DestChannel": "PJSIP/2001-00000007", "DestUniqueid": "1732345300.7",
              "DestLinkedid": "1732345300.7", "DialString": "2001"}
    event = parse_event(fields)
    assert isinstance(event, DialBegin)
    assert event.channel == "" and event.call_key == "1732345300.7"


def test_originate_responses() -> None:
    failed, answered = (parse_event(m) for m in messages("originate_responses.ami", ActionID="originate-1"))
    assert failed == OriginateResponse("originate-1", "Failure", "PJSIP/2001", 5, "", "followup", "s")
    assert not failed.success and failed.call_key == ""
    assert isinstance(answered, OriginateResponse) and answered.success
    assert answered.uniqueid == "1732345300.7"


def test_snapshot_channels() -> None:
    items = [parse_event(m) for m in messages("core_show_channels.ami", ActionID="a-1")[1:3]]
    caller, agent = items
    assert isinstance(caller, CoreShowChannel) and isinstance(agent, CoreShowChannel)
    assert (caller.application, caller.application_data, caller.duration_s) == ("AGI", "agi:async", 65)
    assert (agent.application, agent.bridge_id, agent.duration_s, agent.connected_number) == (
        "AppDial", "3f1e9c2a-5b7d-4e21-9a0c-7d2b1c4e5f60", 58, "13800138000")
    assert agent.call_key == caller.uniqueid


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (0, "malformed AMI message DialEnd: field 'DialStatus' is missing"),
        (1, "malformed AMI message Hangup: field 'Cause' is not a whole number: 'sixteen'"),
        (2, "malformed AMI message AsyncAGIExec: field 'Result' is not URL-encoded UTF-8"),
        (3, "malformed AMI message AsyncAGIStart: field 'Env' is missing"),
    ],
)
def test_malformed_events_name_the_event_and_the_field(index: int, message: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_event(messages("malformed.ami")[index])
    assert str(caught.value) == message


def test_a_message_without_event_name_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="field 'Event' is missing"):
        parse_event({"Channel": "PJSIP/1001-00000001"})


def test_events_the_engine_does_not_use_are_none() -> None:
    assert parse_event({"Event": "VarSet", "Variable": "X", "Value": "1"}) is None
    assert parse_event({"Event": "RTCPSent"}) is None


def test_engine_events_lists_exactly_the_parsed_names() -> None:
    assert len(set(ENGINE_EVENTS)) == len(ENGINE_EVENTS)
    assert {"AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "Hangup", "DialEnd", "DTMFEnd", "FullyBooted",
            "OriginateResponse", "BridgeEnter", "BridgeLeave"} <= set(ENGINE_EVENTS)
    assert "VarSet" not in ENGINE_EVENTS


def test_the_pbx_going_down_is_told_by_shutdown_and_by_the_shutdown_hang_ups_before_it() -> None:
    assert "Shutdown" in ENGINE_EVENTS and "SoftHangupRequest" in ENGINE_EVENTS
    shutdown = parse_event({"Event": "Shutdown", "Privilege": "system,all", "Timestamp": "1733065200.250120",
                            "Shutdown": "Uncleanly", "Restart": "True"})
    assert shutdown == Shutdown(cleanly=False, restart=True, at=1733065200.25012)
    assert parse_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "False"}) == Shutdown(True, False)
    # ast_softhangup_all() at shutdown: AST_SOFTHANGUP_SHUTDOWN (4); an AMI Hangup is explicit (32).
    cut = parse_event({"Event": "SoftHangupRequest", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1",
                       "Linkedid": "1.1", "Cause": "4"})
    asked = parse_event({"Event": "SoftHangupRequest", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1",
                         "Linkedid": "1.1", "Cause": "32"})
    assert isinstance(cut, SoftHangupRequest) and cut.by_shutdown and cut.call_key == "1.1"
    assert isinstance(asked, SoftHangupRequest) and not asked.by_shutdown


def test_a_hang_up_carries_asterisks_own_time_when_events_are_timestamped() -> None:
    fields = {"Event": "Hangup", "Channel": "PJSIP/1001-00000002", "Uniqueid": "2", "Linkedid": "1", "Cause": "16"}
    assert parse_event({**fields, "Timestamp": "1733065199.000100"}).at == 1733065199.0001  # type: ignore[union-attr]
    assert parse_event(fields).at is None                                                  # type: ignore[union-attr]
    assert parse_event({**fields, "Timestamp": "soon"}).at is None                         # type: ignore[union-attr]
