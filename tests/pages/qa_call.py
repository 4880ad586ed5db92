"""A recorded call with known words at known times, for the QA pages' tests and the bench.

Each word is spoken by espeak-ng (Mandarin) into its party's channel at its own moment (sox pads
it there), so the stereo WAV has speech exactly where the transcript says; the transcript is
stored with those times (no recogniser in between: the times are what the test knows), the
automatic checks run on it as the worker runs them, and the Opus playback copy is made as the
worker makes it.
"""
from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.calls.models import Call
from callcenter.qa.checks import Spoken, check_call, load_rules
from callcenter.recording.finalize import recording_path, sha256_of
from callcenter.recording.playback import make_playback_copy
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import Word


def with_qa_routes(app) -> None:
    """The pages' app of tests/pages/conftest.py, with the QA and recording APIs the player uses."""
    from callcenter.qa import http as qa_http
    from callcenter.recording import http as recording_http

    qa_http.setup_routes(app)
    recording_http.setup_routes(app)


DURATION_S = 14.0
PAUSED = (6.0, 8.0)            # the agent paused the recording (a card number)
# (channel, word, start, end): the agent greets, the caller reports a leak, the agent says a
# forbidden phrase at 9.0 s, the caller thanks, the agent closes.
WORDS = [
    ("agent", "您好", 0.4, 1.0), ("agent", "供水热线", 1.0, 2.0),
    ("caller", "我家", 2.6, 3.0), ("caller", "漏水", 3.0, 3.8), ("caller", "厨房", 4.0, 4.8),
    ("agent", "不知道", 9.0, 9.8),
    ("caller", "谢谢", 10.6, 11.2),
    ("agent", "再见", 12.0, 12.8),
]


def _say(word: str, start: float, folder: Path, index: int) -> Path:
    raw, placed = folder / f"w{index}.raw.wav", folder / f"w{index}.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-s", "260", "-w", str(raw), word], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(placed), "pad", f"{start}"],
                   check=True, capture_output=True)
    return placed


def _channel(channel: str, folder: Path) -> Path:
    silence = folder / f"{channel}-silence.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(silence), "trim", "0", f"{DURATION_S}"],
                   check=True, capture_output=True)
    spoken = [_say(w, s, folder, i) for i, (c, w, s, _) in enumerate(WORDS) if c == channel]
    mixed = folder / f"{channel}.wav"
    inputs = [arg for path in (silence, *spoken) for arg in ("-v", "1", str(path))]
    subprocess.run(["sox", "-m", *inputs, str(mixed), "trim", "0", f"{DURATION_S}"], check=True, capture_output=True)
    return mixed


def make_recording(wav: Path, work: Path) -> Path:
    """The stereo WAV (caller left, agent right) and its Opus copy beside it."""
    work.mkdir(parents=True, exist_ok=True)
    wav.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-M", str(_channel("caller", work)), str(_channel("agent", work)), "-b", "16", str(wav)],
                   check=True, capture_output=True)
    make_playback_copy(wav)
    return wav


async def add_recorded_call(sessionmaker, recordings_dir: Path, work: Path, *, agent_id: str = "1001",
                            queue: str = "leak") -> str:
    call_id = str(uuid.uuid4())
    arrived = datetime.now(UTC) - timedelta(hours=1)
    wav = make_recording(recording_path(recordings_dir, call_id, arrived.strftime("%Y-%m-%d")), work / call_id)
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number="13800000009", arrived_at=arrived, ended_at=arrived + timedelta(seconds=DURATION_S),
                         agent_id=agent_id, category="leak", queue=queue, disposition="answered", closed=True,
                         recording_path=str(wav), recording_sha256=sha256_of(wav), recording_duration_s=DURATION_S,
                         hangup_first="caller", muted_spans=[list(PAUSED)]))
    words = [Word(c, w, s, e, 0.95) for c, w, s, e in WORDS]
    checks = check_call([Spoken(c, w, s, e) for c, w, s, e in WORDS], load_rules(), duration_s=DURATION_S,
                        hangup_first="caller", survey_score=None)
    await TranscriptStore(sessionmaker).save(call_id, words, model="known words", worker="test", audio_s=DURATION_S,
                                             took_s=0.0, now=datetime.now(UTC), checks=[c.as_dict() for c in checks])
    return call_id
