from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from callcenter.ami.errors import AgiCommandFailed, ChannelGone, UnsafeField
from callcenter.ami.events import OriginateResponse
from callcenter.ami.gateway import AmiGateway, agent_endpoint
from tests.ami.conftest import Connect, Recorder
from tests.ami.fake_ami import FakeAmi, FakeSession, agi_exec, trace

CALLER = "PJSIP/trunk-00000001"
CALLER_ID = "1732345200.1"


class AgiScript:
    """Answers each AGI command with the reply of the first matching command prefix."""

    def __init__(self, fake: FakeAmi) -> None:
        self.replies: dict[str, str] = {}
        self.commands: list[str] = []
        fake.replies["AGI"] = self

    def __call__(self, session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        command = action["Command"]
        self.commands.append(command)
        reply = next((r for prefix, r in self.replies.items() if command.startswith(prefix)), "200 result=0")
        return [{"Response": "Success", "ActionID": action["ActionID"], "Message": "Added AGI command to queue"},
                agi_exec(action["Channel"], CALLER_ID, action["CommandID"], reply)]


@pytest.fixture
async def gateway(connect: Connect) -> AsyncIterator[AmiGateway]:
    yield AmiGateway(await connect(Recorder()))


@pytest.fixture
def agi(fake_ami: FakeAmi) -> AgiScript:
    return AgiScript(fake_ami)


async def test_answer(gateway: AmiGateway, agi: AgiScript) -> None:
    await gateway.answer(CALLER)
    agi.replies["ANSWER"] = "200 result=-1"
    with pytest.raises(ChannelGone):
        await gateway.answer(CALLER)
    assert agi.commands == ["ANSWER", "ANSWER"]


@pytest.mark.parametrize(
    ("reply", "digits"),
    [("200 result=1", "1"), ("200 result=12 (timeout)", "12"), ("200 result= (timeout)", None),
     ("200 result=", "")],
)
async def test_get_data(gateway: AmiGateway, agi: AgiScript, reply: str, digits: str | None) -> None:
    agi.replies["GET DATA"] = reply
    assert await gateway.get_data(CALLER, "hotline/main-menu", 5000, 1) == digits
    assert agi.commands == ["GET DATA hotline/main-menu 5000 1"]


async def test_get_data_on_hangup(gateway: AmiGateway, agi: AgiScript) -> None:
    agi.replies["GET DATA"] = "200 result=-1"
    with pytest.raises(ChannelGone):
        await gateway.get_data(CALLER, "hotline/main-menu", 5000, 1)


async def test_stream_file_and_wait_for_digit(gateway: AmiGateway, agi: AgiScript) -> None:
    agi.replies["STREAM FILE hotline/outage"] = "200 result=50 endpos=12000"
    agi.replies["STREAM FILE hotline/thanks"] = "200 result=0 endpos=32000"
    agi.replies["WAIT FOR DIGIT"] = "200 result=35"
    assert await gateway.stream_file(CALLER, "hotline/outage", "123") == "2"
    assert await gateway.stream_file(CALLER, "hotline/thanks") is None
    assert await gateway.wait_for_digit(CALLER, 3000) == "#"
    assert agi.commands == ['STREAM FILE hotline/outage "123"', 'STREAM FILE hotline/thanks ""', "WAIT FOR DIGIT 3000"]


async def test_dial_moh_and_variables(gateway: AmiGateway, agi: AgiScript, fake_ami: FakeAmi) -> None:
    fake_ami.replies["Getvar"] = lambda s, a: [{"Response": "Success", "ActionID": a["ActionID"],
                                                "Variable": a["Variable"], "Value": "ANSWER"}]
    result = await gateway.dial(CALLER, "PJSIP/1001", 15, "gm")
    await gateway.start_moh(CALLER, "hotline")
    await gateway.stop_moh(CALLER)
    await gateway.set_variable(CALLER, "CALL_NOTE", 'leak at "No. 5" \\ gate')
    assert await gateway.get_variable(CALLER, "DIALSTATUS") == "ANSWER"
    assert result.code == 200
    assert agi.commands == [
        'EXEC Dial "PJSIP/1001,15,gm"',
        'EXEC StartMusicOnHold "hotline"',
        "EXEC StopMusicOnHold",
        'SET VARIABLE CALL_NOTE "leak at \\"No. 5\\" \\\\ gate"',
    ]


async def test_exec_of_a_missing_application(gateway: AmiGateway, agi: AgiScript) -> None:
    agi.replies["EXEC Frobnicate"] = "200 result=-2"
    with pytest.raises(AgiCommandFailed, match="application Frobnicate not found"):
        await gateway.exec_app(CALLER, "Frobnicate")


async def test_hangup_redirect_and_channel_gone(gateway: AmiGateway, fake_ami: FakeAmi) -> None:
    await gateway.hangup(CALLER)
    await gateway.redirect(CALLER, "hotline", "callback", 1)
    hangup = await fake_ami.wait_action("Hangup")
    redirect = await fake_ami.wait_action("Redirect")
    assert (hangup["Channel"], hangup["Cause"]) == (CALLER, "16")
    assert (redirect["Context"], redirect["Exten"], redirect["Priority"]) == ("hotline", "callback", "1")
    fake_ami.replies["Hangup"] = lambda s, a: [{"Response": "Error", "ActionID": a["ActionID"],
                                                "Message": "No such channel"}]
    with pytest.raises(ChannelGone):
        await gateway.hangup(CALLER)


async def test_originate_returns_its_action_id_and_the_response_event_follows(
    fake_ami: FakeAmi, connect: Connect
) -> None:
    events = Recorder()
    gateway = AmiGateway(await connect(events))

    def reply(session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        responses = trace("originate_responses.ami", ActionID=action["ActionID"]).split("\n\n")
        return [{"Response": "Success", "ActionID": action["ActionID"], "Message": "Originate successfully queued"},
                responses[1]]

    fake_ami.replies["Originate"] = reply
    action_id = await gateway.originate("PJSIP/2001", context="followup", exten="s", caller_id='"96666" <96666>',
                                        variables={"FOLLOWUP_ID": "wo-42", "CASE": "漏水"}, timeout_s=25)
    sent = await fake_ami.wait_action("Originate")
    assert sent["ActionID"] == action_id and sent["Async"] == "true" and sent["Timeout"] == "25000"
    assert sent["Variable"] in ("FOLLOWUP_ID=wo-42|CASE=漏水", "CASE=漏水|FOLLOWUP_ID=wo-42")
    await events.wait_for(lambda es: any(isinstance(e, OriginateResponse) for e in es))
    response = events.of(OriginateResponse)[0]
    assert response.action_id == action_id and response.success and response.reason == 4


async def test_numbers_outside_go_through_the_trunk_built_by_the_gateway(
    gateway: AmiGateway, agi: AgiScript, fake_ami: FakeAmi
) -> None:
    await gateway.dial_number(CALLER, "13800138000", 30, "g")
    assert agi.commands == ['EXEC Dial "PJSIP/13800138000@trunk,30,g"']
    await gateway.originate_number("02187654321", context="callcenter-outbound", exten="followup", timeout_s=30)
    sent = await fake_ami.wait_action("Originate")
    assert (sent["Channel"], sent["Context"], sent["Exten"]) == ("PJSIP/02187654321@trunk", "callcenter-outbound",
                                                                "followup")


def test_agent_endpoint_is_built_from_an_endpoint_id() -> None:
    assert agent_endpoint("1001") == "PJSIP/1001"
    for bad in ("00882161234567@trunk", "1001/x", "", "a" * 33, "1001\n"):
        with pytest.raises(UnsafeField, match="endpoint"):
            agent_endpoint(bad)


@pytest.mark.parametrize(("mode", "options"), [("listen", "qE"), ("whisper", "qEw"), ("barge", "qEB")])
async def test_chanspy(gateway: AmiGateway, fake_ami: FakeAmi, mode: str, options: str) -> None:
    await gateway.chanspy("PJSIP/9001", "PJSIP/1001-00000002", mode)  # type: ignore[arg-type]
    sent = await fake_ami.wait_action("Originate")
    assert (sent["Channel"], sent["Application"], sent["Data"]) == ("PJSIP/9001", "ChanSpy",
                                                                    f"PJSIP/1001-00000002,{options}")


async def test_mixmonitor_actions(gateway: AmiGateway, fake_ami: FakeAmi) -> None:
    await gateway.mixmonitor(CALLER, "/var/spool/callcenter/recordings/2026/11/23/1732345200.1.wav", "b")
    await gateway.mixmonitor_mute(CALLER, "read", True)
    await gateway.stop_mixmonitor(CALLER)
    start, mute = await fake_ami.wait_action("MixMonitor"), await fake_ami.wait_action("MixMonitorMute")
    assert start["File"].endswith("1732345200.1.wav") and start["Options"] == "b"
    assert (mute["Direction"], mute["State"]) == ("read", "1")
    assert "StopMixMonitor" in fake_ami.session.names()


async def test_core_show_channels(gateway: AmiGateway) -> None:
    assert [c.channel for c in await gateway.core_show_channels()] == ["PJSIP/trunk-00000001", "PJSIP/1001-00000002"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda g: g.answer("PJSIP/trunk-1\r\nAction: Originate"), "channel"),
        (lambda g: g.get_data(CALLER, "../../etc/passwd", 5000, 1), "prompt"),
        (lambda g: g.get_data(CALLER, "menu file", 5000, 1), "prompt"),
        (lambda g: g.get_data(CALLER, "menu", 0, 1), "timeout_ms"),
        (lambda g: g.stream_file(CALLER, "menu", '1" EXEC System'), "escape_digits"),
        (lambda g: g.dial(CALLER, "PJSIP/1001,30,G(x)", 15), "endpoint"),
        # An agent's phone is PJSIP/<agent id>: no trunk, no other technology, no lists.
        (lambda g: g.dial(CALLER, "PJSIP/00882161234567@trunk", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "PJSIP/1001/sip:x@evil.example", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "Local/1001@callcenter-outbound", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "SIP/1001", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "PJSIP/1001&PJSIP/1002", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "PJSIP/1001\r\nAction: Originate", 15), "endpoint"),
        (lambda g: g.dial(CALLER, "PJSIP/1001\n", 15), "endpoint"),
        (lambda g: g.dial(CALLER, ["PJSIP/1001"], 15), "endpoint"),
        (lambda g: g.dial(CALLER, 1001, 15), "endpoint"),
        (lambda g: g.dial(CALLER, "PJSIP/" + "1" * 33, 15), "endpoint"),
        # A number outside: digits only; the gateway adds the trunk itself.
        (lambda g: g.dial_number(CALLER, "13800138000@trunk", 30), "number"),
        (lambda g: g.dial_number(CALLER, "PJSIP/00882161234567@trunk", 30), "number"),
        (lambda g: g.dial_number(CALLER, "+8613800138000", 30), "number"),
        (lambda g: g.dial_number(CALLER, "13800138000\r\n", 30), "number"),
        (lambda g: g.dial_number(CALLER, ["13800138000"], 30), "number"),
        (lambda g: g.dial_number(CALLER, 13800138000, 30), "number"),
        (lambda g: g.dial_number(CALLER, "12", 30), "number"),
        (lambda g: g.originate("PJSIP/00882161234567@trunk", application="Playback", data="x"), "endpoint"),
        (lambda g: g.originate("Local/s@callcenter-outbound", context="callcenter-outbound", exten="followup"),
         "endpoint"),
        (lambda g: g.originate(["PJSIP/1001"], application="Playback"), "endpoint"),
        (lambda g: g.originate_number("Local/13800138000@from-trunk", context="x", exten="s"), "number"),
        (lambda g: g.originate_number("1380013800\r\nAction: Hangup", context="x", exten="s"), "number"),
        (lambda g: g.chanspy("PJSIP/00882161234567@trunk", CALLER, "listen"), "supervisor_endpoint"),
        (lambda g: g.chanspy(["PJSIP/9001"], CALLER, "listen"), "supervisor_endpoint"),
        (lambda g: g.atxfer(CALLER, "1002@trunk", "callcenter-consult"), "exten"),
        (lambda g: g.atxfer(CALLER, "", "callcenter-consult"), "exten"),
        (lambda g: g.dial(CALLER, "PJSIP/1001", 15, "g,30"), "options"),
        (lambda g: g.set_variable(CALLER, "A B", "1"), "name"),
        (lambda g: g.set_variable(CALLER, "NOTE", "x\ny"), "value"),
        (lambda g: g.hangup(CALLER, cause=999), "cause"),
        (lambda g: g.originate("PJSIP/2001", context="followup", exten="s", caller_id="1" * 500), "CallerID"),
        (lambda g: g.originate("PJSIP/2001", context="followup", exten="s", caller_id="138\r\nAction: Hangup"),
         "CallerID"),
        (lambda g: g.originate("PJSIP/2001"), "application"),
        (lambda g: g.chanspy("PJSIP/9001", CALLER, "steal"), "mode"),
        (lambda g: g.mixmonitor_mute(CALLER, "sideways", True), "direction"),
        (lambda g: g.mixmonitor(CALLER, "/tmp/../etc/x.wav"), "file"),
    ],
)
async def test_unsafe_arguments_are_refused_before_sending(
    gateway: AmiGateway, fake_ami: FakeAmi, call: Callable[[AmiGateway], Awaitable[object]], field: str
) -> None:
    before = len(fake_ami.session.actions)
    with pytest.raises(UnsafeField) as caught:
        await call(gateway)
    assert caught.value.field == field
    await asyncio.sleep(0.01)
    assert len(fake_ami.session.actions) == before
