"""A real `Engine` on the fake AMI server (tests/ami/fake_ami.py): calls come in as AMI
events, and what the engine sends Asterisk (AGI commands, Originates) is kept for the test
to read. The AGI script answers every command at once except Dial, which stays pending (the
agent's phone rings, then the talk) until the test returns it (`dial_returns`) or the
caller's channel hangs up."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.engine import Engine
from callcenter.config import AgentSettings, Settings
from callcenter.ivr.model import load_menu
from tests.ami.conftest import fast_settings
from tests.ami.fake_ami import FakeAmi, FakeSession, agi_exec

SHORT_MENU = Path(__file__).parent.parent / "e2e" / "short_menu.yaml"
CALLER = "PJSIP/trunk-00000001"
CALLER_ID = "1732345200.1"


def agent(agent_id: str, **extra: Any) -> AgentSettings:
    return AgentSettings(id=agent_id, sip_password="sip-password-1", **extra)  # type: ignore[arg-type]


def line_settings(settings: Settings, port: int, agents: list[AgentSettings]) -> Settings:
    """The test settings on the fake AMI, with these agents and no recording."""
    return settings.model_copy(update={
        "ami": fast_settings(port),
        "agents": agents,
        "recording": settings.recording.model_copy(update={"enabled": False}),
    })


class FakeLine:
    def __init__(self, fake: FakeAmi, engine: Engine) -> None:
        self.fake, self.engine = fake, engine
        self.commands: list[str] = []          # AGI commands, in the order they came
        self.digits = "2"                      # what the caller presses in the menu (2: leak)
        self.originate_answered = False        # Asterisk's verdict on each Originate
        self._dials: list[dict[str, str]] = []  # Dial commands not returned yet
        fake.replies["AGI"] = self._agi
        fake.replies["Originate"] = self._originate

    def _originate(self, session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        verdict = ({"Response": "Success", "Reason": "4", "Uniqueid": "1732345300.7"} if self.originate_answered
                   else {"Response": "Failure", "Reason": "5", "Uniqueid": "<null>"})
        return [{"Response": "Success", "ActionID": action["ActionID"], "Message": "Originate successfully queued"},
                {"Event": "OriginateResponse", "Privilege": "call,all", "ActionID": action["ActionID"],
                 "Channel": action["Channel"], "Context": action.get("Context", ""), "Exten": action.get("Exten", ""),
                 **verdict}]

    def _agi(self, session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        command = action["Command"]
        self.commands.append(command)
        queued: list[dict[str, str] | str] = [{"Response": "Success", "ActionID": action["ActionID"],
                                               "Message": "Added AGI command to queue"}]
        if command.startswith("EXEC Dial"):
            self._dials.append(action)
            return queued   # the phone rings until the test says otherwise
        reply = f"200 result={self.digits}" if command.startswith("GET DATA") else "200 result=0"
        return [*queued, agi_exec(action["Channel"], CALLER_ID, action["CommandID"], reply)]

    # --- what Asterisk tells the engine --------------------------------------------------

    def call_in(self, caller_number: str = "13800138000", channel: str = CALLER, uniqueid: str = CALLER_ID,
                args: tuple[str, ...] = ("inbound",)) -> None:
        """A channel enters AsyncAGI: a citizen's call (inbound), or an answered Originate of
        the engine's (args: purpose, id, engine id, as the callcenter-outbound dialplan)."""
        env = {"agi_request": "async", "agi_channel": channel, "agi_uniqueid": uniqueid,
               "agi_callerid": caller_number, "agi_calleridname": "", "agi_extension": "96666",
               "agi_dnid": "96666", "agi_context": "from-trunk"}
        env.update({f"agi_arg_{n}": arg for n, arg in enumerate(args, 1)})
        text = "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"
        self.fake.session.send({"Event": "AsyncAGIStart", "Privilege": "agi,all", "Channel": channel,
                                "Uniqueid": uniqueid, "Linkedid": uniqueid, "Env": quote(text, safe="")})

    def _dial_event(self, agent_channel: str, channel: str, uniqueid: str) -> dict[str, str]:
        return {"Privilege": "call,all", "Channel": channel, "Uniqueid": uniqueid, "Linkedid": uniqueid,
                "DestChannel": agent_channel, "DestUniqueid": "1732345200.2", "DestLinkedid": uniqueid}

    def phone_rings(self, agent_channel: str, channel: str = CALLER, uniqueid: str = CALLER_ID) -> None:
        self.fake.session.send({"Event": "DialBegin", **self._dial_event(agent_channel, channel, uniqueid),
                                "DialString": agent_channel.split("-")[0]})

    def dial_ends(self, agent_channel: str, status: str, channel: str = CALLER, uniqueid: str = CALLER_ID) -> None:
        self.fake.session.send({"Event": "DialEnd", **self._dial_event(agent_channel, channel, uniqueid),
                                "DialStatus": status})

    def agent_answers(self, agent_channel: str, channel: str = CALLER, uniqueid: str = CALLER_ID) -> None:
        self.phone_rings(agent_channel, channel, uniqueid)
        self.dial_ends(agent_channel, "ANSWER", channel, uniqueid)

    def dial_returns(self, result: str = "0") -> None:
        """The oldest pending Dial comes back (the ring or the talk is over); -1: the caller left."""
        action = self._dials.pop(0)
        self.fake.session.send(agi_exec(action["Channel"], CALLER_ID, action["CommandID"], f"200 result={result}"))

    def hang_up(self, channel: str = CALLER, uniqueid: str = CALLER_ID) -> None:
        self.fake.session.send({"Event": "Hangup", "Privilege": "call,all", "Channel": channel,
                                "Uniqueid": uniqueid, "Linkedid": uniqueid, "Cause": "16",
                                "Cause-txt": "Normal Clearing"})

    # --- what the engine told Asterisk ---------------------------------------------------

    def sent(self, name: str) -> list[dict[str, str]]:
        return [a for s in self.fake.sessions for a in s.actions if a.get("Action") == name]

    def dials(self) -> list[str]:
        return [c for c in self.commands if c.startswith("EXEC Dial")]

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """A bounded wait for something the engine does in its own tasks."""
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 (bounded by the timeout)
                await asyncio.sleep(0.005)

    async def dial_sent(self) -> str:
        await self.until(lambda: bool(self.dials()))
        return self.dials()[-1]


@asynccontextmanager
async def running_line(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                       agents: list[AgentSettings]) -> AsyncIterator[FakeLine]:
    fake = FakeAmi()
    await fake.start()
    engine = Engine(line_settings(settings, fake.port, agents), sessionmaker, load_menu(SHORT_MENU),
                    engine_id="fake-line")
    line = FakeLine(fake, engine)
    try:
        await engine.start(wait_s=5)
        yield line
    finally:
        await engine.stop()
        await fake.close()
