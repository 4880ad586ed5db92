"""The reader against raw bytes: any chunking gives the same messages, odd lines are survived."""
from __future__ import annotations

from typing import Any

import pytest

from callcenter.ami.errors import MalformedMessage
from callcenter.ami.protocol import AmiProtocol
from tests.ami.fake_ami import BANNER, trace, wire


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def _reader(max_bytes: int = 65536) -> tuple[AmiProtocol, list[dict[str, str]], list[MalformedMessage], list[str]]:
    events: list[dict[str, str]] = []
    bad: list[MalformedMessage] = []
    lost: list[str] = []
    protocol = AmiProtocol(events.append, bad.append, lost.append, max_bytes)
    protocol.connection_made(_Transport())
    return protocol, events, bad, lost


def _stream() -> bytes:
    return BANNER + wire(trace("inbound_call.ami", CommandID="cmd-1"))


@pytest.mark.parametrize("chunk", [1, 2, 7, 100, 1500, 1 << 20])
def test_any_chunking_gives_the_same_events(chunk: int) -> None:
    whole, events_whole, _, _ = _reader()
    whole.data_received(_stream())
    protocol, events, bad, _ = _reader()
    data = _stream()
    for i in range(0, len(data), chunk):
        protocol.data_received(data[i : i + chunk])
    assert events == events_whole
    assert len(events) == 22 and not bad
    assert protocol.version == "9.0.0"
    assert events[2]["Event"] == "AsyncAGIStart" and events[2]["AccountCode"] == ""


def test_lines_without_space_or_colon_and_blank_lines_are_survived() -> None:
    protocol, events, _, _ = _reader()
    protocol.data_received(BANNER + b"\r\nEvent: DTMFEnd\r\nDigit:\r\nstray line\r\nChannel: PJSIP/1-1\r\n\r\n")
    assert events == [{"Event": "DTMFEnd", "Digit": "", "Channel": "PJSIP/1-1"}]


def test_without_banner_messages_are_still_read() -> None:
    protocol, events, _, _ = _reader()
    protocol.data_received(b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
    assert events == [{"Event": "FullyBooted", "Status": "Fully Booted"}]


def test_undecodable_bytes_name_the_event_and_field_and_reading_goes_on() -> None:
    protocol, events, bad, _ = _reader()
    protocol.data_received(BANNER + b"Event: Newchannel\r\nCallerIDName: \xe5\xbc\r\nUniqueid: 1.1\r\n\r\n"
                           b"Event: FullyBooted\r\n\r\n")
    assert [str(e) for e in bad] == ["malformed AMI message Newchannel: field 'CallerIDName' is not valid UTF-8"]
    assert events == [{"Event": "FullyBooted"}]


def test_an_endless_message_breaks_the_connection_instead_of_eating_memory() -> None:
    protocol, _, bad, lost = _reader(max_bytes=1024)
    protocol.data_received(BANNER + b"Event: Newchannel\r\nX: " + b"a" * 2000)
    assert "exceeds 1024 bytes" in str(bad[0])
    assert lost and protocol.transport.aborted


async def test_responses_and_list_events_go_to_their_action_not_to_the_engine() -> None:
    protocol, events, _, _ = _reader()
    single = protocol.send_action({"Action": "Ping"})
    listing = protocol.send_action({"Action": "CoreShowChannels"}, as_list=True)
    protocol.data_received(BANNER + wire({"Response": "Success", "ActionID": single.actionid, "Ping": "Pong"}))
    protocol.data_received(wire(trace("core_show_channels.ami", ActionID=listing.actionid)))
    assert single.future.result()["Ping"] == "Pong"
    replies: Any = listing.future.result()
    assert [m.get("Event", m.get("Response")) for m in replies] == [
        "Success", "CoreShowChannel", "CoreShowChannel", "CoreShowChannelsComplete"]
    assert events == [] and protocol.pending == {}
    written = protocol.transport.written.decode()
    assert "Action: Ping\r\n" in written and written.endswith("\r\n\r\n")


async def test_a_late_response_for_a_forgotten_action_is_dropped() -> None:
    protocol, events, _, _ = _reader()
    action = protocol.send_action({"Action": "Ping"})
    protocol.forget(action.actionid)
    protocol.data_received(BANNER + wire({"Response": "Success", "ActionID": action.actionid}))
    assert not action.future.done() and events == []
    action.future.cancel()


async def test_pending_actions_are_failed_not_kept_for_replay() -> None:
    protocol, _, _, _ = _reader()
    originate = protocol.send_action({"Action": "Originate", "Channel": "PJSIP/2001"})
    assert protocol.fail_pending(ConnectionResetError("gone")) == 1
    assert isinstance(originate.future.exception(), ConnectionResetError)
    assert protocol.pending == {}


def test_a_caller_id_with_line_breaks_cannot_forge_event_headers() -> None:
    """Seen on Asterisk 22: the caller ID goes into event headers unescaped."""
    from callcenter.ami.protocol import resolve_repeated

    lines = [
        "Event: Newchannel", "Privilege: call,all", "Channel: PJSIP/trunk-00000000", "ChannelState: 4",
        "CallerIDNum: 1380", "Action: Originate", "Channel: PJSIP/1001999", "Uniqueid: forged.1",
        "CallerIDName: caller", "Context: from-trunk", "Uniqueid: 1795389696.0", "Linkedid: 1795389696.0",
    ]
    fields = resolve_repeated(lines)
    assert fields["Channel"] == "PJSIP/trunk-00000000"
    assert fields["Uniqueid"] == "1795389696.0"
    assert fields["Event"] == "Newchannel"
