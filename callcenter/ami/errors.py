"""What can go wrong between the engine and Asterisk, in the engine's words.

Every transport problem the adapter meets is turned into one of these; nothing from
panoramisk, asyncio's transports or the socket layer leaks past `callcenter.ami`.
"""
from __future__ import annotations


class AmiError(Exception):
    """Base of every error the AMI adapter raises."""


class AmiUnavailable(AmiError):
    """No usable AMI connection: not connected, or the connection broke while waiting.

    An action that was in flight when the connection broke is NOT sent again after the
    reconnect (an Originate would place the call twice); the caller decides what to do.
    """


class AmiTimeout(AmiError):
    """Asterisk did not answer an action within its time limit."""

    def __init__(self, action: str, timeout_s: float) -> None:
        super().__init__(f"AMI action {action} got no reply within {timeout_s:g} s")
        self.action = action
        self.timeout_s = timeout_s


class AmiActionFailed(AmiError):
    """Asterisk answered the action with `Response: Error`."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI action {action} failed: {message or 'no message given'}")
        self.action = action
        self.message = message


class ChannelGone(AmiError):
    """The channel hung up (or left AsyncAGI) before the command could finish."""

    def __init__(self, channel: str) -> None:
        super().__init__(f"channel {channel} is gone")
        self.channel = channel


class AgiCommandFailed(AmiError):
    """An AGI command came back with a code other than 200 (510 unknown, 520 usage ...)."""

    def __init__(self, channel: str, command: str, code: int, detail: str) -> None:
        super().__init__(f"AGI command {command!r} on {channel} failed with {code}: {detail}")
        self.channel = channel
        self.command = command
        self.code = code
        self.detail = detail


class UnsafeField(AmiError, ValueError):
    """A field bound for an AMI action could break the protocol (CR, LF, NUL, too long ...)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"unsafe AMI field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class MalformedMessage(AmiError, ValueError):
    """An AMI message that cannot be understood: which event, which field, and why."""

    def __init__(self, event: str, field: str, reason: str) -> None:
        super().__init__(f"malformed AMI message {event or '(unnamed)'}: field {field!r} {reason}")
        self.event = event
        self.field = field
        self.reason = reason
