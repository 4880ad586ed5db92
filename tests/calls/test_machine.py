"""CallMachine, the pure life of one call: its table pair by pair, its paths, and properties
over random event sequences."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.acd import commands as acd_cmd
from callcenter.acd import events as acd_ev
from callcenter.calls import machine as m
from callcenter.calls.core import Adoption, EndNote, Phase, read_end_note
from callcenter.ivr.flow import Notice
from callcenter.ivr.model import load_menu, parse_menu

MENU = load_menu(Path(__file__).parent.parent / "e2e" / "short_menu.yaml")
# No default: two silences and the caller hears goodbye (a message that ends the call).
GOODBYE_MENU = parse_menu("""
start: main
menus:
  main:
    text: 请选择。
    timeout_s: 2
    retries: 1
    choices:
      "2": {queue: leak, category: leak}
invalid: 您的输入有误。
no_input: 没有收到您的选择。
goodbye: 再见。
""")
CALLER = "PJSIP/trunk-00000001"
AGENT = "PJSIP/1001-00000002"
COLLEAGUE = "PJSIP/1003-00000004"
LEG = "Local/1003@callcenter-consult-00000001;2"
CALL = "call-1"


def ring(agent: str = "1001") -> m.AcdSays:
    return m.AcdSays(acd_cmd.RingAgent(CALL, agent, f"PJSIP/{agent}", 15))


def new() -> m.CallMachine:
    return m.CallMachine(CALL, CALLER, "13800138000", MENU)


def feed(machine: m.CallMachine, *events: m.Event) -> list[m.Command]:
    out: list[m.Command] = []
    for event in events:
        out += machine.handle(event, 10.0)
    return out


TO_WAITING = (m.Arrived(), m.Answered(), m.NoticeFound(None), m.DigitCollected("2"), m.QueueFound("leak", None))
TO_TALKING = (*TO_WAITING, ring(), m.RingStarted(AGENT), m.DialEnded(AGENT, "ANSWER"))


def built(phase: Phase) -> m.CallMachine:
    """A machine in `phase`, the way a call gets there."""
    machine = new()
    steps: dict[Phase, tuple[m.Event, ...]] = {
        Phase.ARRIVED: (m.Arrived(),),
        Phase.IVR: (m.Arrived(), m.Answered()),
        Phase.WAITING: TO_WAITING,
        Phase.RINGING: (*TO_WAITING, ring()),
        Phase.TALKING: TO_TALKING,
        Phase.SURVEY: (*TO_TALKING, m.DialReturned(caller_left=False)),
        Phase.LEAVING: (*TO_TALKING, m.DialReturned(caller_left=False), m.DigitCollected(None)),
        Phase.ENDED: (*TO_TALKING, m.HungUp(CALLER)),
        Phase.HANDED_OVER: (*TO_TALKING, m.Stopping(handed_over=True)),
    }
    feed(machine, *steps[phase])
    assert machine.phase is phase
    return machine


SAMPLES: dict[type, m.Event] = {
    m.Arrived: m.Arrived(), m.Answered: m.Answered(), m.NoticeFound: m.NoticeFound(None),
    m.DigitCollected: m.DigitCollected("2"), m.PromptPlayed: m.PromptPlayed(),
    m.QueueFound: m.QueueFound("leak", None), m.RingStarted: m.RingStarted(AGENT),
    m.DialEnded: m.DialEnded(AGENT, "ANSWER"), m.DialReturned: m.DialReturned(caller_left=False),
    m.DialRefused: m.DialRefused(), m.HungUp: m.HungUp(CALLER), m.ChannelGone: m.ChannelGone(),
    m.AmiLost: m.AmiLost(), m.CommandFailed: m.CommandFailed("StartMusicOnHold"),
    m.GoneDuringOutage: m.GoneDuringOutage(), m.CutByPbx: m.CutByPbx(), m.TimerFired: m.TimerFired(m.GONE),
    m.Stopping: m.Stopping(handed_over=False), m.AcdSays: ring("1002"),
    m.TransferAsked: m.TransferAsked(queue="general"), m.ConsultAsked: m.ConsultAsked("1003"),
    m.ConsultFailed: m.ConsultFailed(), m.ConsultRinging: m.ConsultRinging(LEG, COLLEAGUE),
    m.ConsultDialEnded: m.ConsultDialEnded("ANSWER"),
    m.Adopted: m.Adopted(Adoption(Phase.WAITING), "leak", "leak", None, 5.0, talked=False),
}
assert set(SAMPLES) == set(m.EVENTS)

X = None   # illegal: raises and changes nothing
P = Phase
_ENDS = {m.HungUp: P.ENDED, m.GoneDuringOutage: P.ENDED, m.TimerFired: P.ENDED, m.Stopping: P.ENDED,
         m.CommandFailed: P.LEAVING}


def _live(phase: Phase, **taken: Phase) -> dict[type, Phase | None]:
    """A live phase's row: the hang-ups and failures every live phase takes, plus its own."""
    row: dict[type, Phase | None] = {t: X for t in m.EVENTS}
    row.update(_ENDS)
    row.update({m.ChannelGone: phase, m.AmiLost: phase, m.CutByPbx: phase})
    row.update({getattr(m, name): after for name, after in taken.items()})
    return row


def _over(phase: Phase, **taken: Phase) -> dict[type, Phase | None]:
    row: dict[type, Phase | None] = {t: phase for t in m.EVENTS}
    row.update({t: X for t in m.ASKS})
    row.update({getattr(m, name): after for name, after in taken.items()})
    return row


# The expected phase after each sample event, in each phase (as `built` reaches it).
EXPECTED: dict[Phase, dict[type, Phase | None]] = {
    P.ARRIVED: _live(P.ARRIVED, Answered=P.IVR),                     # Arrived again: X (begun already)
    P.IVR: _live(P.IVR, NoticeFound=P.IVR),                          # a key before the menu plays: X
    P.WAITING: _live(P.WAITING, AcdSays=P.RINGING, RingStarted=P.WAITING, DialEnded=P.WAITING),
    P.RINGING: _live(P.RINGING, AcdSays=P.RINGING, RingStarted=P.RINGING, DialEnded=P.TALKING,
                     DialReturned=P.WAITING, DialRefused=P.WAITING),
    P.TALKING: _live(P.TALKING, AcdSays=P.TALKING, RingStarted=P.TALKING, DialEnded=P.TALKING,
                     DialReturned=P.SURVEY, TransferAsked=P.TALKING, ConsultAsked=P.TALKING,
                     ConsultFailed=P.TALKING, ConsultRinging=P.TALKING, ConsultDialEnded=P.TALKING),
    P.SURVEY: _live(P.SURVEY, DigitCollected=P.SURVEY, AcdSays=P.SURVEY, RingStarted=P.SURVEY,
                    DialEnded=P.SURVEY, ConsultFailed=P.SURVEY, ConsultRinging=P.SURVEY,
                    ConsultDialEnded=P.SURVEY),
    P.LEAVING: _over(P.LEAVING, HungUp=P.ENDED, GoneDuringOutage=P.ENDED, TimerFired=P.ENDED, Stopping=P.ENDED),
    P.ENDED: _over(P.ENDED),
    P.HANDED_OVER: _over(P.HANDED_OVER),
}


def state(machine: m.CallMachine) -> dict[str, Any]:
    return {k: copy.copy(v) for k, v in vars(machine).items() if k not in ("ivr", "menu")}


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("event_type", m.EVENTS, ids=lambda t: t.__name__)
def test_every_phase_takes_or_refuses_every_event_as_the_table_says(phase: Phase, event_type: type) -> None:
    machine = built(phase)
    expected = EXPECTED[phase][event_type]
    before = state(machine)
    if expected is None:
        with pytest.raises(m.IllegalEvent):
            machine.handle(SAMPLES[event_type], 20.0)
        assert state(machine) == before          # refused: nothing changed
        return
    out = machine.handle(SAMPLES[event_type], 20.0)
    assert machine.phase is expected
    if phase in (P.ENDED, P.HANDED_OVER):
        assert out == []
    if expected is P.ENDED and phase is not P.ENDED:
        assert isinstance(out[-1], m.CloseRecord)


# ---------------------------------------------------------------------- paths


def acd_events(commands: list[m.Command]) -> list[Any]:
    return [c.event for c in commands if isinstance(c, m.FeedAcd)]


def test_a_call_walks_the_menu_waits_is_rung_talks_and_rates_the_service() -> None:
    machine = new()
    assert feed(machine, m.Arrived()) == [m.OpenRecord(), m.Answer()]
    assert feed(machine, m.Answered()) == [m.LookUpNotice()]
    assert feed(machine, m.NoticeFound(None)) == [m.Collect("menu_quick", 2000)]
    out = feed(machine, m.DigitCollected("2"))
    assert out == [m.UpdateRecord({"ivr_path": ["quick", "quick:2"], "ivr_choice": "2"}), m.LookUpQueue("leak")]
    out = feed(machine, m.QueueFound("leak", "1002"))
    assert out[:2] == [m.UpdateRecord({"queue": "leak", "category": "leak"}, stamps=("queued_at",)), m.StartMusic()]
    assert acd_events(out) == [acd_ev.CallQueued(call_id=CALL, queue="leak", at=10.0, category="leak",
                                                 caller="13800138000", preferred_agent="1002")]
    assert feed(machine, ring()) == [m.AddAttempt("1001"), m.StopMusic(), m.Dial(("PJSIP/1001",), 15)]
    assert feed(machine, m.RingStarted(AGENT)) == [m.Follow(AGENT)]
    out = feed(machine, m.DialEnded(AGENT, "ANSWER"))
    assert out == [m.StartRecording(), m.FeedAcd(acd_ev.AgentAnswered(call_id=CALL, agent_id="1001", at=10.0)),
                   m.EndAttempt("1001", "answered"), m.UpdateRecord({"agent_id": "1001"}, stamps=("agent_answered_at",))]
    assert (machine.phase, machine.agent_id, machine.agent_channel) == (P.TALKING, "1001", AGENT)
    assert feed(machine, m.HungUp(AGENT)) == []            # Dial's return tells who left first
    out = feed(machine, m.DialReturned(caller_left=False))
    assert out == [m.StopRecording(), m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)),
                   m.Collect("survey_question", m.SURVEY_TIMEOUT_MS)]
    assert feed(machine, m.DigitCollected("5")) == [m.UpdateRecord({"survey_score": 5}), m.Play(("survey_thanks",))]
    assert feed(machine, m.PromptPlayed()) == [m.HangUp(CALLER), m.StartTimer(m.GONE, m.GONE_WAIT_S)]
    assert feed(machine, m.HungUp(CALLER)) == [m.CloseRecord("answered", "agent")]
    assert machine.phase is P.ENDED


def test_the_caller_hanging_up_in_the_talk_is_told_by_dials_result_not_by_the_order_of_hangups() -> None:
    machine = built(P.TALKING)
    assert feed(machine, m.HungUp(AGENT)) == []          # reported first, though the caller left
    assert feed(machine, m.DialReturned(caller_left=True)) == []
    assert feed(machine, m.HungUp(CALLER)) == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)),
                                               m.CloseRecord("answered", "caller")]


def test_an_unanswered_ring_puts_the_caller_back_to_waiting_and_tells_the_acd_why() -> None:
    machine = built(P.RINGING)
    feed(machine, m.RingStarted(AGENT))
    assert feed(machine, m.DialEnded(AGENT, "BUSY")) == [m.EndAttempt("1001", "busy"), m.FeedAcd(
        acd_ev.AgentRingFailed(call_id=CALL, agent_id="1001", reason="busy", at=10.0))]
    assert feed(machine, m.DialReturned(caller_left=False)) == [m.StartMusic()]
    assert machine.phase is P.WAITING and machine.rings == ()


def test_a_ring_the_acd_calls_off_is_hung_up_and_nothing_is_fed_back_for_it() -> None:
    machine = built(P.RINGING)
    # Called off before Asterisk said which channel rings: hung up as soon as it does.
    assert feed(machine, m.AcdSays(acd_cmd.CancelRing(CALL, "1001"))) == [m.EndAttempt("1001", "cancelled")]
    assert feed(machine, m.RingStarted(AGENT)) == [m.Follow(AGENT), m.HangUp(AGENT)]
    assert feed(machine, m.DialEnded(AGENT, "ANSWER")) == []     # answered too late: not the talk
    assert machine.phase is P.RINGING
    assert feed(machine, m.DialReturned(caller_left=False)) == [m.StartMusic()]     # no AgentRingFailed
    machine2 = built(P.RINGING)
    feed(machine2, m.RingStarted(AGENT))
    assert feed(machine2, m.AcdSays(acd_cmd.CancelRing(CALL, "1001"))) == [m.EndAttempt("1001", "cancelled"),
                                                                           m.HangUp(AGENT)]


def ring_all(*agents: str) -> m.AcdSays:
    return m.AcdSays(m.RingGroup(tuple(acd_cmd.RingAgent(CALL, a, f"PJSIP/{a}", 15) for a in agents)))


def test_ring_all_rings_every_phone_in_one_dial_and_the_first_to_answer_gets_the_caller() -> None:
    machine = built(P.WAITING)
    assert feed(machine, ring_all("1001", "1002", "1003")) == [
        m.AddAttempt("1001"), m.AddAttempt("1002"), m.AddAttempt("1003"), m.StopMusic(),
        m.Dial(("PJSIP/1001", "PJSIP/1002", "PJSIP/1003"), 15)]
    legs = {a: f"PJSIP/{a}-0000000{n}" for n, a in enumerate(("1001", "1002", "1003"), 2)}
    for leg in legs.values():
        assert feed(machine, m.RingStarted(leg)) == [m.Follow(leg)]
    # 1003's phone is busy: the ACD hears it at once; the others ring on.
    assert feed(machine, m.DialEnded(legs["1003"], "BUSY")) == [
        m.EndAttempt("1003", "busy"),
        m.FeedAcd(acd_ev.AgentRingFailed(call_id=CALL, agent_id="1003", reason="busy", at=10.0))]
    out = feed(machine, m.DialEnded(legs["1002"], "ANSWER"))
    assert (machine.phase, machine.agent_id, machine.agent_channel) == (P.TALKING, "1002", legs["1002"])
    assert out == [m.StartRecording(), m.FeedAcd(acd_ev.AgentAnswered(call_id=CALL, agent_id="1002", at=10.0)),
                   m.EndAttempt("1002", "answered"), m.EndAttempt("1001", "cancelled"),
                   m.UpdateRecord({"agent_id": "1002"}, stamps=("agent_answered_at",))]
    # Asterisk stops 1001's phone; the ACD's CancelRing for it and the leg's own news change nothing.
    assert feed(machine, m.AcdSays(acd_cmd.CancelRing(CALL, "1001")), m.DialEnded(legs["1001"], "CANCEL"),
                m.HungUp(legs["1001"])) == []


def test_ring_all_unanswered_tells_the_acd_for_each_phone_and_the_caller_waits_again() -> None:
    machine = built(P.WAITING)
    feed(machine, ring_all("1001", "1002"), m.RingStarted("PJSIP/1001-00000002"))
    assert feed(machine, m.AcdSays(acd_cmd.CancelRing(CALL, "1001"))) == [   # 1001 paused while ringing
        m.EndAttempt("1001", "cancelled"), m.HangUp("PJSIP/1001-00000002")]
    out = feed(machine, m.DialReturned(caller_left=False))                    # nobody answered in time
    assert out == [m.EndAttempt("1002", "no_answer"),
                   m.FeedAcd(acd_ev.AgentRingFailed(call_id=CALL, agent_id="1002", reason="no_answer", at=10.0)),
                   m.StartMusic()]
    assert machine.phase is P.WAITING and machine.rings == ()


def test_a_caller_who_leaves_during_ring_all_ends_every_open_ring() -> None:
    machine = built(P.WAITING)
    feed(machine, ring_all("1001", "1002"), m.DialEnded("PJSIP/1001-00000002", "CANCEL"))
    assert feed(machine, m.HungUp(CALLER)) == [m.EndAttempt("1001", "cancelled"), m.EndAttempt("1002", "cancelled"),
                                               m.FeedAcd(acd_ev.CallLeft(call_id=CALL, at=10.0)),
                                               m.CloseRecord("abandoned_in_queue", "caller")]


def test_the_acds_asks_wait_while_the_channel_is_busy_and_are_taken_in_order() -> None:
    machine = built(P.WAITING)
    assert feed(machine, m.AcdSays(acd_cmd.AnnouncePosition(CALL, 3, 120))) == [
        m.StopMusic(), m.Play(("position_2", "wait_2"))]
    assert feed(machine, ring("1002")) == []                      # the announcement plays on
    assert feed(machine, m.AcdSays(acd_cmd.Overflow(CALL, "leak", "general"))) == [
        m.UpdateRecord({"queue": "general"})]                    # news: at once
    assert feed(machine, m.PromptPlayed()) == [m.StartMusic(), m.AddAttempt("1002"), m.StopMusic(),
                                               m.Dial(("PJSIP/1002",), 15)]
    assert (machine.announcements, machine.queue) == (1, "general")


def test_a_ring_called_off_before_it_was_dialled_is_dropped_from_the_inbox() -> None:
    machine = built(P.WAITING)
    feed(machine, m.AcdSays(acd_cmd.AnnouncePosition(CALL, 1, 30)), ring("1002"),
         m.AcdSays(acd_cmd.CancelRing(CALL, "1002")))
    assert feed(machine, m.PromptPlayed()) == [m.StartMusic()]


def test_a_callback_taken_ends_the_call_as_a_callback_and_the_acd_keeps_the_place() -> None:
    machine = built(P.WAITING)
    assert feed(machine, m.AcdSays(acd_cmd.OfferCallback(CALL, "max_wait"))) == [
        m.StopMusic(), m.Collect("callback_offer", m.CALLBACK_OFFER_TIMEOUT_MS)]
    out = feed(machine, m.DigitCollected("1"))
    assert out == [m.FeedAcd(acd_ev.CallbackRequested(call_id=CALL, number="13800138000", at=10.0)),
                   m.Play(("callback_thanks",))]
    feed(machine, m.ChannelGone())                   # the caller hung up during the thanks
    assert feed(machine, m.HungUp(CALLER)) == [m.CloseRecord("callback", "caller")]   # no CallLeft


def test_a_callback_declined_or_refused_by_the_dial_policy_keeps_the_caller_waiting() -> None:
    machine = built(P.WAITING)
    feed(machine, m.AcdSays(acd_cmd.OfferCallback(CALL, "max_wait")))
    assert feed(machine, m.DigitCollected(None)) == [m.StartMusic()]
    refused = m.CallMachine(CALL, CALLER, "13800138000", MENU, callback_allowed=False)
    feed(refused, *TO_WAITING)
    assert feed(refused, m.AcdSays(acd_cmd.OfferCallback(CALL, "no_agents"))) == []
    assert refused.awaiting is None


def test_a_menu_that_ends_the_call_is_message_only_and_an_ivr_hangup_is_abandoned_in_ivr() -> None:
    machine = m.CallMachine(CALL, CALLER, "13800138000", GOODBYE_MENU)
    out = feed(machine, m.Arrived(), m.Answered(), m.NoticeFound(None))
    prompts = []
    while machine.phase is P.IVR:                     # silence, "no input", silence, goodbye
        prompts.append(out[-1])
        out = feed(machine, m.DigitCollected(None) if machine.awaiting == m.MENU else m.PromptPlayed())
    assert prompts == [m.Collect("menu_main", 2000), m.Play(("no_input",)), m.Collect("menu_main", 2000),
                       m.Play(("goodbye",))]
    assert out[-2:] == [m.HangUp(CALLER), m.StartTimer(m.GONE, m.GONE_WAIT_S)]
    assert feed(machine, m.TimerFired(m.GONE)) == [m.CloseRecord("message_only", "system")]   # ours; bounded
    gone = built(P.IVR)
    feed(gone, m.NoticeFound(Notice("notice_1")))
    out = feed(gone, m.HungUp(CALLER))
    assert isinstance(out[0], m.UpdateRecord) and out[-1] == m.CloseRecord("abandoned_in_ivr", "caller")


def test_a_caller_who_leaves_while_waiting_or_ringing_is_abandoned_in_queue() -> None:
    waiting = built(P.WAITING)
    assert feed(waiting, m.HungUp(CALLER)) == [m.FeedAcd(acd_ev.CallLeft(call_id=CALL, at=10.0)),
                                               m.CloseRecord("abandoned_in_queue", "caller")]
    ringing = built(P.RINGING)
    assert feed(ringing, m.HungUp(CALLER)) == [m.EndAttempt("1001", "cancelled"),
                                               m.FeedAcd(acd_ev.CallLeft(call_id=CALL, at=10.0)),
                                               m.CloseRecord("abandoned_in_queue", "caller")]


def test_a_blind_transfer_hangs_up_the_agent_and_the_caller_waits_for_the_colleague() -> None:
    machine = built(P.TALKING)
    with pytest.raises(m.IllegalEvent, match="one of them"):
        feed(machine, m.TransferAsked())
    assert feed(machine, m.TransferAsked(agent_id="1002")) == [m.HangUp(AGENT)]
    with pytest.raises(m.IllegalEvent, match="already"):
        feed(machine, m.TransferAsked(queue="general"))
    out = feed(machine, m.DialReturned(caller_left=False))
    assert out == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)), m.UpdateRecord({"queue": "leak"}),
                   m.StartMusic(), m.FeedAcd(acd_ev.CallQueued(call_id=CALL, queue="leak", at=10.0, category="leak",
                                                               caller="13800138000", preferred_agent="1002"))]
    assert (machine.phase, machine.agent_id, machine.agent_channel) == (P.WAITING, None, None)


def test_a_consult_answered_then_the_first_agent_hangs_up_the_caller_talks_with_the_colleague() -> None:
    machine = built(P.TALKING)
    assert feed(machine, m.ConsultAsked("1003")) == [m.AddAttempt("1003"), m.Atxfer(AGENT, "1003")]
    with pytest.raises(m.IllegalEvent, match="already in a consult"):
        feed(machine, m.ConsultAsked("1004"))
    assert feed(machine, m.ConsultRinging(LEG, COLLEAGUE)) == [m.Follow(LEG), m.Follow(COLLEAGUE)]
    assert feed(machine, m.ConsultDialEnded("ANSWER")) == [m.EndAttempt("1003", "answered")]
    out = feed(machine, m.HungUp(AGENT))
    assert out == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)), m.UpdateRecord({"agent_id": "1003"})]
    assert (machine.agent_id, machine.agent_channel, machine.acd_knows) == ("1003", COLLEAGUE, False)
    out = feed(machine, m.DialReturned(caller_left=False))     # the colleague hung up: survey
    assert out == [m.FreeColleague("1003", after_wrapup=True), m.StopRecording(),
                   m.Collect("survey_question", m.SURVEY_TIMEOUT_MS)]
    assert machine.hangup_first == "agent"


def test_a_consult_not_answered_or_left_by_the_colleague_returns_the_caller_to_the_agent() -> None:
    machine = built(P.TALKING)
    feed(machine, m.ConsultAsked("1003"), m.ConsultRinging(LEG, COLLEAGUE))
    assert feed(machine, m.ConsultDialEnded("NOANSWER")) == [m.EndAttempt("1003", "no_answer"),
                                                              m.FreeColleague("1003", after_wrapup=False)]
    assert machine.consult is None and machine.agent_id == "1001"
    feed(machine, m.ConsultAsked("1003"), m.ConsultRinging(LEG, COLLEAGUE), m.ConsultDialEnded("ANSWER"))
    assert feed(machine, m.HungUp(COLLEAGUE)) == [m.FreeColleague("1003", after_wrapup=False)]
    feed(machine, m.ConsultAsked("1003"))
    assert feed(machine, m.ConsultFailed()) == [m.EndAttempt("1003", "failed"),
                                                 m.FreeColleague("1003", after_wrapup=False)]
    feed(machine, m.ConsultAsked("1003"))
    out = feed(machine, m.HungUp(CALLER))          # the caller leaves mid-consult
    assert out[:2] == [m.EndAttempt("1003", "cancelled"), m.FreeColleague("1003", after_wrapup=False)]


def test_an_adopted_talk_ends_when_the_agents_leg_goes_and_the_caller_stays() -> None:
    machine = new()
    plan = Adoption(Phase.TALKING, agent_channel=AGENT)
    assert feed(machine, m.Adopted(plan, "leak", "leak", "1001", 1.0, talked=True)) == [
        m.Follow(AGENT), m.AdoptRecording()]
    with pytest.raises(m.IllegalEvent, match="adopted"):
        feed(machine, m.TransferAsked(queue="general"))
    assert feed(machine, m.HungUp(AGENT)) == [m.StartTimer(m.AGENT_LEFT, m.ADOPTED_AGENT_GRACE_S)]
    out = feed(machine, m.TimerFired(m.AGENT_LEFT))
    assert out == [m.StopRecording(), m.AdoptedTalkEnded("1001"), m.Collect("survey_question", m.SURVEY_TIMEOUT_MS)]
    assert not any(isinstance(c, m.FeedAcd) for c in out)       # this core never routed it


def test_adopted_calls_resume_where_the_caller_is() -> None:
    gone = new()
    assert feed(gone, m.Adopted(Adoption(Phase.ENDED), "leak", "leak", "1001", 1.0, talked=True)) == [
        m.AdoptRecording(), m.CloseRecord("answered", None)]
    waiting = new()
    assert feed(waiting, m.Adopted(Adoption(Phase.WAITING), "leak", "leak", None, 1.0, talked=False)) == [
        m.LookUpQueue("leak", as_is=True)]
    out = feed(waiting, m.QueueFound("leak", None))
    assert out == [m.StartMusic(), m.FeedAcd(acd_ev.CallQueued(call_id=CALL, queue="leak", at=1.0, category="leak",
                                                               caller="13800138000", preferred_agent=None))]
    survey = new()
    assert feed(survey, m.Adopted(Adoption(Phase.SURVEY), "leak", "leak", "1001", 1.0, talked=True)) == [
        m.Collect("survey_question", m.SURVEY_TIMEOUT_MS)]
    ivr = new()
    assert feed(ivr, m.Adopted(Adoption(Phase.IVR), None, None, None, None, talked=False)) == [m.LookUpNotice()]


def test_failures_and_stops() -> None:
    failed = built(P.WAITING)
    assert feed(failed, m.CommandFailed("StartMusicOnHold")) == [m.HangUp(CALLER), m.StartTimer(m.GONE, m.GONE_WAIT_S)]
    assert feed(failed, m.HungUp(CALLER)) == [m.FeedAcd(acd_ev.CallLeft(call_id=CALL, at=10.0)),
                                              m.CloseRecord("failed", "system")]
    handed = built(P.TALKING)
    assert feed(handed, m.Stopping(handed_over=True)) == []           # the record stays open
    assert feed(handed, m.HungUp(CALLER)) == []
    stopped = built(P.TALKING)
    assert feed(stopped, m.Stopping(handed_over=False)) == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)),
                                                            m.CloseRecord("failed", "system")]
    lost = built(P.TALKING)
    assert feed(lost, m.AmiLost(), m.GoneDuringOutage()) == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)),
                                                             m.CloseRecord("answered", None)]


def test_a_talk_the_pbx_cuts_is_cut_by_pbx_hung_up_by_the_system_with_no_survey() -> None:
    # Asterisk's shutdown hangs up the caller too, so Dial comes back as if the caller had left.
    talking = built(P.TALKING)
    assert feed(talking, m.CutByPbx(), m.DialReturned(caller_left=True)) == []
    assert feed(talking, m.HungUp(CALLER)) == [m.FeedAcd(acd_ev.CallEnded(call_id=CALL, at=10.0)),
                                               m.CloseRecord("cut_by_pbx", "system")]
    # The agent's leg cut first: no survey is asked of a caller the PBX is cutting too.
    agent_cut = built(P.TALKING)
    assert feed(agent_cut, m.CutByPbx(), m.HungUp(AGENT), m.DialReturned(caller_left=False)) == []
    assert feed(agent_cut, m.HungUp(CALLER))[-1] == m.CloseRecord("cut_by_pbx", "system")


def test_a_ring_the_pbx_stops_is_nobodys_failure_and_the_waiting_caller_is_cut_not_abandoned() -> None:
    ringing = built(P.RINGING)
    feed(ringing, m.RingStarted(AGENT))
    assert feed(ringing, m.CutByPbx(), m.DialEnded(AGENT, "NOANSWER"), m.DialReturned(caller_left=False)) == []
    assert feed(ringing, m.HungUp(CALLER)) == [m.EndAttempt("1001", "cancelled"),
                                               m.FeedAcd(acd_ev.CallLeft(call_id=CALL, at=10.0)),
                                               m.CloseRecord("cut_by_pbx", "system")]
    waiting = built(P.WAITING)
    assert feed(waiting, m.CutByPbx(), m.HungUp(CALLER))[-1] == m.CloseRecord("cut_by_pbx", "system")


def test_a_cut_seen_only_after_the_link_came_back_still_ends_the_call_as_cut() -> None:
    # Asterisk restarted while the AMI link was down: the snapshot no longer has the menu caller.
    in_menu = built(P.IVR)
    feed(in_menu, m.NoticeFound(None), m.AmiLost())
    out = feed(in_menu, m.CutByPbx(), m.GoneDuringOutage())
    assert isinstance(out[0], m.UpdateRecord) and out[-1] == m.CloseRecord("cut_by_pbx", "system")


def test_what_ended_before_the_cut_keeps_its_own_outcome() -> None:
    ended = built(P.ENDED)                                       # the caller left the talk first
    assert feed(ended, m.CutByPbx()) == [] and ended.disposition == "answered"
    leaving = built(P.LEAVING)                                   # the survey over, the engine hangs up
    assert feed(leaving, m.CutByPbx(), m.HungUp(CALLER)) == [m.CloseRecord("answered", "agent")]


def test_who_hung_up_first_is_known_for_every_call_but_a_talk_that_went_unseen() -> None:
    lost_talk = built(P.TALKING)
    assert feed(lost_talk, m.AmiLost(), m.GoneDuringOutage())[-1] == m.CloseRecord("answered", None)
    lost_wait = built(P.WAITING)
    assert feed(lost_wait, m.AmiLost(), m.GoneDuringOutage())[-1] == m.CloseRecord("abandoned_in_queue", "caller")
    agent_first = built(P.SURVEY)
    assert feed(agent_first, m.HungUp(CALLER))[-1] == m.CloseRecord("answered", "agent")


def test_a_call_that_ended_unseen_takes_who_hung_up_first_from_asterisks_note() -> None:
    lost_talk = built(P.TALKING)
    out = feed(lost_talk, m.AmiLost(), m.GoneDuringOutage(hung_up_by="agent"))
    assert out[-1] == m.CloseRecord("answered", "agent")
    # The engine was down past the caller's hang-up: adopted when already over.
    over = new()
    assert feed(over, m.Adopted(Adoption(Phase.ENDED), "leak", "leak", "1001", 1.0, talked=True,
                                hung_up_by="caller")) == [m.AdoptRecording(), m.CloseRecord("answered", "caller")]


def test_asterisks_note_of_the_end_says_when_and_which_side_hung_up_first() -> None:
    assert read_end_note("1733065200.125|PJSIP/trunk-00000001", CALLER) == EndNote(1733065200.125, "caller")
    assert read_end_note("1733065200.125|PJSIP/1001-00000002", CALLER) == EndNote(1733065200.125, "agent")
    assert read_end_note("1733065200|", CALLER) == EndNote(1733065200.0, None)
    assert read_end_note(None, CALLER) is None and read_end_note("soon|x", CALLER) is None


# ---------------------------------------------------------------------- properties

# What ends a call (rarer in the random lives, so they get somewhere first).
ENDINGS: list[m.Event] = [m.HungUp(CALLER), m.ChannelGone(), m.AmiLost(), m.CommandFailed("x"), m.GoneDuringOutage(),
                          m.CutByPbx(),
                          m.TimerFired(m.GONE), m.Stopping(handed_over=False), m.Stopping(handed_over=True)]
NEWS: list[m.Event] = [
    m.HungUp(AGENT), m.HungUp(COLLEAGUE), m.HungUp("PJSIP/1002-00000009"),
    m.RingStarted(AGENT), m.RingStarted("PJSIP/1002-00000009"), m.DialEnded(AGENT, "ANSWER"),
    m.DialEnded(AGENT, "NOANSWER"), m.DialEnded("PJSIP/1002-00000009", "ANSWER"), m.DialEnded(AGENT, "BUSY"),
    m.DialEnded(AGENT, "CANCEL"), m.DialEnded("PJSIP/1002-00000009", "NOANSWER"),
    m.TimerFired(m.AGENT_LEFT),
    ring("1001"), ring("1002"), ring_all("1001", "1002"), m.AcdSays(acd_cmd.CancelRing(CALL, "1001")),
    m.AcdSays(acd_cmd.CancelRing(CALL, "1002")), m.AcdSays(acd_cmd.AnnouncePosition(CALL, 2, 60)),
    m.AcdSays(acd_cmd.OfferCallback(CALL, "max_wait")), m.AcdSays(acd_cmd.Overflow(CALL, "leak", "general")),
    m.TransferAsked(queue="general"), m.TransferAsked(agent_id="1002"), m.ConsultAsked("1003"),
    m.ConsultFailed(), m.ConsultRinging(LEG, COLLEAGUE), m.ConsultDialEnded("ANSWER"),
    m.ConsultDialEnded("NOANSWER"), m.Arrived(), m.DialRefused(),
]
RESULTS: dict[str | None, list[m.Event]] = {
    m.ANSWER: [m.Answered()], m.NOTICE: [m.NoticeFound(None), m.NoticeFound(Notice("notice_1"))],
    m.MENU: [m.DigitCollected("2"), m.DigitCollected(None), m.DigitCollected("9")],
    m.MESSAGE: [m.PromptPlayed()], m.QUEUE: [m.QueueFound("leak", None), m.QueueFound("general", "1002")],
    m.DIAL: [m.DialReturned(caller_left=False), m.DialReturned(caller_left=True), m.DialRefused()],
    m.OFFER: [m.DigitCollected("1"), m.DigitCollected(None)], m.CALLBACK_THANKS: [m.PromptPlayed()],
    m.ANNOUNCE: [m.PromptPlayed()], m.SURVEY: [m.DigitCollected("4"), m.DigitCollected(None), m.DigitCollected("0")],
    m.SURVEY_THANKS: [m.PromptPlayed()],
}
ALL_RESULTS = [e for events in RESULTS.values() for e in events]
STARTS: list[m.Event] = [m.Arrived()] + [
    m.Adopted(Adoption(phase, agent_channel=AGENT if phase is Phase.TALKING else None), "leak", "leak",
              "1001", 1.0, talked=phase in (Phase.TALKING, Phase.SURVEY, Phase.ENDED))
    for phase in (Phase.ENDED, Phase.TALKING, Phase.SURVEY, Phase.WAITING, Phase.IVR)]
WITH_RESULT = (m.Answer, m.Collect, m.Play, m.Dial, m.LookUpNotice, m.LookUpQueue)
ACD_OPENS, ACD_CLOSES = (acd_ev.CallQueued,), (acd_ev.CallLeft, acd_ev.CallEnded, acd_ev.CallbackRequested)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_lives_end_once_with_one_disposition_and_nothing_after(data: st.DataObject) -> None:
    machine = new()
    start = data.draw(st.sampled_from(STARTS))
    history: list[m.Command] = feed(machine, start)
    talked = machine.phase is Phase.TALKING or (isinstance(start, m.Adopted) and start.talked)
    for _ in range(data.draw(st.integers(0, 60))):
        pool = RESULTS.get(machine.awaiting, []) * 8 + NEWS * 2 + ENDINGS + ALL_RESULTS
        event = data.draw(st.sampled_from(pool))
        before, awaiting_before, over_before = state(machine), machine.awaiting, machine.over
        try:
            out = machine.handle(event, 10.0)
        except m.IllegalEvent:
            assert state(machine) == before
            continue
        if over_before:
            assert out == []                                    # nothing after the end
        # The caller's channel runs one command at a time.
        waits = [c for c in out if isinstance(c, WITH_RESULT)]
        assert len(waits) <= 1
        assert not waits or awaiting_before is None or type(event) in {type(e) for e in RESULTS[awaiting_before]}
        history += out
        talked = talked or machine.phase is Phase.TALKING
    # Whatever happened, the caller's channel goes in the end.
    for event in (m.HungUp(CALLER), m.TimerFired(m.GONE)):
        history += machine.handle(event, 10.0)
    closes = [c for c in history if isinstance(c, m.CloseRecord)]
    if machine.phase is Phase.HANDED_OVER:
        assert closes == []
        return
    assert machine.phase is Phase.ENDED
    assert len(closes) == 1 and history[-1] is closes[0]         # exactly one disposition, last
    assert closes[0].disposition in {"abandoned_in_ivr", "abandoned_in_queue", "answered", "message_only",
                                     "callback", "failed", "cut_by_pbx"}
    # Who hung up first is known for every call, but a talk whose channels went unseen.
    assert closes[0].hangup_first in ({None, "caller", "agent", "system"} if talked else {"caller", "system"})
    if closes[0].disposition == "cut_by_pbx":
        assert closes[0].hangup_first == "system"
    if closes[0].disposition in ("abandoned_in_ivr", "abandoned_in_queue"):
        assert closes[0].hangup_first == "caller"
    # Every attempt is ended once; the ACD hears the call leave once for each time it queued.
    opened: list[str] = []
    for c in history:
        if isinstance(c, m.AddAttempt):
            opened.append(c.agent_id)
        elif isinstance(c, m.EndAttempt):
            opened.remove(c.agent_id)
    assert opened == []
    acd_open = False
    for event in [c.event for c in history if isinstance(c, m.FeedAcd)]:
        if isinstance(event, ACD_OPENS):
            assert not acd_open
            acd_open = True
        elif isinstance(event, ACD_CLOSES):
            assert acd_open
            acd_open = False
        else:
            assert acd_open, event
    assert not acd_open


def test_a_phone_with_no_contact_is_stored_unreachable_not_no_answer() -> None:
    """No contact: Asterisk makes no channel for the phone, so no DialEnd comes; Dial's
    DIALSTATUS (CHANUNAVAIL) tells it, and the ACD hears "unreachable" (no auto-pause)."""
    machine = built(P.RINGING)
    out = feed(machine, m.DialReturned(caller_left=False, status="CHANUNAVAIL"))
    assert out == [m.EndAttempt("1001", "unreachable"),
                   m.FeedAcd(acd_ev.AgentRingFailed(call_id=CALL, agent_id="1001", reason="unreachable", at=10.0)),
                   m.StartMusic()]
    assert machine.phase is P.WAITING
    machine2 = built(P.RINGING)   # Dial gave up in time: as before, not answered
    assert feed(machine2, m.DialReturned(caller_left=False, status="NOANSWER"))[0] == m.EndAttempt("1001", "no_answer")


def test_a_phone_that_vanished_mid_ring_is_stored_unreachable() -> None:
    machine = built(P.RINGING)
    feed(machine, m.RingStarted(AGENT))
    assert feed(machine, m.AcdSays(acd_cmd.CancelRing(CALL, "1001", "unreachable"))) == [
        m.EndAttempt("1001", "unreachable"), m.HangUp(AGENT)]
    assert feed(machine, m.DialEnded(AGENT, "CANCEL"), m.DialReturned(caller_left=False, status="CANCEL")) == [
        m.StartMusic()]
    machine2 = built(P.RINGING)   # a DialEnd of CHANUNAVAIL (the phone's transport failed)
    feed(machine2, m.RingStarted(AGENT))
    assert feed(machine2, m.DialEnded(AGENT, "CHANUNAVAIL")) == [m.EndAttempt("1001", "unreachable"), m.FeedAcd(
        acd_ev.AgentRingFailed(call_id=CALL, agent_id="1001", reason="unreachable", at=10.0))]
