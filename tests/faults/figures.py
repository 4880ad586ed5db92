"""Each fault case's figures, merged into bench/results/faults.json (one key per case; other
cases' figures are kept)."""
from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"


def record(case: str, **figures: Any) -> None:
    """calls_placed, records_closed, wrong_outcomes, channels_left, recovery_s ... for `case`."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RESULTS.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    cases = data.setdefault("cases", {})
    cases[case] = {**figures, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, prefix=".faults-")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, ensure_ascii=False, sort_keys=True)
        out.write("\n")
    os.replace(tmp, RESULTS)
