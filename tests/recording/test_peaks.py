"""The waveform's peaks: the loudest sample of each bucket per channel, cached beside the WAV."""
from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from callcenter.recording import peaks


def write(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def test_buckets_are_fifty_a_second_and_never_more_than_the_maximum() -> None:
    assert peaks.bucket_frames(8000, 8000) == 160
    assert peaks.bucket_frames(3600 * 8000, 8000) == 1440                 # an hour: 20,000 buckets of 0.18 s
    assert -(-3600 * 8000 // peaks.bucket_frames(3600 * 8000, 8000)) == peaks.MAX_BUCKETS


def test_each_bucket_holds_its_loudest_sample_per_channel_full_scale_included() -> None:
    samples = np.zeros((400, 2), dtype=np.int16)
    samples[10, 0] = -32768            # the caller's loudest, negative (no overflow on abs)
    samples[200, 1] = 16384            # the agent's, in the second bucket
    samples[390, 0] = 3277             # the last, partial bucket
    levels = peaks.peak_levels(samples, 160)
    assert levels.tolist() == [[1.0, 0.0], [0.0, 0.5], [0.1, 0.0]]


def test_a_file_read_in_blocks_gives_the_peaks_of_the_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    samples = (rng.standard_normal((8000 * 7 + 123, 2)) * 4000).astype(np.int16)
    wav = write(tmp_path / "call.wav", samples)
    monkeypatch.setattr(peaks, "READ_FRAMES", 1000)          # many blocks
    found = peaks.compute_peaks(wav)
    whole = peaks.peaks_of_samples(samples, 8000)
    assert found.channels == whole.channels and found.duration_s == round(len(samples) / 8000, 3)
    with pytest.raises(ValueError, match="stereo"):
        mono = tmp_path / "mono.wav"
        with wave.open(str(mono), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 100)
        peaks.compute_peaks(mono)


def test_the_cache_beside_the_wav_is_used_until_the_wav_is_newer(tmp_path: Path) -> None:
    samples = np.zeros((8000, 2), dtype=np.int16)
    samples[:, 1] = 8192
    wav = write(tmp_path / "c.wav", samples)
    first = peaks.cached_peaks(wav)
    cache = peaks.peaks_path(wav)
    assert cache.name == "c.peaks.json" and json.loads(cache.read_text()) == first
    assert first["channels"] == ["caller", "agent"] and max(first["peaks"][1]) == 0.25
    cache.write_text(json.dumps({**first, "duration_s": 99}))
    assert peaks.cached_peaks(wav)["duration_s"] == 99                   # read, not computed again
    stamp = cache.stat().st_mtime
    os.utime(wav, (stamp + 10, stamp + 10))                               # the recording changed
    assert peaks.cached_peaks(wav)["duration_s"] == 1.0
    assert not list(tmp_path.glob(".*.tmp"))


def test_retention_and_erasure_remove_the_peaks_with_the_recording(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from callcenter.recording.retention import _Recorded, recording_files

    wav = tmp_path / "2026" / "12" / "01" / "c1.wav"
    call = _Recorded("c1", "13800000000", "leak", str(wav), datetime(2026, 12, 1, 3, tzinfo=UTC), None)
    files = recording_files(tmp_path, call)
    assert peaks.peaks_path(wav) in files and (wav.parent / ".c1.peaks.json.tmp") in files
