"""One caller's call, from the engine's answer to the record closed.

`CallSession.run()` is the call's script: answer, the IVR menu, waiting in the queue with
music on hold, ringing agents as the ACD says, the talk (recorded), the survey, the end. It
drives the caller's channel through AsyncAGI, one command at a time. What Asterisk tells
about the call meanwhile (an agent answered, who hung up, keys pressed while waiting) comes
in through the `on_*` methods, which the engine calls in the call's event order.

The decisions are elsewhere and pure: the IVR stepper (ivr/flow.py), the ACD (acd/core.py)
and the phase table (calls/core.py). This module only carries them out and writes down what
happened.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.acd import commands as acd_cmd
from callcenter.acd import events as acd_ev
from callcenter.ami.errors import AmiError, AmiUnavailable, ChannelGone, UnsafeField
from callcenter.calls.core import Adoption, Phase, disposition, ring_failure, step
from callcenter.ivr.flow import Hangup as IvrHangup
from callcenter.ivr.flow import IvrFlow, PlayAndCollect, PlayMessage, RouteToQueue
from callcenter.ivr.prompts import announcement_prompts
from callcenter.recording.finalize import RecordingError, finalise, recording_path

if TYPE_CHECKING:
    from callcenter.calls.engine import Engine

log = logging.getLogger(__name__)

SURVEY_TIMEOUT_MS = 6000
CALLBACK_KEY = "1"


@dataclass(frozen=True)
class Transfer:
    """Where an agent sends the caller: another queue, or a colleague first (in the same queue
    unless one is named; if the colleague does not answer, whoever is free in that queue)."""

    queue: str | None = None
    agent_id: str | None = None


CONSULT = "consult"      # the pause reason of a colleague held for an agent's consult


@dataclass
class Consult:
    """An attended transfer in progress: the colleague consulted, Asterisk's channel that
    dials them and their phone's channel; completed when the first agent hangs up after the
    colleague answered."""

    agent_id: str
    attempt_id: int | None = None
    leg: str | None = None
    channel: str | None = None
    answered: bool = False
    completed: bool = False
    over: bool = False


@dataclass
class Ring:
    """What the session is doing about one RingAgent from the ACD."""

    command: acd_cmd.RingAgent
    attempt_id: int | None = None
    dest_channel: str | None = None
    status: str | None = None


@dataclass
class CallSession:
    engine: Engine
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    dialled_number: str
    arrived_at: datetime
    arrived_mono: float
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    phase: Phase = Phase.ARRIVED
    queue: str | None = None
    category: str | None = None
    agent_id: str | None = None
    agent_channel: str | None = None
    hangup_first: str | None = None
    # What the ACD says about this caller while they wait: RingAgent, OfferCallback,
    # AnnouncePosition, Overflow — carried out in order by the waiting loop.
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    ring: Ring | None = None
    raw_recording: Path | None = None
    recording_started: float | None = None
    transfer: Transfer | None = None
    consult: Consult | None = None
    recording_ended: float | None = None
    muted_spans: list[list[float | None]] = field(default_factory=list)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_how: str | None = None
    survey_score: int | None = None
    announcements: int = 0
    answered_mono: float | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)   # the record exists
    agent_gone: asyncio.Event = field(default_factory=asyncio.Event)
    # False for a talk adopted from an engine that is gone: this core never routed it.
    acd_knows: bool = True
    # The engine stopped cleanly and left the call open for another engine to adopt.
    handed_over: bool = False
    _closing: bool = False

    # ------------------------------------------------------------------ helpers

    @property
    def log_extra(self) -> str:
        return f"call={self.call_id} channel={self.channel}"

    def _move(self, what: str) -> None:
        before = self.phase
        self.phase = step(self.phase, what)
        log.debug("%s phase %s -%s-> %s", self.log_extra, before, what, self.phase)

    def _prompt(self, prompt_id: str) -> str:
        return f"{self.engine.settings.asterisk.spool_dir}/prompts/{prompt_id}"

    async def _feed(self, event: Any) -> None:
        await self.engine.feed_acd(event)

    # ------------------------------------------------------------------ the script

    async def run(self, script: Awaitable[None] | None = None) -> None:
        """Carry out the call's script (a new call's, or `resume` for an adopted one), then close
        the record with what happened."""
        gw = self.engine.gateway
        try:
            await (script or self._new_call())
        except (ChannelGone, AmiUnavailable) as exc:
            if isinstance(exc, AmiUnavailable):
                await self._await_fate()
            log.info("%s left in phase %s (%s)", self.log_extra, self.phase, type(exc).__name__)
        except AmiError as exc:
            log.error("%s AMI error in phase %s: %s", self.log_extra, self.phase, exc)
            self.end_how = self.end_how or "failed"
            with contextlib.suppress(AmiError):
                await gw.hangup(self.channel)
        except asyncio.CancelledError:
            self.end_how = self.end_how or "failed"
            raise
        finally:
            # Handed over: another engine carries the call on; its record stays open.
            if not self.handed_over:
                if not self.hung_up.is_set():
                    # The script is done but the channel may still be up: wait for the hangup
                    # (bounded) so the record closes with the truth.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.hung_up.wait(), 10)
                await self.close()

    async def _new_call(self) -> None:
        gw = self.engine.gateway
        answer = asyncio.ensure_future(gw.answer(self.channel))   # first: the caller hears us at once
        try:
            await self.engine.store.open(
                id=self.call_id, uniqueid=self.uniqueid, linkedid=self.linkedid, channel=self.channel,
                engine_id=self.engine.engine_id, caller_number=self.caller_number,
                caller_name=self.caller_name, dialled_number=self.dialled_number, arrived_at=self.arrived_at,
            )
        finally:
            self.opened.set()
        await answer
        self._move("answered")
        await gw.exec_app(self.channel, "StopPlaytones", timeout=5)
        route = await self._ivr()
        if route is not None:
            await self._queue(route)

    async def resume(self, plan: Adoption, queued_mono: float | None, talk_mono: float | None) -> None:
        """The script of a call adopted from an engine that is gone (calls/shared.py): on from
        where the caller is. Asterisk runs whatever command the dead engine left pending first."""
        self.opened.set()
        if plan.resume is Phase.ENDED:
            self.phase = (Phase.TALKING if talk_mono is not None
                          else Phase.WAITING if queued_mono is not None else Phase.IVR)
            self.acd_knows = False
            self._adopt_recording(talk_mono)
            self.hung_up.set()
        elif plan.resume is Phase.TALKING and plan.agent_channel:
            await self._resume_talk(plan.agent_channel, talk_mono)
        elif plan.resume is Phase.SURVEY:
            self.phase = Phase.SURVEY
            await self._survey()
        elif plan.resume is Phase.WAITING and self.queue:
            self.phase = Phase.IVR
            await self._queue(RouteToQueue(self.queue, self.category, ""), arrival=queued_mono)
        else:
            self.phase = Phase.IVR
            route = await self._ivr()
            if route is not None:
                await self._queue(route)

    def _adopt_recording(self, talk_mono: float | None) -> None:
        """The recording the engine that is gone started for this call, if it did."""
        if self._raw_path.exists():
            self.raw_recording, self.recording_started = self._raw_path, talk_mono

    async def _resume_talk(self, agent_channel: str, talk_mono: float | None) -> None:
        """An adopted call in the middle of its talk: follow it to its end, then the survey."""
        engine = self.engine
        self.phase, self.acd_knows = Phase.TALKING, False
        self.agent_channel = agent_channel
        engine.track_channel(agent_channel, self)
        self._adopt_recording(talk_mono)
        try:
            waits = [asyncio.ensure_future(self.agent_gone.wait()), asyncio.ensure_future(self.hung_up.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if not self.hung_up.is_set():
                # Asterisk reports the agent's leg first even when the caller hung up: wait a moment.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.hung_up.wait(), 1.0)
            if self.hung_up.is_set():
                return
            await self._agent_left()
        finally:
            if self.agent_id and engine.shared is not None:
                engine.tasks.spawn(engine.shared.adopted_talk_ended(self.agent_id), name=f"adopted-{self.agent_id}")
        await self._survey()

    async def _await_fate(self) -> None:
        """AMI went away mid-command: wait for it to come back and for the call to end."""
        await self.hung_up.wait()

    async def _ivr(self) -> RouteToQueue | None:
        gw = self.engine.gateway
        notice = await self.engine.notice_for(self.caller_number)
        flow = IvrFlow(self.engine.menu, notice) if notice is not None else IvrFlow(self.engine.menu)
        action = flow.start()
        try:
            while True:
                if isinstance(action, PlayAndCollect):
                    digit = await gw.get_data(self.channel, self._prompt(action.prompt), int(action.timeout_s * 1000), 1)
                    action = flow.on_digit(digit or None)
                elif isinstance(action, PlayMessage):
                    await gw.stream_file(self.channel, self._prompt(action.prompt))
                    action = flow.on_played()
                elif isinstance(action, RouteToQueue):
                    return action
                elif isinstance(action, IvrHangup):
                    self.end_how = "message_done"
                    await gw.hangup(self.channel)
                    return None
                else:  # pragma: no cover - the flow returns only the four kinds
                    raise TypeError(f"unknown IVR action {action!r}")
        finally:
            self.engine.tasks.spawn(
                self.engine.store.update(self.call_id, ivr_path=list(flow.path), ivr_choice=flow.choice),
                name=f"ivr-path-{self.call_id}",
            )

    async def _queue(self, route: RouteToQueue, arrival: float | None = None) -> None:
        """Wait for an agent. `arrival`: when an adopted caller first queued (their place)."""
        gw = self.engine.gateway
        if arrival is None:
            self.queue, self.category = self.engine.queue_open_now(route.queue), route.category
            if self.queue != route.queue:
                log.info("%s %s is closed now: to %s", self.log_extra, route.queue, self.queue)
        self._move("queued")
        preferred = await self.engine.preferred_agent_for(self.caller_number)
        if arrival is None:
            await self.engine.store.update(self.call_id, queue=self.queue, category=self.category,
                                           queued_at=self.engine.clock.now())
        await gw.start_moh(self.channel)
        assert self.queue is not None
        await self._feed(acd_ev.CallQueued(
            call_id=self.call_id, queue=self.queue, at=self.engine.clock.monotonic() if arrival is None else arrival,
            category=route.category, caller=self.caller_number, preferred_agent=preferred,
        ))
        while True:
            if self.hung_up.is_set():
                # The caller left while a command was under way (not while waiting here, where
                # _caller_gone wakes the script): nobody else would end the wait.
                self.end_how = self.end_how or "hangup"
                return
            command = await self.inbox.get()
            if isinstance(command, acd_cmd.RingAgent):
                if await self._ring(command):
                    return
            elif isinstance(command, acd_cmd.OfferCallback):
                if await self._offer_callback(command):
                    return
            elif isinstance(command, acd_cmd.AnnouncePosition):
                await self._announce(command)
            elif isinstance(command, acd_cmd.Overflow):
                log.info("%s overflows from %s to %s", self.log_extra, command.from_queue, command.to_queue)
                self.queue = command.to_queue
                await self.engine.store.update(self.call_id, queue=command.to_queue)

    async def _announce(self, command: acd_cmd.AnnouncePosition) -> None:
        """The caller's place and expected wait, between stretches of music."""
        gw = self.engine.gateway
        await gw.stop_moh(self.channel)
        for prompt in announcement_prompts(command.position, command.estimated_wait_s):
            await gw.stream_file(self.channel, self._prompt(prompt))
        await gw.start_moh(self.channel)
        self.announcements += 1

    async def _offer_callback(self, offer: acd_cmd.OfferCallback) -> bool:
        """No agent can take the call now: offer to call back, keeping the caller's place."""
        gw = self.engine.gateway
        if not self.engine.dial_policy.allows(self.caller_number):
            # No promise the hotline may not keep: the dial policy refuses this number.
            log.info("%s no callback offered (%s): the dial policy refuses the number", self.log_extra, offer.why)
            return False
        log.info("%s callback offered (%s)", self.log_extra, offer.why)
        await gw.stop_moh(self.channel)
        digit = await gw.get_data(self.channel, self._prompt("callback_offer"), 5000, 1)
        log.info("%s callback offer answered with %r", self.log_extra, digit)
        if digit == CALLBACK_KEY:
            await self._feed(acd_ev.CallbackRequested(call_id=self.call_id, number=self.caller_number,
                                                      at=self.engine.clock.monotonic()))
            self.end_how = "callback"
            await gw.stream_file(self.channel, self._prompt("callback_thanks"))
            await gw.hangup(self.channel)
            return True
        await gw.start_moh(self.channel)
        return False

    async def _ring(self, command: acd_cmd.RingAgent) -> bool:
        """Ring one agent (the call keeps its place if they don't answer). True when the call is over."""
        gw = self.engine.gateway
        self.ring = Ring(command)
        self._move("ring")
        self.ring.attempt_id = await self.engine.store.add_attempt(self.call_id, command.agent_id, self.engine.clock.now())
        await gw.stop_moh(self.channel)
        # g: the caller stays with us when the agent hangs up (for the survey);
        # m: music on hold while the agent's phone rings;
        try:
            # t: the agent may transfer (only the engine starts one: features.conf).
            result = await gw.dial(self.channel, command.endpoint, int(command.timeout_s), "gmt")
        except AmiUnavailable:
            await self._after_lost_dial()
            return True
        except UnsafeField as exc:
            # Not an agent's phone (a record written before endpoints were checked): the agent
            # is paused "unavailable" and the caller keeps their place, never hung up.
            log.error("%s agent %s not rung: %s", self.log_extra, command.agent_id, exc)
            await self._ring_failed("CHANUNAVAIL")
            await gw.start_moh(self.channel)
            return False
        if result.result == "-1":
            # Dial ends with -1 when the caller's side hangs up (Asterisk reports the agent's
            # leg hanging up before the caller's own channel, so the order of Hangup events
            # cannot tell who left first; Dial's result can).
            if self.phase is Phase.TALKING and self.hangup_first is None:
                self.hangup_first = "caller"
            await self.hung_up.wait()
            return True
        if self.phase is Phase.RINGING:
            # Not answered: back to waiting, same place.
            status = self.ring.status or "NOANSWER"
            await self._ring_failed(status)
            await gw.start_moh(self.channel)
            return False
        if self.transfer is not None and self.phase is Phase.TALKING:
            await self._transferred(self.transfer)
            return False
        # The talk is over and the caller is still here: the agent hung up first.
        await self._agent_left()
        await self._survey()
        return True

    async def _after_lost_dial(self) -> None:
        """The AMI link dropped while Dial ran: the call goes on in Asterisk; follow its events."""
        log.warning("%s AMI lost during the dial; following the call by its events", self.log_extra)
        await self.hung_up.wait()

    async def _ring_failed(self, status: str) -> None:
        ring = self.ring
        assert ring is not None
        self._move("ring_failed")
        self.ring = None
        await self.engine.store.end_attempt(self.call_id, ring.attempt_id, ring_failure(status), self.engine.clock.now())
        await self._feed(acd_ev.AgentRingFailed(call_id=self.call_id, agent_id=ring.command.agent_id,
                                                reason=ring_failure(status), at=self.engine.clock.monotonic()))  # type: ignore[arg-type]

    async def _transferred(self, transfer: Transfer) -> None:
        """This agent's leg is over; the caller waits again, for the target queue or agent.
        The recording goes on: one file for the whole call."""
        self.transfer = None
        self._move("transferred")
        log.info("%s transferred by %s to %s", self.log_extra, self.agent_id, transfer)
        await self._feed(acd_ev.CallEnded(call_id=self.call_id, at=self.engine.clock.monotonic()))
        self.queue = transfer.queue or self.queue
        self.agent_id, self.agent_channel = None, None
        await self.engine.store.update(self.call_id, queue=self.queue)
        await self.engine.gateway.start_moh(self.channel)
        await self._feed(acd_ev.CallQueued(
            call_id=self.call_id, queue=self.queue, at=self.engine.clock.monotonic(), category=self.category,
            caller=self.caller_number, preferred_agent=transfer.agent_id))

    async def _agent_left(self) -> None:
        if self.phase is not Phase.TALKING:
            return
        await self.consult_over("done")
        if self.hangup_first is None:
            self.hangup_first = "agent"
        self._move("agent_left")
        await self._stop_recording()
        if self.acd_knows:
            await self._feed(acd_ev.CallEnded(call_id=self.call_id, at=self.engine.clock.monotonic()))

    async def _survey(self) -> None:
        """The caller rates the service (1-5) after the agent hangs up."""
        gw = self.engine.gateway
        digit = await gw.get_data(self.channel, self._prompt("survey_question"), SURVEY_TIMEOUT_MS, 1)
        if digit and digit in "12345":
            self.survey_score = int(digit)
            await self.engine.store.update(self.call_id, survey_score=self.survey_score)
            await gw.stream_file(self.channel, self._prompt("survey_thanks"))
        self.end_how = "done"
        await gw.hangup(self.channel)

    # ------------------------------------------------------------------ recording

    async def _start_recording(self) -> None:
        if not self.engine.settings.recording.enabled or self.raw_recording is not None:
            return   # off, or already running (a transferred call keeps one recording)
        self.raw_recording = self._raw_path
        self.raw_recording.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self.engine.gateway.mixmonitor(
                self.channel, f"{self.engine.settings.asterisk.spool_dir}/recordings/incoming/{self._raw_path.name}", "D")
            self.recording_started = self.engine.clock.monotonic()
        except AmiError as exc:
            log.error("%s recording did not start: %s", self.log_extra, exc)
            self.raw_recording = None

    @property
    def _raw_path(self) -> Path:
        """MixMonitor's file while the call lasts (finalised into the recordings folder after)."""
        return self.engine.settings.paths.recordings_dir / "incoming" / f"{self.call_id}.raw"

    @property
    def recording_paused(self) -> bool:
        return bool(self.muted_spans) and self.muted_spans[-1][1] is None

    async def pause_recording(self, paused: bool) -> bool:
        """Pause (mute both directions) or resume the recording; returns whether it is paused.
        Each paused stretch is kept so transcription skips it."""
        if self.raw_recording is None or self.recording_started is None:
            raise ValueError(f"call {self.call_id} is not being recorded")
        if paused == self.recording_paused:
            return paused
        await self.engine.gateway.mixmonitor_mute(self.channel, "both", paused)
        offset = round(self.engine.clock.monotonic() - self.recording_started, 2)
        if paused:
            self.muted_spans.append([offset, None])
        else:
            self.muted_spans[-1][1] = offset
        log.info("%s recording %s at %.2f s", self.log_extra, "paused" if paused else "resumed", offset)
        return paused

    def _mark_recording_end(self) -> None:
        if self.recording_started is not None and self.recording_ended is None:
            self.recording_ended = self.engine.clock.monotonic()

    async def _stop_recording(self) -> None:
        self._mark_recording_end()
        if self.raw_recording is None:
            return
        with contextlib.suppress(AmiError):
            await self.engine.gateway.stop_mixmonitor(self.channel)

    async def _finalise_recording(self) -> None:
        raw = self.raw_recording
        if raw is None:
            return
        day = self.arrived_at.astimezone(self.engine.timezone).strftime("%Y-%m-%d")
        target = recording_path(self.engine.settings.paths.recordings_dir, self.call_id, day)
        # MixMonitor closes its file when the channel is gone; wait for it briefly.
        for _ in range(50):
            if raw.exists():
                break
            await asyncio.sleep(0.1)
        try:
            done = await asyncio.to_thread(finalise, raw, target)
        except RecordingError as exc:
            log.error("%s %s", self.log_extra, exc)
            return
        spans = self._spans_in_file(done.duration_s)
        await self.engine.store.update(self.call_id, recording_path=str(done.path), recording_sha256=done.sha256,
                                       recording_duration_s=done.duration_s, muted_spans=spans)
        await self.engine.recording_finalised(self.call_id, done.path)

    def _spans_in_file(self, duration_s: float) -> list[list[float]]:
        """The paused stretches on the file's own timeline. The file starts when media first
        flows, a moment after MixMonitor was asked; it ends with the call, so the difference
        between the time we measured and the file's length is that moment."""
        measured = ((self.recording_ended or self.engine.clock.monotonic()) - (self.recording_started or 0.0))
        lead = max(0.0, measured - duration_s)
        return [[round(max(0.0, start - lead), 2),                            # type: ignore[operator]
                 round(min(duration_s, (end if end is not None else measured) - lead), 2)]
                for start, end in self.muted_spans]

    # ------------------------------------------------------------------ events from Asterisk

    async def on_up(self) -> None:
        """The caller's channel is answered (Asterisk sent 200 OK): the engine's answer time."""
        if self.answered_mono is not None:
            return
        self.answered_mono = self.engine.clock.monotonic()
        await self.opened.wait()
        await self.engine.store.update(
            self.call_id, engine_answered_at=self.engine.clock.now(),
            answer_latency_ms=round((self.answered_mono - self.arrived_mono) * 1000, 3),
        )

    async def on_dial_begin(self, dest_channel: str) -> None:
        if self.ring is not None:
            self.ring.dest_channel = dest_channel
            self.engine.track_channel(dest_channel, self)

    async def on_dial_end(self, dest_channel: str, status: str) -> None:
        ring = self.ring
        if ring is None or self.phase is not Phase.RINGING:
            return
        ring.status = status
        if status.upper() != "ANSWER":
            return   # the run() script sees Dial return and handles the failed ring
        self.agent_id, self.agent_channel = ring.command.agent_id, dest_channel
        self._move("agent_answered")
        now = self.engine.clock.now()
        await self._start_recording()
        await self._feed(acd_ev.AgentAnswered(call_id=self.call_id, agent_id=ring.command.agent_id,
                                              at=self.engine.clock.monotonic()))
        await self.engine.store.end_attempt(self.call_id, ring.attempt_id, "answered", now)
        await self.engine.store.update(self.call_id, agent_id=self.agent_id, agent_answered_at=now)

    # ------------------------------------------------------------------ consult (attended transfer)

    @property
    def consult_leg(self) -> str | None:
        return self.consult.leg if self.consult is not None else None

    def on_consult_dial(self, leg: str, colleague_channel: str) -> None:
        assert self.consult is not None
        self.consult.leg, self.consult.channel = leg, colleague_channel
        self.engine.track_channel(leg, self)
        self.engine.track_channel(colleague_channel, self)

    async def on_consult_answered(self, status: str) -> None:
        consult = self.consult
        if consult is None or consult.answered:
            return
        if status.upper() == "ANSWER":
            consult.answered = True
            await self.engine.store.end_attempt(self.call_id, consult.attempt_id, "answered", self.engine.clock.now())
            log.info("%s colleague %s answered the consult", self.log_extra, consult.agent_id)
        else:
            await self.consult_over(ring_failure(status))

    async def _consult_completed(self) -> None:
        """The first agent hung up after the consult: the caller now talks with the colleague.
        The first agent's part ends (wrap-up); the colleague stays held for this call."""
        consult = self.consult
        assert consult is not None and consult.channel is not None
        consult.completed = True
        log.info("%s transferred by %s to %s after a consult", self.log_extra, self.agent_id, consult.agent_id)
        await self._feed(acd_ev.CallEnded(call_id=self.call_id, at=self.engine.clock.monotonic()))
        self.acd_knows = False
        self.agent_id, self.agent_channel = consult.agent_id, consult.channel
        self.agent_gone.clear()
        await self.engine.store.update(self.call_id, agent_id=consult.agent_id)

    async def consult_over(self, result: str) -> None:
        """The consult ended (not answered, colleague left, or the transferred talk is over):
        the colleague is free again, after wrap-up if they took the call."""
        consult = self.consult
        if consult is None or consult.over:
            return
        consult.over = True
        if not consult.answered:
            await self.engine.store.end_attempt(self.call_id, consult.attempt_id, result, self.engine.clock.now())
        if not consult.completed:
            self.consult = None
        delay = self.engine.settings.acd.wrapup_s if consult.completed else 0
        self.engine.tasks.spawn(self._free_colleague(consult.agent_id, delay), name=f"consult-{consult.agent_id}")

    async def _free_colleague(self, agent_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            view = self.engine.acd.agent(agent_id)
        except Exception:
            return
        if view.state.value == "paused" and view.reason == CONSULT:
            await self.engine.ready(agent_id)

    async def on_hangup(self, channel: str) -> None:
        consult = self.consult
        if consult is not None and not consult.completed:
            if channel == self.agent_channel and consult.answered and channel != consult.channel:
                await self._consult_completed()
                return
            if channel == consult.channel:
                await self.consult_over("ended")   # the colleague left the consult: back to the agent
                return
        if channel == self.agent_channel:
            self.agent_gone.set()
        if channel == self.channel:
            self._mark_recording_end()
            if self.phase is Phase.TALKING and self.hangup_first is None:
                self.hangup_first = "caller"
            self.hung_up.set()
            self.engine.tasks.spawn(self._caller_gone(), name=f"caller-gone-{self.call_id}")

    async def _caller_gone(self) -> None:
        """The caller's channel is gone: wake the script if it waits on anything."""
        if self.phase in (Phase.WAITING,):
            # Waiting without a pending AGI command: nothing else would wake the script.
            self.end_how = self.end_how or "hangup"
            if self.engine.task_of(self) is not None:
                self.engine.task_of(self).cancel()  # type: ignore[union-attr]

    async def on_gone_during_outage(self) -> None:
        """The channel was not in Asterisk's snapshot after the AMI link came back."""
        if self.phase is Phase.TALKING and self.hangup_first is None:
            self.hangup_first = None   # unknown: nobody saw who left first
        self.hung_up.set()
        task = self.engine.task_of(self)
        if task is not None and self.phase is Phase.WAITING:
            task.cancel()

    # ------------------------------------------------------------------ the end

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await self.consult_over("cancelled")
        phase = self.phase
        how = self.end_how or "hangup"
        if not self.acd_knows:
            pass   # an adopted talk: this core never had the call
        elif phase is Phase.TALKING:
            await self._feed(acd_ev.CallEnded(call_id=self.call_id, at=self.engine.clock.monotonic()))
        elif phase is Phase.RINGING and self.ring is not None:
            await self.engine.store.end_attempt(self.call_id, self.ring.attempt_id, "cancelled", self.engine.clock.now())
            await self._feed(acd_ev.CallLeft(call_id=self.call_id, at=self.engine.clock.monotonic()))
        elif phase is Phase.WAITING and how != "callback":
            await self._feed(acd_ev.CallLeft(call_id=self.call_id, at=self.engine.clock.monotonic()))
        result = disposition(phase, how)
        if phase is not Phase.ENDED:
            self.phase = Phase.ENDED
        await self._finalise_recording()
        await self.engine.store.update(
            self.call_id, ended_at=self.engine.clock.now(), disposition=result, hangup_first=self.hangup_first,
            closed=True,
        )
        log.info("%s ended: %s (hangup first: %s)", self.log_extra, result, self.hangup_first)
        self.ended.set()
        await self.engine.call_closed(self)
