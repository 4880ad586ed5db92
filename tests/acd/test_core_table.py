"""The state tables, one (state, event) -> (new state, commands) row at a time."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.errors import BadEvent, IllegalTransition, UnknownAgent, UnknownCall, UnknownQueue
from callcenter.acd.states import AgentState as A
from callcenter.acd.states import CallState as C

from .conftest import make_acd

EP = "PJSIP/1001"


def login(agent: str = "a1", skills: dict[str, int] | None = None, at: float = 0.0) -> ev.AgentLoggedIn:
    return ev.AgentLoggedIn(agent, f"PJSIP/{agent}", skills or {"general": 1}, at)


# Scenes: how to bring agent a1 (and call c1) into a state.
def scene_available(acd: Acd) -> None:
    acd.handle(login())


def scene_ringing(acd: Acd) -> None:
    acd.handle(login())
    acd.handle(ev.CallQueued("c1", "general", 1.0))


def scene_on_call(acd: Acd) -> None:
    scene_ringing(acd)
    acd.handle(ev.AgentAnswered("c1", "a1", 2.0))


def scene_wrap_up(acd: Acd) -> None:
    scene_on_call(acd)
    acd.handle(ev.CallEnded("c1", 10.0))


def scene_paused(acd: Acd) -> None:
    acd.handle(login())
    acd.handle(ev.AgentPaused("a1", "break", 1.0))


def scene_waiting(acd: Acd) -> None:
    acd.handle(ev.CallQueued("c1", "general", 1.0))


def scene_callback(acd: Acd) -> None:
    scene_waiting(acd)
    acd.handle(ev.CallbackRequested("c1", "13800000000", 2.0))


@dataclass
class Row:
    name: str
    scene: Callable[[Acd], None]
    event: ev.Event
    agent_state: A | None          # a1 afterwards (None: logged out / unknown)
    call_state: C | None           # c1 afterwards (None: forgotten)
    commands: list[cmd.Command]


ROWS = [
    Row("login", lambda acd: None, login(at=5.0), A.AVAILABLE, None,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0)]),
    Row("available call queued -> ring", scene_available, ev.CallQueued("c1", "general", 3.0), A.RINGING, C.RINGING,
        [cmd.CallStateChanged("c1", C.WAITING, "general", None, 3.0),
         cmd.AgentStateChanged("a1", A.RINGING, None, "c1", 3.0),
         cmd.RingAgent("c1", "a1", "PJSIP/a1", 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a1", 3.0)]),
    Row("available pause", scene_available, ev.AgentPaused("a1", "training", 3.0), A.PAUSED, None,
        [cmd.AgentStateChanged("a1", A.PAUSED, "training", None, 3.0)]),
    Row("available logout", scene_available, ev.AgentLoggedOut("a1", 3.0), None, None,
        [cmd.AgentStateChanged("a1", A.LOGGED_OUT, None, None, 3.0)]),
    Row("ringing answered", scene_ringing, ev.AgentAnswered("c1", "a1", 4.0), A.ON_CALL, C.ON_CALL,
        [cmd.AgentStateChanged("a1", A.ON_CALL, None, "c1", 4.0),
         cmd.CallStateChanged("c1", C.ON_CALL, "general", "a1", 4.0)]),
    Row("ringing no answer -> available, caller back, same agent retried", scene_ringing,
        ev.AgentRingFailed("c1", "a1", "no_answer", 16.0), A.RINGING, C.RINGING,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 16.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 16.0),
         cmd.AgentStateChanged("a1", A.RINGING, None, "c1", 16.0),
         cmd.RingAgent("c1", "a1", "PJSIP/a1", 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a1", 16.0)]),
    Row("ringing unreachable -> paused", scene_ringing, ev.AgentRingFailed("c1", "a1", "unavailable", 5.0),
        A.PAUSED, C.WAITING,
        [cmd.AgentStateChanged("a1", A.PAUSED, "unavailable", None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("ringing reserved elsewhere -> paused elsewhere", scene_ringing,
        ev.AgentRingFailed("c1", "a1", "reserved", 5.0), A.PAUSED, C.WAITING,
        [cmd.AgentStateChanged("a1", A.PAUSED, "elsewhere", None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("ringing pause cancels the ring", scene_ringing, ev.AgentPaused("a1", "break", 5.0), A.PAUSED, C.WAITING,
        [cmd.CancelRing("c1", "a1"),
         cmd.AgentStateChanged("a1", A.PAUSED, "break", None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("ringing logout cancels the ring", scene_ringing, ev.AgentLoggedOut("a1", 5.0), None, C.WAITING,
        [cmd.CancelRing("c1", "a1"),
         cmd.AgentStateChanged("a1", A.LOGGED_OUT, None, None, 5.0),
         cmd.CallStateChanged("c1", C.WAITING, "general", None, 5.0)]),
    Row("ringing caller leaves", scene_ringing, ev.CallLeft("c1", 5.0), A.AVAILABLE, None,
        [cmd.CallStateChanged("c1", C.ENDED, "general", None, 5.0),
         cmd.CancelRing("c1", "a1"),
         cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 5.0)]),
    Row("on call ends -> wrap-up timer", scene_on_call, ev.CallEnded("c1", 60.0), A.WRAP_UP, None,
        [cmd.CallStateChanged("c1", C.ENDED, "general", "a1", 60.0),
         cmd.AgentStateChanged("a1", A.WRAP_UP, None, None, 60.0),
         cmd.StartTimer(10, ev.WrapUpEnded("a1", 1, 70.0))]),
    Row("on call pause waits", scene_on_call, ev.AgentPaused("a1", "meeting", 5.0), A.ON_CALL, C.ON_CALL, []),
    Row("wrap-up ends", scene_wrap_up, ev.WrapUpEnded("a1", 1, 20.0), A.AVAILABLE, None,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 20.0)]),
    Row("wrap-up stale timer ignored", scene_wrap_up, ev.WrapUpEnded("a1", 0, 20.0), A.WRAP_UP, None, []),
    Row("wrap-up extended", scene_wrap_up, ev.WrapUpExtended("a1", 30, 15.0), A.WRAP_UP, None,
        [cmd.StartTimer(35.0, ev.WrapUpEnded("a1", 2, 50.0))]),
    Row("wrap-up ready early", scene_wrap_up, ev.AgentReady("a1", 12.0), A.AVAILABLE, None,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 12.0)]),
    Row("wrap-up pause", scene_wrap_up, ev.AgentPaused("a1", "follow_up", 12.0), A.PAUSED, None,
        [cmd.AgentStateChanged("a1", A.PAUSED, "follow_up", None, 12.0)]),
    Row("wrap-up logout", scene_wrap_up, ev.AgentLoggedOut("a1", 12.0), None, None,
        [cmd.AgentStateChanged("a1", A.LOGGED_OUT, None, None, 12.0)]),
    Row("paused ready", scene_paused, ev.AgentReady("a1", 9.0), A.AVAILABLE, None,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 9.0)]),
    Row("paused new reason", scene_paused, ev.AgentPaused("a1", "meeting", 9.0), A.PAUSED, None,
        [cmd.AgentStateChanged("a1", A.PAUSED, "meeting", None, 9.0)]),
    Row("paused ready takes the waiting caller",
        lambda acd: (scene_paused(acd), scene_waiting(acd)), ev.AgentReady("a1", 9.0), A.RINGING, C.RINGING,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 9.0),
         cmd.AgentStateChanged("a1", A.RINGING, None, "c1", 9.0),
         cmd.RingAgent("c1", "a1", "PJSIP/a1", 15),
         cmd.CallStateChanged("c1", C.RINGING, "general", "a1", 9.0)]),
    Row("waiting callback keeps place", scene_waiting, ev.CallbackRequested("c1", "13800000000", 3.0), None,
        C.CALLBACK, [cmd.CallStateChanged("c1", C.CALLBACK, "general", None, 3.0)]),
    Row("callback placed when an agent logs in", scene_callback, login(at=4.0), A.RINGING, C.CALLING_BACK,
        [cmd.AgentStateChanged("a1", A.AVAILABLE, None, None, 4.0),
         cmd.AgentStateChanged("a1", A.RINGING, None, "c1", 4.0),
         cmd.PlaceCallback("c1", "a1", "PJSIP/a1", "13800000000", 15),
         cmd.CallStateChanged("c1", C.CALLING_BACK, "general", "a1", 4.0)]),
    Row("callback cancelled", scene_callback, ev.CallLeft("c1", 4.0), None, None,
        [cmd.CallStateChanged("c1", C.ENDED, "general", None, 4.0)]),
    Row("waiting caller leaves", scene_waiting, ev.CallLeft("c1", 4.0), None, None,
        [cmd.CallStateChanged("c1", C.ENDED, "general", None, 4.0)]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_transition(row: Row) -> None:
    acd = make_acd(auto_pause_after_no_answers=0)
    row.scene(acd)
    assert acd.handle(row.event) == row.commands
    if row.agent_state is None:
        with pytest.raises(UnknownAgent):
            acd.agent("a1")
    else:
        assert acd.agent("a1").state == row.agent_state
    if row.call_state is None:
        with pytest.raises(UnknownCall):
            acd.call("c1")
    else:
        assert acd.call("c1").state == row.call_state


ILLEGAL = [
    ("login twice", scene_available, login()),
    ("ready while available", scene_available, ev.AgentReady("a1", 2.0)),
    ("answer while available", scene_available, ev.AgentAnswered("c9", "a1", 2.0)),
    ("ready while ringing", scene_ringing, ev.AgentReady("a1", 2.0)),
    ("answer for another agent", scene_ringing, ev.AgentAnswered("c1", "a2", 2.0)),
    ("logout on call", scene_on_call, ev.AgentLoggedOut("a1", 5.0)),
    ("ready on call", scene_on_call, ev.AgentReady("a1", 5.0)),
    ("caller leaves while on call", scene_on_call, ev.CallLeft("c1", 5.0)),
    ("answered twice", scene_on_call, ev.AgentAnswered("c1", "a1", 5.0)),
    ("ring failed on call", scene_on_call, ev.AgentRingFailed("c1", "a1", "no_answer", 5.0)),
    ("extend wrap-up while paused", scene_paused, ev.WrapUpExtended("a1", 10, 5.0)),
    ("call ended while waiting", scene_waiting, ev.CallEnded("c1", 5.0)),
    ("callback while callback", scene_callback, ev.CallbackRequested("c1", "1", 5.0)),
    ("unknown call leaves", scene_available, ev.CallLeft("nope", 5.0)),
    ("unknown agent pauses", scene_available, ev.AgentPaused("nope", "break", 5.0)),
]


def _state(acd: Acd) -> object:
    return copy.deepcopy((acd.agents(), acd.calls(), [acd.queue_stats(q, 100.0) for q in acd.queue_names()],
                          sorted(acd._timers)))


@pytest.mark.parametrize(("name", "scene", "event"), ILLEGAL, ids=[i[0] for i in ILLEGAL])
def test_illegal_event_changes_nothing(name: str, scene: Callable[[Acd], None], event: ev.Event) -> None:
    acd = make_acd()
    scene(acd)
    before = _state(acd)
    with pytest.raises(IllegalTransition) as err:
        acd.handle(event)
    assert str(err.value)
    assert _state(acd) == before


@pytest.mark.parametrize(("event", "error", "words"), [
    (ev.AgentLoggedIn("a1", "PJSIP/a1", {"nosuch": 1}, 0.0), UnknownQueue, "skills: queue 'nosuch'"),
    (ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 11}, 0.0), BadEvent, "skills.general: level 11"),
    (ev.AgentLoggedIn("a1", "PJSIP/a1\r\nAction: Originate", {"general": 1}, 0.0), BadEvent, "line break"),
    (ev.CallQueued("c1", "nosuch", 0.0), UnknownQueue, "call 'c1': queue 'nosuch'"),
    (ev.WrapUpExtended("a1", -5, 0.0), IllegalTransition, "not allowed while available"),
], ids=["unknown queue", "skill level", "endpoint injection", "call unknown queue", "extend while available"])
def test_bad_events_say_what_and_where(event: ev.Event, error: type[Exception], words: str) -> None:
    acd = make_acd()
    if not isinstance(event, ev.AgentLoggedIn):
        acd.handle(login())
    before = _state(acd)
    with pytest.raises(error, match=words.replace("(", r"\(")):
        acd.handle(event)
    assert _state(acd) == before


def test_queued_twice_is_refused() -> None:
    acd = make_acd()
    acd.handle(ev.CallQueued("c1", "general", 0.0))
    with pytest.raises(BadEvent, match="already queued"):
        acd.handle(ev.CallQueued("c1", "general", 1.0))


def test_unknown_event_type() -> None:
    with pytest.raises(BadEvent, match="not an ACD event: str"):
        make_acd().handle("hello")  # type: ignore[arg-type]
