"""Prompt audio: whatever a prompt's text says, espeak-ng speaks it and never reads it as an option."""
import subprocess
import wave
from pathlib import Path

import pytest

from callcenter.ivr.prompts import PromptError, render_prompt


def seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def spoken_as_words(text: str, tmp_path: Path) -> float:
    """How long espeak-ng takes to say `text` as words (`--` ends its options), in seconds."""
    reference = tmp_path / "reference.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-s", "150", "-w", str(reference), "--", text],
                   check=True, capture_output=True, timeout=60)
    return seconds(reference)


@pytest.mark.parametrize("text", ["-f/etc/os-release", "-w{tmp}/written.wav", "--help", "-v en -s 400 停水"])
def test_a_prompt_that_looks_like_an_option_is_spoken_as_its_words(text: str, tmp_path: Path) -> None:
    text = text.format(tmp=tmp_path)
    prompts = tmp_path / "prompts"
    wav = render_prompt("notice_1", text, prompts)
    assert seconds(wav) == pytest.approx(spoken_as_words(text, tmp_path), abs=0.05)
    assert seconds(wav) < 10      # /etc/os-release read aloud lasts half a minute
    assert not (tmp_path / "written.wav").exists()
    assert sorted(p.name for p in prompts.iterdir()) == ["notice_1.wav"]
    with wave.open(str(wav), "rb") as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)


def test_a_speech_engine_failure_is_a_prompt_error_and_leaves_no_file(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    with pytest.raises(PromptError, match="prompt 'notice_2': espeak-ng failed"):
        render_prompt("notice_2", "东区停水", prompts, voice="zz")
    assert list(prompts.iterdir()) == []
