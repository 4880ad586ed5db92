"""The real thing: Asterisk 22 in its root, SIPp callers and agents' phones, the engine.

Asterisk starts once per test session with configs rendered from the test settings; each
test gets a fresh engine on a fresh SQLite database. If Asterisk cannot be started the
tests FAIL (they never skip): `make test` builds the root before it runs them.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.calls.engine import Engine
from callcenter.calls.models import Call
from callcenter.config import Settings, load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.ivr.model import load_menu
from callcenter.ivr.prompts import build_prompts
from callcenter.rig import AsteriskRig, RigError
from callcenter.sipp import Sipp
from callcenter.workorders.categories import load_categories
from callcenter.workorders.service import WorkOrderService

ROOT_DIR = Path(__file__).resolve().parents[2]
AGENTS = {"1001": 5071, "1002": 5072, "1003": 5073, "1004": 5074}
SOFTPHONE_PASSWORD = "softphone-1005-test"   # a constant: pytest may import this module twice
PROMPT_CACHE = ROOT_DIR / "var" / "test-prompts"
SHORT_MENU = Path(__file__).with_name("short_menu.yaml")

pytestmark = pytest.mark.asterisk


def rig_overrides(spool: Path, secret: str) -> dict[str, Any]:
    return {
        "ami": {"secret": secret, "ping_interval_s": 1.0, "ping_timeout_s": 1.0, "reconnect_backoff_max_s": 1.0},
        "asterisk": {"sip_bind": "127.0.0.1:5060", "trunk_contact": "sip:127.0.0.1:5090"},
        "paths": {"spool_dir": str(spool), "asterisk_config_dir": str(spool / "asterisk")},
        "acd": {"ring_timeout_s": 6, "wrapup_s": 2},
        "web": {"secret_key": "e2e-" + secret},
        "agents": [
            {"id": a, "name": f"Agent {a}", "sip_password": secrets.token_hex(8), "contact": f"sip:{a}@127.0.0.1:{port}",
             "queues": ["general", "leak", "billing", "complaint"]}
            for a, port in AGENTS.items()
        ] + [
            # A softphone that registers (no fixed address), with a password.
            {"id": "1005", "name": "Agent 1005", "sip_password": SOFTPHONE_PASSWORD, "queues": ["general", "leak"]},
        ],
    }


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskRig]:
    spool = tmp_path_factory.mktemp("spool")
    secret = secrets.token_hex(12)
    rig = AsteriskRig(load_settings(overrides=rig_overrides(spool, secret)))
    try:
        rig.prepare(prompt_cache=PROMPT_CACHE)
        for wav in build_prompts(load_menu(SHORT_MENU), PROMPT_CACHE):
            shutil.copyfile(wav, rig.settings.paths.prompts_dir / wav.name)
        rig.start()
    except RigError as exc:
        pytest.fail(f"the real Asterisk is not available (make test builds its root): {exc}")
    yield rig
    rig.stop()


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float, what: str, every: float = 0.1) -> None:
    """Retry an assertion until it holds, for a bounded time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {what}")
        await asyncio.sleep(every)


@dataclass
class Hotline:
    """A running engine on the real Asterisk, and ways to look at what it did."""

    rig: AsteriskRig
    engine: Engine
    settings: Settings
    sipp: Sipp
    sessionmaker: Any
    ports: Iterator[int]

    async def work_orders(self) -> list[Any]:
        from callcenter.workorders.models import WorkOrder

        async with self.sessionmaker() as session:
            return list((await session.execute(select(WorkOrder).order_by(WorkOrder.id))).scalars())

    async def calls(self) -> list[Call]:
        async with self.sessionmaker() as session:
            rows = await session.execute(select(Call).options(selectinload(Call.attempts)).order_by(Call.arrived_at))
            return list(rows.scalars())

    async def closed_calls(self, n: int, timeout: float = 30) -> list[Call]:
        async def enough() -> bool:
            return len([c for c in await self.calls() if c.closed]) >= n
        await wait_until(enough, timeout, f"{n} closed call records")
        return [c for c in await self.calls() if c.closed]

    def agent_state(self, agent_id: str) -> str:
        return self.engine.acd.agent(agent_id).state.value

    def next_port(self) -> int:
        return next(self.ports)

    async def no_channels_left(self, timeout: float = 15) -> None:
        await wait_until(lambda: not self.rig.channels(), timeout, "Asterisk has no channels left")


@pytest.fixture
async def hotline(rig: AsteriskRig, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Hotline]:
    assert rig.settings.ami.secret is not None
    overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"}
    overrides["redis"] = {"url": "redis://127.0.0.1:6379/0", "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"}
    extra = getattr(request, "param", None) or {}
    for key, value in extra.items():
        overrides[key] = {**overrides.get(key, {}), **value} if isinstance(value, dict) else value
    settings = load_settings(overrides=overrides)
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    sessionmaker = make_sessionmaker(db)
    workorders = WorkOrderService(sessionmaker, load_categories(), settings.hotline.timezone)
    engine = Engine(settings, sessionmaker, load_menu(settings.ivr.menu_file or None), engine_id="e2e",
                    hooks=[workorders])
    await engine.start()
    line = Hotline(rig=rig, engine=engine, settings=settings, sipp=Sipp(rig.spool), sessionmaker=sessionmaker,
                   ports=iter(range(5100, 5400, 2)))
    try:
        yield line
    finally:
        await engine.stop()
        with contextlib.suppress(Exception):
            rig.hangup_all()
        await db.dispose()


class AmiProxy:
    """A TCP relay between the engine and Asterisk's AMI that a test can cut and restore."""

    def __init__(self, target_port: int = 5038) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.accepting = True

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.pairs.append((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def cut(self) -> None:
        self.accepting = False
        for a, b in self.pairs:
            a.transport.abort()
            b.transport.abort()
        self.pairs.clear()

    def restore(self) -> None:
        self.accepting = True

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
