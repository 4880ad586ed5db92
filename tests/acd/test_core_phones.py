"""The agents' phones as Asterisk sees them, one (state, phone event) -> (state, commands) row at
a time: an agent whose phone is unreachable is not rung, and comes back by itself."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.errors import BadEvent, UnknownCall
from callcenter.acd.states import AgentState as A
from callcenter.acd.states import CallState as C

from .conftest import make_acd
from .test_core_table import login, scene_available, scene_on_call, scene_paused, scene_ringing

PHONE = "PJSIP/a1"
LOST = ev.PhoneUnreachable(PHONE, 5.0)
BACK = ev.PhoneReachable(PHONE, 9.0)


def scene_offline(acd: Acd) -> None:
    acd.handle(login())
    acd.handle(ev.PhoneUnreachable(PHONE, 0.5))


def scene_offline_caller_waiting(acd: Acd) -> None:
    scene_offline(acd)
    acd.handle(ev.CallQueued("c1", "general", 1.0))


def scene_two_agents_ringing_a1(acd: Acd) -> None:
    acd.handle(login("a1", at=0.0))
    acd.handle(ev.CallQueued("c1", "general", 1.0))
    acd.handle(login("a2", at=2.0))


def scene_ring_all(acd: Acd) -> None:
    acd.handle(login("a1", at=0.0))
    acd.handle(login("a2", at=0.5))
    acd.handle(ev.CallQueued("c1", "general", 1.0))


@dataclass
class Row:
    name: str
    scene: Callable[[Acd], None]
    event: ev.Event
    agent_state: A
    reachable: bool
    call_state: C | None
    commands: list[cmd.Command]
    strategy: str = "longest_idle"


ROWS = [
    Row("available phone lost -> still available, not in the pool", scene_available, LOST, A.AVAILABLE, False, None,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0)]),
    Row("lost again changes nothing", scene_offline, LOST, A.AVAILABLE, False, None, []),
    Row("offline agent: a caller waits instead of ringing them", scene_offline, ev.CallQueued("c1", "general", 3.0),
        A.AVAILABLE, False, C.WAITING, [cmd.CallStateChanged("c1", C.WAITING, "general", None, 3.0)]),
    Row("phone back -> takes the waiting caller", scene_offline_caller_waiting, BACK, A.RINGING, True, C.RINGING,
        [cmd.PhoneStatusChanged(PHONE, True, 9.0),
         cmd.AgentStateChanged("a1", A.RINGING, None, "c1", 9.0),
         cmd.RingAgent("c1", "a1", PHONE, 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a1", 9.0)]),
    Row("back while reachable changes nothing", scene_available, BACK, A.AVAILABLE, True, None, []),
    Row("lost while ringing -> ring cancelled as unreachable, caller waits", scene_ringing, LOST, A.AVAILABLE, False,
        C.WAITING,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0),
         cmd.CancelRing("c1", "a1", "unreachable"),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("lost while ringing -> the other agent is rung", scene_two_agents_ringing_a1, LOST, A.AVAILABLE, False,
        C.RINGING,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0),
         cmd.CancelRing("c1", "a1", "unreachable"),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0),
         cmd.AgentStateChanged("a2", A.RINGING, None, "c1", 5.0),
         cmd.RingAgent("c1", "a2", "PJSIP/a2", 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a2", 5.0)]),
    Row("ring_all: one phone lost, the other rings on", scene_ring_all, LOST, A.AVAILABLE, False, C.RINGING,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0),
         cmd.CancelRing("c1", "a1", "unreachable"),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0)], strategy="ring_all"),
    Row("ring failed unreachable -> available, offline, not a no-answer", scene_ringing,
        ev.AgentRingFailed("c1", "a1", "unreachable", 5.0), A.AVAILABLE, False, C.WAITING,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("ring failed unreachable -> the other agent is rung", scene_two_agents_ringing_a1,
        ev.AgentRingFailed("c1", "a1", "unreachable", 5.0), A.AVAILABLE, False, C.RINGING,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0),
         cmd.AgentStateChanged("a2", A.RINGING, None, "c1", 5.0),
         cmd.RingAgent("c1", "a2", "PJSIP/a2", 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a2", 5.0)]),
    Row("lost on a call: the call goes on", scene_on_call, LOST, A.ON_CALL, False, C.ON_CALL,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0)]),
    Row("lost while paused: stays paused", scene_paused, LOST, A.PAUSED, False, None,
        [cmd.PhoneStatusChanged(PHONE, False, 5.0)]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_phone_transition(row: Row) -> None:
    acd = make_acd(auto_pause_after_no_answers=1, strategy=row.strategy)
    row.scene(acd)
    assert acd.handle(row.event) == row.commands
    view = acd.agent("a1")
    assert (view.state, view.phone_reachable, view.no_answers) == (row.agent_state, row.reachable, 0)
    if row.call_state is None:
        with pytest.raises(UnknownCall):
            acd.call("c1")
    else:
        assert acd.call("c1").state == row.call_state


def test_unreachable_rings_never_pause_for_no_answer() -> None:
    """Three rings on a phone that is gone: the agent is not auto-paused (that is for a
    person who does not pick up), and is not rung a fourth time while the phone is gone."""
    acd = make_acd(auto_pause_after_no_answers=2)
    acd.handle(login())
    for n in range(3):
        out = acd.handle(ev.CallQueued(f"c{n}", "general", 10.0 * n))
        assert cmd.RingAgent(f"c{n}", "a1", PHONE, 15) in out
        acd.handle(ev.AgentRingFailed(f"c{n}", "a1", "unreachable", 10.0 * n + 1))
        acd.handle(BACK if n < 2 else ev.Tick(10.0 * n + 2))
        if n < 2:
            acd.handle(ev.CallLeft(f"c{n}", 10.0 * n + 3))
    view = acd.agent("a1")
    assert (view.state, view.no_answers, view.phone_reachable) == (A.AVAILABLE, 0, False)
    assert acd.call("c2").state == C.WAITING


def test_phone_known_before_login() -> None:
    """A phone lost before its agent logs in: the agent logs in available but is not rung."""
    acd = make_acd()
    acd.handle(ev.PhoneUnreachable(PHONE, 0.0))
    acd.handle(ev.CallQueued("c1", "general", 1.0))
    out = acd.handle(login(at=2.0))
    assert not [c for c in out if isinstance(c, cmd.RingAgent)]
    assert acd.queue_stats("general", 3.0).available == 0
    out = acd.handle(ev.PhoneReachable(PHONE, 4.0))
    assert cmd.RingAgent("c1", "a1", PHONE, 15) in out



def test_after_wrap_up_an_offline_agent_is_not_rung() -> None:
    acd = make_acd(wrapup_s=0)
    scene_on_call(acd)
    acd.handle(LOST)
    acd.handle(ev.CallQueued("c2", "general", 6.0))
    out = acd.handle(ev.CallEnded("c1", 7.0))
    assert not [c for c in out if isinstance(c, cmd.RingAgent)]
    assert acd.agent("a1").state == A.AVAILABLE
    assert acd.call("c2").state == C.WAITING


def test_repeat_caller_does_not_wait_for_an_offline_agent() -> None:
    acd = make_acd(preferred_agent_window_s=60)
    acd.handle(login("a1"))
    acd.handle(login("a2", at=0.5))
    acd.handle(LOST)
    out = acd.handle(ev.CallQueued("c1", "general", 6.0, preferred_agent="a1"))
    assert cmd.RingAgent("c1", "a2", "PJSIP/a2", 15) in out


@pytest.mark.parametrize("endpoint", ["", "PJSIP/a1\r\nAction: Originate", "P" * 200])
def test_bad_phone_endpoint_is_refused(endpoint: str) -> None:
    acd = make_acd()
    with pytest.raises(BadEvent, match="phone endpoint"):
        acd.handle(ev.PhoneUnreachable(endpoint, 0.0))
    with pytest.raises(BadEvent, match="phone endpoint"):
        acd.handle(ev.PhoneReachable(endpoint, 0.0))
