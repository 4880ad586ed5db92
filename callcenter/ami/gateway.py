"""`AmiGateway`: one small method per action the engine needs, fields checked, domain errors out.

AGI commands go through `AmiConnection.agi` (completion from AsyncAGIExec); plain AMI
actions through `AmiConnection.action`. Every argument is checked against what Asterisk
expects for it (`UnsafeField` names the one that is wrong) before anything is sent; free
text (a variable's value) is quoted for the AGI parser.

What is dialled is checked by its kind, never by a loose character set:
- an agent's phone is ``PJSIP/<endpoint id>`` (an ``[[agents]]`` id: letters, digits, ``_``,
  ``-``; no ``@``, no second ``/``), the endpoints the hotline renders for its agents;
- a number outside goes only through `dial_number` / `originate_number`, which take the
  digits the dial policy accepted (callcenter/calls/dial_policy.py) and build
  ``PJSIP/<digits>@trunk`` themselves;
- a consult target is an agent id of digits (the callcenter-consult context dials it).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from callcenter.ami.connection import AmiConnection
from callcenter.ami.errors import AgiCommandFailed, AmiActionFailed, ChannelGone, UnsafeField
from callcenter.ami.events import AgiResult, ChannelSnapshot, DBGetResponse, EndpointList
from callcenter.ami.fields import check_value

# A caller id shown on the far phone: '"name" <number>' never needs more.
CALLER_ID_MAX = 128

SpyMode = Literal["listen", "whisper", "barge"]
# ChanSpy options: q = no beep/announce, E = end when the spied-on channel hangs up,
# w = whisper to the agent, B = barge (talk to both).
SPY_OPTIONS: dict[str, str] = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}

# The carrier trunk's PJSIP endpoint (callcenter/asterisk_config.py renders it).
TRUNK = "trunk"

_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9]*/[^\s\"\\,;|]+")
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")          # config.AgentSettings.id
MAX_RING_ALL = 100          # the most phones one Dial rings (ring_all_max is at most 100)
_AGENT_ENDPOINT = re.compile(r"PJSIP/[A-Za-z0-9_-]{1,32}")
_NUMBER = re.compile(r"[0-9]{3,20}")
_AGENT_DIGITS = re.compile(r"[0-9]{1,32}")
_PROMPT = re.compile(r"(?!.*\.\.)[A-Za-z0-9_/.-]+")
_DIGITS = re.compile(r"[0-9*#]*")
_APP = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_OPTIONS = re.compile(r"[A-Za-z0-9()^_=:./-]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_()]*")
_DIALPLAN = re.compile(r"[A-Za-z0-9_+*#.-]+")
_MOH_CLASS = re.compile(r"[A-Za-z0-9_-]*")
_FILE = re.compile(r"(?!.*\.\.)[A-Za-z0-9_/.-]+\.[A-Za-z0-9]+")


def _checked(value: str, pattern: re.Pattern[str], field: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UnsafeField(field, f"{str(value)[:40]!r} is not {what}")
    return value


def _bounded(value: int, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeField(field, f"{value!r} is not a whole number from {low} to {high}")
    return value


def contact_uris(item: EndpointList) -> tuple[str, ...]:
    """The URIs of an endpoint's contacts: EndpointList's Contacts is "aor/uri,aor/uri,"."""
    return tuple(part.strip().partition("/")[2] or part.strip() for part in item.contacts.split(",") if part.strip())


def phone_reachable(item: EndpointList) -> bool:
    """A phone is there when the endpoint has a contact and its device state is not
    Unavailable (no contact, or every contact failed qualify)."""
    return bool(contact_uris(item)) and item.device_state.lower() not in ("unavailable", "invalid")


def agent_endpoint(endpoint_id: str) -> str:
    """What Dial rings for an agent's phone: ``PJSIP/<endpoint id>``."""
    return "PJSIP/" + _checked(endpoint_id, _ENDPOINT_ID, "endpoint", "an endpoint id such as 1001")


def _agent_endpoint(endpoint: str, field: str = "endpoint") -> str:
    return _checked(endpoint, _AGENT_ENDPOINT, field, "an agent's phone such as PJSIP/1001")


def _trunk(number: str) -> str:
    """An outside number, through the trunk: digits only (the dial policy accepted them)."""
    return f"PJSIP/{_checked(number, _NUMBER, 'number', 'a number of 3 to 20 digits')}@{TRUNK}"


def new_action_id() -> str:
    """The ActionID of an Originate (its OriginateResponse event carries it)."""
    return f"originate-{uuid.uuid4().hex}"


def quote_agi(value: str, field: str) -> str:
    """Free text as one AGI argument: quoted, with backslash and quote escaped."""
    check_value(field, value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digit(result: AgiResult, channel: str) -> str | None:
    """STREAM FILE / WAIT FOR DIGIT: the digit pressed (result is its ASCII code), or None."""
    if result.result == "-1":
        raise ChannelGone(channel)
    code = int(result.result or "0")
    return chr(code) if code > 0 else None


class AmiGateway:
    def __init__(self, connection: AmiConnection) -> None:
        self.connection = connection
        self._quick = connection.limits.agi_timeout_s

    # --- AGI: driving a caller ---------------------------------------------------------

    async def answer(self, channel: str) -> None:
        result = await self.connection.agi(self._channel(channel), "ANSWER", timeout=self._quick)
        if result.result == "-1":
            raise ChannelGone(channel)

    async def get_data(self, channel: str, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play `prompt` and collect up to `max_digits` digits; None when nothing was pressed."""
        command = (f"GET DATA {_checked(prompt, _PROMPT, 'prompt', 'a prompt file name')} "
                   f"{_bounded(timeout_ms, 'timeout_ms', 1, 600_000)} {_bounded(max_digits, 'max_digits', 1, 64)}")
        result = await self.connection.agi(self._channel(channel), command)
        if result.result == "-1":
            raise ChannelGone(channel)
        if result.result == "" and result.data == "timeout":
            return None
        return result.result

    async def stream_file(self, channel: str, prompt: str, escape_digits: str = "") -> str | None:
        """Play `prompt`; the escape digit that interrupted it, or None when it played out."""
        command = (f"STREAM FILE {_checked(prompt, _PROMPT, 'prompt', 'a prompt file name')} "
                   f"\"{_checked(escape_digits, _DIGITS, 'escape_digits', 'keypad digits')}\"")
        return _digit(await self.connection.agi(self._channel(channel), command), channel)

    async def wait_for_digit(self, channel: str, timeout_ms: int) -> str | None:
        command = f"WAIT FOR DIGIT {_bounded(timeout_ms, 'timeout_ms', 1, 600_000)}"
        result = await self.connection.agi(self._channel(channel), command, timeout=timeout_ms / 1000 + self._quick)
        return _digit(result, channel)

    async def exec_app(self, channel: str, app: str, args: str = "", timeout: float | None = None) -> AgiResult:
        """EXEC a dialplan application; `timeout` None for ones that block (Dial)."""
        command = f"EXEC {_checked(app, _APP, 'app', 'an application name')}"
        if args:
            command += " " + quote_agi(args, "args")
        result = await self.connection.agi(self._channel(channel), command, timeout=timeout)
        if result.result == "-2":
            raise AgiCommandFailed(channel, command, result.code, f"application {app} not found")
        return result

    async def dial(self, channel: str, endpoint: str, timeout_s: int, options: str = "") -> AgiResult:
        """EXEC Dial of an agent's phone (``PJSIP/1001``): returns when the dial (and the
        bridge, if answered) ends. DialEnd, BridgeEnter/Leave and Hangup events say what
        happened."""
        return await self._dial(channel, _agent_endpoint(endpoint), timeout_s, options)

    async def dial_agents(self, channel: str, endpoints: Sequence[str], timeout_s: int,
                          options: str = "") -> AgiResult:
        """EXEC Dial of several agents' phones at once (``PJSIP/1001&PJSIP/1002``, ring_all):
        the first to answer gets the caller and Asterisk stops the others ringing."""
        if not 1 <= len(endpoints) <= MAX_RING_ALL:
            raise UnsafeField("endpoints", f"{len(endpoints)} phones; 1 to {MAX_RING_ALL} ring at once")
        return await self._dial(channel, "&".join(_agent_endpoint(e) for e in endpoints), timeout_s, options)

    async def dial_number(self, channel: str, number: str, timeout_s: int, options: str = "") -> AgiResult:
        """EXEC Dial of a number outside, through the trunk. `number`: digits the dial policy
        accepted (DialPolicy.check)."""
        return await self._dial(channel, _trunk(number), timeout_s, options)

    async def _dial(self, channel: str, target: str, timeout_s: int, options: str) -> AgiResult:
        args = (f"{target},{_bounded(timeout_s, 'timeout_s', 1, 3600)},"
                f"{_checked(options, _OPTIONS, 'options', 'Dial options')}")
        return await self.exec_app(channel, "Dial", args.rstrip(","), timeout=None)

    async def start_moh(self, channel: str, moh_class: str = "") -> None:
        await self.exec_app(channel, "StartMusicOnHold",
                            _checked(moh_class, _MOH_CLASS, "moh_class", "a music-on-hold class"),
                            timeout=self._quick)

    async def stop_moh(self, channel: str) -> None:
        await self.exec_app(channel, "StopMusicOnHold", timeout=self._quick)

    async def set_variable(self, channel: str, name: str, value: str) -> None:
        command = (f"SET VARIABLE {_checked(name, _VARIABLE, 'name', 'a variable name')} "
                   f"{quote_agi(value, 'value')}")
        await self.connection.agi(self._channel(channel), command, timeout=self._quick)

    # --- AMI actions -------------------------------------------------------------------

    async def get_variable(self, channel: str, name: str) -> str:
        """A channel variable's value ("" when it is not set), by the Getvar action."""
        try:
            reply = await self.connection.action({
                "Action": "Getvar", "Channel": self._channel(channel),
                "Variable": _checked(name, _VARIABLE, "name", "a variable name"),
            })
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None
        return reply.get("Value", "")

    async def hangup(self, channel: str, cause: int = 16) -> None:
        try:
            await self.connection.action({"Action": "Hangup", "Channel": self._channel(channel),
                                          "Cause": _bounded(cause, "cause", 1, 127)})
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        try:
            await self.connection.action({
                "Action": "Redirect", "Channel": self._channel(channel),
                "Context": _checked(context, _DIALPLAN, "context", "a dialplan context"),
                "Exten": _checked(exten, _DIALPLAN, "exten", "a dialplan extension"),
                "Priority": _bounded(priority, "priority", 1, 1000),
            })
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def atxfer(self, channel: str, exten: str, context: str) -> None:
        """Attended transfer started for `channel` (the transferer, in a bridge): Asterisk holds
        the other party, calls exten@context for a consult, and completes the transfer when the
        transferer hangs up (features.conf)."""
        try:
            await self.connection.action({
                "Action": "Atxfer", "Channel": self._channel(channel),
                "Exten": _checked(exten, _AGENT_DIGITS, "exten", "an agent id of digits"),
                "Context": _checked(context, _DIALPLAN, "context", "a dialplan context"),
            })
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def originate(self, endpoint: str, **fields: Any) -> str:
        """Place a call to an agent's phone (``PJSIP/1001``); see `_originate`."""
        return await self._originate(_agent_endpoint(endpoint), **fields)

    async def originate_number(self, number: str, **fields: Any) -> str:
        """Place a call to a number outside, through the trunk. `number`: digits the dial
        policy accepted (DialPolicy.check); see `_originate`."""
        return await self._originate(_trunk(number), **fields)

    async def _originate(
        self,
        target: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str = "",
        caller_id: str = "",
        timeout_s: int = 30,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        action_id: str | None = None,
    ) -> str:
        """Place a call (Async: true) and return its ActionID; the OriginateResponse event with
        that ActionID tells how it went (give `action_id` to be ready for it before it is
        sent: a quick failure answers at once). Never sent twice, not even after a reconnect."""
        action_id = action_id or new_action_id()
        fields: dict[str, str | int | list[str]] = {
            "Action": "Originate", "ActionID": action_id, "Async": "true",
            "Channel": target,
            "Timeout": _bounded(timeout_s, "timeout_s", 1, 3600) * 1000,
        }
        if application is not None:
            fields["Application"] = _checked(application, _APP, "application", "an application name")
            fields["Data"] = data
        elif context is not None and exten is not None:
            fields["Context"] = _checked(context, _DIALPLAN, "context", "a dialplan context")
            fields["Exten"] = _checked(exten, _DIALPLAN, "exten", "a dialplan extension")
            fields["Priority"] = _bounded(priority, "priority", 1, 1000)
        else:
            raise UnsafeField("application", "originate needs an application, or a context and an exten")
        if caller_id:
            fields["CallerID"] = check_value("CallerID", caller_id, CALLER_ID_MAX)
        if channel_id is not None:
            fields["ChannelId"] = _checked(channel_id, _DIALPLAN, "channel_id", "a channel id")
        if variables:
            fields["Variable"] = [f"{_checked(k, _VARIABLE, 'variables', 'a variable name')}={v}"
                                  for k, v in variables.items()]
        await self.connection.action(fields)
        return action_id

    async def mixmonitor(self, channel: str, file: str, options: str = "") -> None:
        action: dict[str, str] = {"Action": "MixMonitor", "Channel": self._channel(channel),
                                  "File": _checked(file, _FILE, "file", "a recording file path")}
        if options:
            action["Options"] = _checked(options, _OPTIONS, "options", "MixMonitor options")
        try:
            await self.connection.action(action)
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def stop_mixmonitor(self, channel: str) -> None:
        try:
            await self.connection.action({"Action": "StopMixMonitor", "Channel": self._channel(channel)})
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def mixmonitor_mute(self, channel: str, direction: Literal["read", "write", "both"], state: bool) -> None:
        if direction not in ("read", "write", "both"):
            raise UnsafeField("direction", f"{direction!r} is not read, write or both")
        try:
            await self.connection.action({"Action": "MixMonitorMute", "Channel": self._channel(channel),
                                          "Direction": direction, "State": "1" if state else "0"})
        except AmiActionFailed as exc:
            raise self._gone_or(exc, channel) from None

    async def chanspy(self, supervisor_endpoint: str, target_channel: str, mode: SpyMode) -> str:
        """Ring the supervisor's phone and, when answered, spy on the target: listen,
        whisper (to the agent) or barge. Returns the Originate's ActionID."""
        if mode not in SPY_OPTIONS:
            raise UnsafeField("mode", f"{mode!r} is not listen, whisper or barge")
        return await self.originate(_agent_endpoint(supervisor_endpoint, "supervisor_endpoint"), application="ChanSpy",
                                    data=f"{self._channel(target_channel)},{SPY_OPTIONS[mode]}")

    async def reload_pjsip(self) -> None:
        """Asterisk reads its PJSIP configuration again (the agents' endpoints, rendered into
        callcenter_pjsip.conf from the hotline's directory): a fixed module name, nothing given."""
        await self.connection.action({"Action": "Reload", "Module": "res_pjsip.so"})

    async def core_show_channels(self) -> list[ChannelSnapshot]:
        return await self.connection.snapshot()

    async def db_get(self, family: str, key: str) -> str | None:
        """An AstDB entry's value; None when there is none."""
        try:
            items = await self.connection.action_list({"Action": "DBGet", "Family": family, "Key": key})
        except AmiActionFailed as exc:
            if "not found" in exc.message.lower():
                return None
            raise
        return next((i.value for i in items if isinstance(i, DBGetResponse)), None)

    async def db_del(self, family: str, key: str) -> None:
        try:
            await self.connection.action({"Action": "DBDel", "Family": family, "Key": key})
        except AmiActionFailed as exc:
            if "not found" not in exc.message.lower():
                raise

    async def core_started(self) -> str:
        """When this Asterisk started (CoreStatus' startup date and time): a different answer
        after a reconnect means it restarted meanwhile."""
        reply = await self.connection.action({"Action": "CoreStatus"})
        return f"{reply.get('CoreStartupDate', '')} {reply.get('CoreStartupTime', '')}".strip()

    async def phones(self) -> dict[str, tuple[bool, tuple[str, ...]]]:
        """Every PJSIP endpoint: whether Asterisk can reach its phone now, and its contacts'
        URIs (the snapshot beside ContactStatus events: at connect, after a reconnect, after
        a failed ring)."""
        items = await self.connection.action_list({"Action": "PJSIPShowEndpoints"})
        return {item.endpoint: (phone_reachable(item), contact_uris(item))
                for item in items if isinstance(item, EndpointList)}

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    def _channel(channel: str) -> str:
        return _checked(channel, _CHANNEL, "channel", "a channel name such as PJSIP/1001-00000001")

    @staticmethod
    def _gone_or(exc: AmiActionFailed, channel: str) -> Exception:
        message = exc.message.lower()
        if "no such channel" in message or "does not exist" in message:
            return ChannelGone(channel)
        return exc
