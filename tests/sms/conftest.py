"""A real Kannel (bearerbox, smsbox) with fakesmsc as the carrier, on loopback ports of its own,
started once for the session by scripts/kannel.sh and stopped after it. If Kannel cannot be
started the tests fail: they are about the gateway."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from aiohttp import web

from callcenter.config import Settings, load_settings
from callcenter.sms import http as sms_http
from callcenter.sms.kannel import KannelClient
from callcenter.sms.sender import SmsSender
from callcenter.sms.service import SmsService
from callcenter.web.keys import SESSIONMAKER, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kannel.sh"
GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass(frozen=True)
class Carrier:
    """What fakesmsc received: (sender, receiver, text) per message, decoded."""

    log: Path

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def received(self, since: int = 0) -> list[tuple[str, str, str]]:
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(since)
            lines = f.read().decode("utf-8", errors="replace").splitlines()
        out = []
        for line in lines:
            if m := GOT.search(line):
                sender, receiver, kind, data = m.groups()
                raw = unquote_to_bytes(data.replace("+", "%20"))   # form-encoded: a 0x20 byte is "+"
                text = raw.decode("utf-16-be") if kind == "ucs-2" else raw.decode("latin-1")
                out.append((sender, receiver, text))
        return out

    async def wait_for(self, since: int, count: int, timeout_s: float = 20.0) -> list[tuple[str, str, str]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.received(since)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        return self.received(since)


@dataclass
class Gateway:
    env: dict[str, str]
    overrides: dict[str, Any]
    carrier: Carrier
    web_port: int
    mo_port: int
    extra: dict[str, Any] = field(default_factory=dict)

    def script(self, command: str) -> None:
        done = subprocess.run([str(SCRIPT), command], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            pytest.fail(f"scripts/kannel.sh {command} failed:\n{done.stdout}\n{done.stderr}")

    def inject_mo(self, number: str, text: str) -> None:
        """A reply from a phone, as the carrier passes it on (the MO-only fake SMSC port)."""
        line = f"{number} 96666 ucs2 " + "".join(f"%{b:02X}" for b in text.encode("utf-16-be"))
        with socket.create_connection(("127.0.0.1", self.mo_port), timeout=5) as s:
            s.sendall(line.encode() + b"\n")
            time.sleep(0.3)   # bearerbox reads the line before the client goes


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    admin, box, sendsms, carrier, mo, web_port = free_ports(6)
    folder = tmp_path_factory.mktemp("kannel")
    overrides = {
        "config_dir": str(folder), "admin_port": admin, "smsbox_port": box, "sendsms_port": sendsms,
        "carrier_port": carrier, "mo_inject_port": mo, "sendsms_password": "test-sendsms-pw",
        "admin_password": "test-admin-pw", "mo_token": "test-mo-token",
        "callback_url": f"http://127.0.0.1:{web_port}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update({f"CALLCENTER_SMS__{k.upper()}": str(v) for k, v in overrides.items()})
    env.update({"PY": sys.executable, "PYTHONPATH": str(ROOT)})
    gw = Gateway(env, overrides, Carrier(folder / "fakesmsc.log"), web_port, mo)
    gw.script("start")
    try:
        yield gw
    finally:
        gw.script("stop")


@pytest.fixture
def sms_settings(gateway: Gateway, settings: Settings, tmp_path: Path) -> Settings:
    return load_settings(overrides={
        "paths": settings.paths.model_dump(mode="json"), "database": settings.database.model_dump(),
        "redis": settings.redis.model_dump(), "web": {"secret_key": "test-secret-key-0123456789abcdef"},
        "ami": {"secret": "test-ami-secret"},
        "sms": {**gateway.overrides, "quiet_start": "00:00", "quiet_end": "00:00", "poll_interval_s": 0.1,
                "retry_initial_s": 0.2, "retry_max_s": 1.0, "uncertain_wait_s": 5.0},
    })


@dataclass
class Hotline:
    """The SMS side of the hotline under test: the service, its routes on the port Kannel
    calls back, and the sender loop."""

    service: SmsService
    sender: SmsSender
    stop: asyncio.Event


@pytest.fixture
async def hotline(gateway: Gateway, sms_settings: Settings, sessionmaker: Any) -> AsyncIterator[Hotline]:
    service = SmsService(sessionmaker, sms_settings.sms, sms_settings.hotline.timezone)
    app = web.Application()
    app[SETTINGS], app[SESSIONMAKER], app[sms_http.SMS] = sms_settings, sessionmaker, service
    sms_http.setup_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", gateway.web_port)
    await site.start()
    sender = SmsSender(service, KannelClient(sms_settings.sms, sms_http.callback_base(sms_settings)))
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield Hotline(service, sender, stop)
    finally:
        stop.set()
        await task
        await runner.cleanup()


async def wait_until(predicate: Any, timeout_s: float = 20.0) -> bool:
    """A bounded wait on an (async) condition."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(0.05)
    return False
