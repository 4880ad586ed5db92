"""Routing benchmark: the pure ACD core at hotline scale, then with Redis reservation.

1,000 agents (3 queues each, skill levels 1..5), 50 queues, 10,000 callers waiting. A
simulated engine answers 95% of rings, fails 5%, ends calls, fires wrap-up timers, lets some
callers hang up and keeps new callers arriving so the line stays at 10,000. Each `handle()`
is one decision; its latency is timed alone. The Redis path adds what the engine does per
decision: reserve the agent for every ring (Lua), confirm on answer, release on failure or end.

    .venv/bin/python bench/routing.py [--runs 5] [--decisions 100000] [--redis-decisions 5000]

Writes bench/results/routing.json (median of the runs) and prints it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import time
import tracemalloc
import uuid
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from benchinfo import machine

from callcenter.acd import commands as cmd
from callcenter.acd import events as ev
from callcenter.acd.core import Acd
from callcenter.acd.settings import RoutingPolicy

AGENTS = 1_000
QUEUES = 50
WAITING = 10_000
RESULTS = Path(__file__).with_name("results") / "routing.json"
GOALS = {"core_decisions_per_s": 50_000, "core_p99_ms": 1.0, "redis_decisions_per_s": 2_000,
         "redis_p99_ms": 10.0, "memory_mb": 300}


def build(seed: int) -> tuple[Acd, random.Random, list[str]]:
    rng = random.Random(seed)
    queues = [f"q{n:02d}" for n in range(QUEUES)]
    policy = RoutingPolicy.model_validate({
        "acd": {"wrapup_s": 10, "auto_pause_after_no_answers": 0},
        "queues": [{"name": q, "category": "leak" if n % 10 == 0 else "other",
                    **({"initial_skill_level": 3, "widen_after_s": 30} if n % 5 == 0 else {})}
                   for n, q in enumerate(queues)],
    })
    acd = Acd(policy)
    for n in range(WAITING):
        acd.handle(ev.CallQueued(f"w{n}", rng.choice(queues), 0.0, priority=rng.choice((0, 0, 0, 1, 2))))
    return acd, rng, queues


class Simulation:
    """A stand-in engine: turns commands into the events Asterisk and agents would send."""

    def __init__(self, acd: Acd, rng: random.Random, queues: list[str]) -> None:
        self.acd, self.rng, self.queues = acd, rng, queues
        self.pending: deque[ev.Event] = deque()
        self.timers: deque[ev.WrapUpEnded] = deque()
        self.now = 1.0
        self.next_call = 0

    def absorb(self, out: list[cmd.Command]) -> None:
        for c in out:
            if isinstance(c, cmd.RingAgent | cmd.PlaceCallback):
                if self.rng.random() < 0.05:
                    self.pending.append(ev.AgentRingFailed(c.call_id, c.agent_id, "no_answer", self.now))
                else:
                    self.pending.append(ev.AgentAnswered(c.call_id, c.agent_id, self.now))
            elif isinstance(c, cmd.StartTimer):
                self.timers.append(c.event)

    def next_event(self, step: int) -> ev.Event:
        self.now += 0.001
        if step % 500 == 0:
            return ev.Tick(self.now)
        if step % 3 == 0 and len(self.acd._calls) < WAITING + AGENTS:
            self.next_call += 1
            return ev.CallQueued(f"n{self.next_call}", self.rng.choice(self.queues), self.now,
                                 priority=self.rng.choice((0, 0, 0, 1, 2)), vip=self.rng.random() < 0.02)
        if step % 50 == 1:
            call_id = f"w{self.rng.randrange(WAITING)}"
            if call_id in self.acd._calls and self.acd._calls[call_id].state == "waiting":
                return ev.CallLeft(call_id, self.now)
        if self.timers and (step % 3 == 2 or not self.pending):
            t = self.timers.popleft()
            return ev.WrapUpEnded(t.agent_id, t.token, self.now)
        if self.pending:
            e = self.pending.popleft()
            if isinstance(e, ev.AgentAnswered):
                self.pending.append(ev.CallEnded(e.call_id, self.now))
            return e
        return ev.Tick(self.now)


def login_all(acd: Acd, rng: random.Random, queues: list[str], sim: Simulation) -> None:
    for n in range(AGENTS):
        skills = {q: rng.randint(1, 5) for q in rng.sample(queues, 3)}
        sim.absorb(acd.handle(ev.AgentLoggedIn(f"a{n:04d}", f"PJSIP/a{n:04d}", skills, 0.5)))


def run_core(decisions: int, seed: int) -> dict[str, float]:
    acd, rng, queues = build(seed)
    sim = Simulation(acd, rng, queues)
    login_all(acd, rng, queues, sim)
    latencies = []
    perf = time.perf_counter_ns
    handle = acd.handle
    started = perf()
    for step in range(decisions):
        event = sim.next_event(step)
        t0 = perf()
        out = handle(event)
        latencies.append(perf() - t0)
        sim.absorb(out)
    wall = (perf() - started) / 1e9
    latencies.sort()
    busy = sum(latencies) / 1e9
    waiting = sum(acd.queue_stats(q, sim.now).waiting + acd.queue_stats(q, sim.now).callbacks for q in queues)
    return {
        "decisions_per_s": decisions / busy,
        "loop_events_per_s": decisions / wall,
        "p50_ms": latencies[len(latencies) // 2] / 1e6,
        "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
        "max_ms": latencies[-1] / 1e6,
        "waiting_at_end": waiting,
    }


def core_memory(seed: int) -> dict[str, float]:
    tracemalloc.start()
    acd, rng, queues = build(seed)
    sim = Simulation(acd, rng, queues)
    login_all(acd, rng, queues, sim)
    for step in range(20_000):
        sim.absorb(acd.handle(sim.next_event(step)))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc_peak_mb": peak / 2**20}


async def run_redis(decisions: int, seed: int, url: str) -> dict[str, float]:
    import redis.asyncio as aioredis

    from callcenter.acd.reservation import Reservations

    client = aioredis.Redis.from_url(url, decode_responses=True)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    try:
        book = Reservations(client, prefix, "bench")
        acd, rng, queues = build(seed)
        sim = Simulation(acd, rng, queues)
        async with client.pipeline(transaction=False) as pipe:
            for n in range(AGENTS):
                pipe.hset(f"{prefix}agent:a{n:04d}", mapping={"state": "available", "endpoint": f"PJSIP/a{n:04d}"})
            await pipe.execute()
        out_login: list[cmd.Command] = []
        for n in range(AGENTS):
            skills = {q: rng.randint(1, 5) for q in rng.sample(queues, 3)}
            out_login += acd.handle(ev.AgentLoggedIn(f"a{n:04d}", f"PJSIP/a{n:04d}", skills, 0.5))
        for c in out_login:
            if isinstance(c, cmd.RingAgent):
                await book.reserve(c.agent_id, c.call_id, 30)
        sim.absorb(out_login)

        async def carry_out(event: ev.Event, out: list[cmd.Command]) -> None:
            waits: list[Awaitable[Any]] = []
            if isinstance(event, ev.AgentAnswered):
                waits.append(book.confirm(event.agent_id, event.call_id, 3600))
            elif isinstance(event, ev.AgentRingFailed):
                waits.append(book.release(event.agent_id, event.call_id))
            elif isinstance(event, ev.CallEnded):
                agent_id = holders.pop(event.call_id, None)
                if agent_id:
                    waits.append(book.release(agent_id, event.call_id))
            for c in out:
                if isinstance(c, cmd.RingAgent):
                    holders[c.call_id] = c.agent_id
                    waits.append(book.reserve(c.agent_id, c.call_id, 30))
            for w in waits:
                await w

        holders: dict[str, str] = {}
        latencies = []
        perf = time.perf_counter_ns
        started = perf()
        for step in range(decisions):
            event = sim.next_event(step)
            t0 = perf()
            out = acd.handle(event)
            await carry_out(event, out)
            latencies.append(perf() - t0)
            sim.absorb(out)
        wall = (perf() - started) / 1e9
        latencies.sort()
        return {
            "decisions_per_s": decisions / wall,
            "p50_ms": latencies[len(latencies) // 2] / 1e6,
            "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
        }
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for n in range(0, len(keys), 500):
            await client.delete(*keys[n:n + 500])
        await client.aclose()


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}



def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--redis-decisions", type=int, default=5_000)
    parser.add_argument("--redis-url", default=os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)

    core_runs = [run_core(args.decisions, seed) for seed in range(args.runs)]
    memory = core_memory(0)
    redis_runs: list[dict[str, float]] = []
    redis_error = None
    try:
        for seed in range(args.runs):
            redis_runs.append(asyncio.run(run_redis(args.redis_decisions, seed, args.redis_url)))
    except OSError as exc:
        redis_error = f"Redis at {args.redis_url} not reachable: {exc}"
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    core = median_of(core_runs)
    result: dict[str, Any] = {
        "benchmark": "routing",
        "scale": {"agents": AGENTS, "queues": QUEUES, "waiting_calls": WAITING},
        "runs": args.runs,
        "core": {**core, "decisions_per_run": args.decisions},
        "memory": {**{k: round(v, 1) for k, v in memory.items()}, "peak_rss_mb": round(rss_mb, 1)},
        "redis": ({**median_of(redis_runs), "decisions_per_run": args.redis_decisions} if redis_runs
                  else {"error": redis_error}),
        "goals": GOALS,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    met: dict[str, bool] = {
        "core_decisions_per_s": core["decisions_per_s"] >= GOALS["core_decisions_per_s"],
        "core_p99_ms": core["p99_ms"] <= GOALS["core_p99_ms"],
        "memory_mb": rss_mb <= GOALS["memory_mb"],
    }
    if redis_runs:
        met["redis_decisions_per_s"] = result["redis"]["decisions_per_s"] >= GOALS["redis_decisions_per_s"]
        met["redis_p99_ms"] = result["redis"]["p99_ms"] <= GOALS["redis_p99_ms"]
    result["goals_met"] = met
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result



if __name__ == "__main__":
    main()
