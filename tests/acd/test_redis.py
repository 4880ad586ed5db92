"""Reservation and live state against the real Redis, under this test's own key prefix."""
from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.errors import ReservationError
from callcenter.acd.live import LiveState
from callcenter.acd.reservation import Reservations, mirror_event, restore_events

from ..conftest import REDIS_URL
from .conftest import make_acd

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def second_client(redis_client: tuple[aioredis.Redis, str]) -> Any:
    """Another connection pool: the second engine."""
    other = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield other
    await other.aclose()


async def test_no_double_reservation_under_contention(redis_client: tuple[aioredis.Redis, str],
                                                      second_client: aioredis.Redis) -> None:
    client, prefix = redis_client
    engines = [Reservations(client, prefix, "e1"), Reservations(second_client, prefix, "e2")]
    agents = [f"a{n}" for n in range(20)]
    for a in agents:
        await engines[0].save_agent(a, "available", endpoint=f"PJSIP/{a}", skills={"general": 1})

    async def reserver(engine: Reservations, n: int) -> list[tuple[str, str, str]]:
        won = []
        for k in range(60):
            agent = random.choice(agents)
            call = f"{engine.engine_id}-{n}-{k}"
            if await engine.reserve(agent, call, ttl_s=30):
                won.append((agent, engine.engine_id, call))
        return won

    results = await asyncio.gather(*(reserver(engines[n % 2], n) for n in range(16)))
    winners = [w for r in results for w in r]
    held = [a for a, _, _ in winners]
    assert len(held) == len(set(held)), "an agent was reserved twice"
    assert set(held) == set(agents)          # with 960 tries every agent got reserved once
    for agent, engine_id, call in winners:
        assert await engines[0].holder(agent) == (engine_id, call)


async def test_release_and_confirm_only_by_the_holder(redis_client: tuple[aioredis.Redis, str]) -> None:
    client, prefix = redis_client
    e1, e2 = Reservations(client, prefix, "e1"), Reservations(client, prefix, "e2")
    await e1.save_agent("a1", "available", endpoint="PJSIP/a1", skills={})
    assert await e1.reserve("a1", "c1", 5)
    assert not await e2.reserve("a1", "c2", 5)
    assert not await e2.release("a1", "c1")          # not its hold
    assert not await e1.confirm("a1", "c9", 60)      # not that call
    assert await e1.confirm("a1", "c1", 60)
    assert 5_000 < await client.pttl(f"{prefix}agent:a1:hold") <= 60_000
    assert await e1.release("a1", "c1")
    assert await e1.holder("a1") is None
    assert await e2.reserve("a1", "c2", 5)


async def test_reservation_expires_when_an_engine_dies(redis_client: tuple[aioredis.Redis, str]) -> None:
    client, prefix = redis_client
    e1, e2 = Reservations(client, prefix, "e1"), Reservations(client, prefix, "e2")
    await e1.save_agent("a1", "available", endpoint="PJSIP/a1", skills={})
    assert await e1.reserve("a1", "c1", 0.1)
    await asyncio.sleep(0.2)
    assert await e2.reserve("a1", "c2", 5)


@pytest.mark.parametrize(("state", "reservable"), [
    ("available", True), ("ringing", True), ("paused", False), ("on_call", False), ("wrap_up", False), (None, False),
])
async def test_only_a_free_logged_in_agent_can_be_reserved(redis_client: tuple[aioredis.Redis, str],
                                                           state: str | None, reservable: bool) -> None:
    client, prefix = redis_client
    r = Reservations(client, prefix, "e1")
    if state is not None:
        await r.save_agent("a1", state, endpoint="PJSIP/a1", skills={})
    assert await r.reserve("a1", "c1", 5) is reservable


async def test_bad_arguments_are_named(redis_client: tuple[aioredis.Redis, str]) -> None:
    client, prefix = redis_client
    with pytest.raises(ReservationError, match="engine id 'a b'"):
        Reservations(client, prefix, "a b")
    with pytest.raises(ReservationError, match="TTL 0 s must be positive"):
        await Reservations(client, prefix, "e1").reserve("a1", "c1", 0)
    raw = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        with pytest.raises(ValueError, match="decode_responses=True"):
            LiveState(raw, prefix, "e1")
    finally:
        await raw.aclose()


async def test_agent_states_survive_a_restart(redis_client: tuple[aioredis.Redis, str]) -> None:
    client, prefix = redis_client
    r = Reservations(client, prefix, "e1")
    await r.save_agent("a1", "available", endpoint="PJSIP/a1", skills={"general": 3})
    await r.save_agent("a2", "available", endpoint="PJSIP/a2", skills={"general": 1, "leak": 2})
    await r.save_agent("a2", "paused", "training")
    await r.save_agent("a3", "available", endpoint="PJSIP/a3", skills={"general": 1})
    await r.save_agent("a3", "logged_out")
    await r.save_agent("a4", "on_call", endpoint="PJSIP/a4", skills={"billing": 1})
    await r.keep_callback("c1", "general", "13800000000", 0, arrival=1000.0)
    # the engine restarts: heartbeat gone, a new core is rebuilt from Redis
    restarted = Reservations(client, prefix, "e1")
    records = await restarted.load_agents()
    callbacks = await restarted.claim_orphan_callbacks()
    acd = make_acd()
    for event in restore_events(records, callbacks, at=50.0, wall_now=1030.0):
        acd.handle(event)
    states = {v.agent_id: (v.state, v.reason, v.skills) for v in acd.agents()}
    assert states == {
        "a1": ("ringing", None, {"general": 3}),          # available, and took the kept callback
        "a2": ("paused", "training", {"general": 1, "leak": 2}),
        "a4": ("available", None, {"billing": 1}),        # its call died with the engine
    }
    assert acd.call("c1").arrival == pytest.approx(20.0)  # waited 30 s before the restart
    assert acd.call("c1").state == "calling_back"


async def test_orphan_callbacks_are_taken_over_once(redis_client: tuple[aioredis.Redis, str],
                                                   second_client: aioredis.Redis) -> None:
    client, prefix = redis_client
    e1, e2, e3 = (Reservations(client, prefix, "e1"), Reservations(second_client, prefix, "e2"),
                  Reservations(second_client, prefix, "e3"))
    await e1.heartbeat(0.2)
    await e1.keep_callback("c1", "general", "13800000000", 2, arrival=5.0)
    assert await e2.claim_orphan_callbacks() == []        # e1 is alive
    await asyncio.sleep(0.3)
    await e2.heartbeat(5)
    await e3.heartbeat(5)
    assert await e2.engines_alive() == ["e2", "e3"]
    taken = await asyncio.gather(e2.claim_orphan_callbacks(), e3.claim_orphan_callbacks())
    owners = [cb.engine for batch in taken for cb in batch]
    assert len(owners) == 1                                # exactly one engine took it
    await e2.drop_callback("c1")
    assert await client.smembers(f"{prefix}callbacks") == set()


def test_mirror_events_from_another_engine() -> None:
    ready = {"kind": "agent", "id": "a1", "data": {"state": "available", "engine": "e2"}}
    busy = {"kind": "agent", "id": "a1", "data": {"state": "on_call", "engine": "e2"}}
    assert mirror_event(ready, "e1", "paused", 3.0) == ev.AgentReady("a1", 3.0)
    assert mirror_event(busy, "e1", "available", 3.0) == ev.AgentPaused("a1", "elsewhere", 3.0)
    assert mirror_event(busy, "e2", "available", 3.0) is None        # its own update
    assert mirror_event({"kind": "agent", "id": "a1", "data": None}, "e1", "paused", 3.0) == ev.AgentLoggedOut("a1", 3.0)
    assert mirror_event({"kind": "queue", "id": "general", "data": {}}, "e1", "paused", 3.0) is None


async def test_live_snapshot_shape_and_updates(redis_client: tuple[aioredis.Redis, str],
                                               second_client: aioredis.Redis) -> None:
    client, prefix = redis_client
    e1, e2 = LiveState(client, prefix, "e1"), LiveState(second_client, prefix, "e2")
    received: list[dict[str, Any]] = []

    async def follow() -> None:
        stream = e2.updates()
        try:
            async for update in stream:
                received.append(update)
        finally:
            await stream.aclose()

    task = asyncio.create_task(follow())
    for _ in range(100):
        if (await client.pubsub_numsub(e1.channel))[0][1] == 1:
            break
        await asyncio.sleep(0.02)
    acd: Acd = make_acd()
    at = 0.0
    out = acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1, "leak": 1}, at))
    out += acd.handle(ev.CallQueued("c1", "general", at, caller="13900000000"))
    out += acd.handle(ev.CallQueued("c2", "general", at, caller="13700000000"))
    await e1.publish_changes(out, acd, NOW, at)
    await e2.publish_queue("general", 3, 42.0, 1)
    await e1.heartbeat(NOW)
    await e2.heartbeat(NOW + timedelta(seconds=1))
    snap = await e1.snapshot()
    assert snap == {
        "queues": {"general": {"waiting": 5, "longest_wait_s": 42.0, "callbacks": 1}},
        "agents": {"a1": {"state": "ringing", "since": NOW.isoformat(), "reason": None,
                          "queues": ["general", "leak"], "call_id": "c1", "engine": "e1"}},
        "calls": {
            "c1": {"caller": "13900000000", "queue": "general", "state": "ringing", "since": NOW.isoformat(),
                   "agent_id": "a1", "engine": "e1"},
            "c2": {"caller": "13700000000", "queue": "general", "state": "waiting", "since": NOW.isoformat(),
                   "agent_id": None, "engine": "e1"},
        },
        "engines": {"e1": {"seen": NOW.isoformat()}, "e2": {"seen": (NOW + timedelta(seconds=1)).isoformat()}},
    }
    out = acd.handle(ev.CallLeft("c2", 1.0))
    await e1.publish_changes(out, acd, NOW, 1.0)
    for _ in range(100):
        if any(u["kind"] == "call" and u["id"] == "c2" and u["data"] is None for u in received):
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    kinds = [(u["kind"], u["id"]) for u in received]
    assert ("agent", "a1") in kinds and ("queue", "general") in kinds and ("engine", "e2") in kinds
    assert {"kind": "call", "id": "c2", "data": None} in received
    await e1.forget_engine("e1")
    snap = await e2.snapshot()
    assert snap["agents"] == {} and snap["calls"] == {} and list(snap["engines"]) == ["e2"]
    assert snap["queues"] == {"general": {"waiting": 3, "longest_wait_s": 42.0, "callbacks": 1}}
