"""The playback copy: the call's stereo WAV as Opus in OGG (about a tenth of the size), for listening.

The WAV stays the record (its SHA-256 is on the call); the copy sits beside it as <call_id>.ogg,
written under a temporary name and renamed into place, so a listener never gets half a file.
Making it again is a no-op while the copy is newer than the WAV.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CODEC = "libopus"
BITRATE = "24k"        # speech at telephone quality, both channels (caller left, agent right)
SUFFIX = ".ogg"
CONTENT_TYPES = {".ogg": "audio/ogg", ".wav": "audio/wav"}


def playback_path(wav: Path) -> Path:
    return wav.with_suffix(SUFFIX)


def temp_name(path: Path) -> Path:
    """Where a file is written before it is renamed into place (finalize.py names it the same way)."""
    return path.with_name(f".{path.name}.tmp")


def make_playback_copy(wav: Path) -> Path:
    """Write <stem>.ogg beside the WAV (Opus via pydub and ffmpeg), atomically; return its path."""
    from pydub import AudioSegment

    ogg = playback_path(wav)
    if ogg.exists() and ogg.stat().st_mtime >= wav.stat().st_mtime:
        return ogg
    tmp = temp_name(ogg)
    try:
        # Our own file objects: pydub would otherwise open (and leave open) handles of its own.
        with wav.open("rb") as source:
            audio = AudioSegment.from_file(source, format="wav")
        with tmp.open("wb") as out:
            audio.export(out, format="ogg", codec=CODEC, bitrate=BITRATE, parameters=["-application", "voip"])
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, ogg)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("playback copy %s: %d bytes (WAV %d bytes)", ogg, ogg.stat().st_size, wav.stat().st_size)
    return ogg
