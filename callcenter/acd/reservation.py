"""Agents shared by several engines: atomic reservation in Redis, persisted agent state,
engine heartbeats and kept-place callbacks that outlive their engine.

Protocol ("two engines, one hotline")
-------------------------------------
* Every engine is connected to the hotline's Asterisk and sees every incoming call; the
  first to `claim_call` the channel handles it (calls/shared.py), so calls spread over the
  engines that are up.
* Every engine runs its own `Acd` core and knows every logged-in agent. Whatever an engine's
  core changes about an agent (login, pause, ringing, talking, wrap-up, ready) it writes to
  the shared record (`save_agent`); the others bring their copies in line with `converge`,
  at once when live.py announces the change and again every second. An agent busy for
  another engine is paused "elsewhere" in a core; mirrored states are never written back.
* Before carrying out a `RingAgent`/`PlaceCallback` the engine calls `reserve(agent, call)`:
  a Lua script sets ``agent:<id>:hold`` = "<engine> <call>" only if nobody holds it and the
  shared record says the agent may be rung. At most one engine ever holds an agent. A
  refused reservation is fed back as `AgentRingFailed(reason="reserved")`: the caller keeps
  their place and the agent is paused "elsewhere" until the record says otherwise.
* `confirm` (agent answered) extends the hold; `release` (ring failed, call ended) deletes
  it, only for its holder. Holds have a TTL and the holder refreshes them while the call
  lasts; `release_held_by` frees a dead engine's holds at once.
* Each engine beats ``engine:<id>`` with a TTL (`heartbeat`) and is listed in ``engines``
  (`register`, which refuses an id that is alive). When a heartbeat lapses (`dead_engines`),
  a surviving engine adopts the dead one's calls (calls/shared.py: the call records say
  which engine holds a call, and an UPDATE moves each one atomically), its agents and its
  kept-place callbacks (`claim_orphan_callbacks` + `restore_callbacks`, arrival time kept). An
  engine restarted under the same id does the same for its former self.

Keys, all under the prefix: ``agent:<id>`` (hash), ``agent:<id>:hold`` (string, TTL),
``agents`` (set), ``engine:<id>`` (string, TTL), ``engines`` (set: every engine that joined),
``claim:<uniqueid>`` (string, TTL: which engine took an incoming channel), ``callback:<call>``
(hash), ``callbacks`` (set).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from callcenter.acd import events as ev
from callcenter.acd.errors import ReservationError

log = logging.getLogger(__name__)

# An agent may be held when logged in and persisted as available or ringing (the engine may
# persist its own "ringing" before it reserves); the hold itself makes it exclusive.
_RESERVE = """
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'available' and state ~= 'ringing' then return -1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_CONFIRM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
_RELEASE_ENGINE = """
local value = redis.call('GET', KEYS[1])
if not value or string.sub(value, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
_CLAIM = """
local engine = redis.call('HGET', KEYS[1], 'engine')
if not engine then return 0 end
if engine == ARGV[1] then return 1 end
if redis.call('EXISTS', ARGV[2] .. engine) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'engine', ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    agent_id: str
    state: str
    reason: str | None
    endpoint: str
    skills: dict[str, int]
    engine: str
    since: float          # wall clock, seconds since the epoch


@dataclass(frozen=True, slots=True)
class KeptCallback:
    call_id: str
    queue: str
    number: str
    priority: int
    arrival: float        # wall clock, seconds since the epoch
    engine: str


class Reservations:
    def __init__(self, redis: aioredis.Redis, prefix: str, engine_id: str) -> None:
        if not engine_id or " " in engine_id:
            raise ReservationError(f"engine id {engine_id!r} must be non-empty and have no spaces")
        _need_text(redis, "Reservations")
        self.redis = redis
        self.prefix = prefix
        self.engine_id = engine_id
        self._reserve = redis.register_script(_RESERVE)
        self._confirm = redis.register_script(_CONFIRM)
        self._release = redis.register_script(_RELEASE)
        self._claim = redis.register_script(_CLAIM)
        self._release_engine = redis.register_script(_RELEASE_ENGINE)

    # ------------------------------------------------------------------ holds

    def _owner(self, call_id: str) -> str:
        return f"{self.engine_id} {call_id}"

    async def reserve(self, agent_id: str, call_id: str, ttl_s: float) -> bool:
        """Hold `agent_id` for `call_id`; False if another holds it or it may not be rung."""
        result = await self._reserve(
            keys=[f"{self.prefix}agent:{agent_id}:hold", f"{self.prefix}agent:{agent_id}"],
            args=[self._owner(call_id), _ms(ttl_s)],
        )
        if result != 1:
            log.info("agent %s not reserved for call %s (%s)", agent_id, call_id,
                     "held elsewhere" if result == 0 else "not available")
        return bool(result == 1)

    async def confirm(self, agent_id: str, call_id: str, ttl_s: float) -> bool:
        """The agent answered: keep holding for the call (refresh with `refresh`)."""
        return bool(await self._confirm(keys=[f"{self.prefix}agent:{agent_id}:hold"],
                                        args=[self._owner(call_id), _ms(ttl_s)]))

    refresh = confirm

    async def release(self, agent_id: str, call_id: str) -> bool:
        """Let the agent go; only the holder can (False: not held by this engine for that call)."""
        return bool(await self._release(keys=[f"{self.prefix}agent:{agent_id}:hold"],
                                        args=[self._owner(call_id)]))

    async def release_held_by(self, agent_id: str, engine_id: str) -> bool:
        """Free an agent a dead engine still holds (its holds would otherwise last their TTL)."""
        return bool(await self._release_engine(keys=[f"{self.prefix}agent:{agent_id}:hold"], args=[engine_id]))

    async def holders(self, agent_ids: list[str]) -> dict[str, str]:
        """{agent: the engine holding it} for the held ones among `agent_ids`."""
        if not agent_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.get(f"{self.prefix}agent:{agent_id}:hold")
            values = await pipe.execute()
        return {a: str(v).partition(" ")[0] for a, v in zip(agent_ids, values, strict=True) if v is not None}

    async def holder(self, agent_id: str) -> tuple[str, str] | None:
        value = await self.redis.get(f"{self.prefix}agent:{agent_id}:hold")
        if value is None:
            return None
        engine, _, call_id = str(value).partition(" ")
        return engine, call_id

    # ------------------------------------------------------------------ agent state

    async def save_agent(self, agent_id: str, state: str, reason: str | None = None, *,
                         endpoint: str | None = None, skills: Mapping[str, int] | None = None,
                         since: float | None = None) -> None:
        """Persist an agent's state (logged_out forgets the agent)."""
        key = f"{self.prefix}agent:{agent_id}"
        if state == "logged_out":
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.srem(f"{self.prefix}agents", agent_id)
                await pipe.execute()
            return
        fields: dict[Any, Any] = {"state": state, "reason": reason or "", "engine": self.engine_id,
                                  "since": repr(time.time() if since is None else since)}
        if endpoint is not None:
            fields["endpoint"] = endpoint
        if skills is not None:
            fields["skills"] = json.dumps(dict(skills))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.sadd(f"{self.prefix}agents", agent_id)
            await pipe.execute()

    async def load_agent(self, agent_id: str) -> AgentRecord | None:
        found = await self.load_agents([agent_id])
        return found[0] if found else None

    async def load_agents(self, only: list[str] | None = None) -> list[AgentRecord]:
        ids = sorted(str(i) for i in await self.redis.smembers(f"{self.prefix}agents"))
        if only is not None:
            ids = [i for i in ids if i in only]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(f"{self.prefix}agent:{agent_id}")
            rows = await pipe.execute()
        records = []
        for agent_id, row in zip(ids, rows, strict=True):
            if not row or "endpoint" not in row:
                log.warning("agent %s: persisted state incomplete, skipped: %s", agent_id, row)
                continue
            records.append(AgentRecord(agent_id, str(row["state"]), str(row.get("reason") or "") or None,
                                       str(row["endpoint"]), json.loads(row.get("skills") or "{}"),
                                       str(row.get("engine", "")), float(row.get("since") or 0)))
        return records

    # ------------------------------------------------------------------ engines

    async def heartbeat(self, ttl_s: float) -> None:
        await self.redis.set(f"{self.prefix}engine:{self.engine_id}", repr(time.time()), px=_ms(ttl_s))

    async def register(self, ttl_s: float) -> None:
        """Join the hotline: refuse if an engine with this id is alive (two would share its calls)."""
        beat = await self.redis.get(f"{self.prefix}engine:{self.engine_id}")
        if beat is not None:
            raise ReservationError(
                f"engine id {self.engine_id!r} is in use: an engine with it beat at {beat} and is still alive "
                f"(give every engine its own id; a restarted engine waits {ttl_s:g} s for its old heartbeat to lapse)")
        await self.heartbeat(ttl_s)
        await self.redis.sadd(f"{self.prefix}engines", self.engine_id)

    async def dead_engines(self) -> list[str]:
        """Engines that joined and whose heartbeat has lapsed (their calls and agents need a new owner)."""
        known = sorted(str(e) for e in await self.redis.smembers(f"{self.prefix}engines"))
        if not known:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for engine in known:
                pipe.exists(f"{self.prefix}engine:{engine}")
            alive = await pipe.execute()
        return [e for e, up in zip(known, alive, strict=True) if not up and e != self.engine_id]

    async def forget_engine(self, engine_id: str) -> None:
        await self.redis.srem(f"{self.prefix}engines", engine_id)

    async def leave(self) -> None:
        """A clean stop: the heartbeat goes at once, so another engine takes over without waiting."""
        await self.redis.delete(f"{self.prefix}engine:{self.engine_id}")

    async def claim_call(self, uniqueid: str, ttl_s: float = 86400.0) -> bool:
        """The first engine to claim an incoming channel handles the call; the others leave it."""
        return bool(await self.redis.set(f"{self.prefix}claim:{uniqueid}", self.engine_id, nx=True, px=_ms(ttl_s)))

    async def engines_alive(self) -> list[str]:
        n = len(self.prefix) + len("engine:")
        return sorted([str(k)[n:] async for k in self.redis.scan_iter(match=f"{self.prefix}engine:*", count=100)])

    # ------------------------------------------------------------------ kept places

    async def keep_callback(self, call_id: str, queue: str, number: str, priority: int, arrival: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self.prefix}callback:{call_id}", mapping={
                "queue": queue, "number": number, "priority": str(priority), "arrival": repr(arrival),
                "engine": self.engine_id})
            pipe.sadd(f"{self.prefix}callbacks", call_id)
            await pipe.execute()

    async def drop_callback(self, call_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self.prefix}callback:{call_id}")
            pipe.srem(f"{self.prefix}callbacks", call_id)
            await pipe.execute()

    async def claim_orphan_callbacks(self) -> list[KeptCallback]:
        """Take over kept-place callbacks whose engine is dead (or is this engine, restarted)."""
        claimed = []
        for call_id in sorted(str(i) for i in await self.redis.smembers(f"{self.prefix}callbacks")):
            key = f"{self.prefix}callback:{call_id}"
            if await self._claim(keys=[key], args=[self.engine_id, f"{self.prefix}engine:"]) != 1:
                continue
            row = await self.redis.hgetall(key)
            if not row:
                continue
            claimed.append(KeptCallback(call_id, str(row["queue"]), str(row["number"]), int(row["priority"]),
                                        float(row["arrival"]), self.engine_id))
        return claimed


def restore_callbacks(callbacks: list[KeptCallback], *, at: float, wall_now: float) -> list[ev.Event]:
    """The events that put kept-place callbacks back in line in a core (pure). `at` is the
    core's monotonic now, `wall_now` the wall clock; arrival times are carried over so the
    callbacks keep their place."""
    return [ev.CallQueued(cb.call_id, cb.queue, at - max(0.0, wall_now - cb.arrival), priority=cb.priority,
                          callback_number=cb.number)
            for cb in sorted(callbacks, key=lambda cb: cb.arrival)]


BUSY_STATES = ("ringing", "on_call", "wrap_up")


def converge(local: Any, record: AgentRecord | None, held_by: str | None, engine_id: str,
             at: float) -> list[ev.Event]:
    """The events that bring this core's copy of one agent in line with the shared record (pure).

    `local`: the agent in this core (an `AgentView`, or None); `record`: the shared record (None:
    logged out); `held_by`: the engine holding the agent's reservation, if any. The record is the
    word of whichever engine changed the agent last, and it wins — except that an agent ringing,
    talking or in wrap-up for this engine's own call is this engine's business until that ends,
    and a record this engine wrote itself says nothing its core does not already know. An agent
    busy for another engine (or held by one) is paused "elsewhere" here; such mirrored states are
    never written back to the record."""
    state = None if local is None else str(getattr(local.state, "value", local.state))
    if state in BUSY_STATES:
        return []
    if record is None:
        return [ev.AgentLoggedOut(local.agent_id, at)] if local is not None else []
    events: list[ev.Event] = []
    reason: str | None = None if local is None else local.reason
    if local is None:
        events.append(ev.AgentLoggedIn(record.agent_id, record.endpoint, record.skills, at))
        state, reason = "available", None
    held_elsewhere = held_by is not None and held_by != engine_id
    mirror = state == "paused" and reason == "elsewhere"
    target: tuple[str, str | None]
    if held_elsewhere:
        target = ("paused", "elsewhere")
    elif record.engine == engine_id and local is not None:
        if not mirror:
            return events            # its own record: this core knows better (its write may be in flight)
        # a mirrored pause left over (a ring refused, then the agent came back through this engine)
        target = ("paused", record.reason or "break") if record.state == "paused" else ("available", None)
    elif record.state in BUSY_STATES:
        target = ("paused", "elsewhere")
    elif record.state == "paused":
        target = ("paused", record.reason or "break")
    elif record.state == "available":
        target = ("available", None)
    else:
        log.warning("agent %s: shared state %r not understood; treated as busy elsewhere",
                    record.agent_id, record.state)
        target = ("paused", "elsewhere")
    if (state, reason if state == "paused" else None) == target:
        return events
    if target[0] == "available":
        events.append(ev.AgentReady(record.agent_id, at))
    else:
        events.append(ev.AgentPaused(record.agent_id, target[1] or "break", at))
    return events


def _ms(seconds: float) -> int:
    if not seconds > 0:
        raise ReservationError(f"reservation TTL {seconds!r} s must be positive")
    return max(1, int(seconds * 1000))


def _need_text(redis: aioredis.Redis, who: str) -> None:
    if not redis.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError(f"{who} needs a Redis client made with decode_responses=True")
