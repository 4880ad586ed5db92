"""Routing behaviour: skill levels, strategies, widening, priorities, overflow, callbacks,
announcements, estimated wait."""
from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.settings import RoutingPolicy
from callcenter.acd.states import AgentState as A
from callcenter.acd.states import CallState as C

from .conftest import make_acd


def rung(out: list[cmd.Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.agent_id) for c in out if isinstance(c, cmd.RingAgent | cmd.PlaceCallback)]


def only(out: list[cmd.Command], kind: type) -> list[Any]:
    return [c for c in out if isinstance(c, kind)]


def login(acd: Acd, agent: str, at: float, **skills: int) -> list[cmd.Command]:
    return acd.handle(ev.AgentLoggedIn(agent, f"PJSIP/{agent}", skills or {"general": 1}, at))


def serve(acd: Acd, call_id: str, agent: str, at: float) -> list[cmd.Command]:
    acd.handle(ev.AgentAnswered(call_id, agent, at))
    return acd.handle(ev.CallEnded(call_id, at + 60))


def test_higher_skill_level_first_then_longest_idle() -> None:
    acd = make_acd()
    login(acd, "novice", 0, general=1)
    login(acd, "expert_b", 2, general=3)
    login(acd, "expert_a", 1, general=3)
    assert rung(acd.handle(ev.CallQueued("c1", "general", 5))) == [("c1", "expert_a")]
    assert rung(acd.handle(ev.CallQueued("c2", "general", 6))) == [("c2", "expert_b")]
    assert rung(acd.handle(ev.CallQueued("c3", "general", 7))) == [("c3", "novice")]


def test_fewest_calls() -> None:
    acd = make_acd([{"name": "general", "strategy": "fewest_calls"}], wrapup_s=0)
    login(acd, "a1", 0)
    login(acd, "a2", 1)
    assert rung(acd.handle(ev.CallQueued("c1", "general", 2))) == [("c1", "a1")]
    serve(acd, "c1", "a1", 3)            # a1 free again at 63 with 1 call; a2 idle since 1, 0 calls
    assert rung(acd.handle(ev.CallQueued("c2", "general", 70))) == [("c2", "a2")]
    serve(acd, "c2", "a2", 71)
    # both have one call now: the longer idle of the two
    assert rung(acd.handle(ev.CallQueued("c3", "general", 200))) == [("c3", "a1")]


def test_round_robin_remembers_who_was_last() -> None:
    acd = make_acd([{"name": "general", "strategy": "round_robin"}], wrapup_s=0)
    for n, agent in enumerate(["a1", "a2", "a3"]):
        login(acd, agent, n)
    order = []
    for n in range(7):
        out = acd.handle(ev.CallQueued(f"c{n}", "general", 10 + n))
        ((call_id, agent),) = rung(out)
        order.append(agent)
        serve(acd, call_id, agent, 10 + n)
    assert order == ["a1", "a2", "a3", "a1", "a2", "a3", "a1"]


def test_ring_all_first_answer_takes_it_others_cancelled() -> None:
    acd = make_acd([{"name": "general", "strategy": "ring_all"}])
    for n, agent in enumerate(["a1", "a2", "a3"]):
        login(acd, agent, n)
    out = acd.handle(ev.CallQueued("c1", "general", 5))
    assert sorted(a for _, a in rung(out)) == ["a1", "a2", "a3"]
    out = acd.handle(ev.AgentRingFailed("c1", "a3", "busy", 6))
    assert acd.call("c1").state == C.RINGING and sorted(acd.call("c1").agents) == ["a1", "a2"]
    out = acd.handle(ev.AgentAnswered("c1", "a2", 7))
    assert only(out, cmd.CancelRing) == [cmd.CancelRing("c1", "a1")]
    assert acd.agent("a1").state == A.AVAILABLE and acd.agent("a1").no_answers == 0
    assert acd.agent("a2").state == A.ON_CALL


def test_ring_all_is_capped() -> None:
    acd = make_acd([{"name": "general", "strategy": "ring_all"}], ring_all_max=2)
    for n in range(4):
        login(acd, f"a{n}", n)
    assert len(rung(acd.handle(ev.CallQueued("c1", "general", 5)))) == 2


def test_widening_lowers_the_skill_floor_and_keeps_the_place() -> None:
    acd = make_acd([{"name": "general", "initial_skill_level": 3, "widen_after_s": 20}])
    login(acd, "novice", 0, general=1)
    assert rung(acd.handle(ev.CallQueued("c1", "general", 0))) == []
    assert rung(acd.handle(ev.Tick(21))) == []                     # floor 2: still too high
    assert rung(acd.handle(ev.CallQueued("c2", "general", 30))) == []
    assert rung(acd.handle(ev.Tick(41))) == [("c1", "novice")]      # floor 1 for c1, not yet c2
    acd.handle(ev.AgentRingFailed("c1", "novice", "no_answer", 45))
    assert acd.call("c1").state == C.RINGING                       # only agent: tried again


def test_ring_failure_sends_the_caller_back_to_the_front_and_tries_the_next_agent() -> None:
    acd = make_acd(auto_pause_after_no_answers=0)
    login(acd, "a1", 0)
    acd.handle(ev.CallQueued("c1", "general", 1))
    acd.handle(ev.CallQueued("c2", "general", 2))
    acd.handle(ev.CallQueued("c3", "general", 3))
    login(acd, "a2", 4)                                              # takes c2
    out = acd.handle(ev.AgentRingFailed("c1", "a1", "no_answer", 20))
    assert rung(out) == [("c1", "a1")]  # a2 busy: a1 is all there is; c1 stays ahead of c3
    acd.handle(ev.AgentPaused("a1", "break", 21))
    assert acd.position("c1") == 1 and acd.position("c3") == 2
    out = acd.handle(ev.AgentRingFailed("c2", "a2", "no_answer", 22))
    # the freed agent takes the first in line (c1) and c2 goes back in front of c3
    assert rung(out) == [("c1", "a2")]
    assert acd.position("c2") == 1 and acd.position("c3") == 2


def test_ring_failure_frees_the_agent_for_another_waiting_caller() -> None:
    acd = make_acd(auto_pause_after_no_answers=0)
    login(acd, "a1", 0, general=1, billing=1)
    acd.handle(ev.CallQueued("c1", "general", 1))      # rings a1
    acd.handle(ev.CallQueued("c2", "billing", 2))      # waits: only a1 does billing
    login(acd, "a2", 3, general=1)
    out = acd.handle(ev.AgentRingFailed("c1", "a1", "no_answer", 10))
    assert sorted(rung(out)) == [("c1", "a2"), ("c2", "a1")]


def test_auto_pause_after_unanswered_rings() -> None:
    acd = make_acd(auto_pause_after_no_answers=2)
    login(acd, "a1", 0)
    acd.handle(ev.CallQueued("c1", "general", 1))
    acd.handle(ev.AgentRingFailed("c1", "a1", "no_answer", 16))
    out = acd.handle(ev.AgentRingFailed("c1", "a1", "no_answer", 31))
    assert cmd.AgentStateChanged("a1", A.PAUSED, "no_answer", None, 31) in out
    assert acd.call("c1").state == C.WAITING and rung(out) == []
    out = acd.handle(ev.AgentReady("a1", 40))
    assert rung(out) == [("c1", "a1")] and acd.agent("a1").no_answers == 0


def test_emergency_vip_and_priority_change() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("plain", "general", 1))
    acd.handle(ev.CallQueued("vip", "general", 2, vip=True))
    acd.handle(ev.CallQueued("leak", "leak", 3))                    # 漏水: emergency
    acd.handle(ev.CallQueued("quality", "general", 4, category="water_quality"))
    acd.handle(ev.CallPriorityChanged("plain", 500, 5))              # takes effect at once
    assert acd.position("plain") == 1
    login(acd, "a1", 6, general=1, leak=1)
    acd.handle(ev.AgentPaused("a1", "break", 6))
    order = []
    for at in range(10, 50, 10):
        (call_id, _agent), = rung(acd.handle(ev.AgentReady("a1", at)))
        order.append(call_id)
        acd.handle(ev.AgentAnswered(call_id, "a1", at))
        acd.handle(ev.AgentPaused("a1", "break", at + 1))               # pause waits for wrap-up
        (timer,) = only(acd.handle(ev.CallEnded(call_id, at + 2)), cmd.StartTimer)
        acd.handle(timer.event)
    assert order == ["plain", "leak", "quality", "vip"]


def test_repeat_caller_waits_for_the_preferred_agent_within_the_window() -> None:
    acd = make_acd(preferred_agent_window_s=20, wrapup_s=0)
    login(acd, "owner", 0)
    acd.handle(ev.CallQueued("first", "general", 1))
    acd.handle(ev.AgentAnswered("first", "owner", 2))
    login(acd, "other", 3)
    out = acd.handle(ev.CallQueued("repeat", "general", 4, preferred_agent="owner"))
    assert rung(out) == []                                           # other is free, but waits for owner
    out = acd.handle(ev.CallEnded("first", 10))
    assert rung(out) == [("repeat", "owner")]


def test_repeat_caller_goes_to_anyone_after_the_window() -> None:
    acd = make_acd(preferred_agent_window_s=20)
    login(acd, "owner", 0)
    acd.handle(ev.CallQueued("first", "general", 1))
    acd.handle(ev.AgentAnswered("first", "owner", 2))
    login(acd, "other", 3)
    acd.handle(ev.CallQueued("repeat", "general", 4, preferred_agent="owner"))
    assert rung(acd.handle(ev.Tick(23))) == []
    assert rung(acd.handle(ev.Tick(24))) == [("repeat", "other")]


def test_repeat_caller_whose_agent_is_away_is_routed_at_once() -> None:
    acd = make_acd()
    login(acd, "other", 0)
    assert rung(acd.handle(ev.CallQueued("repeat", "general", 4, preferred_agent="gone"))) == [("repeat", "other")]


def test_preferred_agent_may_take_a_queue_they_have_no_skill_for() -> None:
    acd = make_acd()
    login(acd, "owner", 0, billing=1)
    assert rung(acd.handle(ev.CallQueued("repeat", "general", 1, preferred_agent="owner"))) == [("repeat", "owner")]


def test_no_agents_logged_in_offers_a_callback_at_once() -> None:
    acd = make_acd()
    out = acd.handle(ev.CallQueued("c1", "general", 0))
    assert only(out, cmd.OfferCallback) == [cmd.OfferCallback("c1", "no_agents")]
    assert acd.call("c1").state == C.WAITING                        # still in line


def test_max_wait_overflows_then_offers_callback() -> None:
    acd = make_acd([{"name": "general", "max_wait_s": 60, "overflow_to": "backup"},
                    {"name": "backup", "max_wait_s": 30}])
    login(acd, "a1", 0, general=1)
    acd.handle(ev.AgentPaused("a1", "break", 0))
    login(acd, "b1", 0, backup=1)
    acd.handle(ev.AgentPaused("b1", "break", 0))
    acd.handle(ev.CallQueued("c1", "general", 1))
    out = acd.handle(ev.Tick(61))
    assert only(out, cmd.Overflow) == [cmd.Overflow("c1", "general", "backup")]
    assert acd.call("c1").queue == "backup"
    out = acd.handle(ev.Tick(95))
    assert only(out, cmd.OfferCallback) == [cmd.OfferCallback("c1", "max_wait")]
    assert only(acd.handle(ev.Tick(500)), cmd.OfferCallback) == []  # offered once
    assert rung(acd.handle(ev.AgentReady("b1", 501))) == [("c1", "b1")]


def test_queue_too_long_offers_callback_but_keeps_the_caller() -> None:
    acd = make_acd([{"name": "general", "max_length": 1}])
    login(acd, "a1", 0)
    acd.handle(ev.AgentPaused("a1", "break", 0))
    acd.handle(ev.CallQueued("c1", "general", 1))
    out = acd.handle(ev.CallQueued("c2", "general", 2))
    assert only(out, cmd.OfferCallback) == [cmd.OfferCallback("c2", "queue_full")]
    assert acd.position("c2") == 2


def test_callback_keeps_its_place_and_expires() -> None:
    acd = make_acd(callback_expire_s=3600)
    acd.handle(ev.CallQueued("c1", "general", 1))
    acd.handle(ev.CallQueued("c2", "general", 2))
    acd.handle(ev.CallbackRequested("c1", "13800000000", 3))
    assert acd.position("c1") == 1 and acd.queue_stats("general", 4).callbacks == 1
    out = login(acd, "a1", 10)
    assert only(out, cmd.PlaceCallback) == [cmd.PlaceCallback("c1", "a1", "PJSIP/a1", "13800000000", 15)]
    acd.handle(ev.AgentRingFailed("c1", "a1", "busy", 20))            # agent missed it: place kept
    acd.handle(ev.AgentPaused("a1", "break", 20))
    assert acd.call("c1").state == C.CALLBACK and acd.position("c1") == 1
    out = acd.handle(ev.Tick(3604))
    assert only(out, cmd.CallbackExpired) == [cmd.CallbackExpired("c1", "13800000000")]
    assert acd.position("c2") == 1


def test_announcements_only_when_position_improves() -> None:
    acd = make_acd(announce_first_after_s=30, announce_every_s=30, default_handle_s=120)
    login(acd, "a1", 0)
    login(acd, "a2", 0)
    for n in range(5):
        acd.handle(ev.CallQueued(f"c{n}", "general", 1 + n))       # c0, c1 ring; c2..c4 wait
    out = acd.handle(ev.Tick(40))
    assert only(out, cmd.AnnouncePosition) == [
        cmd.AnnouncePosition("c2", 1, 60.0), cmd.AnnouncePosition("c3", 2, 120.0), cmd.AnnouncePosition("c4", 3, 180.0)]
    acd.handle(ev.CallQueued("vip", "general", 41, vip=True))         # jumps ahead of everyone
    assert only(acd.handle(ev.Tick(70)), cmd.AnnouncePosition) == []  # never announce a step back
    acd.handle(ev.CallLeft("vip", 71))
    acd.handle(ev.CallLeft("c2", 72))
    out = acd.handle(ev.Tick(100))
    assert only(out, cmd.AnnouncePosition) == [cmd.AnnouncePosition("c3", 1, 60.0), cmd.AnnouncePosition("c4", 2, 120.0)]


def test_no_announcement_when_nobody_is_staffed() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("c1", "general", 0))
    assert only(acd.handle(ev.Tick(100)), cmd.AnnouncePosition) == []
    assert acd.estimated_wait("c1") is None


def test_estimated_wait_from_recent_handle_times() -> None:
    acd = make_acd(wrapup_s=10, handle_time_window=2)
    login(acd, "a1", 0)
    for n, talk in enumerate([100, 200, 40]):
        acd.handle(ev.CallQueued(f"t{n}", "general", 1000 * n))
        acd.handle(ev.AgentAnswered(f"t{n}", "a1", 1000 * n))
        acd.handle(ev.CallEnded(f"t{n}", 1000 * n + talk))
        acd.handle(ev.AgentReady("a1", 1000 * n + talk + 1))
    stats = acd.queue_stats("general", 5000)
    assert stats.average_handle_s == pytest.approx((210 + 50) / 2)  # the last two only
    acd.handle(ev.AgentPaused("a1", "break", 5000))
    login(acd, "a2", 5000)
    acd.handle(ev.AgentPaused("a2", "break", 5000))
    acd.handle(ev.AgentReady("a1", 5001))                             # a1 staffed; a2 paused
    acd.handle(ev.CallQueued("x", "general", 5002))                   # rings a1
    acd.handle(ev.CallQueued("y", "general", 5003))
    assert acd.estimated_wait("y") == pytest.approx(130.0)


def test_pause_asked_during_a_call_waits_for_wrap_up() -> None:
    acd = make_acd(wrapup_s=10)
    login(acd, "a1", 0)
    acd.handle(ev.CallQueued("c1", "general", 1))
    acd.handle(ev.AgentAnswered("c1", "a1", 2))
    assert acd.handle(ev.AgentPaused("a1", "meeting", 3)) == []
    acd.handle(ev.CallQueued("c2", "general", 4))
    out = acd.handle(ev.CallEnded("c1", 50))
    (timer,) = only(out, cmd.StartTimer)
    out = acd.handle(timer.event)
    assert cmd.AgentStateChanged("a1", A.PAUSED, "meeting", None, 60) in out and rung(out) == []


def test_one_agent_on_several_queues_takes_the_best_caller_over_all() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("bill", "billing", 1))
    acd.handle(ev.CallQueued("gen", "general", 2))
    acd.handle(ev.CallQueued("leak", "leak", 3))
    assert rung(login(acd, "a1", 5, general=1, billing=1, leak=1)) == [("leak", "a1")]
    acd.handle(ev.AgentRingFailed("leak", "a1", "reserved", 6))       # busy on another engine
    assert acd.agent("a1").reason == "elsewhere"
    assert rung(acd.handle(ev.AgentReady("a1", 7))) == [("leak", "a1")]


def test_policy_from_the_project_settings(settings: Any) -> None:
    policy = RoutingPolicy.from_settings(settings)
    assert policy.acd.ring_timeout_s == settings.acd.ring_timeout_s
    assert [q.name for q in policy.queues] == [q.name for q in settings.queues]
    assert Acd(policy).queue_names() == [q.name for q in settings.queues]


@pytest.mark.parametrize(("queues", "words"), [
    ([{"name": "a", "overflow_to": "zz"}], "overflow_to 'zz' is not a queue"),
    ([{"name": "a", "overflow_to": "a"}], "overflow_to names the queue itself"),
    ([{"name": "a"}, {"name": "a"}], "repeated: a"),
    ([{"name": "a", "initial_skill_level": 1, "min_skill_level": 3}], "min_skill_level 3 is above"),
])
def test_bad_policy_is_named(queues: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RoutingPolicy.model_validate({"queues": queues})


def test_repeat_caller_who_asks_for_a_callback_keeps_the_preferred_window() -> None:
    acd = make_acd(preferred_agent_window_s=20)
    login(acd, "owner", 0)
    acd.handle(ev.CallQueued("first", "general", 1))
    acd.handle(ev.AgentAnswered("first", "owner", 2))
    login(acd, "other", 3)
    acd.handle(ev.AgentPaused("other", "break", 3))
    acd.handle(ev.CallQueued("repeat", "general", 4, preferred_agent="owner"))
    acd.handle(ev.CallbackRequested("repeat", "13800000000", 5))
    acd.handle(ev.Tick(30))                                          # window over: joins the line as a callback
    assert acd.position("repeat") == 1 and acd.queue_stats("general", 30).callbacks == 1
    assert acd.queue_stats("general", 30).waiting == 0
    out = acd.handle(ev.AgentReady("other", 31))
    assert only(out, cmd.PlaceCallback) == [cmd.PlaceCallback("repeat", "other", "PJSIP/other", "13800000000", 15)]
