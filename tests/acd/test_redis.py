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
from callcenter.acd.reservation import AgentRecord, Reservations, converge, restore_callbacks

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
    for record in records:
        for event in converge(None, record, None, "e1", 50.0):
            acd.handle(event)
    states = {v.agent_id: (v.state, v.reason, v.skills) for v in acd.agents()}
    assert states == {
        "a1": ("available", None, {"general": 3}),
        "a2": ("paused", "training", {"general": 1, "leak": 2}),
        "a4": ("paused", "elsewhere", {"billing": 1}),   # its call is adopted first (calls/shared.py)
    }
    for event in restore_callbacks(callbacks, at=50.0, wall_now=1030.0):
        acd.handle(event)
    assert acd.call("c1").arrival == pytest.approx(20.0)  # waited 30 s before the restart
    assert acd.call("c1").state == "calling_back" and acd.agent("a1").state == "ringing"


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


def _record(state: str, engine: str, reason: str | None = None) -> AgentRecord:
    return AgentRecord("a1", state, reason, "PJSIP/a1", {"general": 1}, engine, 0.0)


def _local(state: str, reason: str | None = None) -> Any:
    acd = make_acd()
    acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 0.0))
    if state == "paused":
        acd.handle(ev.AgentPaused("a1", reason or "break", 1.0))
    elif state == "ringing":
        acd.handle(ev.CallQueued("c1", "general", 1.0))
    return acd.agent("a1")


@pytest.mark.parametrize(("local", "record", "held_by", "expected"), [
    # another engine's word wins
    (("available",), ("on_call", "e2"), None, [ev.AgentPaused("a1", "elsewhere", 3.0)]),
    (("available",), ("available", "e2"), "e2", [ev.AgentPaused("a1", "elsewhere", 3.0)]),   # held there
    (("paused", "elsewhere"), ("available", "e2"), None, [ev.AgentReady("a1", 3.0)]),
    (("available",), ("paused", "e2", "meeting"), None, [ev.AgentPaused("a1", "meeting", 3.0)]),
    (("paused", "break"), ("available", "e2"), None, [ev.AgentReady("a1", 3.0)]),           # ready pressed there
    (("paused", "elsewhere"), None, None, [ev.AgentLoggedOut("a1", 3.0)]),
    (None, ("paused", "e2", "training"), None, [ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 3.0),
                                                ev.AgentPaused("a1", "training", 3.0)]),
    # already in line, or this engine's own business
    (("paused", "elsewhere"), ("wrap_up", "e2"), None, []),
    (("available",), ("available", "e1"), None, []),
    (("paused", "break"), ("available", "e1"), None, []),        # its own record: the core knows better
    (("ringing",), ("paused", "e2", "meeting"), None, []),        # its own call goes on
    (None, None, None, []),
    (("paused", "elsewhere"), ("available", "e1"), None, [ev.AgentReady("a1", 3.0)]),      # a stale mirror
    (("paused", "elsewhere"), ("wrap_up", "e1"), None, [ev.AgentReady("a1", 3.0)]),        # its call is over
    (None, ("on_call", "e1"), None, [ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 3.0),   # restarted:
                                     ev.AgentPaused("a1", "elsewhere", 3.0)]),                  # adoption decides
    (("available",), ("dancing", "e2"), None, [ev.AgentPaused("a1", "elsewhere", 3.0)]),    # not understood: busy
])
def test_converge_brings_a_core_in_line_with_the_shared_record(local: tuple[str, ...] | None,
                                                               record: tuple[str, ...] | None,
                                                               held_by: str | None, expected: list[ev.Event]) -> None:
    view = None if local is None else _local(*local)
    shared = None if record is None else _record(*record)
    assert converge(view, shared, held_by, "e1", 3.0) == expected


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
                          "queues": ["general", "leak"], "call_id": "c1", "phone_reachable": True,
                          "engine": "e1"}},
        "calls": {
            "c1": {"caller": "13900000000", "queue": "general", "state": "ringing", "since": NOW.isoformat(),
                   "agent_id": "a1", "priority": 0, "engine": "e1"},
            "c2": {"caller": "13700000000", "queue": "general", "state": "waiting", "since": NOW.isoformat(),
                   "agent_id": None, "priority": 0, "engine": "e1"},
        },
        "engines": {"e1": {"seen": NOW.isoformat()}, "e2": {"seen": (NOW + timedelta(seconds=1)).isoformat()}},
        "screen_pops": {},
    }
    # An agent's latest screen pop is kept (one per agent) for a page that was away when it rang.
    await e1.publish_screen_pop("a1", {"call_id": "c1", "caller": "13900000000"})
    await e1.publish_screen_pop("a1", {"call_id": "c3", "caller": "13900000001"})
    assert (await e1.snapshot())["screen_pops"] == {"a1": {"call_id": "c3", "caller": "13900000001"}}
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


async def test_live_state_says_when_an_agents_phone_goes_and_comes_back(redis_client: tuple[aioredis.Redis, str]) -> None:
    client, prefix = redis_client
    live, acd = LiveState(client, prefix, "e1"), make_acd()
    await live.publish_changes(acd.handle(ev.AgentLoggedIn("a1", "PJSIP/a1", {"general": 1}, 10.0)), acd, NOW, 10.0)
    out = acd.handle(ev.PhoneUnreachable("PJSIP/a1", 40.0))
    await live.publish_changes(out, acd, NOW + timedelta(seconds=30), 40.0)
    row = (await live.snapshot())["agents"]["a1"]
    # The state and its time are kept (available since login), the phone's news is added.
    assert (row["state"], row["since"], row["phone_reachable"]) == ("available", NOW.isoformat(), False)
    out = acd.handle(ev.PhoneReachable("PJSIP/a1", 50.0))
    await live.publish_changes(out, acd, NOW + timedelta(seconds=40), 50.0)
    assert (await live.snapshot())["agents"]["a1"]["phone_reachable"] is True


async def _subscriptions(client: aioredis.Redis, channel: str) -> int:
    return int((await client.pubsub_numsub(channel))[0][1])


async def test_the_followers_of_one_engine_share_one_subscription(redis_client: tuple[aioredis.Redis, str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The web's fan-out and the shared hotline both follow the live changes: one subscription
    for the engine, each gets every change; one that falls behind loses them and is told so."""
    from callcenter.acd import live as live_module

    client, prefix = redis_client
    live = LiveState(client, prefix, "e1")
    monkeypatch.setattr(live_module, "FOLLOWER_BACKLOG", 3)
    heard: dict[str, list[str]] = {"fan-out": [], "reconcile": []}
    lost: list[Exception] = []

    async def follow(name: str, slow: asyncio.Event | None = None) -> None:
        try:
            async for change in live.updates():
                heard[name].append(change["id"])
                if slow is not None:
                    await slow.wait()
        except live_module.LiveLost as exc:
            lost.append(exc)

    stuck = asyncio.Event()
    followers = [asyncio.create_task(follow("fan-out")), asyncio.create_task(follow("reconcile", stuck))]
    async with asyncio.timeout(5):
        while await _subscriptions(client, live.channel) != 1:   # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)
    for n in range(6):
        await live.publish_agent(f"a{n}", "available", NOW)
    async with asyncio.timeout(5):
        while len(heard["fan-out"]) < 6:   # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)
    stuck.set()                            # the slow one reads on: it is told what it lost
    async with asyncio.timeout(5):
        while not lost:                    # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)
    assert heard["fan-out"] == [f"a{n}" for n in range(6)]
    assert heard["reconcile"] == ["a0"] and "fell 3 changes behind" in str(lost[0])   # stuck on its first
    assert await _subscriptions(client, live.channel) == 1
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    async with asyncio.timeout(5):
        while await _subscriptions(client, live.channel) != 0:   # noqa: ASYNC110 (bounded): the last one gone
            await asyncio.sleep(0.01)
