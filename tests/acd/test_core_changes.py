"""The administrator's changes in a running core: a new policy (a new queue, a new strategy, new
hours) and new skills for a logged-in agent hold at once, waiting callers and figures kept."""
from __future__ import annotations

import copy

import pytest

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.errors import BadEvent, UnknownQueue
from callcenter.acd.states import AgentState as A

from .conftest import make_acd, make_policy

QUEUES = [{"name": "general", "category": "other"}, {"name": "leak", "category": "leak", "priority": 5},
          {"name": "billing", "category": "billing"}]


def rings(commands: list[cmd.Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.agent_id) for c in commands if isinstance(c, cmd.RingAgent)]


def test_new_skills_let_an_available_agent_take_the_caller_waiting_there_at_once() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("c1", "billing", 1.0))
    acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 2.0))
    assert acd.agent("a1").state == A.AVAILABLE
    out = acd.handle(ev.AgentSkillsChanged("a1", {"general": 1, "billing": 4}, 3.0))
    assert rings(out) == [("c1", "a1")]
    stats = acd.queue_stats("billing", 3.0)
    assert (stats.logged_in, stats.staffed) == (1, 1)
    acd.handle(ev.AgentSkillsChanged("a1", {"general": 1}, 4.0))       # while ringing: counts follow
    assert (acd.queue_stats("billing", 4.0).logged_in, acd.queue_stats("general", 4.0).logged_in) == (0, 1)


def test_skills_are_checked_like_a_log_in() -> None:
    acd = make_acd()
    acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 0.0))
    with pytest.raises(UnknownQueue):
        acd.handle(ev.AgentSkillsChanged("a1", {"nosuch": 1}, 1.0))
    with pytest.raises(BadEvent, match="level 11"):
        acd.handle(ev.AgentSkillsChanged("a1", {"general": 11}, 1.0))
    assert acd.agent("a1").skills == {"general": 1}


def test_a_new_policy_adds_a_queue_keeps_the_waiting_callers_and_may_not_drop_a_queue() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("c1", "leak", 1.0))
    new = make_policy([*QUEUES, {"name": "heating", "category": "other"}])
    assert acd.handle(ev.PolicyChanged(new, 2.0)) == []
    assert acd.queue_names() == ["general", "leak", "billing", "heating"] and acd.queue_stats("leak", 2.0).waiting == 1
    out = acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"heating": 2, "leak": 1}, 3.0))
    assert rings(out) == [("c1", "a1")]
    with pytest.raises(BadEvent, match="lacks billing"):
        acd.handle(ev.PolicyChanged(make_policy(QUEUES[:2]), 4.0))


def test_a_new_strategy_reorders_the_available_agents() -> None:
    acd = make_acd()
    acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 0.0))
    acd.handle(ev.AgentLoggedIn("a2", "PJSIP/a2", {"general": 1}, 1.0))
    acd.handle(ev.CallQueued("c0", "general", 2.0))        # a1, idle longest, takes it
    acd.handle(ev.AgentAnswered("c0", "a1", 2.5))
    acd.handle(ev.CallEnded("c0", 3.0))
    acd.handle(ev.AgentReady("a1", 3.1))
    acd.handle(ev.AgentPaused("a2", "break", 3.2))
    acd.handle(ev.AgentReady("a2", 3.3))                    # now a1 is idle longest, a2 took fewer calls
    before = copy.deepcopy(acd)
    assert rings(before.handle(ev.CallQueued("c1", "general", 5.0))) == [("c1", "a1")]
    changed = make_policy([{**QUEUES[0], "strategy": "fewest_calls"}, *QUEUES[1:]])
    acd.handle(ev.PolicyChanged(changed, 4.0))
    assert rings(acd.handle(ev.CallQueued("c1", "general", 5.0))) == [("c1", "a2")]
