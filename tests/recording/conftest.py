import subprocess
from pathlib import Path

import pytest

CALLER_WORDS = ["안녕하세요", "감사합니다"]
AGENT_WORDS = ["물이", "알려주세요"]
GRAMMAR = CALLER_WORDS + AGENT_WORDS


def speech(text: str, path: Path, pad_before: float, pad_after: float) -> Path:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path), "pad", str(pad_before),
                    str(pad_after)], check=True)
    return path


@pytest.fixture(scope="session")
def call_wav(tmp_path_factory) -> Path:
    """A stereo call: the caller speaks at 0.5 s (left), the agent at 3.5 s (right)."""
    folder = tmp_path_factory.mktemp("audio")
    caller = speech(" ".join(CALLER_WORDS), folder / "caller.wav", 0.5, 3.0)
    agent = speech("물이 새요 주소를 알려주세요", folder / "agent.wav", 3.5, 0.0)
    out = folder / "call.wav"
    subprocess.run(["sox", "-M", str(caller), str(agent), "-b", "16", str(out)], check=True)
    return out
