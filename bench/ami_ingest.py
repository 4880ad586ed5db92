"""Benchmark: AMI events per second through the adapter, against bare panoramisk.

The stream is AMI bytes as Asterisk 22 writes them for realistic hotline calls: each call
is the lifecycle of tests/ami/traces/inbound_call.ami (Newchannel, AsyncAGIStart, AGI
replies, DTMF, Dial, bridge, MixMonitor, hangups: 22 messages, one the engine ignores),
renumbered per call, with `--concurrent` calls' events interleaved as they would be on a
busy line.

- adapter: bytes → `AmiProtocol` reader → `parse_event` dataclass → `CallOrderedDispatcher`
  (per-call queue and worker) → an async handler doing a small state update;
- panoramisk: bytes → panoramisk's `AMIProtocol` → `Message` → `Manager.dispatch` with 20
  registered event patterns → a plain (synchronous, so its fastest) callback doing the same
  state update.

Each side runs `--runs` times (alternating); the median events/s is reported, with the
ratio. The process is pinned to one CPU where the OS allows. Results go to
bench/results/ami_ingest.json.

    .venv/bin/python bench/ami_ingest.py [--events 200000] [--runs 5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchinfo import machine  # noqa: E402 (bench/ is the script's own folder)
from panoramisk.ami_protocol import AMIProtocol  # noqa: E402
from panoramisk.manager import Manager  # noqa: E402

from callcenter.ami.connection import AmiConnection  # noqa: E402
from callcenter.ami.events import Event  # noqa: E402
from callcenter.ami.protocol import AmiProtocol  # noqa: E402
from callcenter.config import AmiSettings  # noqa: E402

TRACE = ROOT / "tests" / "ami" / "traces" / "inbound_call.ami"
RESULT = ROOT / "bench" / "results" / "ami_ingest.json"
CHUNK = 64 * 1024
PANORAMISK_PATTERNS = (
    "FullyBooted", "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "Newchannel", "Newstate", "Hangup",
    "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "DTMFEnd", "MixMonitorStart", "MixMonitorStop",
    "MixMonitorMute", "OriginateResponse", "CoreShowChannel", "Cdr", "Shutdown", "Newexten",
)


class _Sink:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def make_stream(events: int, concurrent: int) -> tuple[bytes, int, int]:
    """AMI bytes for about `events` messages; returns (bytes, messages, calls)."""
    template = TRACE.read_text(encoding="utf-8").replace("{CommandID}", "cmd-answer").strip("\n").split("\n\n")
    per_call = len(template)
    calls = max(1, events // per_call)
    lifecycles: list[list[bytes]] = []
    for n in range(calls):
        caller, agent = f"1732345200.{2 * n + 1}", f"1732345207.{2 * n + 2}"
        text = [m.replace("1732345200.1", caller).replace("1732345207.2", agent)
                .replace("trunk-00000001", f"trunk-{2 * n + 1:08x}").replace("1001-00000002", f"1001-{2 * n + 2:08x}")
                for m in template]
        lifecycles.append([(m + "\n\n").replace("\n", "\r\n").encode("utf-8") for m in text])
    out: list[bytes] = [b"Asterisk Call Manager/9.0.0\r\n"]
    for start in range(0, calls, concurrent):
        window = lifecycles[start : start + concurrent]
        for i in range(per_call):  # interleave the window's calls step by step
            out.extend(call[i] for call in window)
    return b"".join(out), calls * per_call, calls


async def run_adapter(stream: bytes, expected: int) -> float:
    state: dict[str, tuple[str, int]] = {}

    async def handler(event: Event) -> None:
        key = event.call_key
        previous = state.get(key)
        state[key] = (type(event).__name__, previous[1] + 1 if previous else 1)

    settings = AmiSettings(host="127.0.0.1", port=5038, username="bench", action_timeout_s=1,
                           ping_interval_s=5, ping_timeout_s=3, reconnect_backoff_initial_s=0.2,
                           reconnect_backoff_max_s=10)
    connection = AmiConnection(settings, handler)
    protocol = AmiProtocol(connection._ingest, connection._malformed, lambda reason: None, 1 << 20)
    protocol.connection_made(_Sink())
    started = time.perf_counter()
    for i in range(0, len(stream), CHUNK):
        protocol.data_received(stream[i : i + CHUNK])
        await asyncio.sleep(0)  # let the per-call workers run, as between socket reads
    if not await connection.dispatcher.idle(120):
        raise RuntimeError("adapter did not drain")
    elapsed = time.perf_counter() - started
    if connection.stats.events_received != expected:
        raise RuntimeError(f"adapter read {connection.stats.events_received} of {expected} messages")
    if connection.stats.malformed:
        raise RuntimeError(f"adapter found {connection.stats.malformed} malformed messages")
    await connection.close()
    return expected / elapsed


async def run_panoramisk(stream: bytes, expected: int) -> float:
    state: dict[str, tuple[str, int]] = {}
    seen = 0

    def callback(manager: Any, message: Any) -> None:
        nonlocal seen
        seen += 1
        key = message.linkedid or message.uniqueid
        previous = state.get(key)
        state[key] = (message.event, previous[1] + 1 if previous else 1)

    manager = Manager(loop=asyncio.get_running_loop())
    for pattern in PANORAMISK_PATTERNS:
        manager.register_event(pattern, callback)
    manager.register_event("VarSet", lambda m, e: None)  # the event the engine ignores: still read
    protocol = AMIProtocol()
    protocol.connection_made(_Sink())
    protocol.factory = manager
    protocol.log.setLevel(logging.WARNING)
    started = time.perf_counter()
    for i in range(0, len(stream), CHUNK):
        protocol.data_received(stream[i : i + CHUNK])
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    per_call_used = expected // len(state) - 1
    if seen != len(state) * per_call_used:
        raise RuntimeError(f"panoramisk dispatched {seen} events, expected {len(state) * per_call_used}")
    return expected / elapsed



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrent", type=int, default=50, help="calls whose events interleave")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pinned = None
    if hasattr(os, "sched_setaffinity"):
        pinned = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {pinned})
    logging.basicConfig(level=logging.WARNING)
    stream, messages, calls = make_stream(args.events, args.concurrent)
    adapter: list[float] = []
    bare: list[float] = []
    for _ in range(args.runs):
        adapter.append(asyncio.run(run_adapter(stream, messages)))
        bare.append(asyncio.run(run_panoramisk(stream, messages)))
        print(f"adapter {adapter[-1]:>10,.0f} ev/s   panoramisk {bare[-1]:>10,.0f} ev/s", flush=True)
    result = {
        "benchmark": "ami_ingest",
        "what": "AMI bytes -> parsed events -> per-call dispatch -> state update, events per second",
        "events": messages, "calls": calls, "concurrent_calls": args.concurrent, "runs": args.runs,
        "stream_bytes": len(stream), "chunk_bytes": CHUNK, "pinned_cpu": pinned,
        "adapter_events_per_s": round(statistics.median(adapter)),
        "panoramisk_events_per_s": round(statistics.median(bare)),
        "ratio": round(statistics.median(adapter) / statistics.median(bare), 2),
        "adapter_runs": [round(x) for x in adapter], "panoramisk_runs": [round(x) for x in bare],
        "goals": {"adapter_events_per_s": 40_000, "ratio": 1.2},
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("adapter_events_per_s", "panoramisk_events_per_s", "ratio")}))


if __name__ == "__main__":
    main()
