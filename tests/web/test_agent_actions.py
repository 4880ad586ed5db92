"""Agent and supervisor actions through HTTP on the real `Engine`, with the fake AMI server
underneath (tests/calls/fake_line.py): what the request asks for is checked against what
actually reaches Asterisk — the endpoint the next ring dials, the phone a supervisor's
listen-in rings, or that nothing was sent at all."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.calls.models import Supervision
from callcenter.web import access, users
from callcenter.web.app import init_app
from tests.calls.fake_line import FakeLine, agent, running_line
from tests.web.test_app import FakeLive

TOLL_FRAUD = "PJSIP/00882161234567@trunk"


@pytest.fixture
async def line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    agents = [agent("1001", endpoints=["1101"]), agent("1002"), agent("1004"), agent("1101")]
    async with running_line(settings, sessionmaker, agents) as running:
        yield running


@pytest.fixture
async def app(line: FakeLine, sessionmaker, redis_client) -> web.Application:
    client, prefix = redis_client
    settings = line.engine.settings.model_copy(update={
        "redis": line.engine.settings.redis.model_copy(update={"prefix": prefix}),
        "web": line.engine.settings.web.model_copy(update={"login_attempts_per_minute": 100}),
    })
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "sup", "sup-password-1", access.SUPERVISOR, phone="1004")
        await users.create_user(session, "sup2", "sup-password-2", access.SUPERVISOR)
        await users.create_user(session, "a1001", "agent-password-1", access.AGENT, agent_id="1001")
    return init_app(settings, sessionmaker=sessionmaker, redis=client, live=FakeLive(), agent_control=line.engine)


async def signed_in(aiohttp_client: Any, app: web.Application, username: str, password: str) -> tuple[Any, dict]:
    client = await aiohttp_client(app)
    response = await client.post("/api/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return client, {"X-CSRF-Token": (await response.json())["csrf_token"]}


def state_of(line: FakeLine, agent_id: str) -> str:
    return next(a.state.value for a in line.engine.acd.agents() if a.agent_id == agent_id) \
        if any(a.agent_id == agent_id for a in line.engine.acd.agents()) else "logged_out"


NOT_A_PHONE_OF_1001 = [TOLL_FRAUD, "Local/00882161234567@from-trunk", "PJSIP/1001", "1002", ["PJSIP/1001"], 123,
                       {"id": "1001"}, True, ""]


async def test_log_in_takes_no_dial_string(aiohttp_client, app, line: FakeLine) -> None:
    client, csrf = await signed_in(aiohttp_client, app, "a1001", "agent-password-1")
    for endpoint in NOT_A_PHONE_OF_1001:
        response = await client.post("/api/agents/1001/login", json={"endpoint": endpoint}, headers=csrf)
        assert response.status == 400, (endpoint, await response.text())
        assert (await response.json())["error"].startswith("endpoint:")
    assert state_of(line, "1001") == "logged_out"
    # A call comes in: nobody is logged in, so no phone rings and nothing is dialled anywhere.
    line.call_in()
    await line.until(lambda: any(c.startswith("EXEC StartMusicOnHold") for c in line.commands))
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)
    assert line.dials() == [] and line.sent("Originate") == []


async def test_an_agent_rings_at_their_own_phone(aiohttp_client, app, line: FakeLine) -> None:
    client, csrf = await signed_in(aiohttp_client, app, "a1001", "agent-password-1")
    assert (await client.post("/api/agents/1001/login", json={}, headers=csrf)).status == 200
    line.call_in()
    assert await line.dial_sent() == 'EXEC Dial "PJSIP/1001,15,gmt"'
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def test_an_agent_may_log_in_at_one_of_their_configured_phones(aiohttp_client, app, line: FakeLine) -> None:
    client, csrf = await signed_in(aiohttp_client, app, "a1001", "agent-password-1")
    assert (await client.post("/api/agents/1001/login", json={"endpoint": "1101"}, headers=csrf)).status == 200
    line.call_in()
    assert await line.dial_sent() == 'EXEC Dial "PJSIP/1101,15,gmt"'
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def on_a_call(line: FakeLine) -> str:
    """Agent 1001 logged in and talking to a caller; their phone's channel."""
    await line.engine.login("1001")
    line.call_in()
    await line.dial_sent()
    line.agent_answers("PJSIP/1001-00000002")
    await line.until(lambda: state_of(line, "1001") == "on_call")
    return "PJSIP/1001-00000002"


async def test_spy_rings_the_supervisors_own_phone_only(aiohttp_client, app, line: FakeLine, sessionmaker) -> None:
    agent_channel = await on_a_call(line)
    client, csrf = await signed_in(aiohttp_client, app, "sup", "sup-password-1")
    refused = await client.post("/api/agents/1001/spy", json={"mode": "listen", "endpoint": TOLL_FRAUD}, headers=csrf)
    assert refused.status == 400 and (await refused.json())["error"].startswith("endpoint:")
    assert (await client.post("/api/agents/1001/spy", json={"mode": ["listen"]}, headers=csrf)).status == 400
    assert line.sent("Originate") == []
    response = await client.post("/api/agents/1001/spy", json={"mode": "whisper"}, headers=csrf)
    assert response.status == 200, await response.text()
    [spy] = line.sent("Originate")
    assert (spy["Channel"], spy["Application"], spy["Data"]) == ("PJSIP/1004", "ChanSpy", f"{agent_channel},qEw")
    async with sessionmaker() as session:
        [kept] = (await session.execute(select(Supervision))).scalars().all()
    assert (kept.supervisor, kept.agent_id, kept.mode, kept.endpoint) == ("sup", "1001", "whisper", "PJSIP/1004")
    response = await client.post("/api/agents/1002/spy", json={"mode": "listen"}, headers=csrf)
    assert response.status == 409 and "not on a call" in (await response.json())["error"]
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def test_a_supervisor_without_a_phone_is_told_so(aiohttp_client, app, line: FakeLine) -> None:
    await on_a_call(line)
    client, csrf = await signed_in(aiohttp_client, app, "sup2", "sup-password-2")
    response = await client.post("/api/agents/1001/spy", json={"mode": "listen"}, headers=csrf)
    assert response.status == 409 and "has no phone" in (await response.json())["error"]
    assert line.sent("Originate") == []
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)


async def test_transfer_and_consult_targets_are_agents_and_queues_that_exist(aiohttp_client, app,
                                                                          line: FakeLine) -> None:
    await on_a_call(line)
    client, csrf = await signed_in(aiohttp_client, app, "a1001", "agent-password-1")
    for path, body in (("transfer", {"queue": "nowhere"}), ("transfer", {"agent": TOLL_FRAUD}),
                       ("consult", {"agent": TOLL_FRAUD}), ("consult", {"agent": "9999"})):
        response = await client.post(f"/api/agents/1001/{path}", json=body, headers=csrf)
        assert response.status == 404, (path, body, await response.text())
    assert (await client.post("/api/agents/1001/consult", json={"agent": "1002"}, headers=csrf)).status == 409
    assert line.sent("Atxfer") == [] and line.sent("Hangup") == []
    response = await client.post("/api/agents/1001/transfer", json={"queue": "billing"}, headers=csrf)
    assert response.status == 200
    [hangup] = line.sent("Hangup")
    assert hangup["Channel"] == "PJSIP/1001-00000002"     # the agent's leg ends; the caller waits again
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)
