"""The AMI wire protocol: panoramisk's `AMIProtocol` with a faster reader and no replay.

Kept from panoramisk: the transport handling of `AMIProtocol` and its `Action` (action ids,
the wire format). Replaced, because they are the hot path or the pitfalls:

- the reader: bytes are split into messages and each message into a plain dict in one pass
  (panoramisk builds a case-insensitive `Message` per event and matches every event against
  every registered fnmatch pattern);
- response matching: an action waits for exactly what it asked for — one response, or for a
  list action (`as_list`) the events up to ``...Complete``; a list action answered with
  ``Response: Error`` ends there (in panoramisk it would wait forever);
- on connection loss nothing is queued for replay (panoramisk re-sends every pending action
  on the next FullyBooted, an Originate included); the owner fails pending actions instead.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami.errors import MalformedMessage

log = logging.getLogger(__name__)

SEPARATOR = b"\r\n\r\n"
BANNER = b"Asterisk Call Manager/"

Fields = dict[str, str]
Reply = Fields | list[Fields]


# Asterisk writes a caller ID into event headers as it is, line breaks included, so a caller
# can add header lines to the events we read (seen on Asterisk 22: a From user of
# "1380%0D%0AChannel%3A%20PJSIP%2F1001" gives an event with two Channel headers). Only the
# text after CallerIDNum/CallerIDName/ConnectedLine* can be forged: headers Asterisk writes
# before them are genuine in their first occurrence, the ones it writes after them in their
# last.
FIRST_WINS = frozenset({"Event", "Privilege", "Response", "ActionID", "Channel", "ChannelState",
                        "ChannelStateDesc"})


def resolve_repeated(lines: list[str]) -> Fields:
    """Fields of a message with a repeated header: each header's genuine occurrence."""
    fields: Fields = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not (sep and key):
            continue
        if key in FIRST_WINS and key in fields:
            continue
        fields[key] = value[1:] if value.startswith(" ") else value
    return fields


def read_fields(lines: list[str]) -> Fields:
    """The slow path for messages the fast split refuses: empty lines, ``Key:`` without value,
    stray lines without a colon (skipped)."""
    fields: Fields = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key:
            fields[key] = value[1:] if value.startswith(" ") else value
    return fields


def _keys(lines: list[str]) -> list[str]:
    return [line.partition(":")[0] for line in lines if ":" in line]


def _undecodable(block: bytes) -> MalformedMessage:
    """Which event and which field hold the bytes that are not UTF-8."""
    event, field = "", "?"
    for line in block.split(b"\r\n"):
        key, _, value = line.partition(b": ")
        if key == b"Event":
            event = value.decode("utf-8", "replace")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            if field == "?":
                field = key.decode("ascii", "replace")
    return MalformedMessage(event, field, "is not valid UTF-8")


class AmiProtocol(AMIProtocol):
    """One TCP connection to AMI. Events go to `on_event(fields)`, malformed messages to
    `on_malformed(error)`, the end of the connection to `on_lost(reason)`."""

    version: str | None
    closed: bool

    def __init__(
        self,
        on_event: Callable[[Fields], None],
        on_malformed: Callable[[MalformedMessage], None],
        on_lost: Callable[[str], None],
        max_message_bytes: int,
    ) -> None:
        self._on_event = on_event
        self._on_malformed = on_malformed
        self._on_lost = on_lost
        self._max_message_bytes = max_message_bytes
        self._buffer = b""
        self.repeated_headers = 0   # messages whose caller ID carried header lines
        self.pending: dict[str, actions.Action] = {}
        self._lists: dict[str, actions.Action] = {}

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self._buffer = b""

    # --- reading -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
        if self.version is None:
            if len(data) < len(BANNER) and BANNER.startswith(data):
                self._buffer = data  # the banner is still arriving
                return
            if data.startswith(BANNER):
                line, sep, rest = data.partition(b"\r\n")
                if not sep:
                    self._buffer = data
                    return
                self.version = line[len(BANNER):].decode("ascii", "replace").strip()
                log.info("AMI protocol version %s", self.version)
                data = rest
            else:
                self.version = ""  # no banner: read on (a proxy, or bytes fed by a test)
        blocks = data.split(SEPARATOR)
        self._buffer = blocks.pop()
        if len(self._buffer) > self._max_message_bytes:
            self._on_malformed(MalformedMessage("", "(message)", f"exceeds {self._max_message_bytes} bytes "
                                                "without an end; the stream is out of step"))
            self._buffer = b""
            self.abort("AMI stream out of step (over-long message)")
            return
        on_event = self._on_event
        lists = self._lists
        for block in blocks:
            try:
                lines = block.decode("utf-8").split("\r\n")
            except UnicodeDecodeError:
                self._on_malformed(_undecodable(block))
                continue
            try:
                fields = dict([line.split(": ", 1) for line in lines])
            except ValueError:
                fields = read_fields(lines)
                if not fields:
                    continue
            if len(fields) < len(lines) and len(set(_keys(lines))) < len(lines):
                fields = resolve_repeated(lines)
                self.repeated_headers += 1
                log.warning("AMI %s with repeated headers (a caller ID with line breaks?): genuine ones kept",
                            fields.get("Event") or fields.get("Response"))
            if "Event" in fields:
                if lists and fields.get("ActionID") in lists:
                    self._list_item(fields)
                else:
                    on_event(fields)
            elif "Response" in fields:
                self._response(fields)
            else:
                log.debug("AMI message neither event nor response skipped: %s", sorted(fields))

    def _response(self, fields: Fields) -> None:
        action_id = fields.get("ActionID", "")
        action = self.pending.get(action_id)
        if action is None:
            log.debug("AMI response for no waiting action (late after a timeout?): %s", action_id)
            return
        if action.as_list and fields.get("Response") == "Success":
            action.responses.append(fields)
            return
        self._finish(action_id, fields)

    def _list_item(self, fields: Fields) -> None:
        action_id = fields["ActionID"]
        action = self._lists[action_id]
        action.responses.append(fields)
        if fields["Event"].endswith("Complete") or fields.get("EventList") == "Complete":
            self._finish(action_id, action.responses)

    def _finish(self, action_id: str, reply: Reply) -> None:
        action = self.pending.pop(action_id)
        self._lists.pop(action_id, None)
        if not action.future.done():
            action.future.set_result(reply)

    # --- writing -----------------------------------------------------------------------

    def send_action(self, fields: dict[str, Any], as_list: bool = False) -> actions.Action:
        """Write one action (fields already checked) and return it; its `future` gets the
        response (or the list of messages for `as_list`)."""
        action = actions.Action(fields, as_list=as_list)
        action_id = action.actionid
        self.pending[action_id] = action
        if as_list:
            self._lists[action_id] = action
        self.transport.write(str(action).encode("utf-8"))
        return action

    def forget(self, action_id: str) -> None:
        self.pending.pop(action_id, None)
        self._lists.pop(action_id, None)

    def fail_pending(self, exc: BaseException) -> int:
        """Fail every action still waiting; nothing is kept for a replay. Returns how many."""
        waiting = list(self.pending.values())
        self.pending.clear()
        self._lists.clear()
        for action in waiting:
            if not action.future.done():
                action.future.set_exception(exc)
                action.future.exception()  # the waiter may have gone: mark it retrieved
        return len(waiting)

    # --- ending ------------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Drop the connection at once (a dead-but-open socket will not flush anyway)."""
        self._on_lost(reason)
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(f"connection lost: {exc}" if exc else "connection closed by Asterisk")

    def eof_received(self) -> bool | None:
        return None
