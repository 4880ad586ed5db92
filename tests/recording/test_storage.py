"""Storage of recordings: the playback copy, retention purge and a caller's erasure leave no copy."""
from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydub.generators import Sine
from sqlalchemy import func, select

from callcenter.calls.models import Call
from callcenter.recording import worker
from callcenter.recording.finalize import recording_path, sha256_of
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.models import ERASE, PURGE, RecordingAudit, Transcript, TranscriptWord
from callcenter.recording.playback import make_playback_copy
from callcenter.recording.retention import RetentionPolicy, erase_caller, expired, purge
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import Decoded, Word

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = RetentionPolicy(365, {"complaint": 730})


def tone_wav(path: Path, seconds: float = 2.0) -> Path:
    """A stereo 8 kHz call: a tone on the caller's side, another on the agent's."""
    from pydub import AudioSegment

    ms = int(seconds * 1000)
    caller = Sine(440, sample_rate=8000).to_audio_segment(duration=ms, volume=-12)
    agent = Sine(660, sample_rate=8000).to_audio_segment(duration=ms, volume=-12)
    stereo = AudioSegment.from_mono_audiosegments(caller, agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        stereo.export(f, format="wav")
    return path


# ---------------------------------------------------------------- the playback copy


def test_the_playback_copy_is_opus_and_much_smaller(call_wav, tmp_path) -> None:
    wav = shutil.copy(call_wav, tmp_path / "call.wav")
    wav = Path(wav)
    digest = sha256_of(wav)
    ogg = make_playback_copy(wav)
    assert ogg == tmp_path / "call.ogg" and ogg.is_file()
    assert ogg.stat().st_size * 5 < wav.stat().st_size
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels:format=duration",
                            "-of", "default=nw=1", str(ogg)], check=True, capture_output=True, text=True).stdout
    assert "codec_name=opus" in probe and "channels=2" in probe
    duration = float(probe.split("duration=")[1].split()[0])
    assert duration == pytest.approx(5.9, abs=0.3)
    assert sha256_of(wav) == digest, "the WAV is the record: never changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.ogg", "call.wav"], "no temporary file left"
    made = ogg.stat().st_mtime_ns
    assert make_playback_copy(wav) == ogg and ogg.stat().st_mtime_ns == made, "a second call is a no-op"


async def test_a_failed_playback_copy_is_logged_and_keeps_the_wav(tmp_path, caplog) -> None:
    wav = tmp_path / "broken.wav"
    wav.write_bytes(b"RIFF but not audio")
    with caplog.at_level(logging.ERROR):
        assert await worker.playback_copy("c1", wav) is None
    assert "no playback copy" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav"]


@pytest.mark.parametrize("erased_meanwhile", [False, True])
async def test_the_worker_makes_the_copy_and_keeps_nothing_of_a_call_erased_meanwhile(
        settings, sessionmaker, database_url, redis_client, monkeypatch, erased_meanwhile) -> None:
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": database_url}),
        "redis": settings.redis.model_copy(update={"prefix": prefix})})
    folder = settings.paths.recordings_dir
    call_id, files = await recorded_call(sessionmaker, folder, number="13911112222", words=False)
    wav, ogg = files[0], files[1]
    if not erased_meanwhile:
        ogg.unlink()   # the worker makes it
    loop = asyncio.get_running_loop()

    class Transcriber:
        def __init__(self, model, grammar=None, skipping=None) -> None:
            pass

        def transcribe(self, path, muted=None) -> Decoded:
            if erased_meanwhile:   # the caller's erasure, the real one, runs while the worker decodes
                erasure = erase_caller(sessionmaker, folder, "13911112222", "admin", "caller asked", NOW)
                assert asyncio.run_coroutine_threadsafe(erasure, loop).result(30) == 1
            return Decoded(2.0, [Word("caller", "漏水", 0.5, 0.9, 0.9)], channel_s=4.0, decoded_s=1.0)

    monkeypatch.setattr(worker, "load_model", lambda path=None: None)
    monkeypatch.setattr(worker, "Transcriber", Transcriber)
    queue = TranscriptionQueue(client, prefix)
    await queue.ensure_group()
    await queue.enqueue(call_id, str(wav))
    assert await worker.run_worker(settings, asyncio.Event(), consumer="w1", max_jobs=1) == 1
    assert await queue.pending() == 0
    if erased_meanwhile:
        assert not any(p.exists() for p in files), "the WAV, its Opus copy and every leftover are gone"
        assert not [p for p in folder.rglob("*") if p.is_file()]
        assert await held(sessionmaker, call_id) == (0, 0, None, None), "no transcript, no path, no hash"
        [kept] = await audit(sessionmaker)
        assert (kept.action, kept.actor, kept.call_id, kept.caller_number) == (ERASE, "admin", call_id, "13911112222")
        assert "caller asked" in kept.detail
    else:
        assert wav.exists() and ogg.exists() and ogg.stat().st_size < wav.stat().st_size
        assert (await held(sessionmaker, call_id))[:2] == (1, 1)


# ---------------------------------------------------------------- retention


def test_retention_per_category() -> None:
    ended = NOW - timedelta(days=400)
    assert expired(ended, None, NOW, POLICY) and expired(ended, "leak", NOW, POLICY)
    assert not expired(ended, "complaint", NOW, POLICY)
    assert not expired(NOW - timedelta(days=364, hours=23), "leak", NOW, POLICY)
    assert expired(NOW - timedelta(days=365), "leak", NOW, POLICY)
    assert RetentionPolicy().days("anything") == 365


async def recorded_call(sessionmaker, recordings_dir: Path, *, number: str = "13800000000", days_ago: float = 1,
                        category: str | None = "leak", words: bool = True) -> tuple[str, list[Path]]:
    """A recorded call with every copy a call can leave: WAV, OGG, raw leftover, temp file, transcript."""
    call_id = str(uuid.uuid4())
    arrived = NOW - timedelta(days=days_ago)
    wav = tone_wav(recording_path(recordings_dir, call_id, arrived.strftime("%Y-%m-%d")))
    ogg = make_playback_copy(wav)
    raw = recordings_dir / "incoming" / f"{call_id}.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(b"\0" * 64)
    tmp = wav.with_name(f".{wav.name}.tmp")
    tmp.write_bytes(b"half a file")
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number=number, arrived_at=arrived, ended_at=arrived + timedelta(minutes=3),
                         category=category, agent_id="1001", recording_path=str(wav),
                         recording_sha256=sha256_of(wav), recording_duration_s=2.0, closed=True))
    if words:
        await TranscriptStore(sessionmaker).save(
            call_id, [Word("caller", "漏水", 0.5, 0.9, 0.9), Word("agent", "地址", 1.0, 1.4, 0.8)],
            model="test", worker="w", audio_s=2.0, took_s=0.1, now=arrived, checks=[])
    return call_id, [wav, ogg, raw, tmp]


async def held(sessionmaker, call_id: str) -> tuple[int, int, str | None, str | None]:
    """(transcripts, words, recording_path, recording_sha256) of a call."""
    async with sessionmaker() as session:
        transcripts = await session.scalar(select(func.count()).select_from(Transcript)
                                           .where(Transcript.call_id == call_id))
        words = await session.scalar(select(func.count()).select_from(TranscriptWord)
                                     .where(TranscriptWord.call_id == call_id))
        call = await session.get(Call, call_id)
        assert call is not None, "the call row is the hotline's record: it stays"
        return transcripts or 0, words or 0, call.recording_path, call.recording_sha256


async def audit(sessionmaker) -> list[RecordingAudit]:
    async with sessionmaker() as session:
        return list((await session.execute(select(RecordingAudit).order_by(RecordingAudit.id))).scalars())


async def test_purge_leaves_no_copy_of_expired_recordings(sessionmaker, settings) -> None:
    folder = settings.paths.recordings_dir
    old, old_files = await recorded_call(sessionmaker, folder, days_ago=400, category="leak")
    complaint, complaint_files = await recorded_call(sessionmaker, folder, days_ago=400, category="complaint")
    recent, recent_files = await recorded_call(sessionmaker, folder, days_ago=30, category=None)

    assert await purge(sessionmaker, folder, NOW, POLICY) == 1
    assert not any(p.exists() for p in old_files)
    assert await held(sessionmaker, old) == (0, 0, None, None)
    for call_id, files in ((complaint, complaint_files), (recent, recent_files)):
        assert all(p.exists() for p in files)
        transcripts, words, path, sha = await held(sessionmaker, call_id)
        assert (transcripts, words) == (1, 2) and path and sha
    [row] = await audit(sessionmaker)
    assert (row.action, row.actor, row.call_id, row.caller_number) == (PURGE, "retention", old, "13800000000")
    assert "365 days" in row.detail
    assert await purge(sessionmaker, folder, NOW, POLICY) == 0, "nothing left to purge, nothing audited twice"
    assert len(await audit(sessionmaker)) == 1
    # A year later the complaint's two years are over too, and the recent call's one year.
    assert await purge(sessionmaker, folder, NOW + timedelta(days=366), POLICY) == 2
    assert not any(p.exists() for p in complaint_files + recent_files)
    assert not [p for p in folder.rglob("*") if p.is_file()]


async def test_erasure_removes_every_call_of_the_caller(sessionmaker, settings) -> None:
    folder = settings.paths.recordings_dir
    first, first_files = await recorded_call(sessionmaker, folder, number="13911112222", days_ago=3)
    second, second_files = await recorded_call(sessionmaker, folder, number="13911112222", days_ago=0.1,
                                               words=False)
    other, other_files = await recorded_call(sessionmaker, folder, number="13800000000", days_ago=3)

    erased = await erase_caller(sessionmaker, folder, "13911112222", "admin", "caller asked on 2026-11-20", NOW)
    assert erased == 2
    for call_id, files in ((first, first_files), (second, second_files)):
        assert not any(p.exists() for p in files)
        assert await held(sessionmaker, call_id) == (0, 0, None, None)
    assert all(p.exists() for p in other_files) and (await held(sessionmaker, other))[:2] == (1, 2)
    rows = await audit(sessionmaker)
    assert {r.call_id for r in rows} == {first, second}
    assert all((r.action, r.actor, r.caller_number) == (ERASE, "admin", "13911112222") for r in rows)
    assert all("caller asked on 2026-11-20" in r.detail for r in rows)
    # Every folder left holds only the other caller's files.
    left = {p for p in folder.rglob("*") if p.is_file()}
    assert left == set(other_files)


async def test_an_erasure_request_with_nothing_held_is_still_audited(sessionmaker, settings) -> None:
    assert await erase_caller(sessionmaker, settings.paths.recordings_dir, "10000", "admin", "asked", NOW) == 0
    [row] = await audit(sessionmaker)
    assert (row.action, row.call_id, row.caller_number) == (ERASE, None, "10000")
    assert "nothing held" in row.detail


async def test_a_partly_removed_recording_is_finished_by_the_next_run(sessionmaker, settings) -> None:
    """A crash after the files went but before the rows did: the call still looks recorded."""
    folder = settings.paths.recordings_dir
    call_id, files = await recorded_call(sessionmaker, folder, days_ago=400)
    for path in files:
        path.unlink()
    assert await purge(sessionmaker, folder, NOW, POLICY) == 1
    assert await held(sessionmaker, call_id) == (0, 0, None, None)
