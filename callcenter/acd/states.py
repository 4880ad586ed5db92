"""The agent and call state machines of the ACD, as tables.

Rules (read these first; the tables below are them, and core.py checks every event
against them BEFORE it changes anything: an event that does not fit raises
`IllegalTransition` and the core is exactly as it was):

Agents
  * An agent the ACD does not know is logged out. `AgentLoggedIn` makes them available;
    logging in twice is illegal.
  * Only an AVAILABLE agent is ever rung ("reserve": available -> ringing), and an agent
    rings for one call at a time. An agent on a call, in wrap-up, paused or logged out is
    never rung. (ring_all rings several agents for ONE call, never one agent for two.)
  * RINGING ends with `AgentAnswered` (-> on_call), `AgentRingFailed` (-> available, or
    paused "no_answer" after `auto_pause_after_no_answers` consecutive failures, paused
    "unavailable" when the phone is unreachable, paused "elsewhere" when another engine
    holds the agent), or a cancel (-> available: someone else answered the ring_all, or
    the caller left). Pausing or logging out while ringing cancels the ring.
  * ON_CALL ends only with `CallEnded` -> wrap_up (wrap-up time of the call's queue; 0:
    straight to available). A pause asked for during a call waits until wrap-up ends.
    Logging out during a call is illegal: end the call first.
  * WRAP_UP ends with its timer (`WrapUpEnded` with the current token; a stale token is
    ignored, not illegal: timers race with agents), with `AgentReady` (ended early), with
    `AgentPaused` or `AgentLoggedOut`. `WrapUpExtended` moves the end later.
  * PAUSED (reason: break, training, follow_up, meeting, ... and the automatic no_answer,
    unavailable, elsewhere) ends with `AgentReady` or `AgentLoggedOut`; pausing again
    changes the reason.
  * The agent's phone is reachable or not, beside the state (`PhoneUnreachable`,
    `PhoneReachable`, by endpoint, logged in or not): an AVAILABLE agent whose phone is
    not reachable is not rung ("话机离线") and takes calls again by itself when it is. A
    phone lost while ringing cancels the ring (-> available, phone unreachable); a ring
    that fails "unreachable" does the same and is not a no-answer.

Calls
  * `CallQueued` puts a caller WAITING in its queue, ordered by priority (higher first),
    then by arrival (first come, first served). A priority change re-sorts it at once.
  * WAITING -> RINGING when agents are rung ("reserve"); RINGING -> WAITING when every
    ring failed: the caller goes back to the FRONT of its place (its arrival time is
    kept), never to the back, and the next agent is tried.
  * `CallbackRequested` turns a waiting caller into a CALLBACK that keeps its place in
    line; when its turn comes an agent is reserved (CALLBACK -> CALLING_BACK) and
    `PlaceCallback` is sent; a failed agent ring puts it back in its place.
  * RINGING/CALLING_BACK -> ON_CALL on `AgentAnswered`; ON_CALL ends only with `CallEnded`.
  * `CallLeft` ends a waiting, ringing or kept-place call (rings are cancelled); a call on
    the line ends with `CallEnded`, never `CallLeft`.
  * Overflow moves a waiting caller to another queue, keeping its arrival time.
"""
from __future__ import annotations

from enum import StrEnum

from callcenter.acd import events as ev
from callcenter.acd.errors import IllegalTransition


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"      # reserved for one call
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class CallState(StrEnum):
    WAITING = "waiting"
    RINGING = "ringing"
    ON_CALL = "on_call"
    CALLBACK = "callback"          # caller gone, place kept
    CALLING_BACK = "calling_back"  # PlaceCallback sent, agent being rung
    ENDED = "ended"


# Steps the core takes on its own (not events): named by string.
RESERVE = "reserve"      # agents are rung for a call
CANCEL = "cancel"        # a ring is called off (ring_all answered elsewhere, caller left)
OVERFLOW = "overflow"    # caller moved to another queue
EXPIRE = "expire"        # kept-place callback expired

A = AgentState
C = CallState

AGENT_TRANSITIONS: dict[AgentState, dict[type | str, frozenset[AgentState]]] = {
    A.LOGGED_OUT: {
        ev.AgentLoggedIn: frozenset({A.AVAILABLE}),
    },
    A.AVAILABLE: {
        RESERVE: frozenset({A.RINGING}),
        ev.AgentPaused: frozenset({A.PAUSED}),
        ev.AgentLoggedOut: frozenset({A.LOGGED_OUT}),
    },
    A.RINGING: {
        ev.AgentAnswered: frozenset({A.ON_CALL}),
        ev.AgentRingFailed: frozenset({A.AVAILABLE, A.PAUSED}),
        CANCEL: frozenset({A.AVAILABLE}),
        ev.AgentPaused: frozenset({A.PAUSED}),
        ev.AgentLoggedOut: frozenset({A.LOGGED_OUT}),
    },
    A.ON_CALL: {
        ev.CallEnded: frozenset({A.WRAP_UP, A.AVAILABLE, A.PAUSED}),
        ev.AgentPaused: frozenset({A.ON_CALL}),          # pause waits for wrap-up's end
    },
    A.WRAP_UP: {
        ev.WrapUpEnded: frozenset({A.AVAILABLE, A.PAUSED}),
        ev.WrapUpExtended: frozenset({A.WRAP_UP}),
        ev.AgentReady: frozenset({A.AVAILABLE}),
        ev.AgentPaused: frozenset({A.PAUSED}),
        ev.AgentLoggedOut: frozenset({A.LOGGED_OUT}),
    },
    A.PAUSED: {
        ev.AgentReady: frozenset({A.AVAILABLE}),
        ev.AgentPaused: frozenset({A.PAUSED}),
        ev.AgentLoggedOut: frozenset({A.LOGGED_OUT}),
    },
}

CALL_TRANSITIONS: dict[CallState, dict[type | str, frozenset[CallState]]] = {
    C.WAITING: {
        RESERVE: frozenset({C.RINGING}),
        OVERFLOW: frozenset({C.WAITING}),
        ev.CallPriorityChanged: frozenset({C.WAITING}),
        ev.CallbackRequested: frozenset({C.CALLBACK}),
        ev.CallLeft: frozenset({C.ENDED}),
    },
    C.RINGING: {
        ev.AgentAnswered: frozenset({C.ON_CALL}),
        ev.AgentRingFailed: frozenset({C.WAITING, C.RINGING}),   # RINGING: ring_all, others still ring
        CANCEL: frozenset({C.WAITING, C.RINGING}),               # the agent paused/logged out
        ev.CallPriorityChanged: frozenset({C.RINGING}),
        ev.CallLeft: frozenset({C.ENDED}),
    },
    C.ON_CALL: {
        ev.CallEnded: frozenset({C.ENDED}),
    },
    C.CALLBACK: {
        RESERVE: frozenset({C.CALLING_BACK}),
        ev.CallPriorityChanged: frozenset({C.CALLBACK}),
        ev.CallLeft: frozenset({C.ENDED}),          # the callback was cancelled
        EXPIRE: frozenset({C.ENDED}),
    },
    C.CALLING_BACK: {
        ev.AgentAnswered: frozenset({C.ON_CALL}),
        ev.AgentRingFailed: frozenset({C.CALLBACK}),
        CANCEL: frozenset({C.CALLBACK}),
        ev.CallPriorityChanged: frozenset({C.CALLING_BACK}),
        ev.CallLeft: frozenset({C.ENDED}),
    },
    C.ENDED: {},
}


def _name(step: type | str) -> str:
    return step if isinstance(step, str) else step.__name__


def agent_may(state: AgentState, step: type | str, agent_id: str) -> frozenset[AgentState]:
    """The states `step` may lead to from `state`; raises IllegalTransition if none."""
    allowed = AGENT_TRANSITIONS[state].get(step)
    if allowed is None:
        raise IllegalTransition(f"agent {agent_id!r}: {_name(step)} is not allowed while {state.value}")
    return allowed


def call_may(state: CallState, step: type | str, call_id: str) -> frozenset[CallState]:
    allowed = CALL_TRANSITIONS[state].get(step)
    if allowed is None:
        raise IllegalTransition(f"call {call_id!r}: {_name(step)} is not allowed while {state.value}")
    return allowed
