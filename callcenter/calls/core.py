"""What the life of a call is made of: its phases, how each ends, and where an adopted call
stands. Pure: no I/O. The life itself, as a table of events and commands, is
calls/machine.py.

- The disposition says how a call ended, from the phase it ended in and what ended it:
  IVR → abandoned_in_ivr; waiting or ringing → abandoned_in_queue; talking or survey →
  answered; a menu message that ends the call → message_only; a callback taken → callback;
  a failure of ours → failed; Asterisk shutting down or restarting under it → cut_by_pbx
  (left out of the abandon and hang-up-first figures: nobody chose to leave).
- A ring that is not answered has the ACD's reason from Asterisk's DIALSTATUS: CHANUNAVAIL
  (no contact to send the INVITE to, or the phone's transport failed) is "unreachable", a
  phone that is not there, not an agent who did not pick up.
- An adopted call resumes where Asterisk's snapshot shows the caller (`adoption`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    ARRIVED = "arrived"
    IVR = "ivr"
    WAITING = "waiting"
    RINGING = "ringing"
    TALKING = "talking"
    SURVEY = "survey"
    LEAVING = "leaving"          # the engine hung the caller up; waiting for the channel to go
    ENDED = "ended"
    HANDED_OVER = "handed_over"  # another engine carries the call on; its record stays open


CUT_BY_PBX = "cut_by_pbx"

P = Phase
DISPOSITION_BY_PHASE: dict[Phase, str] = {
    P.ARRIVED: "abandoned_in_ivr",
    P.IVR: "abandoned_in_ivr",
    P.WAITING: "abandoned_in_queue",
    P.RINGING: "abandoned_in_queue",
    P.TALKING: "answered",
    P.SURVEY: "answered",
}


def disposition(phase_before_end: Phase, how: str) -> str:
    """How a call ended, from the last phase it was in and what ended it."""
    if how == "failed":
        return "failed"
    if how == "message_done":
        return "message_only"
    if how == "callback":
        return "callback"
    return DISPOSITION_BY_PHASE.get(phase_before_end, "failed")


RING_FAILURES = {"NOANSWER": "no_answer", "BUSY": "busy", "CHANUNAVAIL": "unreachable",
                 "CONGESTION": "unavailable", "CANCEL": "no_answer", "DONTCALL": "unavailable",
                 "TORTURE": "unavailable", "INVALIDARGS": "unavailable", "": "no_answer"}


def ring_failure(dial_status: str) -> str:
    """The ACD's reason for a ring that was not answered, from Asterisk's DIALSTATUS."""
    return RING_FAILURES.get(dial_status.upper(), "unavailable")


END_NOTES = "callcenter_ended"   # the AstDB family of the dialplan's notes (asterisk/extensions.conf)


@dataclass(frozen=True)
class EndNote:
    """Asterisk's note of a call's end (the dialplan's `h` extension): its time (epoch seconds,
    Asterisk's clock) and who hung up first, when the note says."""

    at: float
    hung_up_by: str | None


def read_end_note(value: str | None, caller_channel: str) -> EndNote | None:
    """``1733065200.123|PJSIP/1001-00000002`` → EndNote(1733065200.123, "agent"): the channel
    that hung up first is the caller's own ("caller") or another, the agent's phone ("agent")."""
    if not value:
        return None
    when, _, source = value.partition("|")
    try:
        at = float(when)
    except ValueError:
        return None
    source = source.strip()
    who = None if not source else "caller" if source == caller_channel else "agent"
    return EndNote(at, who)


@dataclass(frozen=True)
class Adoption:
    """What a surviving engine does with a call whose engine is gone: where the caller picks
    up again (ENDED: the caller is gone, only the record is left to close), the agent's
    channel when they are talking, and agents' phones still ringing for the dead engine."""

    resume: Phase
    agent_channel: str | None = None
    hang_up: tuple[str, ...] = ()


def adoption(channel: str, linkedid: str, *, queued: bool, agent_answered: bool,
             channels: Mapping[str, tuple[str, str]]) -> Adoption:
    """Where an orphaned call stands, from its record and Asterisk's snapshot (`channels`:
    {channel: (linkedid, bridge id)}). An agent leg is a channel of the same call (linkedid);
    bridged with the caller it is the talk, not bridged it is a phone still ringing."""
    if channel not in channels:
        return Adoption(Phase.ENDED)
    bridge = channels[channel][1]
    legs = sorted(ch for ch, (linked, _) in channels.items() if linked == linkedid and ch != channel)
    talking = [ch for ch in legs if bridge and channels[ch][1] == bridge]
    if talking:
        return Adoption(Phase.TALKING, agent_channel=talking[0])
    if legs:
        return Adoption(Phase.WAITING, hang_up=tuple(legs))
    if agent_answered:
        return Adoption(Phase.SURVEY)
    return Adoption(Phase.WAITING if queued else Phase.IVR)
