"""One caller's call, carried out: the interpreter of its CallMachine (calls/machine.py).

The machine decides; this module only does. `tell(event)` feeds the machine what happened
and sends each command it answers to one of two lanes, each carried out in order:

- the caller's channel (AGI: answer, collect a key, play, music on hold, Dial): one command
  at a time, as AsyncAGI runs them; a command's result (the key, the prompt played, Dial's
  return) is fed back as an event. When one fails, the commands queued behind it on the
  channel are dropped and the failure is fed back (ChannelGone, AmiLost, CommandFailed).
- beside the channel: AMI actions (hang up a leg, attended transfer), the ACD, the call
  store, the recording, timers, look-ups (the outage notice, the queue open now).

What Asterisk tells about the call meanwhile (a phone rings, an agent answers, a channel
hangs up) comes in through the engine, which calls `tell` in the call's event order; so do
the ACD's asks for this caller (`acd_says`) and the agents' (`ask`: transfer, consult).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from callcenter.ami.errors import AmiError, AmiUnavailable, ChannelGone, UnsafeField
from callcenter.calls import machine as m
from callcenter.calls.core import Phase
from callcenter.calls.store import Attempt
from callcenter.recording.finalize import RecordingError, finalise, recording_path

if TYPE_CHECKING:
    from callcenter.calls.engine import Engine

log = logging.getLogger(__name__)

CONSULT = "consult"      # the pause reason of a colleague held for an agent's consult
Transfer = m.Transfer
Consult = m.Consult


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
    # When an adopted call's talk began (its recording's start), if it had one.
    adopted_talk_mono: float | None = None
    machine: m.CallMachine = field(init=False)
    attempts: dict[str, Attempt] = field(default_factory=dict)   # the open attempt of each agent rung
    raw_recording: Path | None = None
    recording_started: float | None = None
    recording_ended: float | None = None
    muted_spans: list[list[float | None]] = field(default_factory=list)
    answered_mono: float | None = None
    # Asterisk's own time of the end: the caller's channel hung up, or the PBX going down.
    hung_up_at: datetime | None = None
    cut_at: datetime | None = None
    # The record's open is asked for (what the store writes after it finds the row).
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)    # closed, or handed over
    _channel_lane: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    _side_lane: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    _timers: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.machine = m.CallMachine(self.call_id, self.channel, self.caller_number, self.engine.menu,
                                     callback_allowed=self.engine.dial_policy.allows(self.caller_number))

    # ------------------------------------------------------------------ what the machine knows

    @property
    def log_extra(self) -> str:
        return f"call={self.call_id} channel={self.channel}"

    @property
    def phase(self) -> Phase:
        return self.machine.phase

    @property
    def queue(self) -> str | None:
        return self.machine.queue

    @property
    def category(self) -> str | None:
        return self.machine.category

    @property
    def agent_id(self) -> str | None:
        return self.machine.agent_id

    @property
    def agent_channel(self) -> str | None:
        return self.machine.agent_channel

    @property
    def consult(self) -> m.Consult | None:
        return self.machine.consult

    @property
    def consult_leg(self) -> str | None:
        return self.machine.consult.leg if self.machine.consult is not None else None

    @property
    def hangup_first(self) -> str | None:
        return self.machine.hangup_first

    @property
    def survey_score(self) -> int | None:
        return self.machine.survey_score

    @property
    def announcements(self) -> int:
        return self.machine.announcements

    # ------------------------------------------------------------------ feeding the machine

    def tell(self, event: m.Event) -> None:
        """Feed the machine one event and queue what it answers on the lanes."""
        try:
            commands = self.machine.handle(event, self.engine.clock.monotonic())
        except m.IllegalEvent as exc:
            log.warning("%s %s", self.log_extra, exc)
            return
        log.debug("%s %s -> %s: %s", self.log_extra, type(event).__name__, self.machine.phase, commands)
        self._queue(commands)
        if self.machine.phase is Phase.HANDED_OVER:
            self.ended.set()

    def _queue(self, commands: list[m.Command]) -> None:
        for command in commands:
            (self._channel_lane if isinstance(command, m.CHANNEL_COMMANDS) else self._side_lane).put_nowait(command)

    def acd_says(self, command: Any) -> None:
        self.tell(m.AcdSays(command))

    async def ask(self, event: m.TransferAsked | m.ConsultAsked) -> None:
        """An agent's ask (transfer, consult): refused with ValueError (IllegalEvent) when it
        does not fit the call; its commands are carried out before this returns, and an AMI
        error is raised to the one who asked."""
        commands = self.machine.handle(event, self.engine.clock.monotonic())
        for command in commands:
            if isinstance(command, m.CHANNEL_COMMANDS):
                self._channel_lane.put_nowait(command)
            elif isinstance(command, m.Atxfer):
                try:
                    await self.engine.gateway.atxfer(command.agent_channel, command.colleague, "callcenter-consult")
                except AmiError:
                    self.tell(m.ConsultFailed())
                    raise
            elif isinstance(command, m.HangUp):
                await self.engine.gateway.hangup(command.channel)
            else:
                await self._beside(command)

    # ------------------------------------------------------------------ the lanes

    async def run(self, start: m.Arrived | m.Adopted | None = None) -> None:
        """Carry the call out from `start` (a new call's arrival, or an adoption) until the
        record is closed (or the call handed over)."""
        lanes = [asyncio.ensure_future(self._run_channel()), asyncio.ensure_future(self._run_beside())]
        try:
            if isinstance(start, m.Adopted) and start.plan.resume is Phase.ENDED:
                # Over before this engine could see it end: Asterisk's note says when and who.
                start = replace(start, hung_up_by=await self._asterisks_note())
            self.tell(start or m.Arrived())
            await self.ended.wait()
        finally:
            for timer in self._timers:
                timer.cancel()
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _run_channel(self) -> None:
        while True:
            command = await self._channel_lane.get()
            try:
                result = await self._on_channel(command)
            except (ChannelGone, AmiUnavailable, AmiError) as exc:
                dropped = self._drain(self._channel_lane)
                if isinstance(exc, ChannelGone):
                    failure: m.Event = m.ChannelGone()
                elif isinstance(exc, AmiUnavailable):
                    failure = m.AmiLost()
                elif isinstance(exc, UnsafeField) and isinstance(command, m.Dial):
                    # Not an agent's phone (a record written before endpoints were checked):
                    # nothing is dialled, the caller keeps their place.
                    log.error("%s %s not rung: %s", self.log_extra, "&".join(command.endpoints), exc)
                    failure = m.DialRefused()
                else:
                    log.error("%s %s failed in phase %s: %s", self.log_extra, type(command).__name__,
                              self.machine.phase, exc)
                    failure = m.CommandFailed(type(command).__name__)
                if dropped:
                    log.info("%s dropped after the failure: %s", self.log_extra, dropped)
                self.tell(failure)
                continue
            if result is not None:
                self.tell(result)

    @staticmethod
    def _drain(lane: asyncio.Queue[Any]) -> list[Any]:
        out = []
        while not lane.empty():
            out.append(lane.get_nowait())
        return out

    async def _on_channel(self, command: Any) -> m.Event | None:
        gw, ch = self.engine.gateway, self.channel
        match command:
            case m.Answer():
                await gw.answer(ch)
                await gw.exec_app(ch, "StopPlaytones", timeout=5)
                return m.Answered()
            case m.Collect(prompt=prompt, timeout_ms=timeout_ms):
                digit = await gw.get_data(ch, self._prompt(prompt), timeout_ms, 1)
                return m.DigitCollected(digit or None)
            case m.Play(prompts=prompts):
                for prompt in prompts:
                    await gw.stream_file(ch, self._prompt(prompt))
                return m.PromptPlayed()
            case m.StartMusic():
                await gw.start_moh(ch)
            case m.StopMusic():
                await gw.stop_moh(ch)
            case m.Dial(endpoints=endpoints, timeout_s=timeout_s):
                # g: the caller stays with us when the agent hangs up (for the survey);
                # m: music on hold while the agent's phone rings;
                # t: the agent may transfer (only the engine starts one: features.conf).
                result = await gw.dial_agents(ch, endpoints, timeout_s, "gmt")
                # -1: the caller's side hung up (Asterisk reports the agent's leg hanging up
                # before the caller's own channel, so only Dial's result tells who left first).
                if result.result == "-1":
                    return m.DialReturned(caller_left=True)
                # A phone with no contact makes no channel, so no DialEnd: DIALSTATUS says why
                # (only asked while the ring is on: after a talk nobody needs it).
                status = ""
                if self.machine.phase is Phase.RINGING:
                    try:
                        status = await gw.get_variable(ch, "DIALSTATUS")
                    except (ChannelGone, AmiError) as exc:
                        log.info("%s DIALSTATUS not read (%s)", self.log_extra, type(exc).__name__)
                return m.DialReturned(caller_left=False, status=status)
            case _:
                raise TypeError(f"not a channel command: {command!r}")
        return None

    async def _run_beside(self) -> None:
        while True:
            command = await self._side_lane.get()
            try:
                await self._beside(command)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s %s not carried out", self.log_extra, type(command).__name__)

    async def _beside(self, command: m.Command) -> None:
        engine, now = self.engine, self.engine.clock.now
        match command:
            case m.HangUp(channel=channel):
                with contextlib.suppress(AmiError):
                    await engine.gateway.hangup(channel)
            case m.Follow(channel=channel):
                engine.track_channel(channel, self)
            case m.LookUpNotice():
                self.tell(m.NoticeFound(await engine.notice_for(self.caller_number)))
            case m.LookUpQueue(queue=queue, as_is=as_is):
                open_now = queue if as_is else engine.queue_open_now(queue)
                if open_now != queue:
                    log.info("%s %s is closed now: to %s", self.log_extra, queue, open_now)
                self.tell(m.QueueFound(open_now, await engine.preferred_agent_for(self.caller_number)))
            case m.FeedAcd(event=event):
                await engine.feed_acd(event)
            # The record's writes are asked for, not waited for: the store writes them in order
            # (after the call's open), and the call's next step does not wait for the disk.
            case m.OpenRecord():
                engine.store.open(
                    id=self.call_id, uniqueid=self.uniqueid, linkedid=self.linkedid, channel=self.channel,
                    engine_id=engine.engine_id, caller_number=self.caller_number, caller_name=self.caller_name,
                    dialled_number=self.dialled_number, arrived_at=self.arrived_at)
                self.opened.set()
            case m.UpdateRecord(fields=fields, stamps=stamps):
                engine.store.update(self.call_id, **fields, **{name: now() for name in stamps})
            case m.AddAttempt(agent_id=agent_id):
                self.attempts[agent_id] = engine.store.add_attempt(self.call_id, agent_id, now())
            case m.EndAttempt(agent_id=agent_id, result=result):
                engine.store.end_attempt(self.call_id, self.attempts.pop(agent_id, None), result, now())
            case m.StartRecording():
                await self._start_recording()
            case m.AdoptRecording():
                self._adopt_recording()
            case m.StopRecording():
                await self._stop_recording()
            case m.Atxfer(agent_channel=agent_channel, colleague=colleague):
                try:
                    await engine.gateway.atxfer(agent_channel, colleague, "callcenter-consult")
                except AmiError:
                    self.tell(m.ConsultFailed())
            case m.FreeColleague(agent_id=agent_id, after_wrapup=after_wrapup):
                delay = engine.settings.acd.wrapup_s if after_wrapup else 0
                engine.tasks.spawn(self._free_colleague(agent_id, delay), name=f"consult-{agent_id}")
            case m.AdoptedTalkEnded(agent_id=agent_id):
                if engine.shared is not None:
                    engine.tasks.spawn(engine.shared.adopted_talk_ended(agent_id), name=f"adopted-{agent_id}")
            case m.StartTimer(name=name, delay_s=delay_s):
                self._timers.append(engine.clock.call_later(delay_s, self.tell, m.TimerFired(name)))
            case m.CloseRecord(disposition=disposition, hangup_first=hangup_first):
                await self._close(disposition, hangup_first)
            case m.Answer() | m.Collect() | m.Play() | m.StartMusic() | m.StopMusic() | m.Dial():
                raise TypeError(f"a channel command beside the channel: {command!r}")
            case _:
                assert_never(command)

    def _prompt(self, prompt_id: str) -> str:
        return f"{self.engine.settings.asterisk.spool_dir}/prompts/{prompt_id}"

    async def _free_colleague(self, agent_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            view = self.engine.acd.agent(agent_id)
        except Exception:
            return
        if view.state.value == "paused" and view.reason == CONSULT:
            await self.engine.ready(agent_id)

    def _adopt_recording(self) -> None:
        """The recording the engine that is gone started for this call, if it did."""
        if self._raw_path.exists():
            self.raw_recording, self.recording_started = self._raw_path, self.adopted_talk_mono

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
        self.engine.store.update(       # written after the open; the call's events need not wait for it
            self.call_id, engine_answered_at=self.engine.clock.now(),
            answer_latency_ms=round((self.answered_mono - self.arrived_mono) * 1000, 3),
        )

    def on_hangup(self, channel: str, at: datetime | None = None) -> None:
        """A channel of the call hung up (`at`: Asterisk's time of it, when its events carry one)."""
        if channel == self.channel:
            self._mark_recording_end()
            self.hung_up_at = self.hung_up_at or at
        self.tell(m.HungUp(channel))

    async def gone_during_outage(self) -> None:
        """The caller's channel went while the AMI link was down: Asterisk's note says when and who."""
        self.tell(m.GoneDuringOutage(await self._asterisks_note()))

    async def _asterisks_note(self) -> str | None:
        """Asterisk's note of the call's end (the dialplan's): its time becomes the record's end;
        returns who hung up first by it."""
        note = await self.engine.end_note(self.uniqueid, self.channel)
        if note is None:
            return None
        self.hung_up_at = self.hung_up_at or datetime.fromtimestamp(note.at, UTC)
        return note.hung_up_by

    def on_pbx_cut(self, at: datetime | None = None) -> None:
        """Asterisk is shutting down or restarting under the call (`at`: its time, if known)."""
        self.cut_at = self.cut_at or at
        self.tell(m.CutByPbx())

    # ------------------------------------------------------------------ the end

    async def _close(self, disposition: str, hangup_first: str | None) -> None:
        await self._finalise_recording()
        # When Asterisk hung the caller up (or went down under the call), not when we heard.
        ended_at = self.hung_up_at or self.cut_at or self.engine.clock.now()
        await self.engine.store.update(
            self.call_id, ended_at=ended_at, disposition=disposition, hangup_first=hangup_first, closed=True,
        )
        log.info("%s ended: %s (hangup first: %s)", self.log_extra, disposition, hangup_first)
        self.engine.tasks.spawn(self.engine.forget_end_note(self.uniqueid), name=f"end-note-{self.call_id}")
        await self.engine.call_closed(self)
        self.ended.set()
