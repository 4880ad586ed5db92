"""What the ACD asks the engine to do: frozen commands, returned in order from `Acd.handle`.

| command          | the engine ...                                                            |
| ---------------- | ------------------------------------------------------------------------- |
| RingAgent        | reserves the agent (reservation.py) and Dials `endpoint` for `timeout_s`,  |
|                  | then feeds AgentAnswered or AgentRingFailed. The RingAgents of one call in |
|                  | one batch (ring_all) ring in one Dial: the first to answer gets the call   |
| PlaceCallback    | a kept-place callback's turn: rings the agent, then dials `number`,        |
|                  | bridges; feeds AgentAnswered (agent took it) or AgentRingFailed, then     |
|                  | CallEnded                                                                  |
| CancelRing       | hangs up that ringing leg (ring_all: someone else answered; the caller     |
|                  | left; the agent paused or logged out; `why` "unreachable": the phone      |
|                  | vanished mid-ring). Feed nothing back for that leg.                        |
| StartTimer       | feeds `event` back after `delay_s`                                         |
| AgentStateChanged| publishes the agent's state (live.py) and persists it (reservation.py)     |
| CallStateChanged | publishes the call's state (live.py)                                       |
| PhoneStatusChanged| publishes whether the phone behind `endpoint` is reachable (live.py);   |
|                  | when it is not, checks Asterisk again later (a ring's failure may be the  |
|                  | only news of it, and no event says when such a phone is back)             |
| AnnouncePosition | plays "you are number N, about M minutes" to the waiting caller            |
| OfferCallback    | offers the waiting caller a callback (press 1); on yes feeds             |
|                  | CallbackRequested; the caller keeps waiting until then                     |
| Overflow         | informational: the ACD moved the caller to `to_queue` (place kept)        |
| CallbackExpired  | the kept place expired before an agent was free; record it for follow-up  |
"""
from __future__ import annotations

from dataclasses import dataclass

from callcenter.acd.events import WrapUpEnded


@dataclass(frozen=True, slots=True)
class RingAgent:
    call_id: str
    agent_id: str
    endpoint: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class PlaceCallback:
    call_id: str          # the callback is the kept place of this call
    agent_id: str
    endpoint: str
    number: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class CancelRing:
    call_id: str
    agent_id: str
    why: str = "cancelled"     # how the attempt is stored: "cancelled" | "unreachable"


@dataclass(frozen=True, slots=True)
class StartTimer:
    delay_s: float
    event: WrapUpEnded


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    state: str            # AgentState value
    reason: str | None    # pause reason ("break", "no_answer", ...) or None
    call_id: str | None
    at: float


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    call_id: str
    state: str            # CallState value; "ended" when the ACD forgets the call
    queue: str | None
    agent_id: str | None
    at: float


@dataclass(frozen=True, slots=True)
class AnnouncePosition:
    call_id: str
    position: int         # 1 = next
    estimated_wait_s: float


@dataclass(frozen=True, slots=True)
class OfferCallback:
    call_id: str
    why: str              # "no_agents" | "queue_full" | "max_wait"


@dataclass(frozen=True, slots=True)
class Overflow:
    call_id: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True, slots=True)
class CallbackExpired:
    call_id: str
    number: str


@dataclass(frozen=True, slots=True)
class PhoneStatusChanged:
    endpoint: str
    reachable: bool
    at: float


Command = (
    RingAgent | PlaceCallback | CancelRing | StartTimer | AgentStateChanged | CallStateChanged
    | AnnouncePosition | OfferCallback | Overflow | CallbackExpired | PhoneStatusChanged
)
