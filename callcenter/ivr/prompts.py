"""Prompt audio from prompt text: espeak-ng speaks it (Mandarin by default), pydub makes
telephony audio (8 kHz, mono, 16-bit WAV, which Asterisk plays as .wav), and the result is
cached: a prompt is rebuilt only when its text, voice or speed changes (a manifest keeps a
hash of each).

The text reaches espeak-ng on standard input (`--stdin`), never on its command line: a notice
a supervisor typed as `-f/etc/passwd` or `-w<path>` is spoken as those words, not read as an
option."""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError

from callcenter.ivr.model import Menu

log = logging.getLogger(__name__)

MANIFEST = "prompts.json"


class PromptError(Exception):
    pass


def _fingerprint(text: str, voice: str, speed_wpm: int) -> str:
    return hashlib.sha256(f"{voice}|{speed_wpm}|{text}".encode()).hexdigest()[:16]


def speak(text: str, target: Path, voice: str = "cmn", speed_wpm: int = 150) -> Path:
    """Speak `text` into `target` (8 kHz mono 16-bit WAV), atomically: `target` appears complete
    or not at all. Raises PromptError when the speech engine fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        spoken = Path(tmp) / "spoken.wav"
        try:
            # The text on standard input: nothing in it can become an option of espeak-ng.
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(spoken), "--stdin"],
                           input=text.encode(), check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise PromptError("espeak-ng is not installed (make setup installs it)") from None
        except subprocess.CalledProcessError as exc:
            raise PromptError(f"espeak-ng failed: {exc.stderr.decode(errors='replace').strip()}") from None
        except subprocess.TimeoutExpired:
            raise PromptError("espeak-ng took longer than 60 s") from None
        try:
            with open(spoken, "rb") as spoken_file:   # our handle: pydub does not close its own
                audio = AudioSegment.from_wav(spoken_file).set_frame_rate(8000).set_channels(1).set_sample_width(2)
        except (OSError, CouldntDecodeError) as exc:
            raise PromptError(f"espeak-ng gave no audio: {exc}") from None
        partial = target.with_name(f".{target.name}.tmp")
        try:
            with open(partial, "wb") as out:  # pydub leaves the handle it opens itself unclosed
                audio.export(out, format="wav")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def render_prompt(prompt_id: str, text: str, prompts_dir: Path, voice: str = "cmn", speed_wpm: int = 150) -> Path:
    """Speak `text` into <prompts_dir>/<prompt_id>.wav (8 kHz mono 16-bit), atomically."""
    try:
        return speak(text, prompts_dir / f"{prompt_id}.wav", voice, speed_wpm)
    except PromptError as exc:
        raise PromptError(f"prompt {prompt_id!r}: {exc}") from None


MAX_POSITION = 10
MAX_WAIT_MINUTES = 30


def announcement_texts() -> dict[str, str]:
    """Queue announcements: the caller's place and the expected wait, one prompt per number."""
    texts = {f"position_{n}": f"您前面还有{n}位用户在等待。" for n in range(1, MAX_POSITION + 1)}
    texts["position_next"] = "您是下一位，请稍候。"
    texts["position_many"] = f"您前面还有超过{MAX_POSITION}位用户在等待。"
    texts.update({f"wait_{m}": f"预计等待约{m}分钟。" for m in range(1, MAX_WAIT_MINUTES + 1)})
    texts["wait_long"] = f"预计等待超过{MAX_WAIT_MINUTES}分钟，需要回电请按1。"
    return texts


def announcement_prompts(position: int, estimated_wait_s: float) -> list[str]:
    """The prompt ids that say a caller's place (1 = next) and the expected wait."""
    ahead = position - 1
    place = "position_next" if ahead <= 0 else (f"position_{ahead}" if ahead <= MAX_POSITION else "position_many")
    minutes = max(1, round(estimated_wait_s / 60))
    wait = f"wait_{minutes}" if minutes <= MAX_WAIT_MINUTES else "wait_long"
    return [place, wait]


def build_prompts(menu: Menu, prompts_dir: Path, voice: str = "cmn", speed_wpm: int = 150,
                  extra: dict[str, str] | None = None) -> list[Path]:
    """Render every prompt of the menu, the queue announcements (and `extra`), skipping those
    already current."""
    prompts_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = prompts_dir / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except json.JSONDecodeError:
        manifest = {}
    paths = []
    built = 0
    for prompt_id, text in {**menu.prompts(), **announcement_texts(), **(extra or {})}.items():
        fingerprint = _fingerprint(text, voice, speed_wpm)
        path = prompts_dir / f"{prompt_id}.wav"
        if manifest.get(prompt_id) != fingerprint or not path.exists():
            render_prompt(prompt_id, text, prompts_dir, voice, speed_wpm)
            manifest[prompt_id] = fingerprint
            built += 1
        paths.append(path)
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True))
    log.info("prompts: %d current, %d rebuilt in %s", len(paths) - built, built, prompts_dir)
    return paths
