"""Hypothesis: random hotline days against the routing invariants.

After every event: an agent never has two calls, is only ever rung from AVAILABLE and with a
reachable phone, no caller is lost, and no available agent with a reachable phone sits next
to a waiting caller it may take. An event that raises
leaves the core exactly as it was.
"""
from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.errors import AcdError
from callcenter.acd.states import AgentState as A
from callcenter.acd.states import CallState as C

from .conftest import make_acd

AGENTS = ["a1", "a2", "a3", "a4"]
QUEUES = ["general", "leak", "billing"]
STRATEGIES = ["longest_idle", "fewest_calls", "round_robin", "ring_all"]


def snapshot(acd: Acd) -> Any:
    return copy.deepcopy((
        acd.agents(), acd.calls(), [acd.queue_stats(q, 0.0) for q in acd.queue_names()],
        sorted(acd._timers), {k: list(v) for k, v in acd._preferred.items()}, sorted(acd._unreachable),
        {q: ({lv: list(line) for lv, line in acd._queues[q].lines.items()},
             {lv: list(pool) for lv, pool in acd._queues[q].pools.items()}) for q in acd.queue_names()},
    ))


class HotlineDay(RuleBasedStateMachine):
    @initialize(
        strategy=st.sampled_from(STRATEGIES),
        widen=st.booleans(),
        auto_pause=st.integers(0, 3),
        wrapup=st.sampled_from([0, 10]),
        max_wait=st.sampled_from([None, 40]),
    )
    def start(self, strategy: str, widen: bool, auto_pause: int, wrapup: int, max_wait: int | None) -> None:
        general: dict[str, Any] = {"name": "general", "strategy": strategy, "max_wait_s": max_wait,
                                   "overflow_to": "billing" if max_wait else None, "max_length": 4}
        if widen:
            general |= {"initial_skill_level": 3, "widen_after_s": 20}
        self.acd = make_acd(
            [general, {"name": "leak", "category": "leak", "priority": 5, "strategy": strategy},
             {"name": "billing", "category": "billing", "wrapup_s": wrapup}],
            auto_pause_after_no_answers=auto_pause, wrapup_s=wrapup, preferred_agent_window_s=15,
        )
        self.now = 0.0
        self.next_call = 0
        self.live: set[str] = set()       # calls the hotline still owes an answer
        self.timers: list[ev.WrapUpEnded] = []
        self.shadow: dict[str, A] = {}

    # ---------------------------------------------------------------- feeding

    def feed(self, event: ev.Event) -> list[cmd.Command] | None:
        before = snapshot(self.acd)
        try:
            out = self.acd.handle(event)
        except AcdError:
            assert snapshot(self.acd) == before, f"{event} raised but changed the core"
            return None
        self.check_commands(out)
        if isinstance(event, ev.CallQueued):
            self.live.add(event.call_id)
        elif isinstance(event, ev.CallLeft | ev.CallEnded):
            self.live.discard(event.call_id)
        return out

    def check_commands(self, out: list[cmd.Command]) -> None:
        for c in out:
            if isinstance(c, cmd.AgentStateChanged):
                if c.state == A.RINGING:
                    assert self.shadow.get(c.agent_id) == A.AVAILABLE, f"{c.agent_id} rung from {self.shadow.get(c.agent_id)}"
                self.shadow[c.agent_id] = A(c.state)
            elif isinstance(c, cmd.RingAgent | cmd.PlaceCallback):
                assert self.shadow[c.agent_id] == A.RINGING
                assert self.acd.phone_reachable(c.endpoint), f"{c.agent_id} rung on an unreachable phone"
            elif isinstance(c, cmd.StartTimer):
                self.timers.append(c.event)
            elif isinstance(c, cmd.CallbackExpired):
                self.live.discard(c.call_id)

    def tick(self, seconds: float) -> None:
        self.now += seconds

    # ---------------------------------------------------------------- rules

    def _agents_in(self, *states: A) -> list[str]:
        known = {v.agent_id: v.state for v in self.acd.agents()}
        return [a for a in AGENTS if known.get(a, A.LOGGED_OUT) in states]

    @rule(data=st.data(), skills=st.dictionaries(st.sampled_from(QUEUES), st.integers(1, 4), min_size=1))
    def log_in(self, data: st.DataObject, skills: dict[str, int]) -> None:
        free = self._agents_in(A.LOGGED_OUT)
        if free:
            agent = data.draw(st.sampled_from(free))
            self.feed(ev.AgentLoggedIn(agent, f"PJSIP/{agent}", skills, self.now))

    @rule(data=st.data())
    def log_out(self, data: st.DataObject) -> None:
        agents = self._agents_in(A.AVAILABLE, A.RINGING, A.WRAP_UP, A.PAUSED)
        if agents:
            self.feed(ev.AgentLoggedOut(data.draw(st.sampled_from(agents)), self.now))

    @rule(data=st.data(), reason=st.sampled_from(["break", "training", "follow_up"]))
    def pause(self, data: st.DataObject, reason: str) -> None:
        agents = self._agents_in(A.AVAILABLE, A.RINGING, A.ON_CALL, A.WRAP_UP, A.PAUSED)
        if agents:
            self.feed(ev.AgentPaused(data.draw(st.sampled_from(agents)), reason, self.now))

    @rule(data=st.data())
    def ready(self, data: st.DataObject) -> None:
        agents = self._agents_in(A.PAUSED, A.WRAP_UP)
        if agents:
            self.feed(ev.AgentReady(data.draw(st.sampled_from(agents)), self.now))

    @rule(agent=st.sampled_from([*AGENTS, "zz"]), kind=st.integers(0, 4))
    def any_agent_event(self, agent: str, kind: int) -> None:
        """Agent events regardless of state: mostly illegal, which must change nothing."""
        self.feed([
            ev.AgentLoggedIn(agent, f"PJSIP/{agent}", {"general": 2}, self.now),
            ev.AgentLoggedOut(agent, self.now),
            ev.AgentPaused(agent, "break", self.now),
            ev.AgentReady(agent, self.now),
            ev.WrapUpExtended(agent, 5, self.now),
        ][kind])

    @rule(queue=st.sampled_from(QUEUES), priority=st.integers(0, 3), vip=st.booleans(),
          preferred=st.none() | st.sampled_from(AGENTS))
    def call_arrives(self, queue: str, priority: int, vip: bool, preferred: str | None) -> None:
        self.next_call += 1
        self.feed(ev.CallQueued(f"c{self.next_call}", queue, self.now, priority=priority, vip=vip,
                                preferred_agent=preferred))

    @rule(data=st.data())
    def caller_leaves(self, data: st.DataObject) -> None:
        if self.live:
            self.feed(ev.CallLeft(data.draw(st.sampled_from(sorted(self.live))), self.now))

    @rule(data=st.data())
    def callback(self, data: st.DataObject) -> None:
        if self.live:
            self.feed(ev.CallbackRequested(data.draw(st.sampled_from(sorted(self.live))), "13800000000", self.now))

    @rule(data=st.data(), priority=st.integers(0, 5))
    def reprioritise(self, data: st.DataObject, priority: int) -> None:
        if self.live:
            self.feed(ev.CallPriorityChanged(data.draw(st.sampled_from(sorted(self.live))), priority, self.now))

    def _ringing(self) -> list[tuple[str, str]]:
        return sorted((c.call_id, a) for c in self.acd.calls() if c.state in (C.RINGING, C.CALLING_BACK) for a in c.agents)

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        pairs = self._ringing()
        if pairs:
            call_id, agent_id = data.draw(st.sampled_from(pairs))
            self.feed(ev.AgentAnswered(call_id, agent_id, self.now))

    @rule(agent=st.sampled_from(AGENTS), reachable=st.booleans())
    def phone_changes(self, agent: str, reachable: bool) -> None:
        endpoint = f"PJSIP/{agent}"
        self.feed(ev.PhoneReachable(endpoint, self.now) if reachable else ev.PhoneUnreachable(endpoint, self.now))

    @rule(data=st.data(), reason=st.sampled_from(["no_answer", "busy", "unavailable", "unreachable", "reserved"]))
    def ring_fails(self, data: st.DataObject, reason: ev.RingFailure) -> None:
        pairs = self._ringing()
        if pairs:
            call_id, agent_id = data.draw(st.sampled_from(pairs))
            self.feed(ev.AgentRingFailed(call_id, agent_id, reason, self.now))

    @rule(data=st.data())
    def talk_ends(self, data: st.DataObject) -> None:
        talking = sorted(c.call_id for c in self.acd.calls() if c.state == C.ON_CALL)
        if talking:
            self.tick(30)
            self.feed(ev.CallEnded(data.draw(st.sampled_from(talking)), self.now))

    @rule(data=st.data())
    def timer_fires(self, data: st.DataObject) -> None:
        if self.timers:
            timer = self.timers.pop(data.draw(st.integers(0, len(self.timers) - 1)))
            self.now = max(self.now, timer.at)
            self.feed(timer)

    @rule(data=st.data(), seconds=st.sampled_from([5, 30]))
    def extend_wrapup(self, data: st.DataObject, seconds: int) -> None:
        agents = self._agents_in(A.WRAP_UP)
        if agents:
            self.feed(ev.WrapUpExtended(data.draw(st.sampled_from(agents)), seconds, self.now))

    @rule(seconds=st.sampled_from([1, 7, 25, 60]))
    def time_passes(self, seconds: int) -> None:
        self.tick(seconds)
        self.feed(ev.Tick(self.now))

    @rule(call=st.sampled_from(["c1", "c2", "zz"]), agent=st.sampled_from([*AGENTS, "zz"]))
    def stray_events(self, call: str, agent: str) -> None:
        for event in (ev.AgentAnswered(call, agent, self.now), ev.CallEnded(call, self.now),
                      ev.AgentRingFailed(call, agent, "busy", self.now)):
            before = snapshot(self.acd)
            try:
                out = self.acd.handle(event)
            except AcdError:
                assert snapshot(self.acd) == before
            else:
                # it happened to be legal: account for it like any event
                self.check_commands(out)
                if isinstance(event, ev.CallEnded):
                    self.live.discard(call)
            break

    # ---------------------------------------------------------------- invariants

    @invariant()
    def one_call_per_agent(self) -> None:
        if not hasattr(self, "acd"):
            return
        holder: dict[str, str] = {}
        for c in self.acd.calls():
            for a in c.agents:
                assert a not in holder, f"agent {a} has calls {holder[a]} and {c.call_id}"
                holder[a] = c.call_id
                view = self.acd.agent(a)
                assert view.call_id == c.call_id
                assert view.state in (A.RINGING, A.ON_CALL)
        for view in self.acd.agents():
            if view.state in (A.RINGING, A.ON_CALL):
                assert holder.get(view.agent_id) == view.call_id
            else:
                assert view.agent_id not in holder

    @invariant()
    def no_caller_lost(self) -> None:
        if not hasattr(self, "acd"):
            return
        assert {c.call_id for c in self.acd.calls()} == self.live

    @invariant()
    def no_idle_agent_beside_a_waiting_caller(self) -> None:
        if not hasattr(self, "acd"):
            return
        acd = self.acd
        for a in acd._agents.values():
            if a.state != A.AVAILABLE or not acd.phone_reachable(a.endpoint):
                assert not a.pool_keys, f"{a.agent_id} in a pool while {a.state} or with an unreachable phone"
                continue
            assert not acd._preferred.get(a.agent_id), f"{a.agent_id} available with repeat callers waiting for them"
            for queue, skill in a.skills.items():
                for level, line in acd._queues[queue].lines.items():
                    if level <= skill:
                        assert not line, f"{a.agent_id} (level {skill}) available while {list(line)} wait in {queue}"


HotlineDay.TestCase.settings = settings(max_examples=200, stateful_step_count=80, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestHotlineDay = HotlineDay.TestCase


@given(st.lists(st.tuples(st.sampled_from(QUEUES), st.integers(0, 3)), min_size=1, max_size=25))
@settings(max_examples=100, deadline=None)
def test_higher_priority_first_then_first_come(calls: list[tuple[str, int]]) -> None:
    acd = make_acd(wrapup_s=0, emergency_categories=[])
    policy = {q.name: q.priority for q in acd.policy.queues}
    for n, (queue, priority) in enumerate(calls):
        acd.handle(ev.CallQueued(f"c{n}", queue, float(n), priority=priority))
    served: list[str] = []
    out = acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", dict.fromkeys(QUEUES, 1), 100.0))
    at = 100.0
    while True:
        rings = [c for c in out if isinstance(c, cmd.RingAgent)]
        if not rings:
            break
        served.append(rings[0].call_id)
        at += 1
        acd.handle(ev.AgentAnswered(rings[0].call_id, "a1", at))
        out = acd.handle(ev.CallEnded(rings[0].call_id, at))
    expected = sorted(range(len(calls)), key=lambda n: (-(calls[n][1] + policy[calls[n][0]]), n))
    assert served == [f"c{n}" for n in expected]
