"""The waveform's peaks, computed on the server and kept beside the recording.

A reviewer's player draws both channels (caller left, agent right) from these numbers instead of
decoding the audio in the browser, so an hour-long call draws at once and the audio itself is
streamed (the signed link with ranges). For each bucket of samples and each channel the peak is
the largest absolute sample, as a fraction of full scale (0-1, three decimals).

The buckets: `PER_SECOND` a second, but never more than `MAX_BUCKETS` for the whole call (a
60-minute call gets 20,000 buckets of 0.18 s, enough for a wide screen zoomed in several times).

The peaks are cached as <call_id>.peaks.json beside the WAV, written under a temporary name and
renamed into place; a copy older than the WAV is made again. Retention and erasure remove it
with the recording (retention.recording_files).
"""
from __future__ import annotations

import json
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.recording.playback import temp_name

SUFFIX = ".peaks.json"
PER_SECOND = 50
MAX_BUCKETS = 20_000
CHANNELS = ("caller", "agent")
FULL_SCALE = 32768.0
READ_FRAMES = 1 << 20     # read the WAV a megaframe at a time (4 MB of stereo 16-bit)


@dataclass(frozen=True)
class Peaks:
    duration_s: float
    sample_rate: int
    bucket_frames: int            # samples per bucket and channel
    channels: dict[str, list[float]]

    def as_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "sample_rate": self.sample_rate,
                "bucket_s": self.bucket_frames / self.sample_rate, "channels": list(self.channels),
                "peaks": list(self.channels.values())}


def peaks_path(wav: Path) -> Path:
    return wav.with_name(wav.stem + SUFFIX)


def bucket_frames(frames: int, sample_rate: int) -> int:
    """Samples per bucket: PER_SECOND buckets a second, at most MAX_BUCKETS in all."""
    per_second = max(1, sample_rate // PER_SECOND)
    return max(per_second, -(-frames // MAX_BUCKETS))


def peak_levels(samples: np.ndarray, bucket: int) -> np.ndarray:
    """Pure: the largest absolute sample of each bucket and channel, as a fraction of full scale,
    of 16-bit stereo samples (a (frames, 2) int16 array): a (buckets, 2) array."""
    channels = np.ascontiguousarray(samples.T)          # each channel's samples side by side
    whole, rest = divmod(channels.shape[1], bucket)
    tops = []
    if whole:
        tops.append(_bucket_tops(channels[:, :whole * bucket].reshape(2, whole, bucket)))
    if rest:
        tops.append(_bucket_tops(channels[:, whole * bucket:].reshape(2, 1, rest)))
    top = np.concatenate(tops, axis=1) if tops else np.zeros((2, 0))
    return np.round(np.minimum(top / FULL_SCALE, 1.0), 3).T


def _bucket_tops(buckets: np.ndarray) -> np.ndarray:
    """max and -min on int16 (no |-32768| overflow), over each bucket's own samples."""
    return np.maximum(buckets.max(axis=2).astype(np.int32), -buckets.min(axis=2).astype(np.int32))


def peaks_of_samples(samples: np.ndarray, sample_rate: int) -> Peaks:
    """Pure: the call's peaks from its 16-bit stereo samples."""
    bucket = bucket_frames(samples.shape[0], sample_rate)
    return _peaks(peak_levels(samples, bucket), samples.shape[0], sample_rate, bucket)


def _peaks(levels: np.ndarray, frames: int, rate: int, bucket: int) -> Peaks:
    return Peaks(round(frames / rate, 3), rate, bucket, {name: levels[:, i].tolist() for i, name in enumerate(CHANNELS)})


def compute_peaks(wav: Path) -> Peaks:
    """The peaks of a stereo 16-bit WAV, read in blocks of whole buckets (an hour is 115 MB at 8 kHz)."""
    with wave.open(str(wav), "rb") as w:
        if w.getnchannels() != 2 or w.getsampwidth() != 2:
            raise ValueError(f"{wav}: not a stereo 16-bit recording")
        rate, frames = w.getframerate(), w.getnframes()
        bucket = bucket_frames(frames, rate)
        block = max(bucket, READ_FRAMES // bucket * bucket)
        parts = [peak_levels(np.frombuffer(chunk, dtype="<i2").reshape(-1, 2), bucket)
                 for chunk in iter(lambda: w.readframes(block), b"")]
    return _peaks(np.concatenate(parts) if parts else np.zeros((0, 2)), frames, rate, bucket)


def cached_peaks(wav: Path) -> dict[str, Any]:
    """The call's peaks as the player takes them: from the cache beside the WAV, else computed and
    cached (atomically). A cache older than the WAV is computed again."""
    cache = peaks_path(wav)
    try:
        if cache.stat().st_mtime >= wav.stat().st_mtime:
            return dict(json.loads(cache.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        pass
    found = compute_peaks(wav).as_dict()
    tmp = temp_name(cache)
    try:
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(found, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, cache)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return found
