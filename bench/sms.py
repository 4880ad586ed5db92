"""SMS benchmark: one outage notice for one area, N customers, through a real Kannel to
fakesmsc, each message's delivery report stored.

Kannel (bearerbox, smsbox, fakesmsc) runs on loopback ports of its own (scripts/kannel.sh),
the hotline side is the SMS routes and the sender in this process on SQLite, with the
settings' defaults (rate limit 500/s a gateway, 16 sends at a time). `per_s` is N over the
time from the notice to the last delivery report stored; `lost` are customers fakesmsc never
got a message for, `doubled` the messages it got more than once. While the burst runs, a
probe asks this process a trivial HTTP question every 10 ms: `probe_p99_ms` is how long the
answer took (the engine shares its event loop the same way).

    .venv/bin/python bench/sms.py [--count 10000] [--calls-per-s 20]

With --calls-per-s, the burst runs inside the whole hotline instead (`build_hotline` on the
real Asterisk, with its SMS sender on the same Kannel): the notice is entered as a supervisor
would, and SIPp callers dial the hotline at that rate while the messages go out;
`answer_p99_ms` is their INVITE-to-200 OK p99 (goal ≤ 50 ms: a mass notice must not slow the
telephones). Needs the Asterisk root (make test builds it).

Writes bench/results/sms.json (sms_with_calls.json with --calls-per-s) and prints it.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from benchinfo import machine

from callcenter.config import load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.notices.models import Outage
from callcenter.notices.service import NoticeService
from callcenter.sms import http as sms_http
from callcenter.sms.kannel import KannelClient
from callcenter.sms.outages import OutageTexts
from callcenter.sms.sender import SmsSender
from callcenter.sms.service import SmsService
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.workorders.models import Customer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "sms.json"
RESULTS_WITH_CALLS = Path(__file__).with_name("results") / "sms_with_calls.json"
GOALS = {"per_s": 300, "lost": 0, "doubled": 0, "probe_p99_ms": 50}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def received(log: Path) -> list[str]:
    """The receivers of the messages fakesmsc got."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if "Got message" in line:
            out.append(line.split("<", 1)[1].split(" ")[1])
    return out


async def kannel(action: str, folder: Path, sms: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    """Start (on free loopback ports) or stop Kannel and fakesmsc with scripts/kannel.sh; the
    [sms] settings it runs with, and the web port its callbacks go to."""
    if sms is None:
        admin, box, sendsms, carrier, mo, web_port = free_ports(6)
        sms = {"config_dir": str(folder / "kannel"), "admin_port": admin, "smsbox_port": box,
               "sendsms_port": sendsms, "carrier_port": carrier, "mo_inject_port": mo, "sendsms_password": "bench-pw",
               "admin_password": "bench-adm", "mo_token": "bench-mo", "callback_url": f"http://127.0.0.1:{web_port}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update({f"CALLCENTER_SMS__{k.upper()}": str(v) for k, v in sms.items()})
    env.update({"PY": sys.executable, "PYTHONPATH": str(ROOT)})
    await asyncio.to_thread(subprocess.run, [str(ROOT / "scripts" / "kannel.sh"), action], env=env, cwd=ROOT,
                            check=True, capture_output=True)
    return sms, int(sms["callback_url"].rsplit(":", 1)[1])


async def run(count: int, folder: Path, concurrency: int) -> dict[str, Any]:
    sms, web_port = await kannel("start", folder)
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    settings = load_settings(overrides={"database": {"url": url}, "web": {"secret_key": "b" * 32},
                                        "ami": {"secret": "bench"}, "sms": {**sms, "quiet_start": "00:00",
                                                                            "quiet_end": "00:00",
                                                                            "concurrency": concurrency}})
    await migrate(url)
    db = create_engine(url)
    sessionmaker = make_sessionmaker(db)
    numbers = [f"139{n:08d}" for n in range(count)]
    async with sessionmaker() as session, session.begin():
        session.add_all([Customer(number=n, account=f"acct{n}", area="A1") for n in numbers])
        now = datetime.now(UTC)
        outage = Outage(kind="temporary", areas=["A1"], starts_at=now + timedelta(hours=3),
                        ends_at=now + timedelta(hours=8), text="A1片区主管抢修，临时停水", created_at=now, created_by="bench")
        session.add(outage)
    service = SmsService(sessionmaker, settings.sms, settings.hotline.timezone)

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app[SETTINGS], app[SESSIONMAKER], app[sms_http.SMS] = settings, sessionmaker, service
    sms_http.setup_routes(app)
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    sender = SmsSender(service, KannelClient(settings.sms, sms_http.callback_base(settings)))
    stop = asyncio.Event()
    probes: list[float] = []

    async def probe() -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                start = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{web_port}/ping") as r:
                    await r.read()
                probes.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.01)

    texts = OutageTexts(service, NoticeService(sessionmaker, folder / "prompts", settings.hotline.timezone), "96666")
    probe_task = asyncio.create_task(probe())
    started = time.perf_counter()
    added = await texts.send("published", outage)
    enqueued_s = time.perf_counter() - started
    sender_task = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + max(120, count / 50)
    delivered = 0
    while time.monotonic() < deadline:
        counts = await service.counts()
        delivered = counts.get("delivered", 0)
        if delivered >= count:
            break
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(2)   # late doubles would show now
    stop.set()
    await asyncio.gather(sender_task, probe_task)
    counts = await service.counts()
    await runner.cleanup()
    await db.dispose()
    await kannel("stop", folder, sms)
    got = collections.Counter(received(folder / "kannel" / "fakesmsc.log"))
    return {
        "benchmark": "sms", "count": count, "enqueued": added, "enqueue_s": round(enqueued_s, 3),
        "seconds": round(elapsed, 3), "per_s": round(delivered / elapsed, 1), "delivered_with_report": delivered,
        "states": counts, "lost": sum(1 for n in numbers if got[n] == 0),
        "doubled": sum(c - 1 for c in got.values() if c > 1),
        "probe_p50_ms": round(statistics.median(probes), 2) if probes else None,
        "probe_p99_ms": round(statistics.quantiles(probes, n=100)[98], 2) if len(probes) > 100 else None,
        "probes": len(probes),
        "settings": {"rate_per_s": settings.sms.rate_per_s, "concurrency": settings.sms.concurrency,
                     "batch": settings.sms.batch, "database": "sqlite"},
    }


async def run_with_calls(count: int, folder: Path, concurrency: int, calls_per_s: float) -> dict[str, Any]:
    """The burst through the hotline build_hotline builds, with callers dialling it meanwhile."""
    import secrets

    from callcenter.app import build_hotline
    from callcenter.rig import AsteriskRig
    from callcenter.sipp import Sipp, caller_scenario

    sms, web_port = await kannel("start", folder)
    settings = load_settings(overrides={
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'bench.db'}"},
        "web": {"secret_key": secrets.token_hex(16), "host": "127.0.0.1", "port": web_port},
        "ami": {"secret": secrets.token_hex(12)}, "asterisk": {"sip_bind": "127.0.0.1:5060"},
        "paths": {"spool_dir": str(folder / "spool"), "asterisk_config_dir": str(folder / "spool" / "asterisk")},
        "redis": {"prefix": f"ccbench:{secrets.token_hex(4)}:"}, "cluster": {"engine_id": "bench"},
        "sms": {**sms, "quiet_start": "00:00", "quiet_end": "00:00", "concurrency": concurrency}})
    rig = AsteriskRig(settings)
    rig.prepare(prompt_cache=ROOT / "var" / "test-prompts")
    rig.start()
    numbers = [f"139{n:08d}" for n in range(count)]
    try:
        async with build_hotline(settings) as hotline:
            async with hotline.sessionmaker() as session, session.begin():
                session.add_all([Customer(number=n, account=f"acct{n}", area="A1") for n in numbers])
            service = hotline.app[sms_http.SMS]
            sipp = Sipp(settings.paths.spool_dir)
            call_s = max(10.0, count / GOALS["per_s"])          # the callers last as long as the burst may
            calls = int(calls_per_s * call_s)
            callers = await sipp.start("sms_burst_callers", caller_scenario(hangup_after_ms=1500), sip_port=5207,
                                       media_port=48000, service=settings.hotline.number, calls=calls,
                                       rate=calls_per_s, timeout_s=call_s + 120, trace_rtt=True)
            await asyncio.sleep(1)
            started = time.perf_counter()
            now = datetime.now(UTC)
            await hotline.notices.create(kind="temporary", areas=["A1"], starts_at=now + timedelta(hours=3),
                                         ends_at=now + timedelta(hours=8), text="A1片区主管抢修，临时停水", by="bench")
            deadline = time.monotonic() + max(120, count / 50)
            delivered = 0
            while time.monotonic() < deadline:
                delivered = (await service.counts()).get("delivered", 0)
                if delivered >= count:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            code = await callers.wait(call_s + 180)
            await asyncio.sleep(2)
            counts = await service.counts()
            rtt = callers.rtt_ms()
    finally:
        rig.stop()
        await kannel("stop", folder, sms)
    got = collections.Counter(received(folder / "kannel" / "fakesmsc.log"))
    ordered = sorted(rtt)
    return {
        "benchmark": "sms", "through": "build_hotline on the real Asterisk", "count": count,
        "seconds": round(elapsed, 3), "per_s": round(delivered / elapsed, 1), "delivered_with_report": delivered,
        "states": counts, "lost": sum(1 for n in numbers if got[n] == 0),
        "doubled": sum(c - 1 for c in got.values() if c > 1),
        "calls": calls, "calls_per_s": calls_per_s, "calls_answered": len(rtt), "sipp_exit": code,
        "answer_p50_ms": ordered[len(ordered) // 2] if ordered else None,
        "answer_p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] if ordered else None,
        "settings": {"rate_per_s": settings.sms.rate_per_s, "concurrency": settings.sms.concurrency,
                     "batch": settings.sms.batch, "database": "sqlite"},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="sends at a time (sms.concurrency)")
    parser.add_argument("--calls-per-s", type=float, default=0.0, help="run in the hotline with callers at this rate")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        if args.calls_per_s:
            result = asyncio.run(run_with_calls(args.count, Path(folder), args.concurrency, args.calls_per_s))
        else:
            result = asyncio.run(run(args.count, Path(folder), args.concurrency))
    result["goals"] = GOALS
    result["goals_met"] = {"per_s": result["per_s"] >= GOALS["per_s"], "lost": result["lost"] == 0,
                           "doubled": result["doubled"] == 0}
    if "answer_p99_ms" in result:
        result["goals"] = {**GOALS, "answer_p99_ms": 50}
        result["goals_met"]["answer_p99_ms"] = (result["answer_p99_ms"] or 1e9) <= 50
    else:
        result["goals_met"]["probe_p99_ms"] = (result["probe_p99_ms"] or 0) <= GOALS["probe_p99_ms"]
    result["machine"] = machine()
    out = RESULTS_WITH_CALLS if args.calls_per_s else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
