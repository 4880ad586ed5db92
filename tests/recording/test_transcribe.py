"""The worker's decoding: voiced stretches only, on warm recognisers, words on the file's own timeline."""
from __future__ import annotations

import array
import math
import random
import wave
from pathlib import Path

import pytest

from callcenter.recording import transcribe
from callcenter.recording.transcribe import (
    SilenceSkipping,
    Transcriber,
    load_model,
    transcribe_wav,
    voiced_stretches,
)
from tests.recording.conftest import AGENT_WORDS, CALLER_WORDS, GRAMMAR, speech

RATE = 8000


def line_noise(seconds: float, seed: int = 1) -> array.array:
    """A telephone line's noise floor, about -65 dBFS (as in bench/transcription.py)."""
    rng = random.Random(seed)
    return array.array("h", (rng.randint(-32, 31) for _ in range(int(seconds * RATE))))


def put(channel: array.array, at_s: float, samples: array.array) -> None:
    start = int(at_s * RATE)
    channel[start:start + len(samples)] = samples


def tone(seconds: float, dbfs: float = -20.0) -> array.array:
    amplitude = 32768 * 10 ** (dbfs / 20) * math.sqrt(2)
    return array.array("h", (int(amplitude * math.sin(2 * math.pi * 440 * n / RATE))
                             for n in range(int(seconds * RATE))))


def stretches(channel: array.array, pad_s: float = 0.3) -> list[tuple[float, float]]:
    return voiced_stretches(channel.tobytes(), RATE, SilenceSkipping(pad_s=pad_s))


# ---------------------------------------------------------------- voiced stretches


def test_a_burst_after_long_silence_is_one_padded_stretch() -> None:
    channel = line_noise(30.0)
    put(channel, 20.0, tone(1.5))
    [(start, end)] = stretches(channel)
    assert start == pytest.approx(20.0 - 0.3, abs=0.03) and end == pytest.approx(21.5 + 0.3, abs=0.03)


def test_a_pause_inside_a_sentence_joins_and_a_turn_apart_does_not() -> None:
    channel = line_noise(20.0)
    for at in (1.0, 2.3, 10.0):   # 0.3 s apart (a pause), then 7.7 s later (the other party's turn)
        put(channel, at, tone(1.0))
    found = stretches(channel)
    assert [(round(a, 1), round(b, 1)) for a, b in found] == [(0.7, 3.6), (9.7, 11.3)]


def test_padding_stays_inside_the_file() -> None:
    channel = line_noise(3.0)
    put(channel, 0.0, tone(0.5))
    put(channel, 2.8, tone(0.2))
    assert stretches(channel) == [(0.0, pytest.approx(0.8, abs=0.03)), (pytest.approx(2.5, abs=0.03), 3.0)]


def faint_on_dither() -> array.array:
    """A nearly digital line (about -84 dBFS) with a faint sound at -66 dBFS: 18 dB above the
    floor, but below -60 dBFS, under any speech a phone carries."""
    rng = random.Random(2)
    channel = array.array("h", (rng.randint(-3, 3) for _ in range(10 * RATE)))
    put(channel, 4.0, tone(1.0, dbfs=-66))
    return channel


@pytest.mark.parametrize("channel", [
    pytest.param(line_noise(10.0), id="line noise only"),
    pytest.param(array.array("h", bytes(2 * 10 * RATE)), id="digital silence (muted)"),
    pytest.param(faint_on_dither(), id="faint crosstalk on dither"),
    pytest.param(array.array("h"), id="empty"),
])
def test_a_silent_side_has_no_stretch(channel: array.array) -> None:
    assert stretches(channel) == []


def test_a_click_is_not_speech_but_a_short_word_is() -> None:
    channel = line_noise(10.0)
    put(channel, 2.0, tone(0.04, dbfs=-6))   # a click: two frames
    put(channel, 6.0, tone(0.15))            # "네": a short word
    assert [round(a, 1) for a, _ in stretches(channel)] == [5.7]


def test_the_floor_is_the_lines_own_and_muted_zeros_do_not_lower_it() -> None:
    noisy = array.array("h", (4 * v for v in line_noise(30.0)))   # a floor 12 dB higher: about -53 dBFS
    put(noisy, 5.0, array.array("h", bytes(2 * 15 * RATE)))       # half of it muted
    put(noisy, 25.0, tone(1.0, dbfs=-30))
    assert [(round(a, 1), round(b, 1)) for a, b in stretches(noisy)] == [(24.7, 26.3)]


def test_speech_as_loud_as_the_floor_permits_is_kept_on_a_noisy_line() -> None:
    # A floor of -40 dBFS would put the threshold at -28 dBFS: it is held at -30 dBFS, so
    # speech at -29 dBFS is still decoded (more is decoded on a noisy line, nothing lost).
    rng = random.Random(3)
    channel = array.array("h", (rng.randint(-570, 570) for _ in range(10 * RATE)))
    put(channel, 4.0, tone(1.0, dbfs=-29))
    assert [round(a, 1) for a, _ in stretches(channel)] == [3.7]


# ---------------------------------------------------------------- decoding


@pytest.fixture(scope="module")
def model():
    return load_model()


def stereo(path: Path, caller: array.array, agent: array.array) -> Path:
    frames = max(len(caller), len(agent))
    both = array.array("h", bytes(4 * frames))
    both[0:2 * len(caller):2], both[1:2 * len(agent):2] = caller, agent
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(both.tobytes())
    return path


def mono_samples(path: Path) -> array.array:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return array.array("h", w.readframes(w.getnframes()))


@pytest.fixture(scope="module")
def late_speech_wav(tmp_path_factory) -> Path:
    """The caller speaks 20 s into the call; the agent's side is line noise throughout."""
    folder = tmp_path_factory.mktemp("late")
    words = mono_samples(speech(" ".join(CALLER_WORDS), folder / "words.wav", 0.0, 0.0))
    caller = line_noise(24.0, seed=4)
    put(caller, 20.0, array.array("h", (min(32767, max(-32768, s + n)) for s, n in zip(words, caller[160000:],
                                                                                     strict=False))))
    return stereo(folder / "late.wav", caller, line_noise(24.0, seed=5))


# Vosk is not exactly repeatable: two runs of the same decoder on the same audio may differ in
# confidence and by a few hundredths of a second, now and then by a word split in two or a stray
# grammar word. Times are
# checked against where the speech is, within 0.3 s.


def assert_late_speech(words: list) -> None:
    """The words of late_speech_wav: the caller's, from 20 s into the call."""
    assert {w.word for w in words} <= set(CALLER_WORDS) and {w.channel for w in words} == {"caller"}
    assert words[0].word == "안녕하세요" and words[0].start_s == pytest.approx(20.0, abs=0.3)
    assert all(20.0 - 0.3 <= w.start_s < w.end_s <= 24.0 for w in words)


def assert_call(words: list) -> None:
    """The words of call_wav: the caller's from 0.5 s, the agent's from 3.5 s."""
    caller = [w for w in words if w.channel == "caller"]
    agent = [w for w in words if w.channel == "agent"]
    # Each side's own words are heard (a warm recogniser now and then adds a stray grammar
    # word: what must never happen is a word off its channel's time).
    assert {w.word for w in caller} & set(CALLER_WORDS) and {w.word for w in agent} & set(AGENT_WORDS)
    assert all(w.start_s < 3.0 for w in caller), "the caller spoke from 0.5 s"
    assert all(3.3 <= w.start_s < w.end_s <= 6.0 for w in agent), "the agent spoke from 3.5 s"


def test_words_after_long_silence_land_on_the_files_timeline(model, late_speech_wav) -> None:
    transcriber = Transcriber(model, GRAMMAR)
    decoded = transcriber.transcribe(late_speech_wav)
    assert decoded.audio_s == pytest.approx(24.0) and decoded.channel_s == pytest.approx(48.0)
    assert_late_speech(decoded.words)
    # Only the caller's words were decoded (and their padding): not the 20 s before them, nor the agent's side.
    assert decoded.decoded_s < 4.0
    # The same words as plain Vosk on the whole channels, at the same times.
    _, plain = transcribe_wav(model, late_speech_wav, GRAMMAR)
    assert {w.word for w in plain} == {w.word for w in decoded.words}
    for word in decoded.words:
        assert any(p.word == word.word and abs(p.start_s - word.start_s) <= 0.3 for p in plain), word


def test_a_warm_recogniser_keeps_each_calls_times_its_own(model, call_wav, late_speech_wav) -> None:
    transcriber = Transcriber(model, GRAMMAR)
    for _ in range(3):   # the same two recognisers, each call after others: times start at each call's own 0
        assert_late_speech(transcriber.transcribe(late_speech_wav).words)
        assert_call(transcriber.transcribe(call_wav).words)
    assert len(transcriber._idle[RATE]) == 2, "two recognisers (one per channel), kept"


def test_the_workers_transcriber_hears_each_channel_at_the_right_time(model, call_wav) -> None:
    decoded = Transcriber(model, GRAMMAR).transcribe(call_wav)
    assert 0 < decoded.decoded_s < decoded.channel_s
    assert_call(decoded.words)


def test_a_muted_stretch_is_not_even_decoded(model, call_wav) -> None:
    decoded = Transcriber(model, GRAMMAR).transcribe(call_wav, muted=[(0.0, 3.2)])
    assert decoded.words and all(w.start_s >= 3.2 and w.channel == "agent" for w in decoded.words)
    whole = Transcriber(model, GRAMMAR).transcribe(call_wav)
    assert decoded.decoded_s < whole.decoded_s


def test_a_recogniser_that_has_heard_enough_is_replaced(model, call_wav, monkeypatch) -> None:
    monkeypatch.setattr(transcribe, "RETIRE_AFTER_S", 2.0)   # each channel's stretches are longer
    transcriber = Transcriber(model, GRAMMAR)
    for _ in range(2):   # each time on new recognisers, whose times start again at 0
        assert_call(transcriber.transcribe(call_wav).words)
        assert transcriber._idle[RATE] == []


def test_a_silent_channel_is_never_given_to_vosk() -> None:
    transcriber = Transcriber(model=None)   # a recogniser made of no model would fail: none is made
    assert transcriber.decode_channel(line_noise(30.0).tobytes(), RATE, "agent") == ([], 0)
    assert transcriber._idle == {}


def test_with_skipping_off_whole_channels_are_decoded(model, late_speech_wav) -> None:
    decoded = Transcriber(model, GRAMMAR, skipping=None).transcribe(late_speech_wav)
    assert decoded.decoded_s == decoded.channel_s == pytest.approx(48.0)
    assert_late_speech(decoded.words)
