"""Agents shared by several engines: atomic reservation in Redis, persisted agent state,
engine heartbeats and kept-place callbacks that outlive their engine.

Protocol ("two engines, one hotline")
-------------------------------------
* Every engine runs its own `Acd` core and knows every logged-in agent: agent logins,
  pauses and readies are persisted here (`save_agent`) and published by live.py; the
  other engines mirror them into their cores (`mirror_event`).
* Each engine routes only its own callers (their channels are on its Asterisk). Agents
  are shared, so before carrying out a `RingAgent`/`PlaceCallback` the engine calls
  `reserve(agent, call)`: a Lua script sets ``agent:<id>:hold`` = "<engine> <call>" only
  if nobody holds it and the persisted state says the agent may be rung. At most one
  engine ever holds an agent. A refused reservation is fed back as
  `AgentRingFailed(reason="reserved")`: the caller goes back to the front of its place and
  the agent is paused "elsewhere" in that core until the holder's engine publishes it
  available again (mirrored as `AgentReady`).
* `confirm` (agent answered) extends the hold for the call; `release` (ring failed, call
  ended) deletes it, only for its holder. Holds have a TTL and the holder refreshes them
  (`refresh`) while the call lasts: an engine that dies frees its agents when the TTL
  runs out.
* Each engine beats ``engine:<id>`` with a TTL (`heartbeat`). A kept-place callback is
  stored (`keep_callback`) with its engine; when that engine's heartbeat is gone, any
  engine (or the same one restarted) takes it over with `claim_orphan_callbacks` (atomic
  per callback) and feeds it to its core with `restore_events`, its arrival time kept.
* Agent states survive an engine restart: `load_agents` + `restore_events` give the events
  that rebuild the core (logged in; paused with the same reason; calls in progress on a
  dead engine are gone, so those agents come back available).

Keys, all under the prefix: ``agent:<id>`` (hash), ``agent:<id>:hold`` (string, TTL),
``agents`` (set), ``engine:<id>`` (string, TTL), ``callback:<call>`` (hash), ``callbacks``
(set).
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

    async def load_agents(self) -> list[AgentRecord]:
        ids = sorted(str(i) for i in await self.redis.smembers(f"{self.prefix}agents"))
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


def restore_events(agents: list[AgentRecord], callbacks: list[KeptCallback], *, at: float,
                   wall_now: float) -> list[ev.Event]:
    """The events that rebuild a core after a restart (pure). `at` is the core's monotonic now,
    `wall_now` the wall clock; arrival times are carried over so callbacks keep their place."""
    events: list[ev.Event] = []
    for a in agents:
        events.append(ev.AgentLoggedIn(a.agent_id, a.endpoint, a.skills, at))
        if a.state == "paused":
            events.append(ev.AgentPaused(a.agent_id, a.reason or "break", at))
    for cb in sorted(callbacks, key=lambda cb: cb.arrival):
        arrival = at - max(0.0, wall_now - cb.arrival)
        events.append(ev.CallQueued(cb.call_id, cb.queue, arrival, priority=cb.priority, callback_number=cb.number))
    return events


def mirror_event(update: Mapping[str, Any], engine_id: str, local_state: str | None, at: float) -> ev.Event | None:
    """Turn another engine's agent update (live.py `updates()`) into the event that keeps this
    core's copy of the agent right, or None. `local_state`: the agent's state in this core."""
    if update.get("kind") != "agent":
        return None
    data = update.get("data")
    agent_id = str(update["id"])
    if data is None:                                    # logged out on the other engine
        return ev.AgentLoggedOut(agent_id, at) if local_state in ("available", "paused") else None
    if data.get("engine") == engine_id or local_state is None:
        return None
    state = data.get("state")
    if state == "available" and local_state == "paused":
        return ev.AgentReady(agent_id, at)
    if state in ("ringing", "on_call", "wrap_up") and local_state == "available":
        return ev.AgentPaused(agent_id, "elsewhere", at)
    if state == "paused" and local_state in ("available", "paused"):
        return ev.AgentPaused(agent_id, str(data.get("reason") or "break"), at)
    return None


def _ms(seconds: float) -> int:
    if not seconds > 0:
        raise ReservationError(f"reservation TTL {seconds!r} s must be positive")
    return max(1, int(seconds * 1000))


def _need_text(redis: aioredis.Redis, who: str) -> None:
    if not redis.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError(f"{who} needs a Redis client made with decode_responses=True")
