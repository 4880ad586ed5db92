"""The real thing: Asterisk 22 in its root, SIPp callers and agents' phones, the engine.

The fixtures of every real-Asterisk test (tests/e2e, tests/faults), registered once for the
whole suite by tests/conftest.py, so that the session's one Asterisk is started once however
many folders use it. Tests import the helpers (Hotline, wait_until ...) from here.

Asterisk starts once per test session with configs rendered from the test settings; each
test gets a fresh hotline (callcenter.app.build_hotline, as `callcenter run` builds it) on a
fresh SQLite database. If Asterisk cannot be started the
tests FAIL (they never skip): `make test` builds the root before it runs them.

Every SIPp party a test starts is held to SIPp's own verdict: a test that passed fails at
teardown when one of its parties was left running or ended with a code nobody expected.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.app import Hotline as BuiltHotline
from callcenter.app import build_hotline
from callcenter.calls.engine import Engine
from callcenter.calls.models import Call
from callcenter.config import Settings, load_settings
from callcenter.ivr.model import load_menu
from callcenter.ivr.prompts import build_prompts
from callcenter.rig import AsteriskRig, RigError
from callcenter.sipp import Sipp
from tests.conftest import REDIS_URL, fresh_sqlite

ROOT_DIR = Path(__file__).resolve().parents[1]
AGENTS = {"1001": 5071, "1002": 5072, "1003": 5073, "1004": 5074}
SOFTPHONE_PASSWORD = "softphone-1005-test"   # a constant: pytest may import this module twice
PROMPT_CACHE = ROOT_DIR / "var" / "test-prompts"
SHORT_MENU = Path(__file__).parent / "e2e" / "short_menu.yaml"

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test, so a fixture's teardown knows whether the test passed."""
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def passed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(REPORTS, {})
    return "call" in reports and reports["call"].passed


def rig_overrides(spool: Path, secret: str) -> dict[str, Any]:
    return {
        "ami": {"secret": secret, "ping_interval_s": 1.0, "ping_timeout_s": 1.0, "reconnect_backoff_max_s": 1.0},
        # Phones are asked every second whether they are there (a phone a test has just started
        # is rung within about a second); softphones may register for as little as 10 s.
        "asterisk": {"sip_bind": "127.0.0.1:5060", "trunk_contact": "sip:127.0.0.1:5090",
                     "qualify_frequency_s": 1, "qualify_timeout_s": 0.5, "registration_min_s": 10},
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


@pytest.fixture
async def sipp(rig: AsteriskRig, request: pytest.FixtureRequest) -> AsyncIterator[Sipp]:
    """The SIPp runner; at teardown every party it started must have ended as SIPp's verdict 0,
    been stopped on purpose with no failed call, or been expected to fail."""
    runner = Sipp(rig.spool)
    yield runner
    problems = await runner.unchecked()
    if problems and passed(request):
        pytest.fail("\n\n".join(problems), pytrace=False)


@dataclass
class Hotline:
    """A running engine on the real Asterisk, and ways to look at what it did."""

    rig: AsteriskRig
    engine: Engine
    settings: Settings
    sipp: Sipp
    sessionmaker: Any
    ports: Iterator[int]
    overrides: dict[str, Any]
    built: BuiltHotline

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

    def recorded_s(self, call_id: str) -> float:
        """Seconds of the call MixMonitor has written so far (16-bit 8 kHz stereo raw, while it lasts)."""
        raw = self.settings.paths.recordings_dir / "incoming" / f"{call_id}.raw"
        return raw.stat().st_size / 32_000 if raw.exists() else 0.0

    def call_of(self, agent_id: str) -> Any:
        """The live call agent `agent_id` is on (its session)."""
        return next(s for s in self.engine.sessions.values() if s.agent_id == agent_id)

    async def talked(self, agent_id: str, seconds: float, timeout: float = 15) -> None:
        """Until the agent's call has `seconds` more of talk recorded than it had when asked."""
        call_id = self.call_of(agent_id).call_id
        start = self.recorded_s(call_id)
        await wait_until(lambda: self.recorded_s(call_id) >= start + seconds, timeout,
                         f"{seconds:g} s more of agent {agent_id}'s call recorded")

    def next_port(self) -> int:
        return next(self.ports)

    async def no_channels_left(self, timeout: float = 15) -> None:
        await wait_until(lambda: not self.rig.channels(), timeout, "Asterisk has no channels left")


@pytest.fixture
async def hotline(rig: AsteriskRig, sipp: Sipp, tmp_path: Path, migrated_sqlite: Path,
                  request: pytest.FixtureRequest) -> AsyncIterator[Hotline]:
    """The hotline `build_hotline` builds — what `callcenter run` runs: engine, web app (with
    the users of WEB_USERS), duties — on a fresh SQLite database and a Redis prefix of its own.
    SMS is off (tests/sms has its own Kannel)."""
    assert rig.settings.ami.secret is not None
    overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
    overrides["database"] = {"url": fresh_sqlite(migrated_sqlite, tmp_path / "calls.db")}
    overrides["redis"] = {"url": REDIS_URL, "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"}
    overrides["web"] = {**overrides["web"], "host": "127.0.0.1", "port": free_port()}
    overrides["users"] = WEB_USERS
    overrides["sms"] = {"enabled": False}
    overrides["cluster"] = {"engine_id": "e2e"}
    extra = getattr(request, "param", None) or {}
    for key, value in extra.items():
        overrides[key] = {**overrides.get(key, {}), **value} if isinstance(value, dict) else value
    settings = load_settings(overrides=overrides)
    async with contextlib.AsyncExitStack() as opened:
        built = await opened.enter_async_context(build_hotline(settings))
        line = Hotline(rig=rig, engine=built.engine, settings=settings, sipp=sipp, sessionmaker=built.sessionmaker,
                       ports=iter(range(5100, 5400, 2)), overrides=overrides, built=built)
        try:
            yield line
        finally:
            sipp.note_left_running()   # what the test left running counts so, however it ends now
            await opened.aclose()      # the hotline stops: duties, web, engine, Redis, database
            if rig.channels():
                # Hang up while the phones still answer: a BYE nobody answers is sent again for
                # half a minute, to whichever phone of the next test listens on that port.
                with contextlib.suppress(Exception):
                    rig.hangup_all()
                with contextlib.suppress(AssertionError):
                    await line.no_channels_left(timeout=10)
            await sipp.stop_all()
            redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
            keys = [k async for k in redis.scan_iter(match=settings.redis.prefix + "*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The web users of the hotline over HTTP: an agent, and a supervisor whose own phone is 1004's.
WEB_USERS = [
    {"username": "a1001", "password": "agent-1001-password", "role": "agent", "agent_id": "1001"},
    {"username": "sup", "password": "supervisor-password", "role": "supervisor", "phone": "1004"},
]


@dataclass
class WebUser:
    """One person logged in with a session cookie; every POST carries their CSRF token."""

    username: str
    base: str
    http: aiohttp.ClientSession
    csrf: str

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as r:
            return r.status, await _body(r)

    async def post(self, path: str, body: dict[str, Any] | None = None, *, csrf: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        async with self.http.post(self.base + path, json=body or {}, headers=headers) as r:
            return r.status, await _body(r)

    async def agent(self, agent_id: str) -> dict[str, Any]:
        status, agents = await self.get("/api/agents")
        assert status == 200, agents
        return next(a for a in agents if a["id"] == agent_id)


async def _body(response: aiohttp.ClientResponse) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


@dataclass
class WebHotline:
    """The web app serving the e2e hotline's engine on a loopback port."""

    base: str
    line: Hotline
    sessions: list[aiohttp.ClientSession]

    async def log_in_form(self, username: str) -> WebUser:
        """Log in as a person does: the form on /login, then the page, where the CSRF token is."""
        http = self._session()
        password = next(u["password"] for u in WEB_USERS if u["username"] == username)
        async with http.post(f"{self.base}/login", data={"username": username, "password": password,
                                                         "next": "/agent"}) as r:
            assert r.status == 200 and r.url.path == "/agent", (r.status, r.url)
            page = await r.text()
        found = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
        assert found, "the agent page carries the CSRF token (its log-out form and htmx headers)"
        return WebUser(username, self.base, http, found.group(1))

    async def log_in_api(self, username: str) -> WebUser:
        """Log in as a script does: JSON to /api/login, which answers with the CSRF token."""
        http = self._session()
        password = next(u["password"] for u in WEB_USERS if u["username"] == username)
        async with http.post(f"{self.base}/api/login", json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            csrf = (await r.json())["csrf_token"]
        return WebUser(username, self.base, http, csrf)

    def _session(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))   # cookies for an IP host
        self.sessions.append(session)
        return session


@pytest.fixture
async def web_hotline(hotline: Hotline) -> AsyncIterator[WebHotline]:
    """The e2e hotline's own web app (every domain's routes, the users of WEB_USERS), with
    browser-like sessions that are closed afterwards."""
    served = WebHotline(hotline.built.url, hotline, [])
    try:
        yield served
    finally:
        for session in served.sessions:
            await session.close()


class AmiProxy:
    """A TCP relay between the engine and Asterisk's AMI that a test can cut and restore."""

    def __init__(self, target_port: int = 5038) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.accepting = True
        self.refused = 0   # connections turned away while cut

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            self.refused += 1
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
