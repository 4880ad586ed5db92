"""Several engines, one hotline: the engine's side of sharing calls and agents through Redis.

Every engine is connected to the hotline's Asterisk (or to one of its Asterisk nodes) and to
the same Redis and database. This adapter gives one engine its part:

* **Calls.** Every engine sees every incoming channel; the one that claims it in Redis
  handles the call (`claim`: the channel's first choice among the engines alive claims at
  once, the others a moment later, so calls spread evenly and a dead engine's share is still
  taken). If Redis cannot be reached the engines fall back to that first choice alone, which
  they all compute alike, so a call is never taken twice.
* **Agents.** What this engine's core changes about an agent is written to the shared record
  in order (`observe` -> a single writer), and what others write is brought into this core
  (`reconcile_agents`: at once when the live channel announces a change, and every second).
  Before an agent's phone rings, the agent is reserved (`reserve`, a Lua script): never two
  engines at once. Holds are refreshed while the call lasts and released when it ends.
* **Engines that die.** Each engine beats a heartbeat. When one lapses, a survivor adopts the
  dead engine's calls (`adopt`): the call records say which engine holds each call, and a
  conditional UPDATE moves each one to exactly one survivor. From Asterisk's snapshot it
  sees where each caller is: gone (the record is closed), talking to an agent (followed to
  the end, survey included), an agent's phone still ringing (that ring is dropped and the
  caller waits again), waiting (back in line with their original arrival, so their place is
  kept) or in the menu (the menu starts again). The dead engine's agents and kept-place
  callbacks come over too. An engine restarted under the same id adopts its former self.
* **Duties.** Jobs the hotline must run once (deadline scan, follow-up calls, reports) run
  on the engine holding a lease (`lead`).

The pure decisions live elsewhere: `converge` (acd/reservation.py) and `adoption`
(calls/core.py).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import zlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from callcenter.acd import commands as acd_cmd
from callcenter.acd import events as acd_ev
from callcenter.acd.errors import ReservationError, UnknownAgent
from callcenter.acd.live import LiveState
from callcenter.acd.reservation import BUSY_STATES, Reservations, converge, restore_callbacks
from callcenter.ami.errors import AmiError
from callcenter.calls.core import Phase, adoption

if TYPE_CHECKING:
    from callcenter.calls.engine import Engine

log = logging.getLogger(__name__)
CLAIM_DEFER_S = 0.25               # how long the other engines leave a call to its first choice
ADOPTED_CALL = "adopted_call"     # the pause that keeps an agent of an adopted talk out of routing

_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class SharedHotline:
    def __init__(self, engine: Engine, live: LiveState) -> None:
        settings = engine.settings.cluster
        self.engine = engine
        self.live = live
        self.reservations = Reservations(live.redis, live.prefix, engine.engine_id)
        self.heartbeat_ttl_s = settings.heartbeat_ttl_s
        self.hold_ttl_s = settings.hold_ttl_s
        self._holds: dict[str, str] = {}          # agent -> call, held by this engine
        self._kept: set[str] = set()              # kept-place callbacks written to Redis
        self._writes: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue()
        # Per agent: changes this core made (counted) and those not yet in the shared record. A
        # reconcile never acts on an agent whose change is in flight or came while it read the
        # records: the record it read is older than what this core knows.
        self._changes: collections.Counter[str] = collections.Counter()
        self._unwritten: collections.Counter[str] = collections.Counter()
        self._alive: list[str] = [engine.engine_id]
        self._reconciling = asyncio.Lock()
        self._lead = live.redis.register_script(_LEAD)
        self._tasks: list[asyncio.Task[Any]] = []
        self.adopted_calls = 0
        self._joined = False
        engine.shared = self

    @property
    def me(self) -> str:
        return self.engine.engine_id

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Join the hotline (refused if this engine id is alive elsewhere), take this engine's
        agents and calls from a former life, then keep in step with the others."""
        try:
            await self._join()
        except RedisError as exc:
            # A hotline without Redis still answers its calls: alone, on this engine's own state.
            log.error("engine %s: Redis unreachable at start (%s); taking calls alone until it is back", self.me, exc)
        self._tasks = [asyncio.create_task(self._writer(), name="shared-writer"),
                       asyncio.create_task(self._tick_loop(), name="shared-tick"),
                       asyncio.create_task(self._follow_updates(), name="shared-updates")]
        log.info("engine %s joined the hotline", self.me)

    async def _join(self) -> None:
        try:
            await self.reservations.register(self.heartbeat_ttl_s)
        except ReservationError:
            # Restarted at once after a crash: the old heartbeat lapses within its TTL.
            await asyncio.sleep(self.heartbeat_ttl_s + 0.5)
            await self.reservations.register(self.heartbeat_ttl_s)
        await self.reconcile_agents()
        await self.adopt(self.me)
        self._joined = True

    async def stop(self) -> None:
        """A clean stop: pending writes go out, the heartbeat goes at once, so another engine
        adopts this one's calls without waiting for the heartbeat to lapse."""
        for task in self._tasks[1:]:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writes.join(), 5)
        if self._tasks:
            self._tasks[0].cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError):
            await self.reservations.leave()

    async def _writer(self) -> None:
        """Shared-state writes in the order the core made the changes."""
        while True:
            write = await self._writes.get()
            try:
                await write()
            except (RedisError, ReservationError, OSError) as exc:
                log.error("shared state write failed (the next change or tick repairs it): %s", exc)
            finally:
                self._writes.task_done()

    async def _tick_loop(self) -> None:
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                log.error("engine %s: shared state unreachable (%s); calls go on, routing on local state",
                          self.me, exc)
            except Exception:
                log.exception("engine %s: shared-state tick failed", self.me)
            if me is not None and me.cancelling():
                # The stop came mid-tick and a timeout inside swallowed it (Python 3.11's wait_for
                # can): honour it, or the engine's stop waits for this loop forever.
                raise asyncio.CancelledError

    async def tick(self) -> None:
        r = self.reservations
        if not self._joined:
            await self._join()
        await r.heartbeat(self.heartbeat_ttl_s)
        for agent_id, call_id in list(self._holds.items()):
            if self.still_wanted(agent_id, call_id):
                await r.refresh(agent_id, call_id, self.hold_ttl_s)
            else:
                await self.release(agent_id)
        await self.reconcile_agents()
        for dead in await r.dead_engines():
            await self.adopt(dead)
        self._alive = await r.engines_alive() or [self.me]

    async def _follow_updates(self) -> None:
        """Another engine changed an agent: bring this core in line now, not at the next tick."""
        while True:
            try:
                async for change in self.live.updates():
                    if change.get("kind") != "agent":
                        continue
                    data = change.get("data")
                    if data is not None and data.get("engine") == self.me:
                        continue
                    await self.reconcile_agents([str(change["id"])])
            except (RedisError, OSError) as exc:
                log.warning("live updates lost (%s); following again in 1 s", exc)
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ calls

    def _first_choice(self, uniqueid: str) -> str:
        alive = sorted(self._alive)
        return alive[zlib.crc32(uniqueid.encode()) % len(alive)]

    async def claim(self, uniqueid: str) -> bool:
        """Whether this engine handles the incoming channel `uniqueid`. Each channel has a first
        choice among the engines alive (by its id), which claims at once; the others try a
        moment later, so calls spread evenly and a dead engine's share is still taken."""
        first = self._first_choice(uniqueid)
        if first != self.me:
            await asyncio.sleep(CLAIM_DEFER_S)
        try:
            return await self.reservations.claim_call(uniqueid)
        except RedisError as exc:
            log.error("claim of %s: Redis unreachable (%s); split by channel id: %s takes it", uniqueid, exc, first)
            return first == self.me

    # ------------------------------------------------------------------ agents

    async def reserve(self, agent_id: str, call_id: str, timeout_s: float) -> bool:
        """Hold the agent for the call before their phone rings; False if another engine holds
        them or they may not be rung. A dead Redis does not stop the hotline: the ring goes on."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def reserve() -> None:
            try:
                done.set_result(await self.reservations.reserve(agent_id, call_id, timeout_s + self.hold_ttl_s))
            except RedisError as exc:
                log.error("reservation of agent %s for call %s: Redis unreachable (%s); ringing anyway",
                          agent_id, call_id, exc)
                done.set_result(True)

        # After this core's own writes about the agent (its "available" must be in the record first).
        self._writes.put_nowait(reserve)
        held = await done
        if held:
            self._holds[agent_id] = call_id
        return held

    def still_wanted(self, agent_id: str, call_id: str) -> bool:
        """Whether this core still has the agent ringing for the call (a reservation takes a
        round trip, in which the caller may have left)."""
        try:
            view = self.engine.acd.agent(agent_id)
        except UnknownAgent:
            return False
        return view.call_id == call_id and view.state.value in ("ringing", "on_call")

    async def release(self, agent_id: str) -> None:
        call_id = self._holds.pop(agent_id, None)
        if call_id is not None:
            with contextlib.suppress(RedisError):
                await self.reservations.release(agent_id, call_id)

    def observe(self, commands: list[Any]) -> None:
        """What this core changed (mirrored states already taken out) goes to the shared record."""
        acd, clock = self.engine.acd, self.engine.clock
        for c in commands:
            if isinstance(c, acd_cmd.AgentStateChanged):
                self._agent_changed(c)
            elif isinstance(c, acd_cmd.CallStateChanged) and c.state == "callback":
                view = acd.call(c.call_id)
                arrival = (clock.now() - timedelta(seconds=max(0.0, clock.monotonic() - view.arrival))).timestamp()
                self._kept.add(c.call_id)
                self._writes.put_nowait(functools.partial(self.reservations.keep_callback, view.call_id, view.queue,
                                                          view.number or "", view.priority, arrival))
            elif isinstance(c, acd_cmd.CallStateChanged) and c.state == "ended" and c.call_id in self._kept:
                self._kept.discard(c.call_id)
                self._writes.put_nowait(functools.partial(self.reservations.drop_callback, c.call_id))

    def _write_agent(self, agent_id: str, write: Callable[[], Awaitable[Any]]) -> None:
        self._changes[agent_id] += 1
        self._unwritten[agent_id] += 1

        async def written() -> None:
            try:
                await write()
            finally:
                self._unwritten[agent_id] -= 1
        self._writes.put_nowait(written)

    def _agent_changed(self, c: acd_cmd.AgentStateChanged) -> None:
        r = self.reservations
        if c.state == "logged_out":
            self._write_agent(c.agent_id, lambda: r.save_agent(c.agent_id, "logged_out"))
        else:
            try:
                view = self.engine.acd.agent(c.agent_id)
            except UnknownAgent:
                return
            self._write_agent(c.agent_id, lambda: r.save_agent(c.agent_id, c.state, c.reason, endpoint=view.endpoint,
                                                               skills=view.skills))
        if c.state not in ("ringing", "on_call") and c.agent_id in self._holds:
            call_id = self._holds.pop(c.agent_id)
            self._writes.put_nowait(lambda: r.release(c.agent_id, call_id))

    async def reconcile_agents(self, only: list[str] | None = None) -> None:
        """Bring this core's agents in line with the shared records (see `converge`)."""
        async with self._reconciling:
            acd = self.engine.acd
            changes = dict(self._changes)
            records = {r.agent_id: r for r in await self.reservations.load_agents(only)}
            local = {a.agent_id: a for a in acd.agents() if a.state.value != "logged_out"}
            ids = only if only is not None else sorted(set(records) | set(local))
            holders = await self.reservations.holders(ids)
            at = self.engine.clock.monotonic()
            for agent_id in ids:
                if self._unwritten[agent_id] or self._changes[agent_id] != changes.get(agent_id, 0):
                    continue     # this core's own change is newer than the record read
                for event in converge(local.get(agent_id), records.get(agent_id), holders.get(agent_id), self.me, at):
                    await self.engine.feed_acd(event, mirrored=agent_id)

    # ------------------------------------------------------------------ adoption

    async def adopt(self, dead: str) -> None:
        """Take over a dead engine's calls, agents and kept-place callbacks (or this engine's
        own from before a restart)."""
        engine, r = self.engine, self.reservations
        calls = await engine.store.open_calls_of(dead)
        calls = [c for c in calls if c.id not in engine.sessions]
        channels = {}
        if calls:
            channels = {ch.channel: (ch.linkedid, ch.bridge_id) for ch in await engine.connection.snapshot()}
        talking: set[str] = set()
        for call in calls:
            if not await engine.store.take_over(call.id, dead, self.me):
                continue
            plan = adoption(call.channel, call.linkedid, queued=call.queued_at is not None,
                            agent_answered=call.agent_answered_at is not None, channels=channels)
            log.warning("engine %s adopts call %s of engine %s: %s", self.me, call.id, dead, plan)
            for channel in plan.hang_up:
                with contextlib.suppress(AmiError):
                    await engine.gateway.hangup(channel)
            for attempt in call.attempts:
                if attempt.ended_at is None:
                    await engine.store.end_attempt(call.id, attempt.id, "cancelled", engine.clock.now())
            if plan.resume is Phase.TALKING and call.agent_id:
                talking.add(call.agent_id)
            engine.resume_call(call, plan)
            self.adopted_calls += 1
        await self._adopt_agents(dead, talking)
        callbacks = await r.claim_orphan_callbacks()
        self._kept.update(cb.call_id for cb in callbacks)
        for event in restore_callbacks(callbacks, at=engine.clock.monotonic(), wall_now=engine.clock.now().timestamp()):
            await engine.feed_acd(event)
        if dead != self.me:
            await self.live.forget_engine(dead)
            await r.forget_engine(dead)
            log.warning("engine %s took over from engine %s: %d calls, %d callbacks", self.me, dead, len(calls),
                        len(callbacks))

    async def _adopt_agents(self, dead: str, talking: set[str]) -> None:
        """The dead engine's agents: those still talking on an adopted call are this engine's
        now (the call's session frees them when it ends); the others are free again."""
        r = self.reservations
        for record in await r.load_agents():
            if record.engine != dead:
                continue
            await r.release_held_by(record.agent_id, dead)
            if record.agent_id in talking:
                await r.save_agent(record.agent_id, "on_call", endpoint=record.endpoint, skills=record.skills)
                # Out of this core's routing until the adopted talk is over (not a mirrored state).
                await self.engine.feed_acd(acd_ev.AgentPaused(record.agent_id, ADOPTED_CALL,
                                                              self.engine.clock.monotonic()), mirrored=record.agent_id)
            elif record.state in BUSY_STATES:
                await r.save_agent(record.agent_id, "available", endpoint=record.endpoint, skills=record.skills)
                await self._ready_here(record.agent_id)

    async def adopted_talk_ended(self, agent_id: str) -> None:
        """The agent of an adopted call is done: wrap-up, then free for the next caller."""
        r = self.reservations
        with contextlib.suppress(RedisError):
            await r.save_agent(agent_id, "wrap_up")
        await asyncio.sleep(self.engine.settings.acd.wrapup_s)
        with contextlib.suppress(RedisError):
            await r.save_agent(agent_id, "available")
        await self._ready_here(agent_id)

    async def _ready_here(self, agent_id: str) -> None:
        try:
            view = self.engine.acd.agent(agent_id)
        except UnknownAgent:
            return
        if view.state.value == "paused" and view.reason in ("elsewhere", ADOPTED_CALL):
            await self.engine.feed_acd(acd_ev.AgentReady(agent_id, self.engine.clock.monotonic()), mirrored=agent_id)

    # ------------------------------------------------------------------ duties

    async def lead(self, duty: str = "duties", ttl_s: float = 60.0) -> bool:
        """Whether this engine runs the hotline's once-only duties now (a lease in Redis)."""
        try:
            return bool(await self._lead(keys=[f"{self.live.prefix}lease:{duty}"], args=[self.me, int(ttl_s * 1000)]))
        except RedisError as exc:
            log.error("lease %s: Redis unreachable (%s); duties wait", duty, exc)
            return False
