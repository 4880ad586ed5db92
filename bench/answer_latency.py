"""INVITE to 200 OK: calls the engine answers vs calls Asterisk's own Answer() answers.

Both kinds of call run side by side on the same Asterisk, at the same rate, for the same
time: SIPp dials the hotline number (the dialplan rings, hands the call to the engine over
AsyncAGI, and the engine answers over AMI) and the baseline number (plain `Answer()`).
SIPp times each call from its INVITE to the 200 OK (`-trace_rtt`, millisecond resolution).

    .venv/bin/python bench/answer_latency.py [--rate 20] [--seconds 60] [--capacity]

Writes bench/results/answer_latency.json. Goal: at 20 calls/s for 60 s, the engine's p99
at most 50 ms, no failed call.

--capacity adds the search for the highest rate, in steps of 10 calls/s of --step-seconds
each, at which the answer p99 stays at or under 100 ms with no failed call: first for the
engine, then, on the same Asterisk in the same run, for Asterisk answering by itself
(`Answer()`). `capacity.ratio` is engine_cps / native_cps (goal ≥ 0.8). The engine is the
hotline `build_hotline` builds (as `callcenter run` runs it), SMS off.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.app import build_hotline
from callcenter.config import load_settings
from callcenter.rig import AsteriskRig
from callcenter.sipp import Sipp, caller_scenario

RESULTS = Path(__file__).resolve().parent / "results" / "answer_latency.json"
BASELINE_NUMBER = "96660"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def figures(rtt: list[float], calls: int, code: int) -> dict:
    return {"calls": calls, "answered": len(rtt), "failed": calls - len(rtt), "sipp_exit": code,
            "p50_ms": percentile(rtt, 50) if rtt else None, "p99_ms": percentile(rtt, 99) if rtt else None,
            "max_ms": max(rtt) if rtt else None, "mean_ms": round(statistics.fmean(rtt), 3) if rtt else None}


async def side_by_side(sipp: Sipp, number: str, rate: float, seconds: float, hold_ms: int) -> dict:
    """Engine and Asterisk's own Answer() at the same rate, at the same time."""
    calls = int(rate * seconds)
    scenario = caller_scenario(hangup_after_ms=hold_ms)
    t0 = time.monotonic()
    hotline, baseline = await asyncio.gather(
        sipp.start("bench_engine", scenario, sip_port=5201, media_port=40000, service=number,
                   calls=calls, rate=rate, timeout_s=seconds + 120, trace_rtt=True),
        sipp.start("bench_baseline", scenario, sip_port=5203, media_port=44000, service=BASELINE_NUMBER,
                   calls=calls, rate=rate, timeout_s=seconds + 120, trace_rtt=True),
    )
    codes = await asyncio.gather(hotline.wait(seconds + 180), baseline.wait(seconds + 180))
    elapsed = time.monotonic() - t0
    await asyncio.sleep(2)
    result = {"engine": figures(hotline.rtt_ms(), calls, codes[0]),
              "asterisk_answer": figures(baseline.rtt_ms(), calls, codes[1])}
    e, b = result["engine"], result["asterisk_answer"]
    # SIPp times in whole milliseconds; a 0 ms baseline makes a ratio meaningless, so the
    # ratio is taken against max(baseline, 1 ms).
    result["p50_ratio"] = round(e["p50_ms"] / max(b["p50_ms"], 1.0), 2) if e["p50_ms"] is not None else None
    result["p99_ratio"] = round(e["p99_ms"] / max(b["p99_ms"], 1.0), 2) if e["p99_ms"] is not None else None
    result["elapsed_s"] = round(elapsed, 1)
    return result


async def capacity_of(sipp: Sipp, kind: str, number: str, step_s: float, hold_ms: int, max_cps: int,
                      p99_limit_ms: float) -> tuple[int, list[dict]]:
    """The highest rate (steps of 10/s) with p99 <= the limit and no failed call, and the steps run."""
    best, steps = 0, []
    for rate in range(10, max_cps + 1, 10):
        calls = int(rate * step_s)
        party = await sipp.start(f"capacity_{kind}_{rate}", caller_scenario(hangup_after_ms=hold_ms), sip_port=5205,
                                 media_port=46000, service=number, calls=calls, rate=rate, timeout_s=step_s + 90,
                                 trace_rtt=True)
        try:
            code = await party.wait(step_s + 120)
        except TimeoutError:
            code = -1
        await asyncio.sleep(1)
        step = {"rate_per_s": rate, **figures(party.rtt_ms(), calls, code)}
        steps.append(step)
        print(f"capacity {kind} {rate}/s: p99 {step['p99_ms']} ms, failed {step['failed']}", flush=True)
        if step["failed"] or step["p99_ms"] is None or step["p99_ms"] > p99_limit_ms:
            break
        best = rate
        await asyncio.sleep(hold_ms / 1000 + 2)     # the step's last calls end before the next
    return best, steps


async def run(rate: float, seconds: float, hold_ms: int, capacity: bool, step_s: float, max_cps: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="answer-latency-"))
    settings = load_settings(overrides={
        "ami": {"secret": secrets.token_hex(12)},
        "asterisk": {"sip_bind": "127.0.0.1:5060"},
        "paths": {"spool_dir": str(work / "spool"), "asterisk_config_dir": str(work / "spool" / "asterisk")},
        "database": {"url": f"sqlite+aiosqlite:///{work / 'calls.db'}"},
        "redis": {"prefix": f"ccbench:{secrets.token_hex(4)}:"},
        "web": {"secret_key": secrets.token_hex(16), "host": "127.0.0.1", "port": free_port()},
        "sms": {"enabled": False},
        "cluster": {"engine_id": "bench"},
    })
    rig = AsteriskRig(settings)
    rig.prepare(prompt_cache=Path(__file__).resolve().parent.parent / "var" / "test-prompts")
    rig.start()
    try:
        async with build_hotline(settings) as hotline:
            sipp = Sipp(settings.paths.spool_dir)
            result = await side_by_side(sipp, settings.hotline.number, rate, seconds, hold_ms)
            if capacity:
                engine_cps, engine_steps = await capacity_of(sipp, "engine", settings.hotline.number, step_s, hold_ms,
                                                             max_cps, 100.0)
                native_cps, native_steps = await capacity_of(sipp, "native", BASELINE_NUMBER, step_s, hold_ms,
                                                             max_cps, 100.0)
                result["capacity"] = {
                    "p99_limit_ms": 100.0, "step_seconds": step_s, "hold_ms": hold_ms, "max_cps_tried": max_cps,
                    "engine_cps": engine_cps, "native_cps": native_cps,
                    "ratio": round(engine_cps / native_cps, 2) if native_cps else None,
                    "engine_steps": engine_steps, "native_steps": native_steps}
            result["engine_calls_closed"] = hotline.engine.calls_closed
            return result
    finally:
        rig.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second, of each kind")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hold-ms", type=int, default=1500, help="how long each caller stays after the answer")
    parser.add_argument("--capacity", action="store_true", help="also search the highest rate for engine and Asterisk")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--max-cps", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds, args.hold_ms, args.capacity, args.step_seconds, args.max_cps))
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
    if "capacity" in result:
        report["capacity_goal"] = "capacity.ratio >= 0.8 (p99 <= 100 ms, no failed call, steps of 10 calls/s)"
        report["capacity_goal_met"] = bool(result["capacity"]["ratio"] is not None
                                           and result["capacity"]["ratio"] >= 0.8)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
