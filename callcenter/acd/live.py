"""Live state in Redis for the wallboard: queues, agents and calls in progress, all engines.

Each engine writes what it owns into three hashes under the prefix (``live:queues``,
``live:agents``, ``live:calls``: field = id, value = JSON) plus ``live:engines`` (its last
heartbeat), and publishes every change on the channel ``<prefix>live`` as
``{"kind": "agent"|"queue"|"call"|"engine", "id": str, "data": dict|None}`` (None: gone).
A hash write and its publish go in one round trip. `snapshot()` reads the four hashes;
`updates()` follows the channel. Queue figures are per engine (``live:queues:<engine>``)
and summed in the snapshot, so two engines serving one queue add up.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callcenter.acd import commands as cmd
from callcenter.acd.core import Acd

log = logging.getLogger(__name__)
FOLLOWER_BACKLOG = 10_000    # changes a follower of `updates()` may be behind before it loses them


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"live state times must be aware (UTC), got {when!r}")
    return when.astimezone(UTC).isoformat()


class LiveState:
    def __init__(self, redis: aioredis.Redis, prefix: str, engine_id: str) -> None:
        _need_text(redis, "LiveState")
        self.redis = redis
        self.prefix = prefix
        self.engine_id = engine_id
        self.channel = f"{prefix}live"
        # Writes go out in the order they were asked for: the engine publishes each batch from
        # its own task, and two batches racing on two connections could leave an agent shown
        # "available" after their pause (the later state written first). The lock is FIFO.
        self._in_order = asyncio.Lock()
        self._followers: set[asyncio.Queue[dict[str, Any] | RedisError]] = set()
        self._listening: asyncio.Task[None] | None = None

    def _key(self, kind: str) -> str:
        return f"{self.prefix}live:{kind}"

    async def _write(self, changes: Iterable[tuple[str, str, str, dict[str, Any] | None]]) -> None:
        """(kind, hash key, id, data) -> HSET/HDEL and PUBLISH, one round trip."""
        async with self._in_order, self.redis.pipeline(transaction=False) as pipe:
            n = 0
            for kind, key, item_id, data in changes:
                if data is None:
                    pipe.hdel(key, item_id)
                else:
                    pipe.hset(key, item_id, json.dumps(data, ensure_ascii=False))
                pipe.publish(self.channel, json.dumps({"kind": kind, "id": item_id, "data": data}, ensure_ascii=False))
                n += 1
            if n:
                await pipe.execute()

    # ------------------------------------------------------------------ writers

    async def publish_agent(self, agent_id: str, state: str, since: datetime, reason: str | None = None,
                            queues: Iterable[str] = (), call_id: str | None = None) -> None:
        data = None if state == "logged_out" else {
            "state": state, "since": _iso(since), "reason": reason, "queues": sorted(queues),
            "call_id": call_id, "engine": self.engine_id}
        await self._write([("agent", self._key("agents"), agent_id, data)])

    async def publish_call(self, call_id: str, state: str, since: datetime, caller: str | None = None,
                           queue: str | None = None, agent_id: str | None = None) -> None:
        data = None if state == "ended" else {
            "caller": caller or "", "queue": queue, "state": state, "since": _iso(since),
            "agent_id": agent_id, "engine": self.engine_id}
        await self._write([("call", self._key("calls"), call_id, data)])

    async def publish_queue(self, name: str, waiting: int, longest_wait_s: float, callbacks: int) -> None:
        data = {"waiting": waiting, "longest_wait_s": round(longest_wait_s, 1), "callbacks": callbacks}
        await self._write([("queue", self._key(f"queues:{self.engine_id}"), name, data)])

    async def publish_screen_pop(self, agent_id: str, data: dict[str, Any]) -> None:
        """Who is calling, pushed to the agent whose phone rings; each agent's latest is kept
        (one per agent) so that a page that was disconnected when the phone rang gets it with
        its next snapshot."""
        raw = json.dumps(data, ensure_ascii=False, default=str)
        async with self._in_order, self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key("pops"), agent_id, raw)
            pipe.publish(self.channel, json.dumps({"kind": "screen_pop", "id": agent_id, "data": json.loads(raw)},
                                                  ensure_ascii=False))
            await pipe.execute()

    async def heartbeat(self, now: datetime) -> None:
        await self._write([("engine", self._key("engines"), self.engine_id, {"seen": _iso(now)})])

    async def publish_changes(self, commands: Iterable[cmd.Command], acd: Acd, now: datetime, at: float) -> None:
        """Publish what a batch of ACD commands changed: agents (with whether their phone is
        reachable), calls and their queues' figures (wall time `now`, core time `at`), in one
        round trip."""
        commands = list(commands)
        changes: list[tuple[str, str, str, dict[str, Any] | None]] = []
        queues: set[str] = set()
        for c in commands:
            if isinstance(c, cmd.AgentStateChanged):
                data = None
                if c.state != "logged_out":
                    view = acd.agent(c.agent_id)
                    data = {"state": c.state, "since": _iso(now), "reason": c.reason, "queues": sorted(view.skills),
                            "call_id": c.call_id, "phone_reachable": view.phone_reachable, "engine": self.engine_id}
                changes.append(("agent", self._key("agents"), c.agent_id, data))
            elif isinstance(c, cmd.PhoneStatusChanged):
                # The agents on that phone, as they are, with the phone's news (their time in
                # state is kept: the core's `since` is monotonic like `at`).
                for view in acd.agents():
                    if view.endpoint == c.endpoint and not any(
                            isinstance(o, cmd.AgentStateChanged) and o.agent_id == view.agent_id for o in commands):
                        since = now - timedelta(seconds=max(0.0, at - view.since))
                        changes.append(("agent", self._key("agents"), view.agent_id, {
                            "state": view.state.value, "since": _iso(since), "reason": view.reason,
                            "queues": sorted(view.skills), "call_id": view.call_id,
                            "phone_reachable": view.phone_reachable, "engine": self.engine_id}))
            elif isinstance(c, cmd.CallStateChanged):
                data = None
                if c.state != "ended":
                    call = acd.call(c.call_id)
                    data = {"caller": call.caller or "", "queue": c.queue, "state": c.state, "since": _iso(now),
                            "agent_id": c.agent_id, "priority": call.priority, "engine": self.engine_id}
                changes.append(("call", self._key("calls"), c.call_id, data))
                if c.queue:
                    queues.add(c.queue)
            elif isinstance(c, cmd.Overflow):
                queues.add(c.from_queue)
        for name in sorted(queues):
            s = acd.queue_stats(name, at)
            changes.append(("queue", self._key(f"queues:{self.engine_id}"), name,
                            {"waiting": s.waiting, "longest_wait_s": round(s.longest_wait_s, 1), "callbacks": s.callbacks}))
        await self._write(changes)

    async def forget_engine(self, engine_id: str) -> None:
        """Remove a dead engine's agents, calls and queue figures from the live view."""
        for kind in ("agents", "calls"):
            rows = await self.redis.hgetall(self._key(kind))
            gone = [str(i) for i, raw in rows.items() if json.loads(raw).get("engine") == engine_id]
            await self._write((kind[:-1], self._key(kind), i, None) for i in gone)
        await self.redis.delete(self._key(f"queues:{engine_id}"))
        await self._write([("engine", self._key("engines"), engine_id, None)])

    # ------------------------------------------------------------------ readers

    async def snapshot(self) -> dict[str, Any]:
        engine_ids = [str(e) for e in await self.redis.hkeys(self._key("engines"))]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._key("agents"))
            pipe.hgetall(self._key("calls"))
            pipe.hgetall(self._key("engines"))
            pipe.hgetall(self._key("pops"))
            for engine in engine_ids:
                pipe.hgetall(self._key(f"queues:{engine}"))
            agents, calls, engines, pops, *per_engine = await pipe.execute()
        queues: dict[str, dict[str, Any]] = {}
        for rows in per_engine:
            for name, raw in rows.items():
                figures = json.loads(raw)
                q = queues.setdefault(name, {"waiting": 0, "longest_wait_s": 0.0, "callbacks": 0})
                q["waiting"] += int(figures["waiting"])
                q["callbacks"] += int(figures["callbacks"])
                q["longest_wait_s"] = max(float(q["longest_wait_s"]), float(figures["longest_wait_s"]))
        return {
            "queues": queues,
            "agents": {k: json.loads(v) for k, v in agents.items()},
            "calls": {k: json.loads(v) for k, v in calls.items()},
            "engines": {k: json.loads(v) for k, v in engines.items()},
            "screen_pops": {k: json.loads(v) for k, v in pops.items()},   # each agent's latest
        }

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        """Every change published by any engine, as it happens (until cancelled).

        Every follower in this process (the web's fan-out, the shared hotline's reconcile) is
        fed from one subscription, each change decoded once: one subscription per engine. The
        subscription is made for the first follower and ends with the last. A follower that falls
        FOLLOWER_BACKLOG changes behind, and every follower when the connection is lost, gets
        `LiveLost` raised (RedisError): what came meanwhile is lost to it, it follows again."""
        backlog: asyncio.Queue[dict[str, Any] | RedisError] = asyncio.Queue(maxsize=FOLLOWER_BACKLOG)
        self._followers.add(backlog)
        if self._listening is None or self._listening.done():
            self._listening = asyncio.get_running_loop().create_task(self._listen(), name=f"live {self.channel}")
        try:
            while True:
                item = await backlog.get()
                if isinstance(item, RedisError):
                    raise item
                yield item
        finally:
            self._followers.discard(backlog)
            if not self._followers and self._listening is not None:
                self._listening.cancel()    # the last follower is gone, and so is the subscription
                self._listening = None

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    change = json.loads(message["data"])
                except (TypeError, ValueError):
                    log.warning("live channel %s: not JSON, skipped: %r", self.channel, message.get("data"))
                    continue
                for backlog in list(self._followers):
                    try:
                        backlog.put_nowait(change)
                    except asyncio.QueueFull:
                        self._lost(backlog, LiveLost(f"a follower of {self.channel} fell {FOLLOWER_BACKLOG} "
                                                     "changes behind"))
        except (RedisError, OSError) as exc:
            for backlog in list(self._followers):
                self._lost(backlog, LiveLost(f"{self.channel}: {exc}"))
        finally:
            # Closing the connection ends the subscription. Errors here are swallowed: when
            # the task is cancelled, an error raised in this clean-up would replace the
            # cancellation.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()


    def _lost(self, backlog: asyncio.Queue[dict[str, Any] | RedisError], error: RedisError) -> None:
        """What the follower had not read is dropped and nothing more is queued for it: it reads
        the error next (and follows again, anew)."""
        self._followers.discard(backlog)
        while not backlog.empty():
            backlog.get_nowait()
        backlog.put_nowait(error)


class LiveLost(RedisError):
    """Changes of the live channel were lost to a follower (connection lost, or it lagged)."""


def _need_text(redis: aioredis.Redis, who: str) -> None:
    if not redis.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError(f"{who} needs a Redis client made with decode_responses=True")
