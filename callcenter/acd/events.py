"""What the engine tells the ACD: frozen events, each with `at` (monotonic seconds).

Agent events come from the agent's web page and softphone; call events from the call's
AsyncAGI session and the Dial the engine ran for a `RingAgent`; `WrapUpEnded` is a timer the
ACD asked for with `StartTimer`; `Tick` is time passing (the engine sends one every second or
so: widening, max wait, preferred-agent windows, announcements, callback expiry).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callcenter.acd.settings import RoutingPolicy

RingFailure = Literal["no_answer", "busy", "unavailable", "unreachable", "reserved"]
RING_FAILURES: frozenset[str] = frozenset({"no_answer", "busy", "unavailable", "unreachable", "reserved"})


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    agent_id: str
    endpoint: str                       # what Dial rings, e.g. "PJSIP/1001"
    skills: Mapping[str, int]           # queue name -> skill level 1..10 (higher is better)
    at: float


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentPaused:
    """Agent not ready: break, training, follow_up, meeting, ... ("elsewhere": busy on another
    engine, mirrored). While on a call or in wrap-up the pause waits until wrap-up ends."""

    agent_id: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentReady:
    """Agent ready for calls (from paused, or ending wrap-up early)."""

    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class WrapUpExtended:
    agent_id: str
    seconds: float
    at: float


@dataclass(frozen=True, slots=True)
class WrapUpEnded:
    """The timer from `StartTimer`; `token` tells a stale timer from the current one."""

    agent_id: str
    token: int
    at: float


@dataclass(frozen=True, slots=True)
class CallQueued:
    call_id: str
    queue: str
    at: float
    priority: int = 0
    category: str | None = None          # None: the queue's category
    caller: str | None = None
    preferred_agent: str | None = None   # repeat caller (二次投诉): who took the earlier call
    vip: bool = False
    # A kept-place callback re-entering its line (engine restart, taken over from a dead engine):
    # the number to call back. `at` is then the original arrival, so the place is kept.
    callback_number: str | None = None


@dataclass(frozen=True, slots=True)
class CallPriorityChanged:
    call_id: str
    priority: int                        # the new base priority (bonuses are added on top)
    at: float


@dataclass(frozen=True, slots=True)
class CallLeft:
    """The caller hung up or left the queue before talking to an agent."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller leaves the line but keeps their place; `number` is called back (issue 3)."""

    call_id: str
    number: str
    at: float


@dataclass(frozen=True, slots=True)
class PhoneUnreachable:
    """Asterisk lost the phone behind `endpoint` (what Dial rings, e.g. "PJSIP/1001"): its
    registration was removed or expired, or qualify got no answer. Its agents are not rung
    until `PhoneReachable`. Told again when already known, it changes nothing."""

    endpoint: str
    at: float


@dataclass(frozen=True, slots=True)
class PhoneReachable:
    """The phone behind `endpoint` registered again, or answers qualify again."""

    endpoint: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentRingFailed:
    """The Dial for a `RingAgent`/`PlaceCallback` failed. "reserved": another engine holds
    the agent (see reservation.py); the agent is then treated as paused "elsewhere".
    "unreachable": the phone was not there (no contact, or it vanished mid-ring); the agent
    stays available but is not rung until the phone is reachable again, and it does not
    count as a no-answer."""

    call_id: str
    agent_id: str
    reason: RingFailure
    at: float


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    call_id: str
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Talk between caller and agent is over (either side hung up)."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Tick:
    at: float


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """The administrator changed the queues (hours, priority, overflow, strategy, a new queue):
    the new policy holds from now on for every caller, waiting ones included. A running core
    never loses a queue: the new policy names every queue the old one had."""
    policy: RoutingPolicy
    at: float


@dataclass(frozen=True, slots=True)
class AgentSkillsChanged:
    """A logged-in agent's queues and skill levels changed (by the administrator): they hold at
    once, whatever the agent is doing; no state changes."""
    agent_id: str
    skills: Mapping[str, int]
    at: float


Event = (
    AgentLoggedIn | AgentLoggedOut | AgentPaused | AgentReady | WrapUpExtended | WrapUpEnded
    | CallQueued | CallPriorityChanged | CallLeft | CallbackRequested | AgentRingFailed
    | AgentAnswered | CallEnded | Tick | PolicyChanged | AgentSkillsChanged | PhoneUnreachable | PhoneReachable
)

__all__ = [
    "RING_FAILURES",
    "AgentAnswered",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentPaused",
    "AgentReady",
    "AgentRingFailed",
    "AgentSkillsChanged",
    "CallEnded",
    "CallLeft",
    "CallPriorityChanged",
    "CallQueued",
    "CallbackRequested",
    "Event",
    "PhoneReachable",
    "PhoneUnreachable",
    "PolicyChanged",
    "RingFailure",
    "Tick",
    "WrapUpEnded",
    "WrapUpExtended",
]
