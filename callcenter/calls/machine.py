"""The life of one call as a pure machine: fed what happened, it answers with what to do.

`CallMachine.handle(event, at)` takes one typed event (something Asterisk, the ACD, an agent
or a finished command says) and returns the typed commands to carry out, in order. It does
no I/O and reads no clock (`at`: the monotonic time of the event). The session
(calls/session.py) carries the commands out through the AMI gateway, the ACD and the call
store, and feeds each result back as an event. The table `TABLE` says which event each
phase takes.

Rules
-----
- A call arrives, is answered, walks the IVR (ivr/flow.py steps it), waits in a queue with
  music on hold, rings the agents the ACD names, talks to one agent, may stay for the survey
  after the agent hangs up, and ends. A caller may hang up in any phase.
- The RingAgents the ACD issues for a call at once (ring_all: up to ring_all_max) ring in one
  Dial: the first phone to answer gets the caller, and Asterisk stops the others; each
  phone's attempt ends once (answered, not answered, called off).
- The caller's channel runs one AGI command at a time. While the machine waits for the
  result of one (`awaiting`), what the ACD asks for the waiting caller (ring, announce,
  offer a callback) waits in the machine's inbox, in order; it is taken when the caller is
  waiting again with the channel free. Overflow is news at any time: the record follows it.
- A phone that does not take the call (busy, unavailable, not answered) is told to the ACD
  at once (AgentRingFailed; the other phones of a ring_all ring on); "CANCEL" is not the
  agent's failure (the caller left, or another phone answered). When Dial comes back with
  nobody on the line the caller waits again; the ACD keeps their place. A ring the ACD
  called off (CancelRing) has that leg hung up, and the ACD is told nothing about it: it has
  already moved on.
- Who hung up first is decided once, by the first of the two parties to leave the talk. In
  a talk the engine dialled, Dial's own result tells it (Asterisk reports the agent's leg
  going before the caller's channel even when the caller left, so the order of hang-ups
  cannot); in an adopted talk (no Dial of ours) the agent's leg going counts when the
  caller's channel is still there a moment later.
- A blind transfer ends the agent's leg; the caller waits again, for the target queue or
  first for the target agent. The recording goes on: one file for the whole call.
- A consult (attended transfer): the colleague is held for the call from the ask. If the
  colleague does not answer, or leaves, the caller is back with the agent and the colleague
  is free at once. When the agent hangs up after the colleague answered, the caller talks
  with the colleague: the first agent's part ends (the ACD's wrap-up), and the colleague is
  freed after wrap-up when that talk ends.
- The disposition says how the call ended: hung up in the IVR → abandoned_in_ivr; waiting
  or ringing → abandoned_in_queue; talking or survey → answered; a menu message that ends
  the call → message_only; a callback taken → callback; a failure of ours → failed; cut by
  the PBX (Asterisk shutting down or restarting) → cut_by_pbx.
- The PBX cutting the call (`CutByPbx`: Asterisk's shutdown hang-up of one of the call's
  channels, its Shutdown event, or a restart seen after the AMI link came back) is not the
  caller leaving: whatever ends the call after it (the caller's Hangup, the snapshot) ends
  it as cut_by_pbx, hung up first by the "system", and no ring it stopped is the agent's
  failure. What ended before it keeps its own outcome; a call the engine is already ending
  itself (leaving) keeps the engine's.
- Who hung up first (`hangup_first`) is set for every call that reached the menu or further:
  "caller" when the caller's hang-up ended it (in the menu, in the queue, ringing, or first
  out of the talk), "agent" when the agent left the talk first, "system" when the engine
  (a message, a callback taken, the survey done, a failure) or the PBX ended it. It is left
  empty only when nobody saw who went: a talk whose channels went while the engine could
  not see them, unless Asterisk's note of the end (`hung_up_by`) tells.
- When the engine ends the call itself (the message played, the callback taken, the survey
  done, a failure) it hangs up the caller and waits, bounded, for the channel to go.
- Every call ends with exactly one `CloseRecord`, and nothing is asked after it; a call
  handed over to another engine (a clean stop of a shared hotline) is not closed here.
- After the end every piece of news (a late result, a leg hanging up) is taken and answers
  nothing. An event that does not fit the phase raises `IllegalEvent` and changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from callcenter.acd import commands as acd_cmd
from callcenter.acd import events as acd_ev
from callcenter.calls.core import CUT_BY_PBX, Adoption, Phase, disposition, ring_failure
from callcenter.ivr.flow import Hangup as IvrHangup
from callcenter.ivr.flow import IvrFlow, Notice, PlayAndCollect, PlayMessage, RouteToQueue
from callcenter.ivr.model import Menu
from callcenter.ivr.prompts import announcement_prompts

SURVEY_TIMEOUT_MS = 6000
CALLBACK_OFFER_TIMEOUT_MS = 5000
CALLBACK_KEY = "1"
SURVEY_KEYS = "12345"
GONE_WAIT_S = 10.0        # how long to wait for the caller's channel to go after our hang-up
ADOPTED_AGENT_GRACE_S = 1.0

# Timer names (TimerFired.name)
GONE = "gone"
AGENT_LEFT = "agent_left"


class IllegalEvent(ValueError):
    pass


# ====================================================================== events

@dataclass(frozen=True)
class Arrived:
    """The dialplan handed a new call to the engine."""


@dataclass(frozen=True)
class Answered:
    """The caller's channel is answered (result of Answer)."""


@dataclass(frozen=True)
class NoticeFound:
    """The outage notice for the caller's area, or None (result of LookUpNotice)."""

    notice: Notice | None


@dataclass(frozen=True)
class DigitCollected:
    """The key the caller pressed, or None on silence (result of Collect)."""

    digit: str | None


@dataclass(frozen=True)
class PromptPlayed:
    """The prompts played out (result of Play)."""


@dataclass(frozen=True)
class QueueFound:
    """The queue that takes the caller now and the agent they talked to before (result of
    LookUpQueue)."""

    queue: str
    preferred_agent: str | None


@dataclass(frozen=True)
class RingStarted:
    """Asterisk's DialBegin: the agent's phone rings on `agent_channel`."""

    agent_channel: str


@dataclass(frozen=True)
class DialEnded:
    """Asterisk's DialEnd for the agent's leg, with DIALSTATUS (ANSWER, NOANSWER, BUSY ...)."""

    agent_channel: str
    status: str


@dataclass(frozen=True)
class DialReturned:
    """The Dial command came back (the ring, or the talk, is over). `caller_left`: Dial's
    result said the caller's side hung up. `status`: DIALSTATUS after it ("" unknown): when
    no phone's channel was made (no contact: CHANUNAVAIL) no DialEnd tells it."""

    caller_left: bool
    status: str = ""


@dataclass(frozen=True)
class DialRefused:
    """The endpoint is no agent's phone: nothing was dialled."""


@dataclass(frozen=True)
class HungUp:
    """A channel of the call is gone: the caller's, the agent's, or a consult's."""

    channel: str


@dataclass(frozen=True)
class ChannelGone:
    """An AGI command said the caller's channel is gone (its Hangup event follows)."""


@dataclass(frozen=True)
class AmiLost:
    """The AMI link dropped during a command: the call goes on in Asterisk; follow its events."""


@dataclass(frozen=True)
class CommandFailed:
    """Asterisk refused a command of ours: the call cannot go on."""

    what: str


@dataclass(frozen=True)
class GoneDuringOutage:
    """The caller's channel was not in Asterisk's snapshot after the AMI link came back.
    `hung_up_by`: who hung up first, as Asterisk's note of the end says (None: no note)."""

    hung_up_by: str | None = None


@dataclass(frozen=True)
class CutByPbx:
    """Asterisk is shutting down or restarting, and takes the call's channels with it."""


@dataclass(frozen=True)
class TimerFired:
    name: str


@dataclass(frozen=True)
class Stopping:
    """The engine stops. `handed_over`: another engine of the hotline adopts the call."""

    handed_over: bool


@dataclass(frozen=True)
class AcdSays:
    """A command of the ACD for this call: RingAgent, CancelRing, AnnouncePosition,
    OfferCallback or Overflow."""

    command: (RingGroup | acd_cmd.RingAgent | acd_cmd.CancelRing | acd_cmd.AnnouncePosition | acd_cmd.OfferCallback
              | acd_cmd.Overflow)


@dataclass(frozen=True)
class TransferAsked:
    """The agent sends the caller to a queue or to a colleague (blind transfer)."""

    queue: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class ConsultAsked:
    """The agent consults a colleague (attended transfer); the colleague is already held."""

    agent_id: str


@dataclass(frozen=True)
class ConsultFailed:
    """Asterisk refused the attended transfer."""


@dataclass(frozen=True)
class ConsultRinging:
    """Asterisk's own channel (`leg`) dials the colleague's phone (`channel`)."""

    leg: str
    channel: str


@dataclass(frozen=True)
class ConsultDialEnded:
    status: str


@dataclass(frozen=True)
class Adopted:
    """A call taken over from an engine that is gone: where it stands (calls/core.adoption),
    whether it had queued (`queued_at`: the monotonic time of its place) and talked."""

    plan: Adoption
    queue: str | None
    category: str | None
    agent_id: str | None
    queued_at: float | None
    talked: bool
    hung_up_by: str | None = None   # a call already over: who hung up first, by Asterisk's note


Event = (Arrived | Answered | NoticeFound | DigitCollected | PromptPlayed | QueueFound | RingStarted | DialEnded
         | DialReturned | DialRefused | HungUp | ChannelGone | AmiLost | CommandFailed | GoneDuringOutage | CutByPbx
         | TimerFired | Stopping | AcdSays | TransferAsked | ConsultAsked | ConsultFailed | ConsultRinging
         | ConsultDialEnded | Adopted)
EVENTS: tuple[type, ...] = Event.__args__

# ====================================================================== commands

# --- on the caller's channel (AGI, one at a time; those marked feed back a result)


@dataclass(frozen=True)
class Answer:
    """Answer the caller's channel (→ Answered)."""


@dataclass(frozen=True)
class Collect:
    """Play `prompt` and collect one key (→ DigitCollected)."""

    prompt: str
    timeout_ms: int


@dataclass(frozen=True)
class Play:
    """Play these prompts in turn (→ PromptPlayed)."""

    prompts: tuple[str, ...]


@dataclass(frozen=True)
class StartMusic:
    pass


@dataclass(frozen=True)
class StopMusic:
    pass


@dataclass(frozen=True)
class Dial:
    """Ring the agents' phones at once (one, or ring_all's several: the first to answer gets
    the caller and Asterisk stops the others); the talk runs inside (→ DialReturned, or
    DialRefused)."""

    endpoints: tuple[str, ...]
    timeout_s: int


# --- beside the channel (AMI actions, the ACD, the store, timers)


@dataclass(frozen=True)
class HangUp:
    channel: str


@dataclass(frozen=True)
class Follow:
    """Route Asterisk's events of this channel to the call."""

    channel: str


@dataclass(frozen=True)
class LookUpNotice:
    """Find the outage notice for the caller (→ NoticeFound)."""


@dataclass(frozen=True)
class LookUpQueue:
    """Find the queue open now for `queue` (unless `as_is`) and the caller's earlier agent
    (→ QueueFound)."""

    queue: str
    as_is: bool = False


@dataclass(frozen=True)
class FeedAcd:
    event: Any


@dataclass(frozen=True)
class OpenRecord:
    pass


@dataclass(frozen=True)
class UpdateRecord:
    """Write these fields to the call's record; `stamps`: fields set to the wall-clock now."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    stamps: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddAttempt:
    agent_id: str


@dataclass(frozen=True)
class EndAttempt:
    agent_id: str
    result: str


@dataclass(frozen=True)
class StartRecording:
    pass


@dataclass(frozen=True)
class AdoptRecording:
    """Carry on the recording the engine that is gone started, if it did."""


@dataclass(frozen=True)
class StopRecording:
    pass


@dataclass(frozen=True)
class Atxfer:
    """Asterisk's attended transfer from the agent's channel to the colleague (→ ConsultFailed
    when refused)."""

    agent_channel: str
    colleague: str


@dataclass(frozen=True)
class FreeColleague:
    """A colleague held for a consult is free again, after the wrap-up when they talked."""

    agent_id: str
    after_wrapup: bool


@dataclass(frozen=True)
class AdoptedTalkEnded:
    """The adopted talk of this agent is over (the hotline's shared state)."""

    agent_id: str


@dataclass(frozen=True)
class StartTimer:
    """Feed TimerFired(name) after `delay_s`."""

    name: str
    delay_s: float


@dataclass(frozen=True)
class CloseRecord:
    """The call is over: finalise the recording and close the record."""

    disposition: str
    hangup_first: str | None


Command = (Answer | Collect | Play | StartMusic | StopMusic | Dial | HangUp | Follow | LookUpNotice | LookUpQueue
           | FeedAcd | OpenRecord | UpdateRecord | AddAttempt | EndAttempt | StartRecording | AdoptRecording
           | StopRecording | Atxfer | FreeColleague | AdoptedTalkEnded | StartTimer | CloseRecord)
CHANNEL_COMMANDS = (Answer, Collect, Play, StartMusic, StopMusic, Dial)


# ====================================================================== the machine's parts

@dataclass(frozen=True)
class Ring:
    """One agent's phone rung for the call (ring_all rings several at once in one Dial).
    `done`: the ring's attempt is ended (answered, not answered, or called off)."""

    agent_id: str
    endpoint: str
    channel: str | None = None
    cancelled: bool = False
    done: bool = False


@dataclass(frozen=True)
class RingGroup:
    """The RingAgents the ACD issued for one call at once (ring_all: several; else one)."""

    rings: tuple[acd_cmd.RingAgent, ...]


@dataclass(frozen=True)
class Consult:
    """An attended transfer in progress: the colleague, Asterisk's channel that dials them and
    their phone's channel."""

    agent_id: str
    leg: str | None = None
    channel: str | None = None
    answered: bool = False
    completed: bool = False


@dataclass(frozen=True)
class Transfer:
    queue: str | None = None
    agent_id: str | None = None


# What the machine waits for on the caller's channel.
ANSWER, NOTICE, MENU, MESSAGE, QUEUE, DIAL, OFFER, CALLBACK_THANKS, ANNOUNCE, SURVEY, SURVEY_THANKS = (
    "answer", "notice", "menu", "message", "queue", "dial", "offer", "callback_thanks", "announce", "survey",
    "survey_thanks")
LIVE = (Phase.ARRIVED, Phase.IVR, Phase.WAITING, Phase.RINGING, Phase.TALKING, Phase.SURVEY, Phase.LEAVING)
OVER = (Phase.ENDED, Phase.HANDED_OVER)


class CallMachine:
    def __init__(self, call_id: str, channel: str, caller: str, menu: Menu, *, callback_allowed: bool = True) -> None:
        self.call_id = call_id
        self.channel = channel           # the caller's
        self.caller = caller
        self.menu = menu
        self.callback_allowed = callback_allowed
        self.phase = Phase.ARRIVED
        self.awaiting: str | None = None
        self.ivr: IvrFlow | None = None
        self.queue: str | None = None
        self.category: str | None = None
        self.agent_id: str | None = None
        self.agent_channel: str | None = None
        self.rings: tuple[Ring, ...] = ()
        self.consult: Consult | None = None
        self.transfer: Transfer | None = None
        self.inbox: tuple[Any, ...] = ()
        self.acd_knows = True            # False for a talk this core never routed (adopted, consulted)
        self.dialled = False             # the talk runs inside a Dial of ours
        self.adopted_agent: str | None = None
        self.queued_at: float | None = None
        self.leaving: str | None = None  # how the engine ended the call: message_done, callback, done, failed
        self.left_from: Phase | None = None
        self.hangup_first: str | None = None
        self.disposition: str | None = None
        self.announcements = 0
        self.survey_score: int | None = None
        self.callback_taken = False
        self.cut_by_pbx = False          # Asterisk is cutting the call (shutdown, restart)
        self.gone_unseen = False         # the channel went while the AMI link was down
        self.noted_hung_up_by: str | None = None   # who hung up first then, by Asterisk's note

    # ------------------------------------------------------------------ the table

    def handle(self, event: Event, at: float) -> list[Command]:
        handler = TABLE[self.phase].get(type(event))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} does not fit a call in phase {self.phase.value!r}")
        saved = dict(self.__dict__)
        try:
            return handler(self, event, at)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    @property
    def over(self) -> bool:
        return self.phase in OVER

    def _expect(self, what: str | tuple[str, ...], event: object) -> str:
        waiting = (what,) if isinstance(what, str) else what
        if self.awaiting not in waiting:
            raise IllegalEvent(f"{type(event).__name__}: the call waits for {self.awaiting or 'nothing'} "
                               f"on its channel, not {'/'.join(waiting)}")
        got = self.awaiting
        self.awaiting = None
        return got

    def _acd(self, event_type: type, at: float, **fields: Any) -> FeedAcd:
        return FeedAcd(event_type(call_id=self.call_id, at=at, **fields))

    # ------------------------------------------------------------------ arrival and IVR

    def _arrived(self, e: Arrived, at: float) -> list[Command]:
        self._fresh(e)
        self.awaiting = ANSWER
        return [OpenRecord(), Answer()]

    def _answered(self, e: Answered, at: float) -> list[Command]:
        self._expect(ANSWER, e)
        self.phase, self.awaiting = Phase.IVR, NOTICE
        return [LookUpNotice()]

    def _notice_found(self, e: NoticeFound, at: float) -> list[Command]:
        self._expect(NOTICE, e)
        self.ivr = IvrFlow(self.menu, e.notice) if e.notice is not None else IvrFlow(self.menu)
        return self._ivr_step(self.ivr.start(), at)

    def _ivr_digit(self, e: DigitCollected, at: float) -> list[Command]:
        if self.awaiting != MENU or self.ivr is None:
            raise IllegalEvent(f"a key in the IVR while it waits for {self.awaiting}")
        action = self.ivr.on_digit(e.digit or None)
        self.awaiting = None
        return self._ivr_step(action, at)

    def _ivr_played(self, e: PromptPlayed, at: float) -> list[Command]:
        if self.awaiting != MESSAGE or self.ivr is None:
            raise IllegalEvent(f"a message played in the IVR while it waits for {self.awaiting}")
        action = self.ivr.on_played()
        self.awaiting = None
        return self._ivr_step(action, at)

    def _ivr_step(self, action: Any, at: float) -> list[Command]:
        if isinstance(action, PlayAndCollect):
            self.awaiting = MENU
            return [Collect(action.prompt, int(action.timeout_s * 1000))]
        if isinstance(action, PlayMessage):
            self.awaiting = MESSAGE
            return [Play((action.prompt,))]
        if isinstance(action, RouteToQueue):
            self.category, self.awaiting = action.category, QUEUE
            return [self._ivr_path(), LookUpQueue(action.queue)]
        if isinstance(action, IvrHangup):
            return [self._ivr_path(), *self._leave("message_done")]
        raise TypeError(f"unknown IVR action {action!r}")   # pragma: no cover - the flow has four

    def _ivr_path(self) -> UpdateRecord:
        assert self.ivr is not None
        return UpdateRecord({"ivr_path": list(self.ivr.path), "ivr_choice": self.ivr.choice})

    def _queue_found(self, e: QueueFound, at: float) -> list[Command]:
        self._expect(QUEUE, e)
        adopted = self.queued_at is not None
        self.queue, self.phase = e.queue, Phase.WAITING
        out: list[Command] = []
        if not adopted:
            self.queued_at = at
            out.append(UpdateRecord({"queue": self.queue, "category": self.category}, stamps=("queued_at",)))
        out.append(StartMusic())
        out.append(self._acd(acd_ev.CallQueued, self.queued_at, queue=e.queue,  # type: ignore[arg-type]
                             category=self.category, caller=self.caller, preferred_agent=e.preferred_agent))
        return out + self._next(at)

    # ------------------------------------------------------------------ waiting: the ACD's asks

    def _acd_says(self, e: AcdSays, at: float) -> list[Command]:
        command = e.command
        if isinstance(command, acd_cmd.Overflow):
            self.queue = command.to_queue
            return [UpdateRecord({"queue": command.to_queue})]
        if isinstance(command, acd_cmd.CancelRing):
            return self._cancel_ring(command)
        if isinstance(command, acd_cmd.RingAgent):
            command = RingGroup((command,))
        if self.phase in (Phase.TALKING, Phase.SURVEY) and not isinstance(command, RingGroup):
            return []   # an announcement or offer meant for a caller who waits no more
        self.inbox = (*self.inbox, command)
        return self._next(at)

    def _next(self, at: float) -> list[Command]:
        """The next ask of the ACD, when the caller waits with the channel free."""
        if self.phase is not Phase.WAITING or self.awaiting is not None or not self.inbox or self.callback_taken:
            return []   # (a caller who took a callback waits for nothing more: the ACD let them go)
        command, self.inbox = self.inbox[0], self.inbox[1:]
        if isinstance(command, RingGroup):
            if not command.rings:
                return self._next(at)
            self.phase, self.awaiting = Phase.RINGING, DIAL
            self.rings = tuple(Ring(r.agent_id, r.endpoint) for r in command.rings)
            return [*(AddAttempt(r.agent_id) for r in command.rings), StopMusic(),
                    Dial(tuple(r.endpoint for r in command.rings), int(min(r.timeout_s for r in command.rings)))]
        if isinstance(command, acd_cmd.OfferCallback):
            if not self.callback_allowed:
                return self._next(at)   # no promise the hotline may not keep (the dial policy)
            self.awaiting = OFFER
            return [StopMusic(), Collect("callback_offer", CALLBACK_OFFER_TIMEOUT_MS)]
        if isinstance(command, acd_cmd.AnnouncePosition):
            self.awaiting = ANNOUNCE
            return [StopMusic(), Play(tuple(announcement_prompts(command.position, command.estimated_wait_s)))]
        raise TypeError(f"not an ask for a waiting caller: {command!r}")   # pragma: no cover

    def _cancel_ring(self, command: acd_cmd.CancelRing) -> list[Command]:
        """The ACD called a ring off: hang up that leg (the others of a ring_all ring on)."""
        ring = self._ring_of(agent_id=command.agent_id)
        if ring is not None and self.phase is Phase.RINGING:
            self._set_ring(ring, replace(ring, cancelled=True, done=True))
            return [EndAttempt(ring.agent_id, command.why), *([HangUp(ring.channel)] if ring.channel else [])]
        # Not dialled yet: drop it from the inbox.
        self.inbox = tuple(
            RingGroup(tuple(r for r in c.rings if r.agent_id != command.agent_id)) if isinstance(c, RingGroup) else c
            for c in self.inbox)
        return []

    def _ring_of(self, *, agent_id: str | None = None, channel: str | None = None) -> Ring | None:
        """The open ring of this agent, or of this channel (by the channel, or by its phone:
        Asterisk names a leg `PJSIP/1001-0000002a` for the endpoint `PJSIP/1001`)."""
        for ring in self.rings:
            if ring.done:
                continue
            if agent_id is not None and ring.agent_id == agent_id:
                return ring
            if channel is not None and (ring.channel == channel
                                        or (ring.channel is None and channel.rpartition("-")[0] == ring.endpoint)):
                return ring
        return None

    def _set_ring(self, old: Ring, new: Ring) -> None:
        self.rings = tuple(new if r is old else r for r in self.rings)

    def _waiting_digit(self, e: DigitCollected, at: float) -> list[Command]:
        self._expect(OFFER, e)
        if e.digit == CALLBACK_KEY:
            self.awaiting, self.callback_taken = CALLBACK_THANKS, True
            return [self._acd(acd_ev.CallbackRequested, at, number=self.caller), Play(("callback_thanks",))]
        return [StartMusic(), *self._next(at)]

    def _waiting_played(self, e: PromptPlayed, at: float) -> list[Command]:
        got = self._expect((ANNOUNCE, CALLBACK_THANKS), e)
        if got == CALLBACK_THANKS:
            return self._leave("callback")
        self.announcements += 1
        return [StartMusic(), *self._next(at)]

    # ------------------------------------------------------------------ ringing

    def _ring_started(self, e: RingStarted, at: float) -> list[Command]:
        ring = next((r for r in self.rings if r.channel is None and e.agent_channel.rpartition("-")[0] == r.endpoint),
                    None)
        if ring is None:
            return []   # a Dial we do not follow (a consult's runs on a channel of its own)
        self._set_ring(ring, replace(ring, channel=e.agent_channel))
        return [Follow(e.agent_channel), *([HangUp(e.agent_channel)] if ring.cancelled else [])]

    def _dial_ended(self, e: DialEnded, at: float) -> list[Command]:
        ring = self._ring_of(channel=e.agent_channel)
        if ring is None or self.phase is not Phase.RINGING:
            return []
        status = e.status.upper()
        if status == "CANCEL" or (self.cut_by_pbx and status != "ANSWER"):
            return []   # Dial stopped ringing it (the caller left, the PBX cut): not the agent's failure
        if status != "ANSWER":
            # This phone does not take the call (ring_all: the others may still ring).
            reason = ring_failure(status)
            self._set_ring(ring, replace(ring, channel=e.agent_channel, done=True))
            return [EndAttempt(ring.agent_id, reason),
                    self._acd(acd_ev.AgentRingFailed, at, agent_id=ring.agent_id, reason=reason)]
        self.phase, self.dialled = Phase.TALKING, True
        self.agent_id, self.agent_channel = ring.agent_id, e.agent_channel
        others = [r for r in self.rings if r is not ring and not r.done]
        self.rings = tuple(replace(r, channel=e.agent_channel, done=True) if r is ring
                           else replace(r, cancelled=True, done=True) if r in others else r for r in self.rings)
        # Asterisk stops the other phones of a ring_all; the ACD frees their agents.
        return [StartRecording(), self._acd(acd_ev.AgentAnswered, at, agent_id=ring.agent_id),
                EndAttempt(ring.agent_id, "answered"), *(EndAttempt(r.agent_id, "cancelled") for r in others),
                UpdateRecord({"agent_id": ring.agent_id}, stamps=("agent_answered_at",))]

    def _ringing_dial_returned(self, e: DialReturned, at: float) -> list[Command]:
        self._expect(DIAL, e)
        if e.caller_left or self.cut_by_pbx:
            return []   # the caller's Hangup follows (the PBX's cut: nobody's failure)
        status = e.status.upper()
        return self._ring_failed(status if status not in ("", "ANSWER", "CANCEL") else "NOANSWER", at)

    def _dial_refused(self, e: DialRefused, at: float) -> list[Command]:
        self._expect(DIAL, e)
        return self._ring_failed("INVALIDARGS", at)   # not a phone's failure: ours (unavailable)

    def _ring_failed(self, status: str, at: float) -> list[Command]:
        """Dial came back and nobody took the call: the caller waits again, same place."""
        out: list[Command] = []
        reason = ring_failure(status)
        for ring in self.rings:
            if not ring.done:
                out += [EndAttempt(ring.agent_id, reason),
                        self._acd(acd_ev.AgentRingFailed, at, agent_id=ring.agent_id, reason=reason)]
        self.phase, self.rings = Phase.WAITING, ()
        return [*out, StartMusic(), *self._next(at)]

    # ------------------------------------------------------------------ talking

    def _talk_dial_returned(self, e: DialReturned, at: float) -> list[Command]:
        self._expect(DIAL, e)
        if e.caller_left:
            self.hangup_first = self.hangup_first or "caller"
            return []   # the caller's Hangup follows
        if self.cut_by_pbx:
            return []   # the PBX cut the agent's leg: no survey, the caller's channel goes too
        if self.transfer is not None:
            return self._transferred(self.transfer, at)
        return self._agent_left(at)

    def _transferred(self, transfer: Transfer, at: float) -> list[Command]:
        self.transfer, self.phase = None, Phase.WAITING
        self.queue = transfer.queue or self.queue
        self.agent_id = self.agent_channel = None
        self.rings = ()
        out: list[Command] = [self._acd(acd_ev.CallEnded, at), UpdateRecord({"queue": self.queue}), StartMusic(),
                              self._acd(acd_ev.CallQueued, at, queue=self.queue, category=self.category,
                                        caller=self.caller, preferred_agent=transfer.agent_id)]
        return out + self._next(at)

    def _agent_left(self, at: float) -> list[Command]:
        """The agent hung up first: the caller stays for the survey."""
        self.hangup_first = self.hangup_first or "agent"
        out = self._consult_over("done")
        self.phase, self.awaiting = Phase.SURVEY, SURVEY
        out.append(StopRecording())
        if self.acd_knows:
            out.append(self._acd(acd_ev.CallEnded, at))
        if self.adopted_agent is not None:
            out.append(AdoptedTalkEnded(self.adopted_agent))
            self.adopted_agent = None
        out.append(Collect("survey_question", SURVEY_TIMEOUT_MS))
        return out

    def _talk_hung_up(self, e: HungUp, at: float) -> list[Command]:
        consult = self.consult
        if e.channel == self.agent_channel:
            if consult is not None and consult.answered and not consult.completed and e.channel != consult.channel:
                return self._consult_completed(at)
            if not self.dialled:
                return [StartTimer(AGENT_LEFT, ADOPTED_AGENT_GRACE_S)]
            return []   # Dial's return tells who left first
        if consult is not None and not consult.completed and e.channel == consult.channel:
            return self._consult_over("ended")   # the colleague left the consult: back to the agent
        return self._channel_gone(e, at)

    def _talk_timer(self, e: TimerFired, at: float) -> list[Command]:
        if e.name == AGENT_LEFT and not self.dialled:
            return self._agent_left(at)
        return self._timer(e, at)

    def _transfer_asked(self, e: TransferAsked, at: float) -> list[Command]:
        if (e.queue is None) == (e.agent_id is None):
            raise IllegalEvent("transfer to a queue or to an agent (one of them)")
        if not self.dialled or self.agent_channel is None:
            raise IllegalEvent(f"call {self.call_id}: an adopted talk is not transferred")
        if self.consult is not None:
            raise IllegalEvent(f"call {self.call_id} is in a consult with {self.consult.agent_id}")
        if self.transfer is not None:
            raise IllegalEvent(f"call {self.call_id} is already being transferred")
        self.transfer = Transfer(e.queue, e.agent_id)
        return [HangUp(self.agent_channel)]

    # ------------------------------------------------------------------ consult

    def _consult_asked(self, e: ConsultAsked, at: float) -> list[Command]:
        if self.consult is not None:
            raise IllegalEvent(f"call {self.call_id} is already in a consult with {self.consult.agent_id}")
        if self.transfer is not None or self.agent_channel is None:
            raise IllegalEvent(f"call {self.call_id} is being transferred")
        if e.agent_id == self.agent_id:
            raise IllegalEvent("an agent does not consult themself")
        self.consult = Consult(e.agent_id)
        return [AddAttempt(e.agent_id), Atxfer(self.agent_channel, e.agent_id)]

    def _consult_failed(self, e: ConsultFailed, at: float) -> list[Command]:
        return self._consult_over("failed")

    def _consult_ringing(self, e: ConsultRinging, at: float) -> list[Command]:
        consult = self.consult
        if consult is None or consult.channel is not None:
            return []
        self.consult = replace(consult, leg=e.leg, channel=e.channel)
        return [Follow(e.leg), Follow(e.channel)]

    def _consult_dial_ended(self, e: ConsultDialEnded, at: float) -> list[Command]:
        consult = self.consult
        if consult is None or consult.answered or consult.channel is None:
            return []   # not the consult's dial (it has not begun ringing)
        if e.status.upper() == "ANSWER":
            self.consult = replace(consult, answered=True)
            return [EndAttempt(consult.agent_id, "answered")]
        return self._consult_over(ring_failure(e.status))

    def _consult_completed(self, at: float) -> list[Command]:
        """The first agent hung up after the colleague answered: the caller talks with the
        colleague now; the first agent's part ends (the ACD's wrap-up)."""
        consult = self.consult
        assert consult is not None and consult.channel is not None
        self.consult = replace(consult, completed=True)
        out: list[Command] = [self._acd(acd_ev.CallEnded, at)] if self.acd_knows else []
        self.acd_knows = False
        self.agent_id, self.agent_channel = consult.agent_id, consult.channel
        return [*out, UpdateRecord({"agent_id": consult.agent_id})]

    def _consult_over(self, result: str) -> list[Command]:
        """The consult ended: not answered, the colleague left, or the talk with them is over."""
        consult = self.consult
        if consult is None:
            return []
        self.consult = None
        out: list[Command] = [] if consult.answered else [EndAttempt(consult.agent_id, result)]
        return [*out, FreeColleague(consult.agent_id, after_wrapup=consult.completed)]

    # ------------------------------------------------------------------ survey

    def _survey_digit(self, e: DigitCollected, at: float) -> list[Command]:
        self._expect(SURVEY, e)
        if e.digit and e.digit in SURVEY_KEYS and len(e.digit) == 1:
            self.survey_score, self.awaiting = int(e.digit), SURVEY_THANKS
            return [UpdateRecord({"survey_score": self.survey_score}), Play(("survey_thanks",))]
        return self._leave("done")

    def _survey_played(self, e: PromptPlayed, at: float) -> list[Command]:
        self._expect(SURVEY_THANKS, e)
        return self._leave("done")

    # ------------------------------------------------------------------ adoption

    def _fresh(self, e: object) -> None:
        if self.awaiting is not None:
            raise IllegalEvent(f"{type(e).__name__}: call {self.call_id} has begun already")

    def _adopted(self, e: Adopted, at: float) -> list[Command]:
        self._fresh(e)
        plan = e.plan
        self.queue, self.category, self.agent_id = e.queue, e.category, e.agent_id
        if plan.resume is Phase.ENDED:
            self.phase = Phase.TALKING if e.talked else Phase.WAITING if e.queued_at is not None else Phase.IVR
            self.acd_knows, self.gone_unseen, self.noted_hung_up_by = False, True, e.hung_up_by
            return [AdoptRecording(), *self._end(at)]
        if plan.resume is Phase.TALKING and plan.agent_channel:
            self.phase, self.acd_knows, self.dialled = Phase.TALKING, False, False
            self.agent_channel = plan.agent_channel
            self.adopted_agent = e.agent_id
            return [Follow(plan.agent_channel), AdoptRecording()]
        if plan.resume is Phase.SURVEY:
            self.phase, self.awaiting = Phase.SURVEY, SURVEY
            return [Collect("survey_question", SURVEY_TIMEOUT_MS)]
        if plan.resume is Phase.WAITING and e.queue:
            self.phase, self.awaiting = Phase.IVR, QUEUE
            self.queued_at = e.queued_at if e.queued_at is not None else at
            return [LookUpQueue(e.queue, as_is=True)]
        self.phase, self.awaiting = Phase.IVR, NOTICE
        return [LookUpNotice()]

    # ------------------------------------------------------------------ the end

    def _leave(self, how: str) -> list[Command]:
        """The engine ends the call: hang the caller up, wait (bounded) for the channel to go."""
        self.leaving, self.left_from = how, self.phase
        self.phase, self.awaiting = Phase.LEAVING, None
        return [HangUp(self.channel), StartTimer(GONE, GONE_WAIT_S)]

    def _channel_gone(self, e: HungUp, at: float) -> list[Command]:
        """A hang-up in any live phase: the caller's ends the call; an agent's leg or a
        consult's is news the phase's own rules (or Dial's return) take care of."""
        if e.channel != self.channel:
            return []
        if self.phase is Phase.TALKING:
            self.hangup_first = self.hangup_first or "caller"
        return self._end(at)

    def _failed(self, e: CommandFailed, at: float) -> list[Command]:
        return self._leave("callback" if self.callback_taken else "failed")

    def _agi_gone(self, e: ChannelGone | AmiLost, at: float) -> list[Command]:
        """The caller's channel is gone (or out of reach): nothing runs on it any more; its
        Hangup (or the snapshot after a reconnect) ends the call."""
        self.awaiting = None
        if isinstance(e, ChannelGone) and self.phase is not Phase.LEAVING:
            return [StartTimer(GONE, GONE_WAIT_S)]
        return []

    def _timer(self, e: TimerFired, at: float) -> list[Command]:
        if e.name == GONE:
            return self._end(at)
        return []   # a timer of a phase the call has left

    def _outage(self, e: GoneDuringOutage, at: float) -> list[Command]:
        self.gone_unseen, self.noted_hung_up_by = True, e.hung_up_by   # only Asterisk's note saw it
        return self._end(at)

    def _cut(self, e: CutByPbx, at: float) -> list[Command]:
        """The PBX is cutting the call: what ends it from now on is the cut, not the caller."""
        self.cut_by_pbx = True
        return []

    def _stopping(self, e: Stopping, at: float) -> list[Command]:
        if e.handed_over:
            self.phase, self.awaiting = Phase.HANDED_OVER, None
            return []
        if self.phase is not Phase.LEAVING:
            self.leaving, self.left_from = ("callback" if self.callback_taken else "failed"), self.phase
        return self._end(at)

    def _end(self, at: float) -> list[Command]:
        """The caller is gone: tell the ACD, free a consulted colleague, close the record."""
        phase = self.left_from if self.phase is Phase.LEAVING and self.left_from is not None else self.phase
        how = self.leaving or ("callback" if self.callback_taken else "hangup")
        out = self._consult_over("cancelled")
        if self.acd_knows:
            if phase is Phase.TALKING:
                out.append(self._acd(acd_ev.CallEnded, at))
            elif phase is Phase.RINGING:
                out += [EndAttempt(r.agent_id, "cancelled") for r in self.rings if not r.done]
                out.append(self._acd(acd_ev.CallLeft, at))
            elif phase is Phase.WAITING and how != "callback":
                out.append(self._acd(acd_ev.CallLeft, at))
        if self.phase is Phase.IVR and self.ivr is not None:   # hung up in the menu
            out.append(self._ivr_path())
        if self.adopted_agent is not None:
            out.append(AdoptedTalkEnded(self.adopted_agent))
            self.adopted_agent = None
        cut = self.cut_by_pbx and self.phase is not Phase.LEAVING
        self.disposition = CUT_BY_PBX if cut else disposition(phase, how)
        self.hangup_first = self._who_hung_up_first(phase, cut)
        self.phase, self.awaiting, self.inbox, self.rings = Phase.ENDED, None, (), ()
        return [*out, CloseRecord(self.disposition, self.hangup_first)]

    def _who_hung_up_first(self, phase: Phase, cut: bool) -> str | None:
        if cut:
            return "system"            # the PBX cut it
        if self.hangup_first is not None:
            return self.hangup_first   # decided in the talk
        if self.leaving is not None:
            return "system"            # the engine ended it
        if phase is Phase.TALKING and self.gone_unseen:
            return self.noted_hung_up_by   # the talk ended unseen: Asterisk's note, if any, tells
        return "caller"

    def _late(self, e: object, at: float) -> list[Command]:
        return []


M = CallMachine
Handler = Callable[[CallMachine, Any, float], list[Command]]
# What ends or touches a call in every live phase.
_ANY_LIVE: dict[type, Handler] = {
    HungUp: M._channel_gone, ChannelGone: M._agi_gone, AmiLost: M._agi_gone, CommandFailed: M._failed,
    GoneDuringOutage: M._outage, CutByPbx: M._cut, TimerFired: M._timer, Stopping: M._stopping,
}
# Asks: never taken after the end.
ASKS = (Arrived, Adopted, TransferAsked, ConsultAsked)
_LATE: dict[type, Handler] = {t: M._late for t in EVENTS if t not in ASKS}

P = Phase
TABLE: dict[Phase, dict[type, Handler]] = {
    P.ARRIVED: {Arrived: M._arrived, Adopted: M._adopted, Answered: M._answered, **_ANY_LIVE},
    P.IVR: {NoticeFound: M._notice_found, DigitCollected: M._ivr_digit, PromptPlayed: M._ivr_played,
            QueueFound: M._queue_found, **_ANY_LIVE},
    P.WAITING: {AcdSays: M._acd_says, DigitCollected: M._waiting_digit, PromptPlayed: M._waiting_played,
                RingStarted: M._ring_started, DialEnded: M._dial_ended, **_ANY_LIVE},
    P.RINGING: {AcdSays: M._acd_says, RingStarted: M._ring_started, DialEnded: M._dial_ended,
                DialReturned: M._ringing_dial_returned, DialRefused: M._dial_refused, **_ANY_LIVE},
    P.TALKING: {**_ANY_LIVE, AcdSays: M._acd_says, RingStarted: M._ring_started, DialEnded: M._dial_ended,
                DialReturned: M._talk_dial_returned, HungUp: M._talk_hung_up, TimerFired: M._talk_timer,
                TransferAsked: M._transfer_asked, ConsultAsked: M._consult_asked, ConsultFailed: M._consult_failed,
                ConsultRinging: M._consult_ringing, ConsultDialEnded: M._consult_dial_ended},
    P.SURVEY: {**_ANY_LIVE, DigitCollected: M._survey_digit, PromptPlayed: M._survey_played, AcdSays: M._acd_says,
               ConsultFailed: M._consult_failed, ConsultRinging: M._consult_ringing,
               ConsultDialEnded: M._consult_dial_ended, RingStarted: M._ring_started, DialEnded: M._dial_ended},
    P.LEAVING: {**_LATE, **_ANY_LIVE, CommandFailed: M._late},
    P.ENDED: _LATE,
    P.HANDED_OVER: _LATE,
}
