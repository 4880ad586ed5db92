"""The transcription pipeline on a real Redis, a real database and the real Vosk model."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.calls.models import Call
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import load_model, transcribe_wav
from callcenter.recording.worker import run_worker
from tests.recording.conftest import AGENT_WORDS, CALLER_WORDS, GRAMMAR


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_each_channel_is_transcribed_with_times_inside_the_audio(model, call_wav) -> None:
    duration, words = transcribe_wav(model, call_wav, grammar=GRAMMAR)
    assert duration == pytest.approx(5.9, abs=0.3)
    assert words and all(0 <= w.start_s < w.end_s <= duration + 0.05 for w in words)
    caller = [w for w in words if w.channel == "caller"]
    agent = [w for w in words if w.channel == "agent"]
    assert {w.word for w in caller} <= set(CALLER_WORDS) and caller
    assert {w.word for w in agent} <= set(AGENT_WORDS) and agent
    assert all(w.start_s < 3.0 for w in caller), "the caller spoke from 0.5 s"
    assert all(w.start_s >= 3.3 for w in agent), "the agent spoke from 3.5 s"


def test_a_muted_stretch_has_no_words(model, call_wav) -> None:
    _, words = transcribe_wav(model, call_wav, grammar=GRAMMAR, muted=[(0.0, 3.2)])
    assert words and all(w.start_s >= 3.2 for w in words)


async def _call(sessionmaker, call_id: str, hangup_first: str = "caller") -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number="13800000000", arrived_at=datetime.now(UTC), hangup_first=hangup_first,
                         survey_score=2, closed=True))


async def test_a_job_is_done_once_stored_then_acknowledged(settings, sessionmaker, database_url, redis_client,
                                                          call_wav) -> None:
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": database_url}),
        "redis": settings.redis.model_copy(update={"prefix": prefix})})
    call_id = str(uuid.uuid4())
    await _call(sessionmaker, call_id, hangup_first="agent")
    queue = TranscriptionQueue(client, prefix)
    await queue.ensure_group()
    await queue.enqueue(call_id, str(call_wav))
    done = await run_worker(settings, asyncio.Event(), consumer="w1", grammar=GRAMMAR, max_jobs=1)
    assert done == 1 and await queue.pending() == 0
    store = TranscriptStore(sessionmaker)
    words = await store.words(call_id)
    assert {w.channel for w in words} == {"caller", "agent"}
    transcript = await store.transcript(call_id)
    assert transcript is not None and transcript.flagged
    checks = {c["check"]: c for c in transcript.checks}
    assert checks["caller_hung_up_first"]["passed"] is False and checks["survey"]["passed"] is False
    # The same job again (a worker that died between storing and acknowledging): still one transcript.
    await queue.enqueue(call_id, str(call_wav))
    await run_worker(settings, asyncio.Event(), consumer="w2", grammar=GRAMMAR, max_jobs=1)
    assert len(await store.words(call_id)) == len(words)


CLAIM_AND_HANG = """
import asyncio, sys, redis.asyncio as r
from callcenter.recording.jobs import TranscriptionQueue
async def main():
    q = TranscriptionQueue(r.Redis.from_url(sys.argv[1]), sys.argv[2])
    jobs = await q.next_jobs("doomed", block_ms=5000)
    print("claimed", len(jobs), flush=True)
    await asyncio.sleep(600)   # "decoding" until killed
asyncio.run(main())
"""


async def test_a_worker_killed_mid_job_loses_nothing(settings, sessionmaker, database_url, redis_client,
                                                    call_wav) -> None:
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": database_url}),
        "redis": settings.redis.model_copy(update={"prefix": prefix})})
    call_id = str(uuid.uuid4())
    await _call(sessionmaker, call_id)
    queue = TranscriptionQueue(client, prefix)
    await queue.ensure_group()
    await queue.enqueue(call_id, str(call_wav))
    doomed = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, settings.redis.url, prefix],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert doomed.stdout is not None
        assert (await asyncio.to_thread(doomed.stdout.readline)).strip() == "claimed 1"
        assert await queue.pending() == 1
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        if doomed.stdout is not None:
            doomed.stdout.close()
    done = await run_worker(settings, asyncio.Event(), consumer="rescuer", grammar=GRAMMAR, max_jobs=1,
                            reclaim_after_s=0.5)
    assert done == 1 and await queue.pending() == 0
    store = TranscriptStore(sessionmaker)
    assert await store.has(call_id) and len({w.channel for w in await store.words(call_id)}) == 2


async def test_a_live_worker_keeps_a_long_job_and_a_silent_one_loses_it(redis_client) -> None:
    client, prefix = redis_client
    queue = TranscriptionQueue(client, prefix)
    await queue.ensure_group()
    await queue.enqueue("long-call", "/nowhere/long-call.wav")
    [job] = await queue.next_jobs("worker-a", block_ms=100)
    for _ in range(3):   # decoding a long call, saying so every 0.1 s
        await asyncio.sleep(0.1)
        await queue.still_working(job, "worker-a")
        assert await queue.next_jobs("worker-b", block_ms=10, reclaim_after_s=0.25) == []
    await asyncio.sleep(0.3)   # worker-a falls silent (killed): the job goes to worker-b
    assert [j.call_id for j in await queue.next_jobs("worker-b", block_ms=10, reclaim_after_s=0.25)] == ["long-call"]


def test_delegated_commands_take_their_own_options(settings, monkeypatch) -> None:
    from callcenter import cli

    seen = {}
    monkeypatch.setattr(cli, "_settings", lambda args: settings)
    monkeypatch.setattr("callcenter.recording.cli.main", lambda name, argv, s: seen.update(name=name, argv=argv) or 0)
    assert cli.main(["erase", "--number", "13800000000", "--reason", "公民申请删除"]) == 0
    assert seen == {"name": "erase", "argv": ["--number", "13800000000", "--reason", "公民申请删除"]}
    with pytest.raises(SystemExit):
        cli.main(["init", "--bogus"])
