"""`AmiConnection`: one supervised AMI session to Asterisk, kept alive for the engine.

Theory of operation
- `start()` begins a supervisor task that connects, logs in, and then watches the session:
  a `Ping` every `ping_interval_s`; no reply within `ping_timeout_s` means the socket is
  dead but open, so it is dropped. Whenever the session ends the supervisor emits
  `Disconnected`, fails every action and AGI command still waiting with `AmiUnavailable`
  (nothing is ever sent again by the adapter: an Originate replayed is a second call), waits
  with exponential backoff (`reconnect_backoff_initial_s` doubling up to `..._max_s`) and
  connects again; after a loss it emits `Reconnected` and calls the `on_connect` hook (the
  engine takes a `snapshot()` there and rebuilds its live state).
- Every action has a time limit (`AmiTimeout`); `Response: Error` is `AmiActionFailed`.
- AGI: Asterisk 22 answers Action: AGI with "Added AGI command to queue" and reports the
  command's end later in an `AsyncAGIExec` event carrying our CommandID (panoramisk waits
  for a `SubEvent: Exec` that never comes). `agi()` completes from that event; an
  `AsyncAGIEnd` or `Hangup` of the channel first fails it with `ChannelGone`.
- Events reach the engine's handler through `CallOrderedDispatcher` (per call, wire order).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.ami.dispatch import CallOrderedDispatcher, EventHandler, TaskSupervisor
from callcenter.ami.errors import (
    AgiCommandFailed,
    AmiActionFailed,
    AmiTimeout,
    AmiUnavailable,
    ChannelGone,
    MalformedMessage,
)
from callcenter.ami.events import (
    AgiResult,
    AsyncAGIEnd,
    AsyncAGIExec,
    ChannelSnapshot,
    CoreShowChannel,
    CoreShowChannelsComplete,
    Disconnected,
    Event,
    Hangup,
    Reconnected,
    parse_event,
)
from callcenter.ami.fields import ActionValue, check_action
from callcenter.ami.protocol import AmiProtocol, Fields, Reply
from callcenter.ami.settings import AmiLimits
from callcenter.config import AmiSettings

log = logging.getLogger(__name__)

ConnectHook = Callable[["AmiConnection"], Coroutine[Any, Any, None]]


@dataclass
class AmiStats:
    events_received: int = 0
    events_ignored: int = 0  # events the engine does not use
    malformed: int = 0
    actions_sent: int = 0
    actions_timed_out: int = 0
    actions_failed_by_disconnect: int = 0
    agi_orphans: int = 0  # AsyncAGIExec for a command nobody waits for (timed out earlier)
    connects: int = 0
    reconnects: int = 0


def backoff(initial_s: float, max_s: float) -> Iterator[float]:
    """Waits between reconnect attempts: initial, doubling, never above max."""
    delay = initial_s
    while True:
        yield min(delay, max_s)
        delay = min(delay * 2, max_s)


@dataclass
class _PendingAgi:
    channel: str
    command: str
    future: asyncio.Future[AgiResult]


class AmiConnection:
    def __init__(
        self,
        settings: AmiSettings,
        handler: EventHandler,
        *,
        on_connect: ConnectHook | None = None,
        limits: AmiLimits | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or AmiLimits()
        self.stats = AmiStats()
        self._on_connect = on_connect
        self._tasks = TaskSupervisor()
        self.dispatcher = CallOrderedDispatcher(handler, self._tasks)
        self._protocol: AmiProtocol | None = None
        self._ready = asyncio.Event()
        self._lost: asyncio.Future[str] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._agi: dict[str, _PendingAgi] = {}
        self._agi_by_channel: dict[str, set[str]] = {}
        self._command_ids = itertools.count(1)
        self._command_prefix = f"agi-{uuid.uuid4().hex[:12]}-"

    # --- life ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        """Start connecting (in the background); `wait_connected` waits for the first login."""
        if self._supervisor is None:
            self._closing = False
            self._supervisor = self._tasks.spawn(self._run(), name="ami-supervisor")

    async def wait_connected(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise AmiUnavailable(
                f"no AMI session with {self.settings.host}:{self.settings.port} within {timeout:g} s"
            ) from None

    async def close(self) -> None:
        """End the session and every task of the adapter; waiting callers get AmiUnavailable."""
        self._closing = True
        self._ready.clear()
        if self._protocol is not None:
            self._protocol.abort("adapter closed")
        self._fail_waiting(AmiUnavailable("AMI adapter closed"))
        await self._tasks.close()
        self._supervisor = None

    async def _run(self) -> None:
        settings = self.settings
        delays = backoff(settings.reconnect_backoff_initial_s, settings.reconnect_backoff_max_s)
        attempts = 0
        lost_at: float | None = None
        loop = asyncio.get_running_loop()
        while not self._closing:
            attempts += 1
            try:
                protocol = await self._open()
            except (OSError, TimeoutError, AmiTimeout, AmiActionFailed, AmiUnavailable) as exc:
                delay = next(delays)
                log.warning("AMI %s:%s: cannot connect (attempt %d): %s; next try in %.2f s",
                            settings.host, settings.port, attempts, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.stats.connects += 1
            if lost_at is not None:
                self.stats.reconnects += 1
                log.info("AMI session back after %.2f s (%d attempts)", loop.time() - lost_at, attempts)
                self.dispatcher.submit("", Reconnected(round(loop.time() - lost_at, 3), attempts))
            attempts = 0
            connected_at = loop.time()
            failed_before = self.stats.actions_failed_by_disconnect
            self._ready.set()
            if self._on_connect is not None:
                # Through a coroutine of ours: a broken hook is logged, never the supervisor's end.
                self._tasks.spawn(self._run_on_connect(), name="ami-on-connect")
            watchdog = self._tasks.spawn(self._watchdog(protocol), name="ami-watchdog")
            assert self._lost is not None
            reason = await self._lost
            watchdog.cancel()
            self._ready.clear()
            lost_at = loop.time()
            if lost_at - connected_at >= settings.reconnect_backoff_max_s:
                # The session was good for a while: start again from the shortest wait. A
                # session that breaks at once keeps the backoff growing (no reconnect storm).
                delays = backoff(settings.reconnect_backoff_initial_s, settings.reconnect_backoff_max_s)
            self._fail_waiting(AmiUnavailable(f"AMI connection lost ({reason}); not sent again"))
            log.warning("AMI session lost: %s; %d waiting actions failed, reconnecting",
                        reason, self.stats.actions_failed_by_disconnect - failed_before)
            self.dispatcher.submit("", Disconnected(reason))
            if not self._closing:
                await asyncio.sleep(next(delays))

    async def _open(self) -> AmiProtocol:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()
        made: list[AmiProtocol] = []

        def on_lost(reason: str) -> None:
            if not lost.done():
                lost.set_result(reason)
            for protocol in made:  # the Login too, if the link breaks before it is answered
                failed = protocol.fail_pending(AmiUnavailable(f"AMI connection lost ({reason}); not sent again"))
                self.stats.actions_failed_by_disconnect += failed

        def factory() -> AmiProtocol:
            made.append(AmiProtocol(self._ingest, self._malformed, on_lost, self.limits.max_message_bytes))
            return made[0]

        timeout = self.settings.action_timeout_s
        _, protocol = await asyncio.wait_for(
            loop.create_connection(factory, self.settings.host, self.settings.port), timeout
        )
        self._lost = lost
        secret = self.settings.secret.get_secret_value() if self.settings.secret else ""
        try:
            reply = await self._send(protocol, {
                "Action": "Login", "Username": self.settings.username, "Secret": secret,
                "Events": self.limits.login_events,
            }, "Login", timeout)
        except BaseException:
            protocol.abort("login did not finish")
            raise
        if isinstance(reply, list) or reply.get("Response") != "Success":
            protocol.abort("login refused")
            message = reply.get("Message", "") if isinstance(reply, dict) else ""
            raise AmiActionFailed("Login", message)
        self._protocol = protocol
        return protocol

    async def _run_on_connect(self) -> None:
        assert self._on_connect is not None
        await self._on_connect(self)

    async def _watchdog(self, protocol: AmiProtocol) -> None:
        interval, timeout = self.settings.ping_interval_s, self.settings.ping_timeout_s
        while not protocol.closed:
            await asyncio.sleep(interval)
            try:
                await self._send(protocol, {"Action": "Ping"}, "Ping", timeout)
            except AmiTimeout:
                log.warning("AMI: no reply to Ping within %g s; dropping the dead connection", timeout)
                protocol.abort(f"no reply to Ping within {timeout:g} s")
                return
            except AmiUnavailable:
                return

    def _fail_waiting(self, exc: AmiUnavailable) -> int:
        failed = self._protocol.fail_pending(exc) if self._protocol is not None else 0
        for pending in list(self._agi.values()):
            if not pending.future.done():
                pending.future.set_exception(exc)
                failed += 1
        self.stats.actions_failed_by_disconnect += failed
        return failed

    # --- events ----------------------------------------------------------------------

    def _malformed(self, exc: MalformedMessage) -> None:
        self.stats.malformed += 1
        log.warning("AMI: %s; message skipped", exc)

    def _ingest(self, fields: Fields) -> None:
        self.stats.events_received += 1
        try:
            event = parse_event(fields)
        except MalformedMessage as exc:
            self._malformed(exc)
            return
        if event is None:
            self.stats.events_ignored += 1
            return
        kind = type(event)
        if kind is AsyncAGIExec:
            self._agi_done(event)  # type: ignore[arg-type]
        elif kind is AsyncAGIEnd or kind is Hangup:
            self._channel_gone(event.channel)  # type: ignore[attr-defined]
        self.dispatcher.submit(event.call_key, event)

    def _agi_done(self, event: AsyncAGIExec) -> None:
        pending = self._agi.get(event.command_id)
        if pending is None:
            self.stats.agi_orphans += 1
            log.debug("AsyncAGIExec for no waiting command %s on %s", event.command_id, event.channel)
            return
        if not pending.future.done():
            pending.future.set_result(event.agi_result)

    def _channel_gone(self, channel: str) -> None:
        for command_id in self._agi_by_channel.get(channel, ()):
            pending = self._agi[command_id]
            if not pending.future.done():
                pending.future.set_exception(ChannelGone(channel))

    # --- actions ---------------------------------------------------------------------

    async def _send(self, protocol: AmiProtocol, fields: dict[str, Any], name: str, timeout: float,
                    as_list: bool = False) -> Reply:
        if protocol.closed:
            raise AmiUnavailable(f"AMI connection closed; {name} not sent")
        action = protocol.send_action(fields, as_list=as_list)
        self.stats.actions_sent += 1
        try:
            return await asyncio.wait_for(action.future, timeout)
        except TimeoutError:
            protocol.forget(action.actionid)
            self.stats.actions_timed_out += 1
            raise AmiTimeout(name, timeout) from None

    def _session(self, name: str) -> AmiProtocol:
        protocol = self._protocol
        if protocol is None or protocol.closed or not self._ready.is_set():
            raise AmiUnavailable(f"not connected to AMI; {name} not sent")
        return protocol

    async def action(self, fields: Mapping[str, ActionValue], *, timeout: float | None = None) -> dict[str, str]:
        """Send one action (every field checked) and return its successful response."""
        checked = check_action(fields, self.limits.max_field_length)
        name = next(str(v) for k, v in checked.items() if k.lower() == "action")
        reply = await self._send(self._session(name), checked, name, timeout or self.settings.action_timeout_s)
        assert isinstance(reply, dict)
        if reply.get("Response") != "Success":
            raise AmiActionFailed(name, reply.get("Message", ""))
        return reply

    async def action_list(self, fields: Mapping[str, ActionValue], *, timeout: float | None = None) -> list[Event]:
        """Send a list action (CoreShowChannels ...) and return the events of its list."""
        checked = check_action(fields, self.limits.max_field_length)
        name = next(str(v) for k, v in checked.items() if k.lower() == "action")
        reply = await self._send(self._session(name), checked, name,
                                 timeout or self.settings.action_timeout_s, as_list=True)
        if isinstance(reply, dict):
            raise AmiActionFailed(name, reply.get("Message", ""))
        items: list[Event] = []
        for message in reply:
            if "Event" not in message:
                continue
            try:
                event = parse_event(message)
            except MalformedMessage as exc:
                self._malformed(exc)
                continue
            if event is not None:
                items.append(event)
        return items

    async def snapshot(self) -> list[ChannelSnapshot]:
        """Every live channel, from CoreShowChannels: the state to rebuild after a (re)connect."""
        items = await self.action_list({"Action": "CoreShowChannels"})
        channels = [item for item in items if isinstance(item, CoreShowChannel)]
        complete = [item for item in items if isinstance(item, CoreShowChannelsComplete)]
        if complete and complete[0].listed_channels != len(channels):
            log.warning("CoreShowChannels listed %d channels but %d arrived readable",
                        complete[0].listed_channels, len(channels))
        return channels

    async def agi(self, channel: str, command: str, timeout: float | None = None) -> AgiResult:
        """Run one AGI command on a channel in AsyncAGI and return its reply.

        `timeout` bounds the wait for the command to finish; None waits as long as the
        command runs (EXEC Dial lasts the whole call). ChannelGone if the channel hangs up
        or leaves AGI first; AgiCommandFailed for a reply code other than 200.
        """
        command_id = f"{self._command_prefix}{next(self._command_ids)}"
        future: asyncio.Future[AgiResult] = asyncio.get_running_loop().create_future()
        self._agi[command_id] = _PendingAgi(channel, command, future)
        self._agi_by_channel.setdefault(channel, set()).add(command_id)
        try:
            try:
                await self.action({"Action": "AGI", "Channel": channel, "Command": command,
                                   "CommandID": command_id})
            except AmiActionFailed as exc:
                if "does not exist" in exc.message.lower() or "no such channel" in exc.message.lower():
                    raise ChannelGone(channel) from None
                raise
            if timeout is None:
                result = await future
            else:
                try:
                    result = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    self.stats.actions_timed_out += 1
                    raise AmiTimeout(f"AGI {command.split(' ', 1)[0]}", timeout) from None
        finally:
            del self._agi[command_id]
            waiting = self._agi_by_channel.get(channel)
            if waiting is not None:
                waiting.discard(command_id)
                if not waiting:
                    del self._agi_by_channel[channel]
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "exception never retrieved" noise
        if result.code != 200:
            raise AgiCommandFailed(channel, command, result.code, result.data or result.raw)
        return result
