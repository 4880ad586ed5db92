"""`callcenter run` (what `make run` runs) as a service manager treats it: SIGTERM stops the
engine and the Asterisk it started; after the engine crashes, the next run reuses the Asterisk
that is still up; the run after that stops it again. The test borrows the session's Asterisk
root and configuration, and gives them back as it found them."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenter.rig import AsteriskRig
from tests.conftest import REDIS_URL
from tests.e2e.conftest import PROMPT_CACHE, free_port, rig_overrides, wait_until

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml(settings: dict[str, Any]) -> str:
    """The settings as TOML: a table per section, one [[agents]] table per agent."""
    lines = []
    for section, values in settings.items():
        if isinstance(values, list):
            for item in values:
                lines += [f"[[{section}]]", *(f"{k} = {toml_value(v)}" for k, v in item.items()), ""]
        else:
            lines += [f"[{section}]", *(f"{k} = {toml_value(v)}" for k, v in values.items()), ""]
    return "\n".join(lines)


class Run:
    """`python -m callcenter.cli run` in a process of its own, its output in a file."""

    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.log, self.base = log, f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "callcenter.cli", "--config", str(config), "run"],
                                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})

    async def healthy(self, http: aiohttp.ClientSession) -> bool:
        assert self.process.poll() is None, f"callcenter run exited: {self.log.read_text(errors='replace')[-3000:]}"
        try:
            async with http.get(f"{self.base}/health") as response:
                return response.status == 200 and (await response.json())["ami"]["ok"]
        except aiohttp.ClientError:
            return False

    async def ended(self, timeout: float) -> int:
        return await asyncio.to_thread(self.process.wait, timeout)


def asterisk_answers(rig: AsteriskRig) -> bool:
    return "Asterisk" in rig.rx("core show version")


@pytest.fixture
async def run_config(rig: AsteriskRig, tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    """Settings for `callcenter run` on the session's Asterisk configuration (same folders,
    same agents), a database and Redis prefix of their own; the rig is restored afterwards."""
    assert rig.settings.ami.secret is not None
    overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
    port = free_port()
    overrides["agents"] = [{"id": a.id, "name": a.name, "sip_password": a.sip_password.get_secret_value(),
                            "queues": a.queues, **({"contact": a.contact} if a.contact else {})}
                           for a in rig.settings.agents]
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"}
    overrides["redis"] = {"url": REDIS_URL, "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"}
    overrides["web"] = {**overrides["web"], "host": "127.0.0.1", "port": port}
    overrides["sms"] = {"enabled": False}
    overrides["cluster"] = {"engine_id": "run-lifecycle"}
    config = tmp_path / "callcenter.toml"
    config.write_text(toml(overrides))
    try:
        yield config, port
    finally:
        rig.prepare(prompt_cache=PROMPT_CACHE)   # the session's own configs, as rendered for it
        rig.start()


async def test_sigterm_stops_engine_and_asterisk_and_a_crashed_engine_restarts_on_its_asterisk(
        rig: AsteriskRig, run_config: tuple[Path, int], tmp_path: Path) -> None:
    config, port = run_config
    log = tmp_path / "run.log"
    async with aiohttp.ClientSession() as http:
        first = Run(config, log, port)                       # the session's Asterisk is ours: reused
        await wait_until(lambda: first.healthy(http), 90, "callcenter run answers with AMI up")
        first.process.send_signal(signal.SIGTERM)             # what a service manager sends
        assert await first.ended(60) == 0
        assert not asterisk_answers(rig), "SIGTERM left Asterisk running"

        second = Run(config, log, port)                      # a clean start
        await wait_until(lambda: second.healthy(http), 90, "callcenter run answers again")
        second.process.send_signal(signal.SIGKILL)            # the engine crashes; its Asterisk stays
        await second.ended(30)
        assert asterisk_answers(rig)

        third = Run(config, log, port)                       # no clean-up by hand
        await wait_until(lambda: third.healthy(http), 90, "callcenter run answers after the crash")
        assert "reusing the Asterisk already running" in log.read_text(errors="replace")
        third.process.send_signal(signal.SIGTERM)
        assert await third.ended(60) == 0
        assert not asterisk_answers(rig)
