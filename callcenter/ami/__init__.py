"""The AMI adapter: the only code in the engine that speaks to Asterisk's manager interface.

Nothing outside this package sees a panoramisk `Message`: AMI events become the frozen
dataclasses of `events`, actions go out through `AmiGateway` (one method per action, every
field checked), and transport trouble comes back as the errors of `errors`.
"""
from callcenter.ami.connection import AmiConnection, AmiStats
from callcenter.ami.errors import (
    AgiCommandFailed,
    AmiActionFailed,
    AmiError,
    AmiTimeout,
    AmiUnavailable,
    ChannelGone,
    MalformedMessage,
    UnsafeField,
)
from callcenter.ami.events import ENGINE_EVENTS, AgiResult, ChannelSnapshot, Event, parse_event
from callcenter.ami.gateway import AmiGateway

__all__ = [
    "ENGINE_EVENTS",
    "AgiCommandFailed",
    "AgiResult",
    "AmiActionFailed",
    "AmiConnection",
    "AmiError",
    "AmiGateway",
    "AmiStats",
    "AmiTimeout",
    "AmiUnavailable",
    "ChannelGone",
    "ChannelSnapshot",
    "Event",
    "MalformedMessage",
    "UnsafeField",
    "parse_event",
]
