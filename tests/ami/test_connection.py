from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable

import pytest

from callcenter.ami.connection import AmiConnection
from callcenter.ami.errors import (
    AgiCommandFailed,
    AmiActionFailed,
    AmiTimeout,
    AmiUnavailable,
    ChannelGone,
    UnsafeField,
)
from callcenter.ami.events import (
    AsyncAGIExec,
    AsyncAGIStart,
    Disconnected,
    DTMFEnd,
    Event,
    FullyBooted,
    Hangup,
    Reconnected,
)
from callcenter.ami.gateway import AmiGateway
from tests.ami.conftest import Connect, Recorder
from tests.ami.fake_ami import FakeAmi, FakeSession, agi_exec, trace

CALLER = "PJSIP/trunk-00000001"
CALLER_ID = "1732345200.1"


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 (bounded by the caller's wait_for)
        await asyncio.sleep(0.005)


async def test_login_and_fully_booted(fake_ami: FakeAmi, connect: Connect) -> None:
    events = Recorder()
    connection = await connect(events)
    login = await fake_ami.wait_action("Login")
    assert (login["Username"], login["Secret"], login["Events"]) == ("callcenter", "test-ami-secret", "on")
    await events.wait_for(lambda es: any(isinstance(e, FullyBooted) for e in es))
    assert events.of(FullyBooted)[0].uptime_s == 3600
    assert connection.connected


async def test_refused_login_is_retried_with_backoff(fake_ami: FakeAmi, connect: Connect) -> None:
    connection = await connect(Recorder(), wait=False, secret="wrong")
    await fake_ami.wait_sessions(3)
    assert not connection.connected
    with pytest.raises(AmiUnavailable, match="no AMI session"):
        await connection.wait_connected(0.05)


async def test_a_session_that_breaks_at_once_is_retried_with_growing_waits(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.drop_after_login = True
    connection = await connect(Recorder(), wait=False)
    await fake_ami.wait_sessions(5)
    opened = [s.opened_at for s in fake_ami.sessions[:5]]
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    # Waits of 0.02, 0.04, 0.08, 0.16 s at least: no reconnect storm against a flapping Asterisk.
    assert sum(gaps) >= 0.02 + 0.04 + 0.08 + 0.16 - 0.01
    assert gaps[-1] > gaps[0]
    assert connection.stats.connects >= 4


async def test_a_link_that_breaks_during_login_fails_the_login_at_once(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.mute_login = True
    connection = await connect(Recorder(), wait=False, action_timeout_s=30)
    first = await fake_ami.wait_sessions(1)
    await fake_ami.wait_action("Login", first)
    first.drop()
    fake_ami.mute_login = False
    await connection.wait_connected(2)  # far less than the 30 s the Login could have waited
    assert connection.stats.actions_failed_by_disconnect == 1


async def test_action_error_and_timeout(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.replies["Getvar"] = lambda s, a: [{"Response": "Error", "ActionID": a["ActionID"],
                                                "Message": "No such channel"}]
    fake_ami.replies["QueueStatus"] = lambda s, a: None  # never answered
    connection = await connect(Recorder())
    with pytest.raises(AmiActionFailed) as failed:
        await connection.action({"Action": "Getvar", "Channel": "PJSIP/9-1", "Variable": "X"})
    assert (failed.value.action, failed.value.message) == ("Getvar", "No such channel")
    with pytest.raises(AmiTimeout, match=r"QueueStatus got no reply within 0\.1 s"):
        await connection.action({"Action": "QueueStatus"}, timeout=0.1)
    assert connection.stats.actions_timed_out == 1
    # The connection is still good after both.
    assert (await connection.action({"Action": "Setvar", "Variable": "A", "Value": "1"}))["Response"] == "Success"


async def test_unsafe_field_never_reaches_asterisk(fake_ami: FakeAmi, connect: Connect) -> None:
    connection = await connect(Recorder())
    with pytest.raises(UnsafeField):
        await connection.action({"Action": "Setvar", "Variable": "CALLERID(name)",
                                 "Value": "x\r\nAction: Originate\r\nChannel: PJSIP/999"})
    await connection.action({"Action": "Ping"})
    assert "Originate" not in fake_ami.session.names()
    assert "Setvar" not in fake_ami.session.names()


async def test_agi_completes_from_async_agi_exec(fake_ami: FakeAmi, connect: Connect) -> None:
    def reply(session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        ack = {"Response": "Success", "ActionID": action["ActionID"], "Message": "Added AGI command to queue"}
        done = agi_exec(action["Channel"], CALLER_ID, action["CommandID"], "200 result=1 (timeout)")
        return [ack, done]

    fake_ami.replies["AGI"] = reply
    events = Recorder()
    connection = await connect(events)
    result = await connection.agi(CALLER, "GET DATA hotline/welcome 5000 1", timeout=2)
    assert (result.code, result.result, result.data) == (200, "1", "timeout")
    sent = await fake_ami.wait_action("AGI")
    assert sent["Command"] == "GET DATA hotline/welcome 5000 1"
    assert sent["CommandID"].startswith("agi-")
    # The AsyncAGIExec still reaches the engine as an event.
    await events.wait_for(lambda es: any(isinstance(e, AsyncAGIExec) for e in es))


async def test_agi_completes_when_the_exec_event_overtakes_the_ack(fake_ami: FakeAmi, connect: Connect) -> None:
    def reply(session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        ack = {"Response": "Success", "ActionID": action["ActionID"], "Message": "Added AGI command to queue"}
        return [agi_exec(action["Channel"], CALLER_ID, action["CommandID"], "200 result=0"), ack]

    fake_ami.replies["AGI"] = reply
    connection = await connect(Recorder())
    assert (await connection.agi(CALLER, "ANSWER", timeout=2)).result == "0"


async def test_agi_error_codes_raise(fake_ami: FakeAmi, connect: Connect) -> None:
    def reply(session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        ack = {"Response": "Success", "ActionID": action["ActionID"], "Message": "Added AGI command to queue"}
        return [ack, agi_exec(action["Channel"], CALLER_ID, action["CommandID"], "510 Invalid or unknown command")]

    fake_ami.replies["AGI"] = reply
    connection = await connect(Recorder())
    with pytest.raises(AgiCommandFailed) as failed:
        await connection.agi(CALLER, "FROB", timeout=2)
    assert failed.value.code == 510 and "Invalid or unknown command" in str(failed.value)


@pytest.mark.parametrize("gone_event", ["AsyncAGIEnd", "Hangup"])
async def test_agi_fails_with_channel_gone(fake_ami: FakeAmi, connect: Connect, gone_event: str) -> None:
    connection = await connect(Recorder())
    waiting = asyncio.create_task(connection.agi(CALLER, "STREAM FILE hotline/menu \"123\""))
    await fake_ami.wait_action("AGI")
    event = {"Event": gone_event, "Channel": CALLER, "Uniqueid": CALLER_ID, "Linkedid": CALLER_ID}
    if gone_event == "Hangup":
        event.update({"Cause": "16", "Cause-txt": "Normal Clearing"})
    fake_ami.session.send(event)
    with pytest.raises(ChannelGone) as gone:
        await asyncio.wait_for(waiting, 2)
    assert gone.value.channel == CALLER


async def test_agi_on_a_channel_that_does_not_exist(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.replies["AGI"] = lambda s, a: [{"Response": "Error", "ActionID": a["ActionID"],
                                             "Message": "Channel does not exist."}]
    connection = await connect(Recorder())
    with pytest.raises(ChannelGone):
        await connection.agi("PJSIP/trunk-0000ffff", "ANSWER", timeout=1)


async def test_agi_timeout_and_a_late_exec_is_ignored(fake_ami: FakeAmi, connect: Connect) -> None:
    connection = await connect(Recorder())
    with pytest.raises(AmiTimeout, match=r"AGI ANSWER got no reply within 0\.05 s"):
        await connection.agi(CALLER, "ANSWER", timeout=0.05)
    command_id = (await fake_ami.wait_action("AGI"))["CommandID"]
    fake_ami.session.send(agi_exec(CALLER, CALLER_ID, command_id, "200 result=0"))
    await connection.action({"Action": "Ping"})
    assert connection.stats.agi_orphans == 1


async def test_malformed_message_is_logged_and_skipped_and_later_events_arrive(
    fake_ami: FakeAmi, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    events = Recorder()
    connection = await connect(events)
    caplog.set_level(logging.WARNING, logger="callcenter.ami")
    fake_ami.session.send(trace("malformed.ami"))
    fake_ami.session.send_bytes(b"Event: Hangup\r\nChannel: PJSIP/x-1\r\nCallerIDName: \xff\xfe\r\n"
                                b"Uniqueid: 9.9\r\nCause: 16\r\n\r\n")
    fake_ami.session.send({"Event": "DTMFEnd", "Channel": CALLER, "Uniqueid": CALLER_ID, "Linkedid": CALLER_ID,
                           "Digit": "9", "Direction": "Received", "DurationMs": "90"})
    await events.wait_for(lambda es: [e.digit for e in es if isinstance(e, DTMFEnd)] == ["5", "9"])
    assert len(events.of(Hangup)) == 1  # the good Hangup of the trace
    assert connection.stats.malformed == 5
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "DialEnd: field 'DialStatus' is missing" in logged
    assert "Hangup: field 'Cause' is not a whole number" in logged
    assert "AsyncAGIExec: field 'Result' is not URL-encoded UTF-8" in logged
    assert "AsyncAGIStart: field 'Env' is missing" in logged
    assert "Hangup: field 'CallerIDName' is not valid UTF-8" in logged
    assert connection.connected


async def test_watchdog_drops_a_silent_server_and_reconnects(fake_ami: FakeAmi, connect: Connect) -> None:
    events = Recorder()
    connected: list[int] = []

    async def on_connect(conn: AmiConnection) -> None:
        channels = await conn.snapshot()  # what the engine does on every (re)connect
        assert len(channels) == 2
        connected.append(len(fake_ami.sessions))

    connection = await connect(events, on_connect=on_connect)
    first = fake_ami.session
    fake_ami.silent = True  # Pings go unanswered; the socket stays open
    await events.wait_for(lambda es: any(isinstance(e, Disconnected) for e in es), timeout=3)
    fake_ami.silent = False
    await events.wait_for(lambda es: any(isinstance(e, Reconnected) for e in es), timeout=3)
    assert "no reply to Ping within 0.2 s" in events.of(Disconnected)[0].reason
    assert await asyncio.wait_for(first.closed.wait(), 2)
    assert len(fake_ami.sessions) >= 2
    assert connection.stats.reconnects == 1
    await asyncio.wait_for(_until(lambda: len(connected) == 2), 2)
    assert connected == [1, len(fake_ami.sessions)]
    assert (await connection.action({"Action": "Ping"}))["Ping"] == "Pong"


async def test_originate_in_flight_is_failed_not_replayed_after_reconnect(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.replies["Originate"] = lambda s, a: None  # Asterisk takes it, then the link breaks
    events = Recorder()
    connection = await connect(events)
    gateway = AmiGateway(connection)
    placing = asyncio.create_task(gateway.originate("PJSIP/2001", context="followup", exten="s"))
    first = fake_ami.session
    await fake_ami.wait_action("Originate", first)
    first.drop()
    with pytest.raises(AmiUnavailable, match="not sent again"):
        await asyncio.wait_for(placing, 2)
    await events.wait_for(lambda es: any(isinstance(e, Reconnected) for e in es), timeout=3)
    await connection.action({"Action": "Ping"})
    await asyncio.sleep(0.3)  # a replay, if any, would come right after the new login
    assert first.names().count("Originate") == 1
    for later in fake_ami.sessions[1:]:
        assert "Originate" not in later.names()
    assert [type(e) for e in events.events if isinstance(e, Disconnected | Reconnected)] == [Disconnected, Reconnected]


async def test_actions_while_disconnected_fail_at_once(fake_ami: FakeAmi, connect: Connect) -> None:
    events = Recorder()
    connection = await connect(events, reconnect_backoff_initial_s=0.5, reconnect_backoff_max_s=0.5)
    fake_ami.session.drop()
    await events.wait_for(lambda es: any(isinstance(e, Disconnected) for e in es))
    with pytest.raises(AmiUnavailable, match="not connected"):
        await connection.action({"Action": "Ping"})


async def test_per_call_order_is_kept_while_calls_run_concurrently(fake_ami: FakeAmi, connect: Connect) -> None:
    calls, per_call = 40, 25
    seen: dict[str, list[str]] = {}
    running = 0
    most_running = 0
    rng = random.Random(7)
    all_seen = asyncio.Event()

    async def handler(event: Event) -> None:
        nonlocal running, most_running
        if not isinstance(event, DTMFEnd):
            return
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(rng.random() * 0.002)
        seen.setdefault(event.call_key, []).append(event.digit)
        running -= 1
        if sum(len(v) for v in seen.values()) == calls * per_call:
            all_seen.set()

    connection = await connect(handler)
    expected: dict[str, list[str]] = {}
    messages = []
    for n in range(per_call):
        for c in range(calls):
            uid = f"1732345200.{c}"
            digit = str(n % 10) + f"#{n}"
            expected.setdefault(uid, []).append(digit)
            messages.append({"Event": "DTMFEnd", "Channel": f"PJSIP/trunk-{c:08x}", "Uniqueid": uid,
                             "Linkedid": uid, "Digit": digit, "Direction": "Received", "DurationMs": "80"})
    fake_ami.session.send(*messages)
    await asyncio.wait_for(all_seen.wait(), 10)
    assert seen == expected
    assert most_running > 1  # calls were handled side by side
    assert await connection.dispatcher.idle(1.0)
    assert connection.dispatcher.active_calls == 0  # idle calls' workers are reaped


async def test_handler_exception_is_logged_and_the_call_goes_on(
    fake_ami: FakeAmi, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []
    last = asyncio.Event()

    async def handler(event: Event) -> None:
        if isinstance(event, DTMFEnd):
            if event.digit == "1":
                raise RuntimeError("engine bug on digit 1")
            got.append(event.digit)
            if event.digit == "3":
                last.set()

    connection = await connect(handler)
    caplog.set_level(logging.ERROR, logger="callcenter.ami")
    fake_ami.session.send(*({"Event": "DTMFEnd", "Channel": CALLER, "Uniqueid": CALLER_ID, "Linkedid": CALLER_ID,
                             "Digit": d, "Direction": "Received"} for d in "0123"))
    await asyncio.wait_for(last.wait(), 3)
    assert got == ["0", "2", "3"]
    assert connection.dispatcher.handler_failures == 1
    failure = next(r for r in caplog.records if "event handler failed" in r.getMessage())
    assert "DTMFEnd" in failure.getMessage() and CALLER_ID in failure.getMessage()
    assert failure.exc_info is not None and "engine bug on digit 1" in str(failure.exc_info[1])


async def test_snapshot(fake_ami: FakeAmi, connect: Connect) -> None:
    connection = await connect(Recorder())
    channels = await connection.snapshot()
    assert [(c.channel, c.application, c.linkedid) for c in channels] == [
        ("PJSIP/trunk-00000001", "AGI", CALLER_ID),
        ("PJSIP/1001-00000002", "AppDial", CALLER_ID),
    ]
    action_id = (await fake_ami.wait_action("CoreShowChannels"))["ActionID"]
    assert {c.action_id for c in channels} == {action_id}


async def test_list_action_answered_with_error_does_not_hang(fake_ami: FakeAmi, connect: Connect) -> None:
    fake_ami.replies["CoreShowChannels"] = lambda s, a: [{"Response": "Error", "ActionID": a["ActionID"],
                                                          "Message": "Permission denied"}]
    connection = await connect(Recorder())
    with pytest.raises(AmiActionFailed, match="CoreShowChannels failed: Permission denied"):
        await connection.snapshot()


async def test_an_inbound_call_trace_reaches_the_handler_whole(fake_ami: FakeAmi, connect: Connect) -> None:
    events = Recorder()
    await connect(events)
    fake_ami.session.send(trace("inbound_call.ami", CommandID="cmd-1"))
    await events.wait_for(lambda es: len(es) >= 22)  # FullyBooted + the call's 21 engine events
    start = events.of(AsyncAGIStart)[0]
    assert start.caller_name == "张三"
    assert isinstance(events.events[-1], Hangup) and events.events[-1].channel == CALLER


async def test_close_fails_waiting_callers(fake_ami: FakeAmi, connect: Connect) -> None:
    connection = await connect(Recorder())
    waiting = asyncio.create_task(connection.agi(CALLER, "EXEC Dial \"PJSIP/1001,15,gm\""))
    await fake_ami.wait_action("AGI")
    await connection.close()
    with pytest.raises(AmiUnavailable, match="closed"):
        await waiting
    assert not connection.connected
