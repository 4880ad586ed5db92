"""INVITE to 200 OK: calls the engine answers vs calls Asterisk's own Answer() answers.

Both kinds of call run side by side on the same Asterisk, at the same rate, for the same
time: SIPp dials the hotline number (the dialplan rings, hands the call to the engine over
AsyncAGI, and the engine answers over AMI) and the baseline number (plain `Answer()`).
SIPp times each call from its INVITE to the 200 OK (`-trace_rtt`, millisecond resolution).

    .venv/bin/python bench/answer_latency.py [--rate 20] [--seconds 60]

Writes bench/results/answer_latency.json. Goal: at 20 calls/s for 60 s, the engine's p99
at most 50 ms, no failed call.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.calls.engine import Engine
from callcenter.config import load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.ivr.model import load_menu
from callcenter.rig import AsteriskRig
from callcenter.sipp import Sipp, caller_scenario

RESULTS = Path(__file__).resolve().parent / "results" / "answer_latency.json"
BASELINE_NUMBER = "96660"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(rate: float, seconds: float, hold_ms: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="answer-latency-"))
    settings = load_settings(overrides={
        "ami": {"secret": secrets.token_hex(12)},
        "asterisk": {"sip_bind": "127.0.0.1:5060"},
        "paths": {"spool_dir": str(work / "spool"), "asterisk_config_dir": str(work / "spool" / "asterisk")},
        "database": {"url": f"sqlite+aiosqlite:///{work / 'calls.db'}"},
        "web": {"secret_key": secrets.token_hex(16)},
    })
    rig = AsteriskRig(settings)
    rig.prepare(prompt_cache=Path(__file__).resolve().parent.parent / "var" / "test-prompts")
    rig.start()
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    engine = Engine(settings, make_sessionmaker(db), load_menu(None), engine_id="bench")
    await engine.start()
    sipp = Sipp(settings.paths.spool_dir)
    calls = int(rate * seconds)
    scenario = caller_scenario(hangup_after_ms=hold_ms)
    try:
        t0 = time.monotonic()
        hotline, baseline = await asyncio.gather(
            sipp.start("bench_engine", scenario, sip_port=5201, media_port=40000, service=settings.hotline.number,
                       calls=calls, rate=rate, timeout_s=seconds + 120, trace_rtt=True),
            sipp.start("bench_baseline", scenario, sip_port=5203, media_port=44000, service=BASELINE_NUMBER,
                       calls=calls, rate=rate, timeout_s=seconds + 120, trace_rtt=True),
        )
        codes = await asyncio.gather(hotline.wait(seconds + 180), baseline.wait(seconds + 180))
        elapsed = time.monotonic() - t0
        await asyncio.sleep(2)
        result = {}
        for name, party, code in (("engine", hotline, codes[0]), ("asterisk_answer", baseline, codes[1])):
            rtt = party.rtt_ms()
            result[name] = {
                "calls": calls, "answered": len(rtt), "failed": calls - len(rtt), "sipp_exit": code,
                "p50_ms": percentile(rtt, 50) if rtt else None, "p99_ms": percentile(rtt, 99) if rtt else None,
                "max_ms": max(rtt) if rtt else None, "mean_ms": round(statistics.fmean(rtt), 3) if rtt else None,
            }
        e, b = result["engine"], result["asterisk_answer"]
        # SIPp times in whole milliseconds; a 0 ms baseline makes a ratio meaningless, so the
        # ratio is taken against max(baseline, 1 ms).
        result["p50_ratio"] = round(e["p50_ms"] / max(b["p50_ms"], 1.0), 2) if e["p50_ms"] is not None else None
        result["p99_ratio"] = round(e["p99_ms"] / max(b["p99_ms"], 1.0), 2) if e["p99_ms"] is not None else None
        result["elapsed_s"] = round(elapsed, 1)
        result["engine_calls_closed"] = engine.calls_closed
        return result
    finally:
        await engine.stop()
        await db.dispose()
        rig.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second, of each kind")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hold-ms", type=int, default=1500, help="how long each caller stays after the answer")
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds, args.hold_ms))
    report = {
        "benchmark": "answer_latency",
        "goal": "engine p99 <= 50 ms at 20 calls/s for 60 s, no failed call",
        "rate_per_s": args.rate, "seconds": args.seconds,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        **result,
    }
    report["goal_met"] = bool(result["engine"]["p99_ms"] is not None and result["engine"]["p99_ms"] <= 50
                              and result["engine"]["failed"] == 0)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
