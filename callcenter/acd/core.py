"""The ACD: who answers which waiting caller. Pure and synchronous.

Theory of operation
-------------------
`Acd.handle(event) -> list[Command]` is the only way in. Time comes on the events (`at`,
monotonic seconds); nothing here awaits, sleeps, reads a clock or touches a socket. The
state machines and their rules are in states.py; every handler first checks its event
against them (raising `IllegalTransition` before changing anything), then changes state,
then MATCHES: it never leaves an available agent and a caller that agent may take both
waiting (the invariant the property tests check after every event).

Data structures (1,000 agents, 50 queues, 10,000 callers: no scans of callers per event):
  * per queue and per required skill level, a SortedList of waiting callers keyed
    (-priority, arrival, seq): the head is the next caller; a caller's position is a bisect.
  * per queue and per skill level, a SortedList of available agents keyed by the queue's
    strategy (longest_idle: idle since; fewest_calls: calls taken; round_robin: the agent's
    turn number, read from just after the last one rung).
  * one heap of timers (widening, max wait, preferred-agent window, announcements, callback
    expiry), each re-checked against the caller's state when it comes due.

Selection: a caller goes to the available agent with the highest skill level on its queue
(at or above the level the caller needs now: widening lowers it with waiting time), then by
the queue's strategy. A freed agent takes, over all its queues, the caller with the highest
priority, then the earliest arrival, among those it is skilled enough for. A repeat caller
(`preferred_agent`) waits first for that agent alone for `preferred_agent_window_s`.

Phones: the core keeps the endpoints whose phone Asterisk cannot reach (`PhoneUnreachable`,
`PhoneReachable`; known before the agent logs in, kept after they log out). An agent whose
phone is unreachable keeps their state but is in no pool of available agents, so nothing
rings them; a repeat caller does not wait for them.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.errors import BadEvent, IllegalTransition, UnknownAgent, UnknownCall, UnknownQueue
from callcenter.acd.settings import MAX_SKILL_LEVEL, QueuePolicy, RoutingPolicy, Strategy
from callcenter.acd.states import (
    CANCEL,
    EXPIRE,
    OVERFLOW,
    RESERVE,
    AgentState,
    CallState,
    agent_may,
    call_may,
)

log = logging.getLogger(__name__)

A = AgentState
C = CallState
_STAFFED = frozenset({A.AVAILABLE, A.RINGING, A.ON_CALL, A.WRAP_UP})
_PREFERRED_WAITS_FOR = frozenset({A.AVAILABLE, A.RINGING, A.ON_CALL, A.WRAP_UP})

# timer kinds
_WIDEN, _MAX_WAIT, _PREFERRED, _ANNOUNCE, _EXPIRE = range(5)


class _Agent:
    __slots__ = (  # noqa: RUF023 (grouped by meaning)
        "agent_id", "endpoint", "skills", "state", "since", "reason", "call_id", "idle_since",
        "calls_taken", "no_answers", "wrap_token", "wrap_end", "pending_pause", "turns", "pool_keys",
    )

    def __init__(self, agent_id: str, endpoint: str, skills: dict[str, int], at: float) -> None:
        self.agent_id = agent_id
        self.endpoint = endpoint
        self.skills = skills
        self.state = A.LOGGED_OUT
        self.since = at
        self.reason: str | None = None
        self.call_id: str | None = None
        self.idle_since = at
        self.calls_taken = 0
        self.no_answers = 0
        self.wrap_token = 0
        self.wrap_end = at
        self.pending_pause: str | None = None
        self.turns: dict[str, int] = {}          # round_robin turn number per queue
        self.pool_keys: dict[str, tuple[int, tuple[Any, ...]]] = {}


class _Call:
    __slots__ = (  # noqa: RUF023 (grouped by meaning)
        "call_id", "queue", "base_priority", "priority", "arrival", "entered", "seq", "category",
        "caller", "vip", "preferred_agent", "preferred_until", "state", "number", "ringing", "failed",
        "offered", "overflowed", "level", "key", "in_line", "last_position", "last_wait",
        "next_announce", "answered_at", "agent_id",
    )

    def __init__(self, e: ev.CallQueued, seq: int) -> None:
        self.call_id = e.call_id
        self.queue = e.queue
        self.base_priority = e.priority
        self.priority = e.priority
        self.arrival = e.at           # keeps the caller's place across ring failures and overflow
        self.entered = e.at           # when it entered its current queue (max wait)
        self.seq = seq
        self.category = e.category
        self.caller = e.caller
        self.vip = e.vip
        self.preferred_agent = e.preferred_agent
        self.preferred_until = 0.0
        self.state = C.WAITING
        self.number: str | None = None
        self.ringing: list[str] = []
        self.failed: set[str] = set()
        self.offered: set[str] = set()
        self.overflowed = False
        self.level = 1
        self.key: tuple[Any, ...] = ()
        self.in_line: SortedList | None = None   # the SortedList the call is in, if any
        self.last_position = 0
        self.last_wait = 0.0
        self.next_announce = 0.0
        self.answered_at = 0.0
        self.agent_id: str | None = None


class _Queue:
    __slots__ = (  # noqa: RUF023 (grouped by meaning)
        "policy", "strategy", "wrapup_s", "lines", "pools", "last_turn", "turn_counter",
        "handle_times", "handle_sum", "logged_in", "staffed", "present", "callbacks",
    )

    def __init__(self, policy: QueuePolicy, strategy: Strategy, wrapup_s: float, window: int) -> None:
        self.policy = policy
        self.strategy = strategy
        self.wrapup_s = wrapup_s
        self.lines: dict[int, SortedList] = {}    # required level -> waiting callers
        self.pools: dict[int, SortedList] = {}    # skill level -> available agents
        self.last_turn = -1
        self.turn_counter = itertools.count()
        self.handle_times: deque[float] = deque(maxlen=window)
        self.handle_sum = 0.0
        self.logged_in = 0
        self.staffed = 0
        self.present: dict[str, _Call] = {}       # callers on the line (waiting or ringing)
        self.callbacks: dict[str, _Call] = {}     # kept places (callback, calling_back)


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    state: AgentState
    reason: str | None
    call_id: str | None
    since: float
    skills: dict[str, int]
    calls_taken: int
    no_answers: int
    endpoint: str = ""
    phone_reachable: bool = True


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    queue: str
    state: CallState
    priority: int
    arrival: float
    agents: tuple[str, ...]
    caller: str | None
    preferred_agent: str | None
    preferred_until: float
    number: str | None = None    # a kept-place callback's number


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    waiting: int
    longest_wait_s: float
    callbacks: int
    logged_in: int
    staffed: int
    available: int
    average_handle_s: float


class Acd:
    """The routing core. Feed it events with `handle`; carry out the commands it returns."""

    def __init__(self, policy: RoutingPolicy) -> None:
        self.policy = policy
        acd = policy.acd
        self._queues: dict[str, _Queue] = {
            q.name: _Queue(q, q.strategy or acd.strategy, acd.wrapup_s if q.wrapup_s is None else q.wrapup_s,
                           acd.handle_time_window)
            for q in policy.queues
        }
        self._agents: dict[str, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        self._preferred: dict[str, SortedList] = {}   # agent id -> callers waiting for them alone
        self._unreachable: set[str] = set()            # endpoints whose phone Asterisk cannot reach
        self._timers: list[tuple[float, int, int, str, float]] = []
        self._seq = itertools.count()
        self._handlers: dict[type, Callable[[Any], list[Any]]] = {
            ev.AgentLoggedIn: self._logged_in,
            ev.AgentLoggedOut: self._logged_out,
            ev.AgentPaused: self._paused,
            ev.AgentReady: self._ready,
            ev.WrapUpExtended: self._wrapup_extended,
            ev.WrapUpEnded: self._wrapup_ended,
            ev.CallQueued: self._queued,
            ev.CallPriorityChanged: self._priority_changed,
            ev.CallLeft: self._left,
            ev.CallbackRequested: self._callback_requested,
            ev.AgentRingFailed: self._ring_failed,
            ev.AgentAnswered: self._answered,
            ev.CallEnded: self._ended,
            ev.Tick: self._tick,
            ev.PolicyChanged: self._policy_changed,
            ev.AgentSkillsChanged: self._skills_changed,
            ev.PhoneUnreachable: self._phone_unreachable,
            ev.PhoneReachable: self._phone_reachable,
        }

    # ------------------------------------------------------------------ the way in

    def handle(self, event: ev.Event) -> list[cmd.Command]:
        """Apply one event; return the commands to carry out, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise BadEvent(f"not an ACD event: {type(event).__name__}")
        return handler(event)

    # ------------------------------------------------------------------ queries

    def agent(self, agent_id: str) -> AgentView:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return AgentView(a.agent_id, a.state, a.reason, a.call_id, a.since, dict(a.skills),
                         a.calls_taken, a.no_answers, a.endpoint, a.endpoint not in self._unreachable)

    def agents(self) -> list[AgentView]:
        return [self.agent(agent_id) for agent_id in self._agents]

    def phone_reachable(self, endpoint: str) -> bool:
        return endpoint not in self._unreachable

    def call(self, call_id: str) -> CallView:
        c = self._calls.get(call_id)
        if c is None:
            raise UnknownCall(call_id)
        return CallView(c.call_id, c.queue, c.state, c.priority, c.arrival, tuple(c.ringing), c.caller,
                        c.preferred_agent, c.preferred_until, c.number)

    def calls(self) -> list[CallView]:
        return [self.call(call_id) for call_id in self._calls]

    def queue_names(self) -> list[str]:
        return list(self._queues)

    def queue_stats(self, name: str, at: float) -> QueueStats:
        q = self._queue(name, "queue_stats")
        longest = max((at - c.arrival for c in q.present.values()), default=0.0)
        available = sum(len(p) for p in q.pools.values())
        return QueueStats(name, len(q.present), max(0.0, longest), len(q.callbacks), q.logged_in, q.staffed,
                          available, self._average_handle(q))

    def position(self, call_id: str) -> int:
        """1 = next in its queue; 0 when the caller is not waiting in line."""
        c = self._calls.get(call_id)
        if c is None:
            raise UnknownCall(call_id)
        if c.in_line is None or c.state not in (C.WAITING, C.CALLBACK):
            return 0
        q = self._queues[c.queue]
        return 1 + sum(line.bisect_left(c.key) for line in q.lines.values())

    def estimated_wait(self, call_id: str) -> float | None:
        c = self._calls.get(call_id)
        if c is None:
            raise UnknownCall(call_id)
        return self._estimate(self._queues[c.queue], self.position(call_id))

    # ------------------------------------------------------------------ agent events

    def _logged_in(self, e: ev.AgentLoggedIn) -> list[cmd.Command]:
        if e.agent_id in self._agents:
            agent_may(self._agents[e.agent_id].state, ev.AgentLoggedIn, e.agent_id)  # raises
        if not e.endpoint or "\n" in e.endpoint or "\r" in e.endpoint:
            raise BadEvent(f"agent {e.agent_id!r}: endpoint {e.endpoint!r} is empty or has a line break")
        skills = self._skills(e.agent_id, e.skills)
        out: list[cmd.Command] = []
        a = _Agent(e.agent_id, e.endpoint, skills, e.at)
        self._agents[e.agent_id] = a
        for queue in skills:
            q = self._queues[queue]
            q.logged_in += 1
            a.turns[queue] = next(q.turn_counter)
        self._set_state(a, A.AVAILABLE, e.at, out)
        log.info("agent %s logged in, skills %s", e.agent_id, skills)
        self._match_agent(a, e.at, out)
        return out

    def _logged_out(self, e: ev.AgentLoggedOut) -> list[cmd.Command]:
        a = self._agent(e.agent_id)
        agent_may(a.state, ev.AgentLoggedOut, a.agent_id)
        out: list[cmd.Command] = []
        ringing_call = self._calls.get(a.call_id) if a.state == A.RINGING and a.call_id else None
        if ringing_call is not None:
            call_may(ringing_call.state, CANCEL, ringing_call.call_id)
            out.append(cmd.CancelRing(ringing_call.call_id, a.agent_id))
        self._set_state(a, A.LOGGED_OUT, e.at, out)
        for queue in a.skills:
            self._queues[queue].logged_in -= 1
        del self._agents[a.agent_id]
        if ringing_call is not None:
            self._drop_ring(ringing_call, a.agent_id, e.at, out)
        self._release_preferred(a.agent_id, e.at, out)
        log.info("agent %s logged out", e.agent_id)
        return out

    def _paused(self, e: ev.AgentPaused) -> list[cmd.Command]:
        a = self._agent(e.agent_id)
        agent_may(a.state, ev.AgentPaused, a.agent_id)
        if not e.reason:
            raise BadEvent(f"agent {e.agent_id!r}: a pause needs a reason")
        out: list[cmd.Command] = []
        if a.state == A.ON_CALL:
            a.pending_pause = e.reason
            return out
        ringing_call = self._calls.get(a.call_id) if a.state == A.RINGING and a.call_id else None
        if ringing_call is not None:
            call_may(ringing_call.state, CANCEL, ringing_call.call_id)
            out.append(cmd.CancelRing(ringing_call.call_id, a.agent_id))
        self._set_state(a, A.PAUSED, e.at, out, reason=e.reason)
        if ringing_call is not None:
            self._drop_ring(ringing_call, a.agent_id, e.at, out)
        self._release_preferred(a.agent_id, e.at, out)
        return out

    def _ready(self, e: ev.AgentReady) -> list[cmd.Command]:
        a = self._agent(e.agent_id)
        agent_may(a.state, ev.AgentReady, a.agent_id)
        out: list[cmd.Command] = []
        a.no_answers = 0
        a.pending_pause = None
        self._set_state(a, A.AVAILABLE, e.at, out)
        self._match_agent(a, e.at, out)
        return out

    def _wrapup_extended(self, e: ev.WrapUpExtended) -> list[cmd.Command]:
        a = self._agent(e.agent_id)
        agent_may(a.state, ev.WrapUpExtended, a.agent_id)
        if not e.seconds > 0:
            raise BadEvent(f"agent {e.agent_id!r}: wrap-up extension {e.seconds!r} s is not positive")
        a.wrap_token += 1
        a.wrap_end = max(a.wrap_end, e.at) + e.seconds
        return [cmd.StartTimer(a.wrap_end - e.at, ev.WrapUpEnded(a.agent_id, a.wrap_token, a.wrap_end))]

    def _wrapup_ended(self, e: ev.WrapUpEnded) -> list[cmd.Command]:
        a = self._agents.get(e.agent_id)
        if a is None or a.state != A.WRAP_UP or e.token != a.wrap_token:
            log.debug("agent %s: stale wrap-up timer %s ignored", e.agent_id, e.token)
            return []
        out: list[cmd.Command] = []
        self._end_wrapup(a, e.at, out)
        return out

    def _end_wrapup(self, a: _Agent, at: float, out: list[cmd.Command]) -> None:
        if a.pending_pause is not None:
            reason, a.pending_pause = a.pending_pause, None
            self._set_state(a, A.PAUSED, at, out, reason=reason)
            self._release_preferred(a.agent_id, at, out)
        else:
            self._set_state(a, A.AVAILABLE, at, out)
            self._match_agent(a, at, out)

    def _skills(self, agent_id: str, given: Any) -> dict[str, int]:
        skills: dict[str, int] = {}
        for queue, level in given.items():
            self._queue(queue, f"agent {agent_id!r} skills")
            if not isinstance(level, int) or not 1 <= level <= MAX_SKILL_LEVEL:
                raise BadEvent(f"agent {agent_id!r} skills.{queue}: level {level!r} is not 1..{MAX_SKILL_LEVEL}")
            skills[queue] = level
        return skills

    def _skills_changed(self, e: ev.AgentSkillsChanged) -> list[cmd.Command]:
        """New queues and levels for a logged-in agent: out of the old pools, into the new ones
        (when available), the queues' head counts moved; then the agent may take a caller."""
        a = self._agent(e.agent_id)
        skills = self._skills(e.agent_id, e.skills)
        available, staffed = a.state == A.AVAILABLE, a.state in _STAFFED
        if available:
            for queue, (level, key) in a.pool_keys.items():
                self._queues[queue].pools[level].remove(key)
            a.pool_keys.clear()
        for queue in a.skills:
            self._queues[queue].logged_in -= 1
            self._queues[queue].staffed -= int(staffed)
        a.skills = skills
        for queue in skills:
            q = self._queues[queue]
            q.logged_in += 1
            q.staffed += int(staffed)
            if queue not in a.turns:
                a.turns[queue] = next(q.turn_counter)
        out: list[cmd.Command] = []
        if available:
            for queue, level in skills.items():
                q = self._queues[queue]
                key = self._pool_key(q, a)
                q.pools.setdefault(level, SortedList()).add(key)
                a.pool_keys[queue] = (level, key)
            self._match_agent(a, e.at, out)
        log.info("agent %s: skills now %s", e.agent_id, skills)
        return out

    def _policy_changed(self, e: ev.PolicyChanged) -> list[cmd.Command]:
        """A new routing policy from now on. Every queue keeps its callers, agents and figures;
        a queue whose strategy changed re-orders its available agents; a new queue starts empty.
        Then every available agent may take a caller the new policy lets them take."""
        new = e.policy
        names = {q.name for q in new.queues}
        lost = [name for name in self._queues if name not in names]
        if lost:
            raise BadEvent(f"a new policy must keep every queue; it lacks {', '.join(sorted(lost))}")
        acd = new.acd
        for policy in new.queues:
            strategy = policy.strategy or acd.strategy
            wrapup_s = acd.wrapup_s if policy.wrapup_s is None else policy.wrapup_s
            q = self._queues.get(policy.name)
            if q is None:
                self._queues[policy.name] = _Queue(policy, strategy, wrapup_s, acd.handle_time_window)
                continue
            q.policy, q.wrapup_s = policy, wrapup_s
            if strategy != q.strategy:
                q.strategy = strategy
                q.pools = {}
                for a in self._agents.values():
                    if policy.name in a.pool_keys:
                        level, _ = a.pool_keys[policy.name]
                        key = self._pool_key(q, a)
                        q.pools.setdefault(level, SortedList()).add(key)
                        a.pool_keys[policy.name] = (level, key)
        self.policy = new
        out: list[cmd.Command] = []
        for a in list(self._agents.values()):
            self._match_agent(a, e.at, out)
        log.info("routing policy changed: queues %s", ", ".join(q.name for q in new.queues))
        return out

    # ------------------------------------------------------------------ phone events

    def _phone_unreachable(self, e: ev.PhoneUnreachable) -> list[cmd.Command]:
        _check_endpoint(e.endpoint)
        out: list[cmd.Command] = []
        self._lose_phone(e.endpoint, e.at, out)
        return out

    def _lose_phone(self, endpoint: str, at: float, out: list[cmd.Command]) -> None:
        if endpoint in self._unreachable:
            return
        agents = [a for a in self._agents.values() if a.endpoint == endpoint]
        ringing = [(a, self._calls[a.call_id]) for a in agents if a.state == A.RINGING and a.call_id in self._calls]
        for a, c in ringing:
            agent_may(a.state, CANCEL, a.agent_id)
            call_may(c.state, CANCEL, c.call_id)
        self._unreachable.add(endpoint)
        out.append(cmd.PhoneStatusChanged(endpoint, False, at))
        for a in agents:
            if a.state == A.AVAILABLE:
                self._leave_pools(a)
        for a, c in ringing:
            out.append(cmd.CancelRing(c.call_id, a.agent_id, "unreachable"))
            self._set_state(a, A.AVAILABLE, at, out)
            c.failed.add(a.agent_id)
            self._drop_ring(c, a.agent_id, at, out)
        for a in agents:
            self._release_preferred(a.agent_id, at, out)
        log.info("phone %s unreachable: agents %s not rung", endpoint, [a.agent_id for a in agents])

    def _phone_reachable(self, e: ev.PhoneReachable) -> list[cmd.Command]:
        _check_endpoint(e.endpoint)
        if e.endpoint not in self._unreachable:
            return []
        self._unreachable.discard(e.endpoint)
        out: list[cmd.Command] = [cmd.PhoneStatusChanged(e.endpoint, True, e.at)]
        agents = [a for a in self._agents.values() if a.endpoint == e.endpoint and a.state == A.AVAILABLE]
        for a in agents:
            self._join_pools(a)
        log.info("phone %s reachable again", e.endpoint)
        for a in agents:
            self._match_agent(a, e.at, out)
        return out

    # ------------------------------------------------------------------ call events

    def _queued(self, e: ev.CallQueued) -> list[cmd.Command]:
        if e.call_id in self._calls:
            raise BadEvent(f"call {e.call_id!r} is already queued")
        q = self._queue(e.queue, f"call {e.call_id!r}")
        if e.callback_number is not None:
            _check_number(e.call_id, e.callback_number)
        out: list[cmd.Command] = []
        c = _Call(e, next(self._seq))
        self._calls[c.call_id] = c
        c.priority = self._effective_priority(c)
        if e.callback_number is not None:
            return self._requeue_callback(c, q, e.callback_number, e.at)
        c.next_announce = e.at + self.policy.acd.announce_first_after_s
        self._push_timer(c.next_announce, _ANNOUNCE, c.call_id, c.next_announce)
        out.append(cmd.CallStateChanged(c.call_id, C.WAITING, c.queue, None, e.at))
        self._push_max_wait(c, q)
        pref = self._agents.get(e.preferred_agent) if e.preferred_agent else None
        window = self.policy.acd.preferred_agent_window_s
        if pref is not None and window > 0 and pref.state in _PREFERRED_WAITS_FOR and self._reachable(pref):
            q.present[c.call_id] = c
            c.preferred_until = e.at + window
            if pref.state == A.AVAILABLE:
                self._reserve(c, [pref], e.at, out)
                return out
            self._enter_preferred(c)
            self._push_timer(c.preferred_until, _PREFERRED, c.call_id, c.preferred_until)
            return out
        if q.logged_in == 0 and self._overflow(c, q, e.at, out, "no_agents"):
            return out
        if q.policy.max_length is not None and len(q.present) >= q.policy.max_length:
            if self._overflow(c, q, e.at, out, "queue_full"):
                return out
        self._enter_queue(c, q, e.at, out)
        return out

    def _requeue_callback(self, c: _Call, q: _Queue, number: str, at: float) -> list[cmd.Command]:
        out: list[cmd.Command] = []
        c.state = C.CALLBACK
        c.number = number
        q.callbacks[c.call_id] = c
        expires = at + self.policy.acd.callback_expire_s
        self._push_timer(expires, _EXPIRE, c.call_id, expires)
        out.append(cmd.CallStateChanged(c.call_id, C.CALLBACK, c.queue, None, at))
        self._put_in_line(c, q, q.policy.required_level(at - c.entered), at)
        self._match_call(c, q, at, out)
        return out

    def _priority_changed(self, e: ev.CallPriorityChanged) -> list[cmd.Command]:
        c = self._call(e.call_id)
        call_may(c.state, ev.CallPriorityChanged, c.call_id)
        c.base_priority = e.priority
        c.priority = self._effective_priority(c)
        line = c.in_line
        if line is not None:
            line.remove(c.key)
            c.key = (-c.priority, c.arrival, c.seq, c.call_id)
            line.add(c.key)
        return []

    def _left(self, e: ev.CallLeft) -> list[cmd.Command]:
        c = self._call(e.call_id)
        call_may(c.state, ev.CallLeft, c.call_id)
        out: list[cmd.Command] = []
        rung = [self._agents[agent_id] for agent_id in c.ringing]
        for a in rung:
            agent_may(a.state, CANCEL, a.agent_id)
        self._forget(c, e.at, out)
        for a in rung:
            out.append(cmd.CancelRing(c.call_id, a.agent_id))
            self._set_state(a, A.AVAILABLE, e.at, out)
        for a in rung:
            if a.state == A.AVAILABLE:
                self._match_agent(a, e.at, out)
        return out

    def _callback_requested(self, e: ev.CallbackRequested) -> list[cmd.Command]:
        c = self._call(e.call_id)
        call_may(c.state, ev.CallbackRequested, c.call_id)
        _check_number(e.call_id, e.number)
        q = self._queues[c.queue]
        c.state = C.CALLBACK
        c.number = e.number
        del q.present[c.call_id]
        q.callbacks[c.call_id] = c
        expires = e.at + self.policy.acd.callback_expire_s
        self._push_timer(expires, _EXPIRE, c.call_id, expires)
        return [cmd.CallStateChanged(c.call_id, C.CALLBACK, c.queue, None, e.at)]

    def _ring_failed(self, e: ev.AgentRingFailed) -> list[cmd.Command]:
        if e.reason not in ev.RING_FAILURES:
            raise BadEvent(f"call {e.call_id!r}: ring failure reason {e.reason!r} is not one of {sorted(ev.RING_FAILURES)}")
        c, a = self._ringing_pair(e.call_id, e.agent_id, ev.AgentRingFailed)
        out: list[cmd.Command] = []
        acd = self.policy.acd
        if e.reason == "reserved":
            self._set_state(a, A.PAUSED, e.at, out, reason="elsewhere")
        elif e.reason == "unavailable":
            self._set_state(a, A.PAUSED, e.at, out, reason="unavailable")
        elif e.reason == "unreachable":
            # Not the agent's doing: no no-answer counted. Not rung again until the phone is back.
            if a.endpoint not in self._unreachable:
                self._unreachable.add(a.endpoint)
                out.append(cmd.PhoneStatusChanged(a.endpoint, False, e.at))
            self._set_state(a, A.AVAILABLE, e.at, out)
        else:
            a.no_answers += 1
            if acd.auto_pause_after_no_answers and a.no_answers >= acd.auto_pause_after_no_answers:
                self._set_state(a, A.PAUSED, e.at, out, reason="no_answer")
            else:
                self._set_state(a, A.AVAILABLE, e.at, out)
        if a.state == A.PAUSED:
            self._release_preferred(a.agent_id, e.at, out)
        c.failed.add(a.agent_id)
        if c.preferred_agent == a.agent_id:
            c.preferred_until = 0.0          # the preferred agent did not take it: anyone may
        self._drop_ring(c, a.agent_id, e.at, out)
        if e.reason == "unreachable":
            self._release_preferred(a.agent_id, e.at, out)
        if a.state == A.AVAILABLE:
            self._match_agent(a, e.at, out)
        return out

    def _answered(self, e: ev.AgentAnswered) -> list[cmd.Command]:
        c, a = self._ringing_pair(e.call_id, e.agent_id, ev.AgentAnswered)
        out: list[cmd.Command] = []
        others = [self._agents[agent_id] for agent_id in c.ringing if agent_id != a.agent_id]
        a.no_answers = 0
        a.calls_taken += 1
        self._set_state(a, A.ON_CALL, e.at, out, call_id=c.call_id)
        q = self._queues[c.queue]
        q.present.pop(c.call_id, None)
        q.callbacks.pop(c.call_id, None)
        c.state = C.ON_CALL
        c.ringing = [a.agent_id]
        c.agent_id = a.agent_id
        c.answered_at = e.at
        out.append(cmd.CallStateChanged(c.call_id, C.ON_CALL, c.queue, a.agent_id, e.at))
        for other in others:
            out.append(cmd.CancelRing(c.call_id, other.agent_id))
            self._set_state(other, A.AVAILABLE, e.at, out)
        for other in others:
            if other.state == A.AVAILABLE:
                self._match_agent(other, e.at, out)
        return out

    def _ended(self, e: ev.CallEnded) -> list[cmd.Command]:
        c = self._call(e.call_id)
        call_may(c.state, ev.CallEnded, c.call_id)
        a = self._agents.get(c.agent_id) if c.agent_id else None
        if a is not None:
            agent_may(a.state, ev.CallEnded, a.agent_id)
        out: list[cmd.Command] = []
        q = self._queues[c.queue]
        self._forget(c, e.at, out)
        self._record_handle_time(q, e.at - c.answered_at + q.wrapup_s)
        if a is None:
            return out
        if q.wrapup_s > 0:
            a.wrap_token += 1
            a.wrap_end = e.at + q.wrapup_s
            self._set_state(a, A.WRAP_UP, e.at, out)
            out.append(cmd.StartTimer(q.wrapup_s, ev.WrapUpEnded(a.agent_id, a.wrap_token, a.wrap_end)))
        else:
            self._end_wrapup(a, e.at, out)
        return out

    def _tick(self, e: ev.Tick) -> list[cmd.Command]:
        out: list[cmd.Command] = []
        timers = self._timers
        while timers and timers[0][0] <= e.at:
            _due, _seq, kind, call_id, stamp = heapq.heappop(timers)
            c = self._calls.get(call_id)
            if c is None:
                continue
            if kind == _ANNOUNCE:
                self._announce(c, stamp, e.at, out)
            elif kind == _WIDEN:
                self._widen(c, e.at, out)
            elif kind == _MAX_WAIT:
                self._max_wait(c, stamp, e.at, out)
            elif kind == _PREFERRED:
                if c.state in (C.WAITING, C.CALLBACK) and c.preferred_until == stamp and c.in_line is not None \
                        and c.in_line is self._preferred.get(c.preferred_agent or ""):
                    self._leave_line(c)
                    c.preferred_until = 0.0
                    self._enter_queue(c, self._queues[c.queue], e.at, out)
            elif kind == _EXPIRE:
                if c.state == C.CALLBACK:
                    call_may(c.state, EXPIRE, c.call_id)
                    number = c.number or ""
                    self._forget(c, e.at, out)
                    out.append(cmd.CallbackExpired(c.call_id, number))
        return out

    # ------------------------------------------------------------------ timers

    def _push_timer(self, due: float, kind: int, call_id: str, stamp: float) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), kind, call_id, stamp))

    def _announce(self, c: _Call, stamp: float, at: float, out: list[cmd.Command]) -> None:
        if c.next_announce != stamp or c.state not in (C.WAITING, C.RINGING):
            return
        c.next_announce = at + self.policy.acd.announce_every_s
        self._push_timer(c.next_announce, _ANNOUNCE, c.call_id, c.next_announce)
        if c.state != C.WAITING or c.in_line is None:
            return
        position = self.position(c.call_id)
        wait = self._estimate(self._queues[c.queue], position)
        if wait is None:
            return                                   # nobody staffed: a guess would mislead
        if c.last_position and position >= c.last_position:
            return                                   # nothing new to say, and never a step back
        if c.last_position:
            wait = min(wait, c.last_wait)
        c.last_position, c.last_wait = position, wait
        out.append(cmd.AnnouncePosition(c.call_id, position, round(wait, 1)))

    def _widen(self, c: _Call, at: float, out: list[cmd.Command]) -> None:
        if c.in_line is None or c.state not in (C.WAITING, C.CALLBACK):
            return
        q = self._queues[c.queue]
        if c.in_line is not q.lines.get(c.level):
            return                                   # waiting for its preferred agent
        level = q.policy.required_level(at - c.entered)
        if level >= c.level:
            return
        self._leave_line(c)
        self._put_in_line(c, q, level, at)
        self._match_call(c, q, at, out)

    def _max_wait(self, c: _Call, stamp: float, at: float, out: list[cmd.Command]) -> None:
        if c.state != C.WAITING or c.entered != stamp:
            return
        q = self._queues[c.queue]
        if q.policy.overflow_to is not None and not c.overflowed:
            self._leave_line(c)
        self._overflow(c, q, at, out, "max_wait")

    # ------------------------------------------------------------------ placing callers

    def _effective_priority(self, c: _Call) -> int:
        acd = self.policy.acd
        q = self._queues[c.queue]
        category = c.category or q.policy.category
        p = c.base_priority + q.policy.priority
        if category in acd.emergency_categories:
            p += acd.emergency_priority
        if c.preferred_agent:
            p += acd.repeat_priority
        if c.vip:
            p += acd.vip_priority
        return p

    def _overflow(self, c: _Call, q: _Queue, at: float, out: list[cmd.Command], why: str) -> bool:
        """Move the caller to the queue's overflow queue (True), or offer a callback (False)."""
        target = q.policy.overflow_to
        if target is not None and not c.overflowed:
            call_may(c.state, OVERFLOW, c.call_id)
            to = self._queues[target]
            q.present.pop(c.call_id, None)
            c.overflowed = True
            c.queue = target
            c.entered = at
            c.priority = self._effective_priority(c)
            out.append(cmd.Overflow(c.call_id, q.policy.name, target))
            out.append(cmd.CallStateChanged(c.call_id, C.WAITING, target, None, at))
            if to.logged_in == 0 and "no_agents" not in c.offered:
                c.offered.add("no_agents")
                out.append(cmd.OfferCallback(c.call_id, "no_agents"))
            self._push_max_wait(c, to)
            self._enter_queue(c, to, at, out)
            return True
        if why not in c.offered:
            c.offered.add(why)
            out.append(cmd.OfferCallback(c.call_id, why))
        return False

    def _push_max_wait(self, c: _Call, q: _Queue) -> None:
        if q.policy.max_wait_s is not None:
            self._push_timer(c.entered + q.policy.max_wait_s, _MAX_WAIT, c.call_id, c.entered)

    def _enter_queue(self, c: _Call, q: _Queue, at: float, out: list[cmd.Command]) -> None:
        if c.state == C.WAITING:
            q.present[c.call_id] = c
        self._put_in_line(c, q, q.policy.required_level(at - c.entered), at)
        self._match_call(c, q, at, out)

    def _put_in_line(self, c: _Call, q: _Queue, level: int, at: float) -> None:
        c.level = level
        c.key = (-c.priority, c.arrival, c.seq, c.call_id)
        line = q.lines.get(level)
        if line is None:
            line = q.lines[level] = SortedList()
        line.add(c.key)
        c.in_line = line
        p = q.policy
        if p.widen_after_s is not None and level > p.min_skill_level:
            waited = at - c.entered
            next_step = (int(waited // p.widen_after_s) + 1) * p.widen_after_s
            self._push_timer(c.entered + next_step, _WIDEN, c.call_id, 0.0)

    def _enter_preferred(self, c: _Call) -> None:
        agent_id = c.preferred_agent or ""
        line = self._preferred.get(agent_id)
        if line is None:
            line = self._preferred[agent_id] = SortedList()
        c.key = (-c.priority, c.arrival, c.seq, c.call_id)
        line.add(c.key)
        c.in_line = line

    def _leave_line(self, c: _Call) -> None:
        if c.in_line is not None:
            c.in_line.remove(c.key)
            c.in_line = None

    def _release_preferred(self, agent_id: str, at: float, out: list[cmd.Command]) -> None:
        """The preferred agent paused or left: their repeat callers join the queue at once."""
        line = self._preferred.pop(agent_id, None)
        if not line:
            return
        for key in list(line):
            c = self._calls[key[-1]]
            c.in_line = None
            c.preferred_until = 0.0
            self._enter_queue(c, self._queues[c.queue], at, out)

    def _forget(self, c: _Call, at: float, out: list[cmd.Command]) -> None:
        self._leave_line(c)
        q = self._queues[c.queue]
        q.present.pop(c.call_id, None)
        q.callbacks.pop(c.call_id, None)
        del self._calls[c.call_id]
        c.state = C.ENDED
        out.append(cmd.CallStateChanged(c.call_id, C.ENDED, c.queue, c.agent_id, at))

    # ------------------------------------------------------------------ rings

    def _ringing_pair(self, call_id: str, agent_id: str, step: type) -> tuple[_Call, _Agent]:
        c = self._call(call_id)
        a = self._agent(agent_id)
        call_may(c.state, step, c.call_id)
        agent_may(a.state, step, a.agent_id)
        if a.call_id != c.call_id or a.agent_id not in c.ringing:
            raise IllegalTransition(f"agent {agent_id!r} is not ringing for call {call_id!r}")
        return c, a

    def _reserve(self, c: _Call, agents: list[_Agent], at: float, out: list[cmd.Command]) -> None:
        """Ring `agents` (all AVAILABLE) for caller `c` (WAITING or CALLBACK)."""
        nxt = call_may(c.state, RESERVE, c.call_id)
        self._leave_line(c)
        c.state = next(iter(nxt))
        q = self._queues[c.queue]
        timeout = self.policy.acd.ring_timeout_s
        for a in agents:
            agent_may(a.state, RESERVE, a.agent_id)
            turn = a.turns.get(c.queue)
            if turn is not None:
                q.last_turn = turn
            self._set_state(a, A.RINGING, at, out, call_id=c.call_id)
            c.ringing.append(a.agent_id)
            if c.state == C.CALLING_BACK:
                out.append(cmd.PlaceCallback(c.call_id, a.agent_id, a.endpoint, c.number or "", timeout))
            else:
                out.append(cmd.RingAgent(c.call_id, a.agent_id, a.endpoint, timeout))
        out.append(cmd.CallStateChanged(c.call_id, c.state, c.queue, agents[0].agent_id if len(agents) == 1 else None, at))

    def _drop_ring(self, c: _Call, agent_id: str, at: float, out: list[cmd.Command]) -> None:
        """One ring for `c` is over without an answer; when none is left the caller goes
        back to the front of its place and the next agent is tried."""
        c.ringing.remove(agent_id)
        if c.state == C.RINGING and c.ringing:
            return
        c.state = C.CALLBACK if c.state == C.CALLING_BACK else C.WAITING
        out.append(cmd.CallStateChanged(c.call_id, c.state, c.queue, None, at))
        q = self._queues[c.queue]
        pref = self._agents.get(c.preferred_agent) if c.preferred_agent and c.preferred_until > at else None
        if pref is not None and pref.state in _PREFERRED_WAITS_FOR and pref.agent_id != agent_id \
                and self._reachable(pref):
            if pref.state == A.AVAILABLE:
                self._reserve(c, [pref], at, out)
            else:
                self._enter_preferred(c)
            return
        c.preferred_until = 0.0
        self._put_in_line(c, q, q.policy.required_level(at - c.entered), at)
        # the agent who just failed, if free, chooses next over all its callers (_match_agent)
        self._match_call(c, q, at, out, avoid=frozenset((agent_id,)))

    # ------------------------------------------------------------------ matching

    def _match_call(self, c: _Call, q: _Queue, at: float, out: list[cmd.Command],
                    avoid: frozenset[str] = frozenset()) -> None:
        """Find agents for one caller now in line in `q`: agents who already failed this
        caller only when nobody else is free, and never those in `avoid`."""
        if not q.pools:
            return
        if q.strategy == Strategy.RING_ALL:
            chosen = self._pick_many(q, c.level, self.policy.acd.ring_all_max, c.failed, avoid)
        else:
            one = self._pick_one(q, c.level, c.failed, avoid)
            chosen = [one] if one is not None else []
        if chosen:
            self._reserve(c, chosen, at, out)

    def _pick_one(self, q: _Queue, level: int, exclude: set[str], avoid: frozenset[str]) -> _Agent | None:
        fallback: _Agent | None = None
        for skill in sorted(q.pools, reverse=True):
            if skill < level:
                break
            pool = q.pools[skill]
            if not pool:
                continue
            if q.strategy == Strategy.ROUND_ROBIN:
                start = pool.bisect_left((q.last_turn + 1,))
                order: Iterable[tuple[Any, ...]] = itertools.chain(pool.islice(start), pool.islice(0, start))
            else:
                order = pool
            for key in order:
                a = self._agents[key[-1]]
                if a.agent_id not in exclude:
                    return a
                if fallback is None and a.agent_id not in avoid:
                    fallback = a
        return fallback      # only agents who failed this caller are free: try one again

    def _pick_many(self, q: _Queue, level: int, limit: int, exclude: set[str], avoid: frozenset[str]) -> list[_Agent]:
        chosen: list[_Agent] = []
        for skill in sorted(q.pools, reverse=True):
            if skill < level:
                break
            for key in q.pools[skill]:
                if key[-1] not in exclude and key[-1] not in avoid:
                    chosen.append(self._agents[key[-1]])
                    if len(chosen) >= limit:
                        return chosen
        if not chosen:
            one = self._pick_one(q, level, set(), avoid)
            return [one] if one is not None else []
        return chosen

    def _match_agent(self, a: _Agent, at: float, out: list[cmd.Command]) -> None:
        """A freed agent takes the best caller it may take: its repeat callers first, then the
        highest priority, earliest arrival over all its queues."""
        if a.state != A.AVAILABLE or not self._reachable(a):
            return
        best_key: tuple[Any, ...] | None = None
        mine = self._preferred.get(a.agent_id)
        if mine:
            best_key = mine[0]
        else:
            for queue, skill in a.skills.items():
                for level, line in self._queues[queue].lines.items():
                    if level <= skill and line:
                        head = line[0]
                        if best_key is None or head < best_key:
                            best_key = head
        if best_key is None:
            return
        c = self._calls[best_key[-1]]
        self._reserve(c, [a], at, out)

    # ------------------------------------------------------------------ agent state

    def _set_state(self, a: _Agent, state: AgentState, at: float, out: list[cmd.Command],
                   reason: str | None = None, call_id: str | None = None) -> None:
        old = a.state
        if old == A.AVAILABLE:
            self._leave_pools(a)
        was_staffed = old in _STAFFED
        is_staffed = state in _STAFFED
        if was_staffed != is_staffed:
            delta = 1 if is_staffed else -1
            for queue in a.skills:
                self._queues[queue].staffed += delta
        a.state = state
        a.since = at
        a.reason = reason
        a.call_id = call_id
        if state == A.AVAILABLE:
            a.idle_since = at
            if self._reachable(a):
                self._join_pools(a)
        out.append(cmd.AgentStateChanged(a.agent_id, state, reason, call_id, at))

    def _reachable(self, a: _Agent) -> bool:
        return a.endpoint not in self._unreachable

    def _join_pools(self, a: _Agent) -> None:
        """An available agent whose phone is reachable: into the pool of each of their queues."""
        for queue, level in a.skills.items():
            q = self._queues[queue]
            key = self._pool_key(q, a)
            pool = q.pools.get(level)
            if pool is None:
                pool = q.pools[level] = SortedList()
            pool.add(key)
            a.pool_keys[queue] = (level, key)

    def _leave_pools(self, a: _Agent) -> None:
        for queue, (level, key) in a.pool_keys.items():
            self._queues[queue].pools[level].remove(key)
        a.pool_keys.clear()

    @staticmethod
    def _pool_key(q: _Queue, a: _Agent) -> tuple[Any, ...]:
        s = q.strategy
        if s == Strategy.FEWEST_CALLS:
            return (a.calls_taken, a.idle_since, a.agent_id)
        if s == Strategy.ROUND_ROBIN:
            return (a.turns[q.policy.name], a.agent_id)
        return (a.idle_since, a.agent_id)

    # ------------------------------------------------------------------ estimates

    def _record_handle_time(self, q: _Queue, seconds: float) -> None:
        if len(q.handle_times) == q.handle_times.maxlen:
            q.handle_sum -= q.handle_times[0]
        q.handle_times.append(seconds)
        q.handle_sum += seconds

    def _average_handle(self, q: _Queue) -> float:
        if not q.handle_times:
            return self.policy.acd.default_handle_s
        return q.handle_sum / len(q.handle_times)

    def _estimate(self, q: _Queue, position: int) -> float | None:
        if q.staffed == 0 or position < 1:
            return None
        return position * self._average_handle(q) / q.staffed

    # ------------------------------------------------------------------ lookups

    def _agent(self, agent_id: str) -> _Agent:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return a

    def _call(self, call_id: str) -> _Call:
        c = self._calls.get(call_id)
        if c is None:
            raise UnknownCall(call_id)
        return c

    def _queue(self, name: str, where: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            raise UnknownQueue(name, where)
        return q


def _check_endpoint(endpoint: str) -> None:
    if not endpoint or len(endpoint) > 128 or any(ch in endpoint for ch in "\r\n"):
        raise BadEvent(f"phone endpoint {endpoint!r} is empty, too long or has a line break")


def _check_number(call_id: str, number: str) -> None:
    if not number or any(ch in number for ch in "\r\n") or len(number) > 64:
        raise BadEvent(f"call {call_id!r}: callback number {number!r} is empty, too long or has a line break")
