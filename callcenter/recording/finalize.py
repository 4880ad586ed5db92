"""Turn MixMonitor's interleaved raw stream into the call's stereo WAV, atomically.

MixMonitor with option D writes 16-bit signed linear, 8 kHz, two interleaved channels: the
audio heard from the caller's channel (the caller's voice) and the audio sent to it (the
agent). Finalising writes a WAV under a temporary name, fsyncs it, renames it into place
(so a reader never sees half a file, and a crash leaves either the old state or the whole
file), fsyncs the folder, and returns what the call record keeps: path, SHA-256, duration.
The raw file is removed only after the WAV is safely in place.
"""
from __future__ import annotations

import hashlib
import logging
import os
import wave
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
CHANNELS = 2          # 0: caller, 1: agent
SAMPLE_WIDTH = 2
FRAME_BYTES = CHANNELS * SAMPLE_WIDTH


class RecordingError(Exception):
    """The recording could not be finalised; the raw file is left where it was."""


@dataclass(frozen=True)
class FinalisedRecording:
    path: Path
    sha256: str
    duration_s: float
    size_bytes: int


def recording_path(recordings_dir: Path, call_id: str, day: str) -> Path:
    """Where a call's WAV lives: <recordings>/YYYY/MM/DD/<call_id>.wav (day is 'YYYY-MM-DD')."""
    year, month, dom = day.split("-")
    return recordings_dir / year / month / dom / f"{call_id}.wav"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finalise(raw_path: Path, wav_path: Path, *, keep_raw: bool = False) -> FinalisedRecording:
    """Write `wav_path` from MixMonitor's raw interleaved stereo file, atomically."""
    try:
        data = raw_path.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{raw_path}: MixMonitor left no file") from None
    if len(data) % FRAME_BYTES:
        log.warning("recording %s: %d trailing bytes of a partial frame dropped", raw_path, len(data) % FRAME_BYTES)
        data = data[: len(data) - len(data) % FRAME_BYTES]
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav_path.with_name(f".{wav_path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            with wave.open(f, "wb") as w:
                w.setnchannels(CHANNELS)
                w.setsampwidth(SAMPLE_WIDTH)
                w.setframerate(SAMPLE_RATE)
                w.writeframes(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, wav_path)
        _fsync_dir(wav_path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"{wav_path}: could not write the recording: {exc}") from exc
    if not keep_raw:
        raw_path.unlink(missing_ok=True)
    frames = len(data) // FRAME_BYTES
    result = FinalisedRecording(path=wav_path, sha256=sha256_of(wav_path), duration_s=frames / SAMPLE_RATE,
                                size_bytes=wav_path.stat().st_size)
    log.info("recording finalised path=%s duration=%.2fs sha256=%s", wav_path, result.duration_s, result.sha256)
    return result


def channel_levels(wav_path: Path, window_s: float = 0.5) -> list[tuple[float, float]]:
    """RMS level of (caller, agent) per window: a quick way to see who spoke when."""
    import array

    with wave.open(str(wav_path), "rb") as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    step = int(SAMPLE_RATE * window_s) * CHANNELS
    levels = []
    for start in range(0, len(samples), step):
        block = samples[start:start + step]
        left, right = block[0::2], block[1::2]
        rms = [(sum(x * x for x in ch) / len(ch)) ** 0.5 if ch else 0.0 for ch in (left, right)]
        levels.append((rms[0], rms[1]))
    return levels
