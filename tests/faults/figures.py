"""The battery's figures: each case MERGES its entry into bench/results/faults.json, so cases
written by different people (PBX faults, phones ...) keep one file with one entry per case.

An entry: calls placed, records closed, records with a wrong outcome, channels left in
Asterisk, recordings whose SHA-256 does not match their file, and `recovery_s`, the time
from the fault's end (Asterisk back, the engine restarted ...) to the engine answering a
new call. The goal is zero of every loss figure and recovery within 5 s.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FAULTS_JSON = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"
RECOVERY_GOAL_S = 5.0


@dataclass
class CaseFigures:
    calls_placed: int
    records_closed: int
    wrong_outcomes: int
    channels_left: int
    recordings_mismatched: int
    recovery_s: float | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def losses(self) -> int:
        return (self.calls_placed - self.records_closed) + self.wrong_outcomes + self.channels_left \
            + self.recordings_mismatched


def recordings_mismatched(calls: Iterable[Any]) -> int:
    """Records whose recording file is missing or whose SHA-256 is not the one stored."""
    bad = 0
    for call in calls:
        if call.recording_path is None:
            continue
        path = Path(call.recording_path)
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != call.recording_sha256:
            bad += 1
    return bad


def write_case(case: str, figures: CaseFigures, path: Path = FAULTS_JSON) -> dict[str, Any]:
    """Merge one case's figures into the file (under a lock: cases may run side by side);
    returns the whole file as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except json.JSONDecodeError:
            data = {}
        cases = data.setdefault("cases", {})
        cases[case] = {**asdict(figures), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        data["goal"] = {"losses": 0, "recovery_s_max": RECOVERY_GOAL_S}
        data["cases"] = dict(sorted(cases.items()))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".faults-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, ensure_ascii=False)
            out.write("\n")
        os.replace(tmp, path)
    return data
