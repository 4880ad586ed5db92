"""The engine's side of sharing the hotline (calls/shared.py), against the real Redis with a
core of its own and no Asterisk: who takes a call, agents reserved across engines, and what
happens when Redis is gone. The whole path with Asterisk is in tests/e2e/test_two_engines.py."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.live import LiveState
from callcenter.acd.settings import RoutingPolicy
from callcenter.calls.shared import SharedHotline
from callcenter.clock import ManualClock
from callcenter.config import Settings

from .conftest import REDIS_URL


class CoreOnly:
    """What SharedHotline needs of an engine: its id, settings, clock and ACD core."""

    def __init__(self, engine_id: str, settings: Settings) -> None:
        self.engine_id, self.settings = engine_id, settings
        self.clock = ManualClock()
        self.acd = Acd(RoutingPolicy.from_settings(settings))
        self.sessions: dict[str, Any] = {}
        self.shared: SharedHotline | None = None
        self.store = SimpleNamespace(open_calls_of=_no_calls)
        self.timers: list[Any] = []

    async def feed_acd(self, event: Any, mirrored: str | None = None) -> None:
        commands = self.acd.handle(event)
        self.timers += [c.event for c in commands if isinstance(c, cmd.StartTimer)]
        if self.shared is not None:
            first = next((c for c in commands if getattr(c, "agent_id", None) == mirrored
                          and type(c).__name__ == "AgentStateChanged"), None)
            self.shared.observe([c for c in commands if c is not first])


async def _no_calls(engine_id: str) -> list[Any]:
    return []


@pytest.fixture
async def two(settings: Settings) -> Any:
    clients = [aioredis.Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(2)]
    engines = []
    for n, client in enumerate(clients):
        engine = CoreOnly(f"e{n + 1}", settings)
        SharedHotline(engine, LiveState(client, settings.redis.prefix, engine.engine_id))  # type: ignore[arg-type]
        engines.append(engine)
    for engine in engines:
        await engine.shared.start()
    yield engines
    for engine in engines:
        await engine.shared.stop()
    keys = [k async for k in clients[0].scan_iter(match=settings.redis.prefix + "*", count=500)]
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


async def test_each_call_is_taken_by_exactly_one_engine_and_calls_spread(two: list[CoreOnly]) -> None:
    for engine in two:
        await engine.shared.tick()                      # each sees the other alive
    ids = [f"1700000000.{n}" for n in range(60)]
    taken = await asyncio.gather(*(asyncio.gather(two[0].shared.claim(u), two[1].shared.claim(u)) for u in ids))
    assert all(sorted(pair) == [False, True] for pair in taken)
    first = sum(1 for a, _ in taken if a)
    assert 15 <= first <= 45, first                      # spread, not all to the faster engine


async def test_an_agent_logged_in_on_one_engine_is_rung_by_one_engine_at_a_time(two: list[CoreOnly]) -> None:
    e1, e2 = two
    await e1.feed_acd(ev.AgentLoggedIn("1001", "PJSIP/1001", {"general": 1}, 0.0))
    await asyncio.wait_for(e1.shared._writes.join(), 5)
    await e2.shared.reconcile_agents()
    assert e2.acd.agent("1001").state == "available"      # the other engine knows the agent now
    # both cores pick the agent for a caller of their own at the same moment
    await e1.feed_acd(ev.CallQueued("c1", "general", 1.0))
    await e2.feed_acd(ev.CallQueued("c2", "general", 1.0))
    held = await asyncio.gather(e1.shared.reserve("1001", "c1", 15), e2.shared.reserve("1001", "c2", 15))
    assert sorted(held) == [False, True]
    loser = e1 if not held[0] else e2
    await loser.feed_acd(ev.AgentRingFailed("c1" if loser is e1 else "c2", "1001", "reserved", 2.0))
    assert (loser.acd.agent("1001").state, loser.acd.agent("1001").reason) == ("paused", "elsewhere")
    # the winner's agent answers, talks and is done: the loser's core gets the agent back
    winner = e2 if loser is e1 else e1
    call = "c2" if winner is e2 else "c1"
    await winner.feed_acd(ev.AgentAnswered(call, "1001", 3.0))
    await winner.feed_acd(ev.CallEnded(call, 10.0))
    await asyncio.wait_for(winner.shared._writes.join(), 5)
    await loser.shared.reconcile_agents()
    assert loser.acd.agent("1001").reason == "elsewhere"                # still in wrap-up over there
    wrap_up_ends = [e for e in winner.timers if isinstance(e, ev.WrapUpEnded)]
    await winner.feed_acd(wrap_up_ends[-1])
    await asyncio.wait_for(winner.shared._writes.join(), 5)
    await loser.shared.reconcile_agents()
    assert loser.acd.agent("1001").state in ("available", "ringing")   # free again, maybe rung for its caller


async def test_without_redis_the_engine_still_takes_its_calls_and_rings_its_agents(settings: Settings) -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    engine = CoreOnly("alone", settings)
    shared = SharedHotline(engine, LiveState(dead, settings.redis.prefix, "alone"))  # type: ignore[arg-type]
    try:
        await shared.start()                              # says what is wrong, does not stop the hotline
        assert await shared.claim("1700000000.1") is True
        assert await asyncio.wait_for(shared.reserve("1001", "c1", 15), 5) is True
        assert await shared.lead() is False               # once-only duties wait for Redis
    finally:
        await shared.stop()
        await dead.aclose()


async def test_a_stop_that_lands_in_a_tick_which_swallows_it_still_stops(settings: Settings) -> None:
    """Python 3.11's wait_for (and timeouts inside libraries) can swallow a cancellation that
    arrives as the awaited call completes; the tick loop must still end, or the engine's stop hangs."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    engine = CoreOnly("e1", settings)
    shared = SharedHotline(engine, LiveState(client, settings.redis.prefix, "e1"))  # type: ignore[arg-type]
    await shared.start()
    in_tick = asyncio.Event()

    async def swallowing_tick() -> None:
        in_tick.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass

    shared.tick = swallowing_tick  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(in_tick.wait(), 10)
        stopping = asyncio.create_task(shared.stop())
        await asyncio.wait({stopping}, timeout=10)
        assert stopping.done(), "the shared-state tick loop never ended: the engine's stop would hang"
    finally:
        keys = [k async for k in client.scan_iter(match=settings.redis.prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
