"""Two engines, one hotline: two `serve` processes on the same Asterisk, Redis and PostgreSQL,
16 callers and 4 agents; one engine is killed (SIGKILL) in the middle of the load.

What must hold: no agent ever has two calls (counted from Asterisk's own events by an observer
of the test's own), no caller is lost (every caller talks to an agent), and every call ends
with exactly one closed record — the killed engine's calls included, which the survivor
adopts wherever they were: in the menu, waiting, ringing or talking."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.ami import events as ami_ev
from callcenter.ami.connection import AmiConnection
from callcenter.calls.models import Call
from callcenter.db import create_engine, make_sessionmaker
from callcenter.rig import AsteriskRig
from callcenter.sipp import Key, Sipp, agent_scenario, caller_scenario, expect_ok, stop_ok
from tests.conftest import postgres_database
from tests.e2e.conftest import AGENTS, free_port, rig_overrides, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "two-engines-admin-token"
CALLERS = 16
TALK_MS = 4000
RUN = ("import asyncio, json, logging, sys\n"
       "from callcenter.app import serve\n"
       "from callcenter.config import load_settings\n"
       "logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')\n"
       "asyncio.run(serve(load_settings(overrides=json.load(open(sys.argv[1])))))\n")


@pytest.fixture
def hotline_db() -> Iterator[str]:
    """A PostgreSQL database of this test's own (both engines write to it), dropped after."""
    with postgres_database("callcenter_two") as url:
        yield url


class EngineProcess:
    """`serve()` in a process of its own, as a deployment runs it."""

    def __init__(self, name: str, overrides: dict[str, Any], folder: Path) -> None:
        self.name, self.port = name, overrides["web"]["port"]
        self.base = f"http://127.0.0.1:{self.port}"
        self.settings_file = folder / f"{name}.json"
        self.settings_file.write_text(json.dumps(overrides))
        self.log = folder / f"{name}.log"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen([sys.executable, "-c", RUN, str(self.settings_file)], cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT, env={**os.environ})

    def restart(self) -> None:
        """The same engine (same id) started again after `stop`."""
        assert self.process.poll() is not None
        self.process = self._start()

    async def healthy(self, http: aiohttp.ClientSession) -> bool:
        assert self.process.poll() is None, f"engine {self.name} exited: {self.log_tail()}"
        try:
            async with http.get(f"{self.base}/health") as r:
                return r.status == 200 and (await r.json())["ami"]["ok"]
        except aiohttp.ClientError:
            return False

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture
async def engines(rig: AsteriskRig, tmp_path: Path, hotline_db: str,
                  redis_client: tuple[Any, str]) -> AsyncIterator[list[EngineProcess]]:
    """Engines a and b sharing the hotline (Redis keys under the test's own prefix, deleted after)."""
    assert rig.settings.ami.secret is not None
    _, prefix = redis_client
    started: list[EngineProcess] = []
    try:
        async with aiohttp.ClientSession() as http:
            for name in ("a", "b"):
                overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
                overrides["database"] = {"url": hotline_db}
                overrides["redis"] = {"url": "redis://127.0.0.1:6379/0", "prefix": prefix}
                overrides["web"] = {**overrides["web"], "port": free_port(), "cli_token": TOKEN}
                overrides["cluster"] = {"engine_id": f"engine-{name}"}
                engine = EngineProcess(name, overrides, tmp_path)
                started.append(engine)
                await wait_until(lambda e=engine: e.healthy(http), 60, f"engine {name} is up")   # type: ignore[misc]
        yield started
    finally:
        for engine in started:
            engine.stop()
        rig.hangup_all()


async def test_two_engines_one_killed_mid_load_no_caller_lost(rig: AsteriskRig, engines: list[EngineProcess],
                                                             hotline_db: str, tmp_path: Path, sipp: Sipp) -> None:
    a, b = engines
    admin = {"Authorization": f"Bearer {TOKEN}"}

    # Asterisk's own account of every agent phone's channels, through an AMI link of the test's own.
    busy: dict[str, set[str]] = defaultdict(set)
    overlaps: list[str] = []

    async def watch(event: ami_ev.Event) -> None:
        if isinstance(event, ami_ev.DialBegin) and event.dest_channel.split("/")[-1][:4] in AGENTS:
            agent = event.dest_channel.split("/")[1].split("-")[0]
            busy[agent].add(event.dest_channel)
            if len(busy[agent]) > 1:
                overlaps.append(f"{agent}: {sorted(busy[agent])}")
        if isinstance(event, ami_ev.Hangup) and event.channel.split("/")[-1][:4] in AGENTS:
            busy[event.channel.split("/")[1].split("-")[0]].discard(event.channel)

    observer = AmiConnection(rig.settings.ami, watch)
    await observer.start()
    await observer.wait_connected(10)
    db = create_engine(hotline_db)
    sessionmaker = make_sessionmaker(db)

    async def calls() -> list[Call]:
        async with sessionmaker() as session:
            rows = await session.execute(select(Call).options(selectinload(Call.attempts)))
            return list(rows.scalars())

    parties: list[Any] = []
    try:
        async with aiohttp.ClientSession() as http:
            for agent_id in AGENTS:                       # the agents log in on engine a
                async with http.post(f"{a.base}/api/agents/{agent_id}/login", headers=admin, json={}) as r:
                    assert r.status == 200, await r.text()

            async def b_knows_the_agents() -> bool:
                async with http.get(f"{b.base}/api/agents", headers=admin) as r:
                    states = {x["id"]: x["state"] for x in await r.json()}
                return all(states[agent_id] == "available" for agent_id in AGENTS)

            await wait_until(b_knows_the_agents, 10, "engine b sees the agents logged in on engine a")
            for agent_id, port in AGENTS.items():
                parties.append(await sipp.start(f"two-agent{agent_id}", agent_scenario(ring_ms=200, hangup_after_ms=TALK_MS),
                                               sip_port=port, media_port=20000 + (port - 5070) * 100, target=None,
                                               calls=CALLERS, timeout_s=300))
            callers = await sipp.start("two-callers", caller_scenario(
                keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=200_000), sip_port=5396, media_port=39600,
                service="96666", calls=CALLERS, rate=2, concurrent=CALLERS, timeout_s=300)
            parties.append(callers)

            async def a_holds_calls() -> bool:
                # Kill engine a while one of its callers has just started talking: the talk
                # outlives the engine, and the survivor must follow it to its end.
                held = [c for c in await calls() if c.engine_id == "engine-a" and not c.closed]
                now = datetime.now(UTC)
                return len(held) >= 2 and any(c.agent_answered_at and (now - c.agent_answered_at).total_seconds() < 1.5
                                              for c in held)

            await wait_until(a_holds_calls, 90, "engine a holds calls, one of them just started talking")
            in_flight = [c.id for c in await calls() if c.engine_id == "engine-a" and not c.closed]
            a.kill()                                    # no goodbye: its calls are orphans now

            await expect_ok(callers, 240)

            async def all_closed() -> bool:
                rows = await calls()
                return len(rows) == CALLERS and all(c.closed for c in rows)

            await wait_until(all_closed, 60, f"{CALLERS} closed call records")
            rows = await calls()
            assert len({c.uniqueid for c in rows}) == CALLERS               # exactly one record per call
            assert not overlaps, overlaps                                    # never two calls on one phone
            lost = [(c.id, c.disposition, c.engine_id) for c in rows if c.disposition != "answered"]
            assert not lost, (lost, b.log_tail())                            # every caller talked to an agent
            adopted = [c for c in rows if c.id in in_flight]
            assert adopted and all(c.engine_id == "engine-b" for c in adopted)
            assert all(c.ended_at and c.agent_id in AGENTS for c in rows)
            async with http.get(f"{b.base}/api/agents", headers=admin) as r:
                states = {x["id"]: x["state"] for x in await r.json()}
            assert all(states[agent_id] in ("available", "wrap_up") for agent_id in AGENTS), states
        for party in parties:
            await stop_ok(party)                                         # no phone saw a call fail
        assert b.stop() == 0, b.log_tail()
    finally:
        for party in parties:
            await party.stop()
        with contextlib.suppress(Exception):
            await observer.close()
        await db.dispose()
        (tmp_path / "engine-b-log.txt").write_text(b.log_tail(200_000))


async def test_an_engine_restarted_carries_on_its_calls_and_its_agents_states(
        rig: AsteriskRig, engines: list[EngineProcess], hotline_db: str, sipp: Sipp) -> None:
    a, b = engines
    assert b.stop() == 0                        # one engine alone: nobody else could take over
    admin = {"Authorization": f"Bearer {TOKEN}"}
    db = create_engine(hotline_db)
    sessionmaker = make_sessionmaker(db)
    parties: list[Any] = []

    async def the_call() -> Call | None:
        async with sessionmaker() as session:
            return (await session.execute(select(Call))).scalars().first()

    try:
        async with aiohttp.ClientSession() as http:
            async def agents() -> dict[str, tuple[str, str | None]]:
                async with http.get(f"{a.base}/api/agents", headers=admin) as r:
                    return {x["id"]: (x["state"], x["reason"]) for x in await r.json()}

            for agent_id in ("1001", "1002"):
                async with http.post(f"{a.base}/api/agents/{agent_id}/login", headers=admin, json={}) as r:
                    assert r.status == 200, await r.text()
            async with http.post(f"{a.base}/api/agents/1002/pause", headers=admin, json={"reason": "training"}) as r:
                assert r.status == 200, await r.text()
            port = AGENTS["1001"]
            parties.append(await sipp.start("restart-agent", agent_scenario(ring_ms=200, hangup_after_ms=12_000),
                                            sip_port=port, media_port=20000 + (port - 5070) * 100, target=None,
                                            calls=1, timeout_s=120))
            caller = await sipp.start("restart-caller", caller_scenario(
                keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=90_000), sip_port=5394, media_port=39400,
                service="96666", calls=1, timeout_s=120)
            parties.append(caller)

            async def talking() -> bool:
                call = await the_call()
                return call is not None and call.agent_answered_at is not None

            await wait_until(talking, 40, "the caller talks to agent 1001")
            assert a.stop() == 0                    # a clean stop hands the call over
            assert rig.channels(), "the call goes on in Asterisk while no engine runs"
            a.restart()
            await wait_until(lambda: a.healthy(http), 60, "engine a is up again")
            await expect_ok(caller)

            async def closed() -> bool:
                call = await the_call()
                return call is not None and call.closed

            await wait_until(closed, 30, "the call record is closed")
            call = await the_call()
            assert call is not None
            assert (call.disposition, call.agent_id, call.hangup_first) == ("answered", "1001", "agent")
            assert call.recording_path and Path(call.recording_path).exists()      # the recording followed
            states = await agents()
            assert states["1002"] == ("paused", "training"), states              # kept over the restart
            await wait_until(lambda: _available(agents(), "1001"), 15, "agent 1001 free again after the call")
            await expect_ok(parties[0])   # the agent's one call
    finally:
        for party in parties:
            await party.stop()
        await db.dispose()


async def _available(states: Any, agent_id: str) -> bool:
    return (await states)[agent_id][0] == "available"
