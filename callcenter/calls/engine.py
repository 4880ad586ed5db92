"""The engine: the one place that turns Asterisk's events into decisions and decisions into actions.

    Asterisk ─AMI─▶ AmiConnection ─(events, per call in order)─▶ Engine.handle_event
        AsyncAGIStart ─▶ a CallSession carries out the call's CallMachine (calls/machine.py)
        DialBegin/DialEnd/Hangup/DTMFEnd ─▶ the call's session, as machine events
    CallSession ─(ACD events)─▶ Engine.feed_acd ─▶ Acd.handle (pure) ─▶ commands ─▶ `_carry_out`
        (every command type matched; the RingAgents of one call rung in one Dial) ─▶ sessions,
        timers, live state

`EVENT_HANDLERS` lists every Asterisk event the engine listens to and its handler. Timers
are injected (`clock.call_later`); the ACD re-checks its state when they fire.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.acd import commands as acd_cmd
from callcenter.acd import events as acd_ev
from callcenter.acd.core import Acd
from callcenter.acd.errors import AcdError
from callcenter.acd.live import LiveState
from callcenter.acd.settings import RoutingPolicy
from callcenter.admin.directory import AgentEntry, Directory, sip_ha1, skills_changed
from callcenter.ami import events as ami_ev
from callcenter.ami.connection import AmiConnection
from callcenter.ami.dispatch import TaskSupervisor
from callcenter.ami.errors import AmiError
from callcenter.ami.fields import clean_caller_name, clean_caller_number
from callcenter.ami.gateway import AmiGateway, agent_endpoint, new_action_id
from callcenter.calls import machine as m
from callcenter.calls.core import END_NOTES, Adoption, EndNote, read_end_note
from callcenter.calls.dial_policy import DialPolicy
from callcenter.calls.models import Call
from callcenter.calls.outbound import CallbackCalls
from callcenter.calls.phones import Phones
from callcenter.calls.screen_pop import ScreenPops
from callcenter.calls.session import CONSULT, CallSession
from callcenter.calls.store import CallStore
from callcenter.clock import Clock, SystemClock
from callcenter.config import Settings
from callcenter.ivr.model import Menu
from callcenter.workdays import is_working_day

if TYPE_CHECKING:
    from callcenter.calls.shared import SharedHotline

log = logging.getLogger(__name__)

TICK_S = 1.0


class EndpointRefused(ValueError):
    """A phone that is not the agent's own (or one of the agent's configured `endpoints`)."""


class CallHooks(Protocol):
    """What other domains do when a call ends (work order draft, transcription job)."""

    async def call_closed(self, call_id: str) -> None: ...
    async def recording_finalised(self, call_id: str, wav_path: Path) -> None: ...


class Engine:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], menu: Menu, *,
                 clock: Clock | None = None, connection: AmiConnection | None = None,
                 live: LiveState | None = None, hooks: list[CallHooks] | None = None,
                 notices: Callable[[str], Awaitable[Any]] | None = None, engine_id: str | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.timezone = zoneinfo.ZoneInfo(settings.hotline.timezone)
        self.engine_id = engine_id or f"{socket.gethostname()}-{os.getpid()}"
        self.menu = menu
        self.store = CallStore(sessionmaker)
        self.screen_pops = ScreenPops(sessionmaker)
        self.policy = RoutingPolicy.from_settings(settings)
        # Agents and queues: the settings' until the hotline's directory (the database) is
        # applied (`apply_directory`, at start and after every change the administrator makes).
        self.directory = Directory(version=0, agents={a.id: AgentEntry(
            id=a.id, name=a.name, sip_ha1=sip_ha1(a.id, a.sip_password.get_secret_value()), contact=a.contact,
            endpoints=tuple(a.endpoints), queues=tuple(a.queues), skills=dict(a.skills)) for a in settings.agents},
            policy=self.policy)
        self.acd = Acd(self.policy)
        self.live = live
        # Set by calls/shared.py when this engine shares the hotline with others (serve does).
        self.shared: SharedHotline | None = None
        self.hooks = list(hooks or [])
        self.notices_lookup = notices
        self.tasks = TaskSupervisor()
        self.connection = connection or AmiConnection(settings.ami, self.handle_event, on_connect=self._on_connect)
        self.gateway = AmiGateway(self.connection)
        self.dial_policy = DialPolicy.from_settings(settings.dial_policy)
        self.sessions: dict[str, CallSession] = {}          # by call id
        self._by_channel: dict[str, CallSession] = {}       # caller's and agents' channels
        self._session_tasks: dict[str, asyncio.Task[Any]] = {}
        # When each inbound channel appeared (the INVITE), until its AsyncAGIStart.
        self._arrivals: dict[str, tuple[Any, float]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._stopped = False
        self._timers: set[Any] = set()
        self.calls_closed = 0
        # Calls the hotline places, by purpose (the dialplan's agi_arg_1): followup, callback.
        self.outbound_handlers: dict[str, Callable[[ami_ev.AsyncAGIStart], Awaitable[None]]] = {}
        self.callback_calls = CallbackCalls(self)
        self.phones = Phones(self)
        self._originations: dict[str, asyncio.Future[ami_ev.OriginateResponse]] = {}
        self._consults: dict[str, CallSession] = {}         # by the colleague's endpoint
        # Plain functions that see every Asterisk event first (metrics, tests); never awaited.
        self.observers: list[Callable[[ami_ev.Event], None]] = []
        # The PBX itself: when this Asterisk started (a change after a reconnect: it restarted),
        # when it said it was going down, when the AMI link was lost.
        self.pbx_started: str | None = None
        self.pbx_down_at: datetime | None = None
        self.ami_lost_at: datetime | None = None
        self.event_handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            ami_ev.Newchannel: self._new_channel,
            ami_ev.Newstate: self._new_state,
            ami_ev.AsyncAGIStart: self._agi_start,
            ami_ev.DialBegin: self._dial_begin,
            ami_ev.DialEnd: self._dial_end,
            ami_ev.Hangup: self._hangup,
            ami_ev.SoftHangupRequest: self._soft_hangup_request,
            ami_ev.Shutdown: self._shutdown,
            ami_ev.OriginateResponse: self._originate_response,
            ami_ev.DTMFEnd: self._dtmf_end,
            ami_ev.ContactStatus: self.phones.contact_status,
            ami_ev.Reconnected: self._reconnected,
            ami_ev.Disconnected: self._disconnected,
        }

    # ------------------------------------------------------------------ life

    async def start(self, wait_s: float = 10.0) -> None:
        await self.connection.start()
        await self.connection.wait_connected(wait_s)
        self.pbx_started = await self._pbx_started()
        self._ticker = self.tasks.spawn(self._tick_loop(), name="acd-ticker")
        if self.shared is not None:
            await self.shared.start()
        log.info("engine %s started", self.engine_id)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for timer in list(self._timers):
            timer.cancel()
        # Shared: the calls in progress stay open for another engine (or this one restarted) to
        # adopt. Alone: they end here, as failed.
        for session in list(self.sessions.values()):
            session.tell(m.Stopping(handed_over=self.shared is not None))
        if self.shared is not None:
            await self.shared.stop()
        tasks = list(self._session_tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.tasks.close()
        await self.store.flush()    # the call records' last writes
        await self.connection.close()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self.feed_acd(acd_ev.Tick(at=self.clock.monotonic()))
            if self.live is not None:
                self.tasks.spawn(self.live.heartbeat(self.clock.now()), name="live-heartbeat")

    async def _on_connect(self, connection: AmiConnection) -> None:
        log.info("AMI connected to %s:%s", connection.settings.host, connection.settings.port)
        # Which agents' phones Asterisk reaches now (at start and after every reconnect).
        self.tasks.spawn(self.phones.sync(), name="phones-sync")

    def keep_timer(self, timer: Any) -> None:
        """A timer of this engine's, cancelled when it stops."""
        self._timers.add(timer)

    # ------------------------------------------------------------------ Asterisk events

    async def handle_event(self, event: ami_ev.Event) -> None:
        for observe in self.observers:
            observe(event)
        handler = self.event_handlers.get(type(event))
        if handler is not None:
            await handler(event)

    async def _new_channel(self, event: ami_ev.Newchannel) -> None:
        if event.context == "from-trunk":
            if len(self._arrivals) > 10_000:   # channels that never reached the engine
                self._arrivals.clear()
            self._arrivals[event.channel] = (self.clock.now(), self.clock.monotonic())

    async def _new_state(self, event: ami_ev.Newstate) -> None:
        if event.state in ("6", "Up"):
            session = self._by_channel.get(event.channel)
            if session is not None and event.channel == session.channel:
                await session.on_up()

    async def _agi_start(self, event: ami_ev.AsyncAGIStart) -> None:
        kind = event.env.get("agi_arg_1", "")
        arrived_at, arrived_mono = self._arrivals.pop(event.channel, (self.clock.now(), self.clock.monotonic()))
        if kind != "inbound":
            await self.outbound_answered(kind, event)
            return
        if self.shared is not None and not await self.shared.claim(event.uniqueid):
            return   # another engine of the hotline took this call
        session = CallSession(
            engine=self, channel=event.channel, uniqueid=event.uniqueid, linkedid=event.linkedid or event.uniqueid,
            caller_number=clean_caller_number(event.caller_number), caller_name=clean_caller_name(event.caller_name),
            dialled_number=clean_caller_number(event.extension or event.dnid), arrived_at=arrived_at,
            arrived_mono=arrived_mono,
        )
        self._begin(session)
        log.info("call=%s arrived channel=%s caller=%s", session.call_id, event.channel, session.caller_number)

    async def outbound_answered(self, kind: str, event: ami_ev.AsyncAGIStart) -> None:
        """An originated call (follow-up, callback) was answered; its domain takes it."""
        owner = event.env.get("agi_arg_3", "")
        if owner and owner != self.engine_id:
            return   # placed by another engine of the hotline: it carries it on
        handler = self.outbound_handlers.get(kind)
        if handler is None:
            log.warning("AsyncAGI for unknown purpose %r on %s: hanging up", kind, event.channel)
            await self.gateway.hangup(event.channel)
            return
        self.tasks.spawn(handler(event), name=f"{kind}-{event.channel}")

    async def originate(self, endpoint: str, *, timeout_s: int, **fields: Any) -> ami_ev.OriginateResponse | None:
        """Ring an agent's phone (``PJSIP/1001``) and wait for Asterisk's verdict (answered or
        not); None if it never came."""
        return await self._originated(self.gateway.originate, endpoint, timeout_s, fields)

    async def originate_number(self, number: str, *, timeout_s: int,
                               **fields: Any) -> ami_ev.OriginateResponse | None:
        """Call a number outside, through the trunk, as `originate`. The dial policy checks it
        first (NumberRefused, before anything is sent)."""
        return await self._originated(self.gateway.originate_number, self.dial_policy.check(number), timeout_s, fields)

    async def _originated(self, send: Callable[..., Awaitable[str]], target: str, timeout_s: int,
                          fields: dict[str, Any]) -> ami_ev.OriginateResponse | None:
        # The dialplan hands the answered call back with this engine's id (agi_arg_3).
        fields["variables"] = {**fields.get("variables", {}), "CALLCENTER_ENGINE": self.engine_id}
        # Waited for before it is sent: a quick failure's OriginateResponse follows the reply at once.
        action_id = new_action_id()
        future = self._originations[action_id] = asyncio.get_running_loop().create_future()
        try:
            await send(target, timeout_s=timeout_s, action_id=action_id, **fields)
            return await asyncio.wait_for(future, timeout_s + 10)
        except TimeoutError:
            return None
        finally:
            self._originations.pop(action_id, None)

    async def _originate_response(self, event: ami_ev.OriginateResponse) -> None:
        future = self._originations.get(event.action_id)
        if future is not None and not future.done():
            future.set_result(event)

    async def _dtmf_end(self, event: ami_ev.DTMFEnd) -> None:
        """The agent's pause key during a call pauses recording, and resumes it the next time."""
        key = self.settings.recording.pause_key
        session = self._by_channel.get(event.channel)
        if (not key or session is None or event.digit != key or event.channel != session.agent_channel
                or event.direction != "Received"):
            return
        try:
            await session.pause_recording(not session.recording_paused)
        except (ValueError, AmiError) as exc:
            log.warning("%s pause key: %s", session.log_extra, exc)

    async def transfer(self, agent_id: str, *, queue: str | None = None, to_agent: str | None = None) -> dict[str, Any]:
        """Blind transfer of the agent's caller to a queue or to a colleague: the agent's leg
        ends, the caller waits again (the record keeps every leg; the recording goes on)."""
        self._agent_settings(agent_id)
        if (queue is None) == (to_agent is None):
            raise ValueError("transfer to a queue or to an agent (one of them)")
        if queue is not None:
            try:
                self.policy.queue(queue)
            except KeyError:
                raise LookupError(f"unknown queue {queue!r}") from None
        if to_agent is not None:
            self._agent_settings(to_agent)
            if to_agent == agent_id:
                raise ValueError("an agent does not transfer a call to themself")
        session = self._talking_with(agent_id)
        await session.ask(m.TransferAsked(queue=queue, agent_id=to_agent))
        return {"call_id": session.call_id, "to_queue": queue or session.queue, "to_agent": to_agent}

    async def consult(self, agent_id: str, to_agent: str) -> dict[str, Any]:
        """Attended (consult) transfer: the caller waits on hold while the agent talks to a
        colleague; when the agent hangs up, the caller and the colleague talk (Asterisk's own
        attended transfer, started with AMI Atxfer). If the colleague does not answer, the
        caller is back with the agent. The colleague is held for this call from the start."""
        self._agent_settings(agent_id)
        self._agent_settings(to_agent)
        if to_agent == agent_id:
            raise ValueError("an agent does not consult themself")
        if not to_agent.isdigit():
            raise ValueError(f"agent {to_agent!r}: a consult dials the colleague by number (digits only)")
        session = self._talking_with(agent_id)
        if session.consult is not None:
            raise ValueError(f"call {session.call_id} is already in a consult with {session.consult.agent_id}")
        try:
            view = self.acd.agent(to_agent)
        except AcdError:
            raise ValueError(f"agent {to_agent} is not logged in") from None
        if view.state.value != "available":
            raise ValueError(f"agent {to_agent} is {view.state.value}, not available for a consult")
        # Held for this call on every engine first (a hold is only given to an agent the shared
        # record shows available), then out of routing here too.
        if self.shared is not None and not await self.shared.reserve(to_agent, session.call_id, 30):
            raise ValueError(f"agent {to_agent} was just taken by another call")
        if self.acd.agent(to_agent).state.value != "available":    # rung here while the hold was asked
            if self.shared is not None:
                await self.shared.release(to_agent)
            raise ValueError(f"agent {to_agent} was just taken by another call")
        await self.pause(to_agent, CONSULT)
        self._consults[agent_endpoint(to_agent)] = session   # one per colleague
        try:
            await session.ask(m.ConsultAsked(to_agent))
        except m.IllegalEvent:
            del self._consults[agent_endpoint(to_agent)]
            await self.ready(to_agent)
            raise
        log.info("%s agent %s consults %s", session.log_extra, agent_id, to_agent)
        return {"call_id": session.call_id, "consulting": to_agent}

    def _talking_with(self, agent_id: str) -> CallSession:
        """The call the agent is on now (spy, transfer, pause); ValueError if none."""
        for session in self.sessions.values():
            if session.agent_id == agent_id and session.agent_channel:
                return session
        raise ValueError(f"agent {agent_id} is not on a call")

    async def pause_recording(self, agent_id: str, paused: bool) -> dict[str, Any]:
        """Pause or resume the recording of the agent's current call (API)."""
        self._agent_settings(agent_id)
        session = self._talking_with(agent_id)
        return {"call_id": session.call_id, "paused": await session.pause_recording(paused)}

    async def _dial_begin(self, event: ami_ev.DialBegin) -> None:
        session = self._by_channel.get(event.channel)
        if session is not None:
            if event.channel == session.channel:
                session.tell(m.RingStarted(event.dest_channel))
        elif (session := self._consulting(event.dest_channel)) is not None:
            session.tell(m.ConsultRinging(event.channel, event.dest_channel))

    async def _dial_end(self, event: ami_ev.DialEnd) -> None:
        session = self._by_channel.get(event.channel)
        if session is None:
            return
        if event.channel == session.channel:
            session.tell(m.DialEnded(event.dest_channel, event.dial_status))
        elif event.channel == session.consult_leg:
            session.tell(m.ConsultDialEnded(event.dial_status))

    def _consulting(self, dest_channel: str) -> CallSession | None:
        """The call whose consult is ringing this colleague's phone (the consult's Dial runs
        on a channel of Asterisk's own, not the caller's). A dict lookup: this runs for every
        Dial the engine does not follow, another engine's included."""
        session = self._consults.get(dest_channel.rpartition("-")[0])
        if session is None or session.consult is None or session.consult.channel is not None:
            return None
        return session

    async def _hangup(self, event: ami_ev.Hangup) -> None:
        session = self._by_channel.get(event.channel)
        if session is not None:
            session.on_hangup(event.channel, _asterisk_time(event.at))
            if event.channel != session.channel:
                self._by_channel.pop(event.channel, None)

    async def _soft_hangup_request(self, event: ami_ev.SoftHangupRequest) -> None:
        """Asterisk hangs up every channel when it stops: a call it cuts is not a caller leaving."""
        session = self._by_channel.get(event.channel)
        if session is not None and event.by_shutdown:
            session.on_pbx_cut()

    async def _shutdown(self, event: ami_ev.Shutdown) -> None:
        self.pbx_down_at = _asterisk_time(event.at) or self.clock.now()
        log.warning("Asterisk is %s (%s); %d calls in progress are cut", "restarting" if event.restart else
                    "shutting down", "cleanly" if event.cleanly else "with channels up", len(self.sessions))
        for session in list(self.sessions.values()):
            session.on_pbx_cut(self.pbx_down_at)

    async def end_note(self, uniqueid: str, caller_channel: str) -> EndNote | None:
        """Asterisk's note of a call's end (the dialplan's `h` extension), if it has one."""
        try:
            return read_end_note(await self.gateway.db_get(END_NOTES, uniqueid), caller_channel)
        except AmiError as exc:
            log.warning("uniqueid=%s Asterisk's note of the end not read: %s", uniqueid, exc)
            return None

    async def forget_end_note(self, uniqueid: str) -> None:
        """The record is closed: Asterisk's note of its end is needed no more."""
        with contextlib.suppress(AmiError):
            await self.gateway.db_del(END_NOTES, uniqueid)

    async def _pbx_started(self) -> str | None:
        try:
            return await self.gateway.core_started()
        except AmiError as exc:
            log.warning("Asterisk's start time unknown (CoreStatus): %s", exc)
            return None

    async def _disconnected(self, event: ami_ev.Disconnected) -> None:
        self.ami_lost_at = self.clock.now()
        log.warning("AMI disconnected (%s); %d calls in progress", event.reason, len(self.sessions))

    async def _reconnected(self, event: ami_ev.Reconnected) -> None:
        """Rebuild from Asterisk's snapshot: calls whose channel is gone ended while we were away."""
        try:
            snapshot = await self.connection.snapshot()
        except Exception as exc:
            log.error("snapshot after reconnect failed: %s", exc)
            return
        channels = {c.channel for c in snapshot}
        gone = [s for s in list(self.sessions.values()) if s.channel not in channels]
        started, down_at = await self._pbx_started(), self.pbx_down_at
        restarted = started is not None and self.pbx_started is not None and started != self.pbx_started
        self.pbx_started, self.pbx_down_at = started or self.pbx_started, None
        log.info("AMI back after %.1f s%s: %d calls live, %d ended meanwhile", event.downtime_s,
                 " (Asterisk restarted)" if restarted else "", len(self.sessions) - len(gone), len(gone))
        for session in gone:
            if restarted or down_at is not None:
                # It went down with the link: its calls ended then (its Shutdown's time if it said).
                session.on_pbx_cut(down_at or self.ami_lost_at)
        await asyncio.gather(*(session.gone_during_outage() for session in gone))
        await self._take_unheard_callers(snapshot)

    async def _take_unheard_callers(self, snapshot: list[ami_ev.ChannelSnapshot]) -> None:
        """Callers who reached the hotline's AsyncAGI while the link was down (Asterisk just
        restarted, say): their AsyncAGIStart was never heard, so they would wait in silence.
        Taken now as new calls, from the snapshot (another engine's are its: the claim says)."""
        for c in snapshot:
            if (c.context != "from-trunk" or c.application != "AGI" or c.application_data != "agi:async,inbound"
                    or c.channel in self._by_channel):
                continue
            log.warning("call on %s reached the hotline while the AMI link was down: taken now", c.channel)
            self._arrivals[c.channel] = (self.clock.now() - timedelta(seconds=c.duration_s),
                                         self.clock.monotonic() - c.duration_s)
            await self._agi_start(ami_ev.AsyncAGIStart(
                c.channel, c.uniqueid, c.linkedid, MappingProxyType({"agi_arg_1": "inbound"}), c.caller_number,
                c.caller_name, c.exten, c.exten))

    # ------------------------------------------------------------------ sessions

    def track_channel(self, channel: str, session: CallSession) -> None:
        self._by_channel[channel] = session

    def task_of(self, session: CallSession) -> asyncio.Task[Any] | None:
        return self._session_tasks.get(session.call_id)

    async def call_closed(self, session: CallSession) -> None:
        self.sessions.pop(session.call_id, None)
        self._session_tasks.pop(session.call_id, None)
        for channel in [c for c, s in self._by_channel.items() if s is session]:
            del self._by_channel[channel]
        for endpoint in [e for e, s in self._consults.items() if s is session]:
            del self._consults[endpoint]
        self.calls_closed += 1
        for hook in self.hooks:
            self.tasks.spawn(hook.call_closed(session.call_id), name=f"hook-{session.call_id}")

    async def recording_finalised(self, call_id: str, wav_path: Path) -> None:
        for hook in self.hooks:
            self.tasks.spawn(hook.recording_finalised(call_id, wav_path), name=f"recording-{call_id}")

    async def notice_for(self, caller_number: str) -> Any:
        if self.notices_lookup is None:
            return None
        try:
            return await self.notices_lookup(caller_number)
        except Exception as exc:
            log.error("outage notice lookup for %s failed: %s", caller_number, exc)
            return None

    def queue_open_now(self, queue: str) -> str:
        """The queue that takes a caller routed to `queue` at this hour (opening hours, holidays)."""
        local = self.clock.now().astimezone(zoneinfo.ZoneInfo(self.settings.hotline.timezone))
        try:
            return self.policy.open_queue(queue, local, is_working_day(local.date()))
        except KeyError:
            return queue   # not a configured queue: the ACD refuses it with a clear error

    async def preferred_agent_for(self, caller_number: str) -> str | None:
        """首问负责制: a caller who talked to an agent before is offered to them first."""
        if not caller_number:
            return None
        try:
            agent = await self.store.last_agent_for(caller_number)
        except Exception as exc:
            log.error("last agent lookup for %s failed: %s", caller_number, exc)
            return None
        if agent is None:
            return None
        try:
            self.acd.agent(agent)
        except AcdError:
            return None
        return agent

    # ------------------------------------------------------------------ the ACD

    async def feed_acd(self, event: Any, mirrored: str | None = None) -> None:
        """`mirrored`: the agent whose shared state this event copies from another engine; that
        change is this core catching up, not news to publish."""
        try:
            commands = self.acd.handle(event)
        except AcdError as exc:
            log.error("ACD refused %s: %s", type(event).__name__, exc)
            return
        self._carry_out_all(commands, mirrored)

    def _carry_out_all(self, commands: list[acd_cmd.Command], mirrored: str | None = None) -> None:
        for command in ring_groups(commands):
            self._carry_out(command)
        if mirrored is not None:
            first = next((c for c in commands if isinstance(c, acd_cmd.AgentStateChanged) and c.agent_id == mirrored),
                         None)
            commands = [c for c in commands if c is not first]
        if self.shared is not None:
            self.shared.observe(commands)
        if self.live is not None and commands:
            self.tasks.spawn(self.live.publish_changes(commands, self.acd, self.clock.now(), self.clock.monotonic()),
                             name="live-publish")

    def _carry_out(self, command: acd_cmd.Command | m.RingGroup) -> None:
        """Carry out one ACD command. Every command type has its branch: a new one is a type
        error (assert_never) until it is carried out here."""
        match command:
            case m.RingGroup():
                if self.shared is not None:
                    self.tasks.spawn(self._reserve_rings(command), name=f"reserve-{command.rings[0].call_id}")
                else:
                    self._ring(command)
            case acd_cmd.RingAgent():
                self._carry_out(m.RingGroup((command,)))
            case acd_cmd.CancelRing() | acd_cmd.OfferCallback() | acd_cmd.AnnouncePosition() | acd_cmd.Overflow():
                # The call's own: CancelRing hangs up that ring's leg (the call's machine knows it).
                session = self.sessions.get(command.call_id)
                if session is not None:
                    session.acd_says(command)
            case acd_cmd.StartTimer(delay_s=delay_s, event=event):
                self._timers.add(self.clock.call_later(delay_s, self._timer_fired, event))
            case acd_cmd.PlaceCallback():
                if self.shared is not None:
                    self.tasks.spawn(self._reserve_then(command, self._place_callback),
                                     name=f"reserve-{command.agent_id}")
                else:
                    self._place_callback(command)
            case acd_cmd.CallbackExpired():
                log.warning("call=%s callback to %s expired before an agent was free", command.call_id,
                            command.number)
            case acd_cmd.AgentStateChanged():
                log.info("agent=%s state=%s reason=%s call=%s", command.agent_id, command.state, command.reason,
                         command.call_id)
            case acd_cmd.CallStateChanged():
                pass   # published to the live state with the whole batch
            case acd_cmd.PhoneStatusChanged(endpoint=endpoint, reachable=reachable):
                log.info("phone %s %s", endpoint, "reachable" if reachable else "unreachable: its agents are not rung")
                if not reachable:
                    self.phones.lost(endpoint)
            case _:
                assert_never(command)

    def _ring(self, group: m.RingGroup) -> None:
        """Ring the agents of one call (one Dial; ring_all: several phones at once)."""
        session = self.sessions.get(group.rings[0].call_id)
        if session is None:   # the caller left while the agents were being reserved
            for command in group.rings:
                self.tasks.spawn(self.feed_acd(acd_ev.AgentRingFailed(
                    call_id=command.call_id, agent_id=command.agent_id, reason="unavailable",
                    at=self.clock.monotonic())), name="ring-no-session")
            return
        session.acd_says(group)
        if self.live is not None:
            for command in group.rings:
                self.tasks.spawn(self._screen_pop(command.agent_id, session), name=f"screen-pop-{command.agent_id}")

    async def _reserve_rings(self, group: m.RingGroup) -> None:
        """Another engine may be ringing these agents: hold each first (calls/shared.py); ring
        those held."""
        assert self.shared is not None
        held = []
        for command in group.rings:
            if await self.shared.reserve(command.agent_id, command.call_id, command.timeout_s):
                if self.shared.still_wanted(command.agent_id, command.call_id):
                    held.append(command)
                else:   # the caller left or the ring was called off meanwhile
                    await self.shared.release(command.agent_id)
            else:
                await self.feed_acd(acd_ev.AgentRingFailed(call_id=command.call_id, agent_id=command.agent_id,
                                                           reason="reserved", at=self.clock.monotonic()))
        if held:
            self._ring(m.RingGroup(tuple(held)))

    def _place_callback(self, command: acd_cmd.PlaceCallback) -> None:
        self.tasks.spawn(self.callback_calls.place(command), name=f"callback-{command.call_id}")

    async def _reserve_then(self, command: acd_cmd.PlaceCallback, carry_out: Callable[[Any], None]) -> None:
        """Another engine may be ringing this agent: hold them first (calls/shared.py)."""
        assert self.shared is not None
        if await self.shared.reserve(command.agent_id, command.call_id, command.timeout_s):
            if self.shared.still_wanted(command.agent_id, command.call_id):
                carry_out(command)
            else:   # the caller left or the ring was called off meanwhile
                await self.shared.release(command.agent_id)
        else:
            await self.feed_acd(acd_ev.AgentRingFailed(call_id=command.call_id, agent_id=command.agent_id,
                                                       reason="reserved", at=self.clock.monotonic()))

    def resume_call(self, call: Call, plan: Adoption) -> None:
        """Carry on a call adopted from an engine that is gone (calls/shared.py)."""
        now, mono = self.clock.now(), self.clock.monotonic()
        session = CallSession(
            engine=self, channel=call.channel, uniqueid=call.uniqueid, linkedid=call.linkedid,
            caller_number=call.caller_number, caller_name=call.caller_name, dialled_number=call.dialled_number,
            arrived_at=call.arrived_at, arrived_mono=mono - (now - call.arrived_at).total_seconds(), call_id=call.id,
            adopted_talk_mono=(None if call.agent_answered_at is None
                               else mono - (now - call.agent_answered_at).total_seconds()),
        )
        session.answered_mono = session.arrived_mono   # answered long ago, by the engine that is gone
        session.opened.set()
        queued_mono = None if call.queued_at is None else mono - (now - call.queued_at).total_seconds()
        self._begin(session, m.Adopted(plan, call.queue, call.category, call.agent_id, queued_mono,
                                       talked=call.agent_answered_at is not None))

    def _begin(self, session: CallSession, start: m.Arrived | m.Adopted | None = None) -> None:
        """Follow the call's channel and carry it out (a new call, or an adopted one)."""
        self.sessions[session.call_id] = session
        self._by_channel[session.channel] = session
        self._session_tasks[session.call_id] = self.tasks.spawn(session.run(start), name=f"call-{session.call_id}")

    async def _screen_pop(self, agent_id: str, session: CallSession) -> None:
        """Who is calling (customer, account, address), their open orders and last calls, and
        the outage running in their area, to the agent whose phone rings now (calls/screen_pop.py).
        A database that fails still pops the caller's number."""
        assert self.live is not None
        data: dict[str, Any] = {"call_id": session.call_id, "caller": session.caller_number,
                                "name": session.caller_name, "queue": session.queue, "category": session.category}
        try:
            data = await self.screen_pops.build(call_id=session.call_id, caller=session.caller_number,
                                                name=session.caller_name, queue=session.queue,
                                                category=session.category, now=self.clock.now())
        except Exception as exc:
            log.error("call=%s screen pop for %s: %s", session.call_id, agent_id, exc)
        for hook in self.hooks:
            extra = getattr(hook, "screen_pop", None)
            if extra is not None:
                data.update(await extra(session.caller_number))
        await self.live.publish_screen_pop(agent_id, data)

    def _timer_fired(self, event: Any) -> None:
        self._timers = {t for t in self._timers if not getattr(t, "cancelled", lambda: False)()}
        self.tasks.spawn(self.feed_acd(event), name="acd-timer")

    # ------------------------------------------------------------------ agents (CLI and HTTP)

    def _agent_settings(self, agent_id: str) -> AgentEntry:
        return self.directory.agent(agent_id)

    def apply_directory(self, directory: Directory) -> None:
        """A newer directory (admin/service.py): the queues' policy from now on, and the agents
        logged in here re-skilled, or logged out when they are no longer active. Nothing waits."""
        old, self.directory = self.directory, directory
        at = self.clock.monotonic()
        if directory.policy != self.policy:
            self.policy = directory.policy
            self._carry_out_all(self.acd.handle(acd_ev.PolicyChanged(directory.policy, at)))
        for view in self.acd.agents():
            entry = directory.agents.get(view.agent_id)
            if entry is None or not entry.active:
                if view.state.value in ("available", "paused", "wrap_up", "ringing"):
                    log.warning("agent %s is no longer active: logged out", view.agent_id)
                    self._carry_out_all(self.acd.handle(acd_ev.AgentLoggedOut(view.agent_id, at)))
                continue
            if skills_changed(old.agents.get(view.agent_id), entry):
                names = [q for q in (entry.queues or [q.name for q in directory.policy.queues])]
                self._carry_out_all(self.acd.handle(acd_ev.AgentSkillsChanged(view.agent_id,
                                                                               entry.login_skills(names), at)))

    async def _acd_agent(self, event: Any) -> None:
        try:
            commands = self.acd.handle(event)
        except AcdError as exc:
            raise ValueError(str(exc)) from exc
        self._carry_out_all(commands)

    def agent_phone(self, agent_id: str, endpoint: object = None) -> str:
        """What rings for the agent: their own endpoint (``PJSIP/<agent id>``, the one the
        hotline renders for them), or one of their configured `endpoints` named by its id.
        Nothing else: a dial string never comes from a request (EndpointRefused)."""
        agent = self._agent_settings(agent_id)
        if endpoint is None:
            return agent_endpoint(agent.id)
        phones = [agent.id, *agent.endpoints]
        if not isinstance(endpoint, str) or endpoint not in phones:
            raise EndpointRefused(f"endpoint: {str(endpoint)[:40]!r} is not one of agent {agent_id}'s phones "
                                  f"({', '.join(phones)})")
        return agent_endpoint(endpoint)

    async def login(self, agent_id: str, endpoint: str | None = None, queues: list[str] | None = None) -> None:
        """Log an agent in, on their configured queues or on `queues` for this shift; they ring
        at `agent_phone(agent_id, endpoint)` (an endpoint id of theirs, or their own)."""
        agent = self._agent_settings(agent_id)
        names = queues or list(agent.queues) or [q.name for q in self.policy.queues]
        skills = agent.login_skills(names)
        await self._acd_agent(acd_ev.AgentLoggedIn(agent_id=agent_id, endpoint=self.agent_phone(agent_id, endpoint),
                                                   skills=skills, at=self.clock.monotonic()))

    async def logout(self, agent_id: str) -> None:
        self._agent_settings(agent_id)
        await self._acd_agent(acd_ev.AgentLoggedOut(agent_id=agent_id, at=self.clock.monotonic()))

    async def pause(self, agent_id: str, reason: str) -> None:
        self._agent_settings(agent_id)
        await self._acd_agent(acd_ev.AgentPaused(agent_id=agent_id, reason=reason, at=self.clock.monotonic()))

    async def ready(self, agent_id: str) -> None:
        self._agent_settings(agent_id)
        await self._acd_agent(acd_ev.AgentReady(agent_id=agent_id, at=self.clock.monotonic()))

    async def extend_wrapup(self, agent_id: str, seconds: float) -> None:
        self._agent_settings(agent_id)
        await self._acd_agent(acd_ev.WrapUpExtended(agent_id=agent_id, seconds=seconds, at=self.clock.monotonic()))

    async def spy(self, agent_id: str, phone: str, mode: str, supervisor: str) -> dict[str, Any]:
        """Ring the supervisor's own phone (`phone`: the id of an [[agents]] endpoint, the
        user's `phone`) and listen, whisper or barge on the agent's call (ChanSpy through an
        AMI Originate). Every use is kept (calls.models.Supervision)."""
        from callcenter.calls.models import Supervision

        self._agent_settings(agent_id)
        if phone not in self.directory.agents:
            raise ValueError(f"phone: {str(phone)[:40]!r} of {supervisor} is not a configured endpoint")
        supervisor_endpoint = agent_endpoint(phone)
        session = self._talking_with(agent_id)
        action_id = await self.gateway.chanspy(supervisor_endpoint, session.agent_channel, mode)  # type: ignore[arg-type]
        async with self.store.sessionmaker() as db, db.begin():
            db.add(Supervision(at=self.clock.now(), supervisor=supervisor, agent_id=agent_id,
                               call_id=session.call_id, mode=mode, endpoint=supervisor_endpoint))
        log.warning("supervisor %s: %s on agent %s (call %s) from %s", supervisor, mode, agent_id, session.call_id,
                    supervisor_endpoint)
        return {"call_id": session.call_id, "agent_channel": session.agent_channel, "action_id": action_id}

    async def agents(self) -> list[dict[str, Any]]:
        now = self.clock.monotonic()
        known = {a.agent_id: a for a in self.acd.agents()}
        out = []
        for agent in self.directory.active_agents():
            view = known.get(agent.id)
            out.append({
                "id": agent.id, "name": agent.name,
                "state": view.state.value if view else "logged_out",
                "reason": view.reason if view else None,
                "call_id": view.call_id if view else None,
                "in_state_s": round(now - view.since, 1) if view else None,
                "calls_taken": view.calls_taken if view else 0,
                "phone_reachable": self.acd.phone_reachable(view.endpoint if view else f"PJSIP/{agent.id}"),
            })
        return out


def _asterisk_time(epoch_s: float | None) -> datetime | None:
    """An event's Timestamp (Asterisk's clock) as a time; None when the event had none."""
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def ring_groups(commands: list[acd_cmd.Command]) -> list[acd_cmd.Command | m.RingGroup]:
    """The ACD's commands with the RingAgents of each call gathered into one RingGroup (at the
    place of the first): ring_all's phones ring in one Dial, the first to answer gets the call."""
    out: list[acd_cmd.Command | m.RingGroup] = []
    groups: dict[str, int] = {}
    for command in commands:
        if isinstance(command, acd_cmd.RingAgent):
            at = groups.get(command.call_id)
            if at is None:
                groups[command.call_id] = len(out)
                out.append(m.RingGroup((command,)))
            else:
                group = out[at]
                assert isinstance(group, m.RingGroup)
                out[at] = m.RingGroup((*group.rings, command))
        else:
            out.append(command)
    return out
