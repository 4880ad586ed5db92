"""AMI events as frozen dataclasses: the edge where Asterisk's text becomes engine data.

`parse_event(fields)` turns the header fields of one AMI event into one of the classes
below, returns None for an event the engine does not use, and raises `MalformedMessage`
(naming the event and the field) for one it uses but cannot read. Two events are made by
the adapter itself, not by Asterisk: `Disconnected` and `Reconnected`.

Every event has `call_key`: the Linkedid (the oldest channel of the call) where Asterisk
gives one, else the Uniqueid, else "" (system events). The connection delivers the events
of one call_key in wire order and different calls concurrently.

`ENGINE_EVENTS` lists the AMI event names parsed here; manager.conf's eventfilter is written
from it so Asterisk does not send what nobody reads.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

from callcenter.ami.errors import MalformedMessage

Fields = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Event:
    @property
    def call_key(self) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class ChannelEvent(Event):
    channel: str
    uniqueid: str
    linkedid: str

    @property
    def call_key(self) -> str:
        return self.linkedid or self.uniqueid


# --- the adapter's own events ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    """The AMI connection is gone; events may be missing until `Reconnected`."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected(Event):
    """The AMI connection is back after `Disconnected`; rebuild live state from a snapshot."""

    downtime_s: float
    attempts: int


# --- system ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FullyBooted(Event):
    status: str
    uptime_s: int


@dataclass(frozen=True, slots=True)
class Shutdown(Event):
    """Asterisk is going down (`restart`: it comes back by itself), after hanging up its calls.
    `at`: Asterisk's own time (epoch seconds; with timestampevents), None without it."""

    cleanly: bool
    restart: bool
    at: float | None = None


# --- agents' phones --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ContactStatus(Event):
    """A phone's contact changed: registered (Created), answered qualify (Reachable), did not
    (Unreachable), unregistered or expired (Removed), re-registered (Updated)."""

    aor: str
    uri: str
    status: str
    endpoint_name: str


@dataclass(frozen=True, slots=True)
class EndpointList(Event):
    """One endpoint as PJSIPShowEndpoints lists it (the phones' snapshot): `device_state`
    is "Unavailable" when none of its contacts is reachable; `contacts` "aor/uri,..."."""

    action_id: str
    endpoint: str
    device_state: str
    contacts: str


@dataclass(frozen=True, slots=True)
class EndpointListComplete(Event):
    action_id: str
    listed: int


# --- AsyncAGI --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AgiResult:
    """One AGI reply: ``200 result=1 (timeout) endpos=1234`` → code 200, result "1",
    data "timeout", extra "endpos=1234"."""

    code: int
    result: str
    data: str
    extra: str
    raw: str


@dataclass(frozen=True, slots=True)
class AsyncAGIStart(ChannelEvent):
    """A channel entered AsyncAGI: a caller the engine now drives."""

    env: Mapping[str, str]
    caller_number: str  # as Asterisk gives it; clean with fields.clean_caller_number to store
    caller_name: str
    extension: str
    dnid: str


@dataclass(frozen=True, slots=True)
class AsyncAGIExec(ChannelEvent):
    command_id: str
    code: int
    result: str
    data: str
    extra: str
    raw: str

    @property
    def agi_result(self) -> AgiResult:
        return AgiResult(self.code, self.result, self.data, self.extra, self.raw)


@dataclass(frozen=True, slots=True)
class AsyncAGIEnd(ChannelEvent):
    pass


# --- channels --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Newchannel(ChannelEvent):
    state: str
    caller_number: str
    caller_name: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class Newstate(ChannelEvent):
    state: str
    caller_number: str
    connected_number: str
    connected_name: str


@dataclass(frozen=True, slots=True)
class Hangup(ChannelEvent):
    cause: int
    cause_txt: str
    at: float | None = None   # when Asterisk hung the channel up (epoch seconds; timestampevents)


# Why Asterisk soft-hangs a channel up (its AST_SOFTHANGUP_* bits); SHUTDOWN: Asterisk stops.
SOFTHANGUP_SHUTDOWN = 0x04


@dataclass(frozen=True, slots=True)
class SoftHangupRequest(ChannelEvent):
    """Asterisk was asked to hang the channel up; `cause` carries the AST_SOFTHANGUP_* bits."""

    cause: int

    @property
    def by_shutdown(self) -> bool:
        return bool(self.cause & SOFTHANGUP_SHUTDOWN)


@dataclass(frozen=True, slots=True)
class DialBegin(ChannelEvent):
    """Channel fields are "" when the dial has no calling channel (an Originate)."""

    dest_channel: str
    dest_uniqueid: str
    dest_linkedid: str
    dial_string: str

    @property
    def call_key(self) -> str:
        return self.linkedid or self.dest_linkedid or self.dest_uniqueid


@dataclass(frozen=True, slots=True)
class DialEnd(ChannelEvent):
    dest_channel: str
    dest_uniqueid: str
    dest_linkedid: str
    dial_status: str  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL ...

    @property
    def call_key(self) -> str:
        return self.linkedid or self.dest_linkedid or self.dest_uniqueid


@dataclass(frozen=True, slots=True)
class BridgeEnter(ChannelEvent):
    bridge_id: str
    bridge_type: str
    bridge_num_channels: int


@dataclass(frozen=True, slots=True)
class BridgeLeave(ChannelEvent):
    bridge_id: str
    bridge_type: str
    bridge_num_channels: int


@dataclass(frozen=True, slots=True)
class DTMFEnd(ChannelEvent):
    digit: str
    direction: str  # Received (from the channel's far end) or Sent
    duration_ms: int


# --- recording -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MixMonitorStart(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class MixMonitorStop(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class MixMonitorMute(ChannelEvent):
    direction: str  # read, write or both
    state: bool


# --- originate and snapshots -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OriginateResponse(Event):
    action_id: str
    response: str  # Success or Failure
    channel: str
    reason: int  # 4 answered, 5 busy, 3 no answer, 8 congestion, 0/1 failed
    uniqueid: str  # "" when no channel was made
    context: str
    exten: str

    @property
    def success(self) -> bool:
        return self.response == "Success"

    @property
    def call_key(self) -> str:
        return self.uniqueid


@dataclass(frozen=True, slots=True)
class CoreShowChannel(ChannelEvent):
    """One live channel as CoreShowChannels reports it (the state snapshot)."""

    action_id: str
    state: str
    caller_number: str
    caller_name: str
    connected_number: str
    connected_name: str
    context: str
    exten: str
    priority: int
    bridge_id: str
    application: str
    application_data: str
    duration_s: int


ChannelSnapshot = CoreShowChannel


@dataclass(frozen=True, slots=True)
class CoreShowChannelsComplete(Event):
    action_id: str
    listed_channels: int


@dataclass(frozen=True, slots=True)
class DBGetResponse(Event):
    """One AstDB entry, the answer to a DBGet."""

    action_id: str
    family: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DBGetComplete(Event):
    """The end of a DBGet's list (listed here so the eventfilter lets it through)."""

    action_id: str


# --- parsing ---------------------------------------------------------------------------

def _int(f: Fields, key: str, default: int | None = None) -> int:
    raw = f.get(key)
    if raw is None or raw == "":
        if default is None:
            raise KeyError(key)
        return default
    try:
        return int(raw)
    except ValueError:
        raise MalformedMessage(f.get("Event", ""), key, f"is not a whole number: {raw[:40]!r}") from None


def _unquote(f: Fields, key: str) -> str:
    try:
        return unquote(f[key], errors="strict")
    except UnicodeDecodeError:
        raise MalformedMessage(f["Event"], key, "is not URL-encoded UTF-8") from None


def _duration_s(f: Fields) -> int:
    raw = f.get("Duration", "")
    if not raw:
        return 0
    try:
        seconds = 0
        for part in raw.split(":"):
            seconds = seconds * 60 + int(part)
        return seconds
    except ValueError:
        raise MalformedMessage("CoreShowChannel", "Duration", f"is not HH:MM:SS: {raw[:40]!r}") from None


def parse_agi_reply(text: str, event: str = "AsyncAGIExec", field: str = "Result") -> AgiResult:
    """``200 result=1 (timeout) endpos=5`` → AgiResult. A reply without a code is malformed."""
    raw = text.strip()
    code_text, _, rest = raw.partition(" ")
    if len(code_text) >= 3 and code_text[3:4] == "-":  # "520-Invalid command syntax..."
        code_text, rest = code_text[:3], raw[4:]
    if not code_text.isdigit():
        raise MalformedMessage(event, field, f"has no AGI reply code: {raw[:60]!r}")
    code = int(code_text)
    if code != 200 or not rest.startswith("result="):
        return AgiResult(code, "", rest, "", raw)
    value, _, after = rest[7:].partition(" ")
    after = after.strip()
    data = ""
    if after.startswith("("):
        close = after.find(")")
        if close >= 0:
            data, after = after[1:close], after[close + 1 :].strip()
    return AgiResult(code, value, data, after, raw)


def _env(f: Fields) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _unquote(f, "Env").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            env[key.strip()] = value
        elif line.strip().endswith(":"):
            env[line.strip()[:-1]] = ""
    return env


def _async_agi_start(f: Fields) -> AsyncAGIStart:
    env = _env(f)
    return AsyncAGIStart(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), MappingProxyType(env),
        env.get("agi_callerid", ""), env.get("agi_calleridname", ""),
        env.get("agi_extension", ""), env.get("agi_dnid", ""),
    )


def _async_agi_exec(f: Fields) -> AsyncAGIExec:
    r = parse_agi_reply(_unquote(f, "Result"))
    return AsyncAGIExec(
        # Asterisk 22 spells it CommandId in the event (the AGI action takes CommandID).
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f.get("CommandId") or f.get("CommandID", ""),
        r.code, r.result, r.data, r.extra, r.raw,
    )


def _dial_begin(f: Fields) -> DialBegin:
    return DialBegin(
        f.get("Channel", ""), f.get("Uniqueid", ""), f.get("Linkedid", ""),
        f["DestChannel"], f["DestUniqueid"], f.get("DestLinkedid", ""), f.get("DialString", ""),
    )


def _dial_end(f: Fields) -> DialEnd:
    return DialEnd(
        f.get("Channel", ""), f.get("Uniqueid", ""), f.get("Linkedid", ""),
        f["DestChannel"], f["DestUniqueid"], f.get("DestLinkedid", ""), f["DialStatus"],
    )


def _bridge(cls: type[BridgeEnter] | type[BridgeLeave]) -> Callable[[Fields], Event]:
    def build(f: Fields) -> Event:
        return cls(
            f["Channel"], f["Uniqueid"], f.get("Linkedid", ""),
            f["BridgeUniqueid"], f.get("BridgeType", ""), _int(f, "BridgeNumChannels", 0),
        )
    return build


def _plain(cls: type[AsyncAGIEnd] | type[MixMonitorStart] | type[MixMonitorStop]) -> Callable[[Fields], Event]:
    def build(f: Fields) -> Event:
        return cls(f["Channel"], f["Uniqueid"], f.get("Linkedid", ""))
    return build


def _timestamp(f: Fields) -> float | None:
    """The event's Timestamp (manager.conf timestampevents = yes), None when absent or odd."""
    try:
        return float(f["Timestamp"])
    except (KeyError, ValueError):
        return None


def _uniqueid_or_empty(value: str) -> str:
    return "" if value in ("", "<null>", "(null)") else value


_BUILDERS: dict[str, Callable[[Fields], Event]] = {
    "FullyBooted": lambda f: FullyBooted(f.get("Status", ""), _int(f, "Uptime", 0)),
    "ContactStatus": lambda f: ContactStatus(
        f["AOR"], f.get("URI", ""), f["ContactStatus"], f.get("EndpointName", ""),
    ),
    "EndpointList": lambda f: EndpointList(
        f.get("ActionID", ""), f["ObjectName"], f.get("DeviceState", ""), f.get("Contacts", ""),
    ),
    "EndpointListComplete": lambda f: EndpointListComplete(f.get("ActionID", ""), _int(f, "ListItems", 0)),
    "AsyncAGIStart": _async_agi_start,
    "AsyncAGIExec": _async_agi_exec,
    "AsyncAGIEnd": _plain(AsyncAGIEnd),
    "Newchannel": lambda f: Newchannel(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f.get("ChannelStateDesc", ""),
        f.get("CallerIDNum", ""), f.get("CallerIDName", ""), f.get("Context", ""), f.get("Exten", ""),
    ),
    "Newstate": lambda f: Newstate(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f["ChannelStateDesc"],
        f.get("CallerIDNum", ""), f.get("ConnectedLineNum", ""), f.get("ConnectedLineName", ""),
    ),
    "Hangup": lambda f: Hangup(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), _int(f, "Cause"), f.get("Cause-txt", ""), _timestamp(f),
    ),
    "SoftHangupRequest": lambda f: SoftHangupRequest(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), _int(f, "Cause", 0),
    ),
    "Shutdown": lambda f: Shutdown(
        f.get("Shutdown", "").lower() == "cleanly", f.get("Restart", "").lower() == "true", _timestamp(f),
    ),
    "DialBegin": _dial_begin,
    "DialEnd": _dial_end,
    "BridgeEnter": _bridge(BridgeEnter),
    "BridgeLeave": _bridge(BridgeLeave),
    "DTMFEnd": lambda f: DTMFEnd(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f["Digit"], f.get("Direction", ""),
        _int(f, "DurationMs", 0),
    ),
    "MixMonitorStart": _plain(MixMonitorStart),
    "MixMonitorStop": _plain(MixMonitorStop),
    "MixMonitorMute": lambda f: MixMonitorMute(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f.get("Direction", ""), f["State"] == "1",
    ),
    "OriginateResponse": lambda f: OriginateResponse(
        f.get("ActionID", ""), f["Response"], f.get("Channel", ""), _int(f, "Reason", 0),
        _uniqueid_or_empty(f.get("Uniqueid", "")), f.get("Context", ""), f.get("Exten", ""),
    ),
    "CoreShowChannel": lambda f: CoreShowChannel(
        f["Channel"], f["Uniqueid"], f.get("Linkedid", ""), f.get("ActionID", ""),
        f.get("ChannelStateDesc", ""), f.get("CallerIDNum", ""), f.get("CallerIDName", ""),
        f.get("ConnectedLineNum", ""), f.get("ConnectedLineName", ""), f.get("Context", ""),
        f.get("Exten", ""), _int(f, "Priority", 0), f.get("BridgeId", ""), f.get("Application", ""),
        f.get("ApplicationData", ""), _duration_s(f),
    ),
    "DBGetResponse": lambda f: DBGetResponse(f.get("ActionID", ""), f.get("Family", ""), f.get("Key", ""),
                                             f.get("Val", "")),
    "DBGetComplete": lambda f: DBGetComplete(f.get("ActionID", "")),
    "CoreShowChannelsComplete": lambda f: CoreShowChannelsComplete(
        f.get("ActionID", ""), _int(f, "ListItems", 0),
    ),
}

ENGINE_EVENTS: tuple[str, ...] = tuple(_BUILDERS)


def parse_event(fields: Fields) -> Event | None:
    """The event these AMI fields carry; None for an event the engine does not use.

    Raises `MalformedMessage` naming the event and the field when a field the engine needs
    is missing or unreadable.
    """
    name = fields.get("Event")
    if not name:
        raise MalformedMessage("", "Event", "is missing")
    build = _BUILDERS.get(name)
    if build is None:
        return None
    try:
        return build(fields)
    except KeyError as exc:
        raise MalformedMessage(name, str(exc.args[0]), "is missing") from None
