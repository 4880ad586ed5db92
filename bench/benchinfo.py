"""What every benchmark writes about the machine it ran on (results are compared across runs)."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cpus_visible": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "system": f"{platform.system()} {platform.release()}",
            "loadavg_at_end": [round(x, 2) for x in load] if load else None}
