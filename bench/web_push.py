"""Live push to the pages: one engine, 500 agent pages and 20 wallboards on /ws/live.

One engine (the real `Engine` on the fake AMI server of the tests, a SQLite database, a real
Redis under a key prefix of the run's own, deleted after) serves the web app in its process,
as `callcenter serve` does. 500 agents are logged in; calls come in at --rate calls/s: each
is answered by the engine, goes through the menu into the queue and rings an agent; the agent
answers (an AMI DialEnd) and the caller hangs up after --talk seconds (an AMI Hangup).

The clients run in a second process (so the engine's RSS is the engine's): one websocket per
agent page (signed in as that agent) and one per wallboard (a supervisor). The figure is, for
every DialEnd and Hangup the fake Asterisk sends, the time from that moment to each client
receiving the agent's new state (on_call, wrap_up): every wallboard and the agent's own desk
(desks open the socket with ?view=desk and hear colleagues only when they become free or busy)
— CLOCK_MONOTONIC, which both processes
share. Also the engine's peak RSS and the number of Redis subscriptions on the live channel
(one per engine: the sockets share it).

    .venv/bin/python bench/web_push.py [--rate 20] [--seconds 20] [--agents 500] [--wallboards 20]

Writes bench/results/web_push.json and prints it. Goals: p99 ≤ 200 ms, RSS ≤ 300 MB, one
Redis subscription per engine.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from benchinfo import machine  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "web_push.json"
GOALS = {"p99_ms": 200.0, "rss_mb": 300.0, "redis_subscriptions": 1}
REDIS_URL = "redis://127.0.0.1:6379/0"
DIAL = re.compile(r"EXEC Dial \"?PJSIP/(\w+)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ the clients (second process)

async def clients_main(base_url: str, tokens: list[list[str]]) -> None:   # [token, query, own agent]
    """Connect every client, say "ready", record (time, agent, state) of every agent change until
    stdin brings the events to match, then print the latencies."""
    # Per client: its own agent ("" for a wallboard) and the agent changes it heard.
    records: list[tuple[str, dict[str, list[tuple[float, str]]]]] = []
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    ready = 0
    all_ready = asyncio.Event()

    async def client(token: str, query: str, own: str) -> None:
        nonlocal ready
        mine: dict[str, list[tuple[float, str]]] = defaultdict(list)
        records.append((own, mine))
        async with session.ws_connect(f"{base_url}/ws/live{query}", headers={"Authorization": f"Bearer {token}"},
                                      max_msg_size=0, heartbeat=None) as ws:
            first = True
            async for message in ws:
                if first:
                    first = False
                    ready += 1
                    if ready == len(tokens):
                        all_ready.set()
                    continue
                at = time.monotonic()
                change = json.loads(message.data)
                if change.get("kind") == "agent" and change.get("data"):
                    mine[change["id"]].append((at, change["data"]["state"]))

    tasks = [asyncio.create_task(client(token, query, own)) for token, query, own in tokens]
    await all_ready.wait()
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    events = json.loads(await reader.read())        # [(t0, agent, state)], sent when the run is over
    latencies: list[float] = []
    by_state: dict[str, list[float]] = defaultdict(list)
    slow: list[tuple[float, str, str, str, int]] = []
    missed = 0
    for own, mine in records:
        for t0, agent_id, state in events:
            if own and agent_id != own:
                continue        # a desk hears its own agent's steps (colleagues only when they become free or busy)
            seen = mine.get(agent_id, [])
            i = bisect.bisect_left(seen, (t0, ""))
            found = next((at for at, s in seen[i:] if s == state), None)
            if found is None:
                missed += 1
            else:
                latencies.append((found - t0) * 1000)
                by_state[state].append((found - t0) * 1000)
                if found - t0 > 1.0:
                    slow.append((round(t0, 2), agent_id, state, own or "wallboard", round((found - t0) * 1000)))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    print(json.dumps({"latencies_ms": latencies, "missed": missed, "slow": slow[:50],
                      "by_state": {k: {"p50_ms": round(percentile(v, 50), 1), "p99_ms": round(percentile(v, 99), 1),
                                       "n": len(v)} for k, v in by_state.items()},
                      "clients_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}),
          flush=True)


# ------------------------------------------------------------------ the engine (this process)

async def engine_main(rate: float, seconds: float, n_agents: int, n_wallboards: int, talk_s: float,
                      n_pages: int | None = None) -> dict[str, Any]:
    from callcenter.acd.live import LiveState
    from callcenter.calls.engine import Engine
    from callcenter.config import load_settings
    from callcenter.db import create_engine, make_sessionmaker, migrate
    from callcenter.ivr.model import load_menu
    from callcenter.pages import http as pages_http
    from callcenter.web import access, users
    from callcenter.web.app import init_app
    from callcenter.web.models import User
    from callcenter.workorders import http as orders_http
    from tests.ami.conftest import fast_settings
    from tests.ami.fake_ami import FakeAmi, FakeSession, agi_exec
    from tests.calls.fake_line import SHORT_MENU, agent

    work = Path(tempfile.mkdtemp(prefix="web-push-"))
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    settings = load_settings(overrides={
        "paths": {"spool_dir": str(work / "spool"), "asterisk_config_dir": str(work / "asterisk")},
        "database": {"url": f"sqlite+aiosqlite:///{work / 'calls.db'}"},
        "redis": {"url": REDIS_URL, "prefix": prefix},
        "web": {"secret_key": secrets.token_hex(16), "live_sockets_per_user": 2},
        "ami": {"secret": "bench-secret"},
    })
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    sessionmaker = make_sessionmaker(db)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    agent_ids = [str(3000 + n) for n in range(n_agents)]
    pages = n_agents if n_pages is None else n_pages
    tokens: list[tuple[str, str, str]] = []   # (token, query, own agent): agent pages open the desk's view
    async with sessionmaker() as session, session.begin():
        for n, agent_id in enumerate(agent_ids[:pages] + [f"wall{n}" for n in range(n_wallboards)]):
            is_agent = n < pages
            row = User(username=f"u{agent_id}", password_hash="!", role=access.AGENT if is_agent else access.SUPERVISOR,
                       agent_id=agent_id if is_agent else None)
            session.add(row)
            await session.flush()
            tokens.append((await users.issue_token(session, row), "?view=desk" if is_agent else "",
                           agent_id if is_agent else ""))

    fake = FakeAmi()
    await fake.start()
    sent_at: list[tuple[float, str, str]] = []        # (t0, agent, state) the clients should hear
    dialled: dict[str, str] = {}                      # caller channel -> agent id
    uniqueid_of: dict[str, str] = {}                  # caller channel -> its Uniqueid

    def agi(session: FakeSession, action: dict[str, str]) -> list[dict[str, str] | str]:
        command, channel = action["Command"], action["Channel"]
        queued: list[dict[str, str] | str] = [{"Response": "Success", "ActionID": action["ActionID"],
                                               "Message": "Added AGI command to queue"}]
        found = DIAL.match(command)
        if found:
            dialled[channel] = found.group(1)
            return queued
        reply = "200 result=2" if command.startswith("GET DATA") else "200 result=0"
        return [*queued, agi_exec(channel, uniqueid_of[channel], action["CommandID"], reply)]

    fake.replies["AGI"] = agi
    agents = [agent(a) for a in agent_ids]
    ami = fast_settings(fake.port, action_timeout_s=10.0, ping_interval_s=5.0, ping_timeout_s=5.0)
    settings = settings.model_copy(update={"ami": ami, "agents": agents,
                                           "recording": settings.recording.model_copy(update={"enabled": False})})
    live = LiveState(redis, prefix, "bench")
    engine = Engine(settings, sessionmaker, load_menu(SHORT_MENU), engine_id="bench", live=live)
    await engine.start(wait_s=5)
    for agent_id in agent_ids:
        await engine.login(agent_id)
    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=live, agent_control=engine,
                   route_setups=[orders_http.setup_routes, pages_http.setup_routes])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base_url = str(server.make_url("")).rstrip("/")

    clients = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients", base_url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_BENCH_TOKENS": json.dumps(tokens)})
    assert clients.stdout is not None and clients.stdin is not None
    line = await asyncio.wait_for(clients.stdout.readline(), 300)
    assert line.strip() == b"ready", line
    subscriptions = (await redis.pubsub_numsub(f"{prefix}live"))[0][1]

    peak_rss = rss_mb()
    ami_session = fake.session
    talks: set[asyncio.Task[None]] = set()

    async def one_call(n: int) -> None:
        channel, uniqueid = f"PJSIP/trunk-{n:08x}", f"1732345200.{n}"
        uniqueid_of[channel] = uniqueid
        env = {"agi_request": "async", "agi_channel": channel, "agi_uniqueid": uniqueid,
               "agi_callerid": f"1380013{n % 10000:04d}", "agi_calleridname": "", "agi_extension": "96666",
               "agi_dnid": "96666", "agi_context": "from-trunk", "agi_arg_1": "inbound"}
        text = "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"
        ami_session.send({"Event": "AsyncAGIStart", "Privilege": "agi,all", "Channel": channel,
                          "Uniqueid": uniqueid, "Linkedid": uniqueid, "Env": quote(text, safe="")})
        async with asyncio.timeout(30):
            while channel not in dialled:   # noqa: ASYNC110 (bounded; the fake AMI has no event for it)
                await asyncio.sleep(0.005)
        agent_id = dialled[channel]
        dial = {"Privilege": "call,all", "Channel": channel, "Uniqueid": uniqueid, "Linkedid": uniqueid,
                "DestChannel": f"PJSIP/{agent_id}-{n:08x}", "DestUniqueid": f"{uniqueid}.2",
                "DestLinkedid": uniqueid}
        ami_session.send({"Event": "DialBegin", **dial, "DialString": f"PJSIP/{agent_id}"})
        sent_at.append((time.monotonic(), agent_id, "on_call"))
        ami_session.send({"Event": "DialEnd", **dial, "DialStatus": "ANSWER"})
        await asyncio.sleep(talk_s)
        sent_at.append((time.monotonic(), agent_id, "wrap_up"))
        for leg, leg_id in ((channel, uniqueid), (f"PJSIP/{agent_id}-{n:08x}", f"{uniqueid}.2")):   # both legs, as Asterisk
            ami_session.send({"Event": "Hangup", "Privilege": "call,all", "Channel": leg, "Uniqueid": leg_id,
                              "Linkedid": uniqueid, "Cause": "16", "Cause-txt": "Normal Clearing"})

    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        n += 1
        task = asyncio.create_task(one_call(n))
        talks.add(task)
        task.add_done_callback(talks.discard)
        peak_rss = max(peak_rss, rss_mb())
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    results = await asyncio.gather(*talks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    for error in failed[:3]:
        print("call failed:", repr(error), file=sys.stderr)
    await asyncio.sleep(1.0)   # the last updates on their way to the clients
    peak_rss = max(peak_rss, rss_mb())
    clients.stdin.write(json.dumps(sent_at).encode())
    clients.stdin.close()
    out = json.loads((await asyncio.wait_for(clients.stdout.read(), 600)).decode().strip().splitlines()[-1])
    await clients.wait()
    from callcenter.web.app import LIVE_SOCKETS
    fan_out = app[LIVE_SOCKETS]
    sent = {"frames": fan_out.frames_written, "socket_writes": fan_out.writes,
            "call_record_transactions": engine.store.writer.transactions}
    await server.close()
    await engine.stop()
    await fake.close()
    keys = [k async for k in redis.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    await db.dispose()
    latencies = out["latencies_ms"]
    if out["slow"]:
        first = min(t for t, *_ in sent_at)
        print("slower than 1 s (s after the first event, agent, state, client, ms):",
              [(round(t - first, 2), *rest) for t, *rest in out["slow"]], file=sys.stderr)
    return {"calls": n, "calls_failed": len(failed), "events": len(sent_at), "clients": len(tokens),
            "deliveries": len(latencies), "missed": out["missed"],
            "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None, "by_state": out["by_state"],
            "rss_mb": round(peak_rss, 1), "clients_rss_mb": out["clients_rss_mb"], **sent,
            "redis_subscriptions": subscriptions}


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--clients":
        asyncio.run(clients_main(sys.argv[2], json.loads(os.environ["CALLCENTER_BENCH_TOKENS"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--wallboards", type=int, default=20)
    parser.add_argument("--talk", type=float, default=2.0, help="seconds from answer to hang-up")
    parser.add_argument("--pages", type=int, default=None, help="agent pages connected (default: one per agent)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    runs = [asyncio.run(engine_main(args.rate, args.seconds, args.agents, args.wallboards, args.talk, args.pages))
            for _ in range(args.runs)]
    median = {key: statistics.median(r[key] for r in runs) for key in ("p50_ms", "p99_ms", "rss_mb")
              if all(r[key] is not None for r in runs)}
    result = {"benchmark": "web_push", "rate_calls_per_s": args.rate, "seconds": args.seconds,
              "clients": runs[0]["clients"], **median, "redis_subscriptions": max(r["redis_subscriptions"] for r in runs),
              "runs": runs, "goals": GOALS, "machine": machine()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
