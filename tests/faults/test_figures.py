"""The battery's figures file: each case merges its own entry and keeps the others'."""
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

from tests.faults.figures import CaseFigures, recordings_mismatched, write_case


def test_each_case_merges_its_entry_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "results" / "faults.json"
    write_case("pbx_restart", CaseFigures(3, 3, 0, 0, 0, 1.2), path)
    write_case("phone_unregistered", CaseFigures(5, 5, 1, 0, 0, None, {"why": "x"}), path)
    write_case("pbx_restart", CaseFigures(4, 4, 0, 0, 0, 0.9), path)    # run again: replaced
    data = json.loads(path.read_text())
    assert list(data["cases"]) == ["pbx_restart", "phone_unregistered"]
    assert data["cases"]["pbx_restart"]["calls_placed"] == 4 and data["cases"]["pbx_restart"]["recovery_s"] == 0.9
    assert data["cases"]["phone_unregistered"]["wrong_outcomes"] == 1
    assert data["goal"] == {"losses": 0, "recovery_s_max": 5.0}
    assert CaseFigures(3, 2, 1, 1, 1, None).losses == 4


def test_a_recording_counts_as_mismatched_when_missing_or_changed(tmp_path: Path) -> None:
    good = tmp_path / "a.wav"
    good.write_bytes(b"RIFF")
    digest = hashlib.sha256(b"RIFF").hexdigest()
    calls = [SimpleNamespace(recording_path=str(good), recording_sha256=digest),
             SimpleNamespace(recording_path=str(good), recording_sha256="0" * 64),
             SimpleNamespace(recording_path=str(tmp_path / "gone.wav"), recording_sha256=digest),
             SimpleNamespace(recording_path=None, recording_sha256=None)]
    assert recordings_mismatched(calls) == 2
