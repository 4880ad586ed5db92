"""The web foundation through aiohttp's test client, on a real database and a real Redis."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from callcenter.calls.models import Call
from callcenter.web import access, users
from callcenter.web.app import init_app


class FakeLive:
    """The live state's interface (the real one is callcenter.acd.live.LiveState, tested on Redis)."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def snapshot(self) -> dict[str, Any]:
        return {"queues": {"leak": {"waiting": 3, "longest_wait_s": 42.0, "callbacks": 1},
                           "general": {"waiting": 1, "longest_wait_s": 5.0, "callbacks": 0}},
                "agents": {"1001": {"state": "available"}, "1002": {"state": "on_call"}, "1003": {"state": "on_call"}},
                "calls": {}, "engines": {}}

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.changes.get()


class FakeAgents:
    def __init__(self) -> None:
        self.done: list[tuple[str, ...]] = []

    async def login(self, agent_id: str, endpoint: str | None = None) -> None:
        if agent_id not in ("1001", "1002"):
            raise LookupError(f"unknown agent {agent_id!r}")
        self.done.append(("login", agent_id))

    async def logout(self, agent_id: str) -> None:
        self.done.append(("logout", agent_id))

    async def pause(self, agent_id: str, reason: str) -> None:
        self.done.append(("pause", agent_id, reason))

    async def ready(self, agent_id: str) -> None:
        raise ValueError("agent 1001 is on a call")

    async def extend_wrapup(self, agent_id: str, seconds: float) -> None:
        self.done.append(("extend", agent_id, str(seconds)))

    async def agents(self) -> list[dict[str, Any]]:
        return [{"id": "1001", "state": "available"}]

    async def transfer(self, agent_id: str, *, queue: str | None = None, to_agent: str | None = None) -> dict[str, Any]:
        if queue == "nowhere":
            raise LookupError("unknown queue 'nowhere'")
        self.done.append(("transfer", agent_id, queue or to_agent or ""))
        return {"call_id": "c1", "to_queue": queue, "to_agent": to_agent}

    async def consult(self, agent_id: str, to_agent: str) -> dict[str, Any]:
        if to_agent == "1009":
            raise ValueError("agent 1009 is on_call, not available for a consult")
        self.done.append(("consult", agent_id, to_agent))
        return {"call_id": "c1", "consulting": to_agent}

    async def pause_recording(self, agent_id: str, paused: bool) -> dict[str, Any]:
        self.done.append(("pause_recording", agent_id, str(paused)))
        return {"call_id": "c1", "paused": paused}


@pytest.fixture
async def web_app(settings, sessionmaker, redis_client) -> tuple[web.Application, FakeLive, FakeAgents]:
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "redis": settings.redis.model_copy(update={"prefix": prefix}),
        "web": settings.web.model_copy(update={"login_attempts_per_minute": 3}),
    })
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "sup", "sup-password-1", access.SUPERVISOR, phone="1009")
        await users.create_user(session, "a1001", "agent-password-1", access.AGENT, agent_id="1001")
        unit = await users.create_user(session, "unit7", "unit-password-1", access.UNIT, unit="unit7")
        await users.issue_token(session, unit, token="unit7-token")
    live, agents = FakeLive(), FakeAgents()

    @access.allow(access.ADMIN)
    async def only_admin(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def unmarked(request: web.Request) -> web.Response:   # no @allow: must be refused
        return web.json_response({"leak": "secret"})

    def extra(app: web.Application) -> None:
        app.router.add_get("/api/test/admin", only_admin)
        app.router.add_get("/api/test/unmarked", unmarked)

    app = init_app(settings, sessionmaker=sessionmaker, redis=client, live=live, agent_control=agents,
                   route_setups=[extra])
    return app, live, agents


async def sign_in(client, username: str, password: str) -> dict[str, Any]:
    response = await client.post("/api/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return await response.json()


async def test_health_and_security_headers(aiohttp_client, web_app) -> None:
    client = await aiohttp_client(web_app[0])
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_health_says_which_part_is_down(aiohttp_client, settings, sessionmaker) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    app = init_app(settings, sessionmaker=sessionmaker, redis=dead, live=FakeLive())
    client = await aiohttp_client(app)
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["redis"]["ok"] is False and body["database"]["ok"] is True
    await dead.aclose()


async def test_deny_by_default_and_roles(aiohttp_client, web_app) -> None:
    client = await aiohttp_client(web_app[0])
    assert (await client.get("/api/live/stats")).status == 401
    assert (await client.get("/api/test/unmarked")).status == 401
    await sign_in(client, "sup", "sup-password-1")
    assert (await client.get("/api/test/unmarked")).status == 403
    assert (await client.get("/api/test/admin")).status == 403
    assert (await client.get("/api/nothing-here")).status == 404
    assert (await client.get("/api/live/stats")).status == 200


async def test_wrong_logins_are_limited(aiohttp_client, web_app) -> None:
    client = await aiohttp_client(web_app[0])
    for _ in range(3):
        response = await client.post("/api/login", json={"username": "sup", "password": "wrong"})
        assert response.status == 401
        assert (await response.json())["error"] == "wrong user name or password"
    response = await client.post("/api/login", json={"username": "sup", "password": "sup-password-1"})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0


async def test_cookie_changes_need_the_csrf_token(aiohttp_client, web_app) -> None:
    app, _, agents = web_app
    client = await aiohttp_client(app)
    login = await sign_in(client, "a1001", "agent-password-1")
    assert (await client.post("/api/agents/1001/login", json={})).status == 403
    response = await client.post("/api/agents/1001/login", json={}, headers={"X-CSRF-Token": login["csrf_token"]})
    assert response.status == 200
    assert agents.done == [("login", "1001")]


async def test_agents_act_only_for_themselves(aiohttp_client, web_app) -> None:
    app, _, agents = web_app
    client = await aiohttp_client(app)
    login = await sign_in(client, "a1001", "agent-password-1")
    csrf = {"X-CSRF-Token": login["csrf_token"]}
    assert (await client.post("/api/agents/1002/pause", json={"reason": "break"}, headers=csrf)).status == 403
    assert (await client.post("/api/agents/1001/pause", json={"reason": "nap"}, headers=csrf)).status == 400
    assert (await client.post("/api/agents/1001/pause", json={"reason": "training"}, headers=csrf)).status == 200
    response = await client.post("/api/agents/1001/ready", headers=csrf)
    assert response.status == 409 and "on a call" in (await response.json())["error"]
    assert ("pause", "1001", "training") in agents.done
    assert (await client.get("/metrics")).status == 403


async def test_tokens_authenticate_api_calls(aiohttp_client, web_app) -> None:
    client = await aiohttp_client(web_app[0])
    ok = await client.post("/api/logout", headers={"Authorization": "Bearer unit7-token"})
    assert ok.status == 200
    bad = await client.get("/api/live/stats", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status == 401
    assert (await client.get("/api/live/stats", headers={"Authorization": "Bearer unit7-token"})).status == 403


async def test_live_stats_count_today_and_three_rings(aiohttp_client, web_app, sessionmaker) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        for n, (wait, disposition) in enumerate([(5, "answered"), (14, "answered"), (40, "answered"),
                                                 (None, "abandoned_in_queue")]):
            session.add(Call(id=f"c{n}", uniqueid=f"u{n}", linkedid=f"u{n}", channel="PJSIP/trunk-1",
                             caller_number="1", arrived_at=now - timedelta(minutes=1),
                             agent_answered_at=None if wait is None else now - timedelta(minutes=1) + timedelta(seconds=wait),
                             disposition=disposition, closed=True))
    client = await aiohttp_client(web_app[0])
    await sign_in(client, "sup", "sup-password-1")
    stats = await (await client.get("/api/live/stats")).json()
    assert stats["waiting"] == 4 and stats["longest_wait_s"] == 42.0
    assert stats["agents_by_state"] == {"available": 1, "on_call": 2}
    today = stats["today"]
    assert (today["calls"], today["answered"], today["abandoned"]) == (4, 3, 1)
    assert today["answered_within_rings"] == 2 and today["answered_within_rings_pct"] == 66.7
    assert today["asa_s"] == pytest.approx(19.7, abs=0.1)


async def test_websocket_pushes_live_changes(aiohttp_client, web_app) -> None:
    app, live, _ = web_app
    client = await aiohttp_client(app)
    await sign_in(client, "sup", "sup-password-1")
    ws = await client.ws_connect("/ws/live")
    first = await ws.receive_json(timeout=5)
    assert first["kind"] == "snapshot" and "leak" in first["data"]["queues"]
    await live.changes.put({"kind": "agent", "id": "1001", "data": {"state": "ringing"}})
    change = await ws.receive_json(timeout=5)
    assert change == {"kind": "agent", "id": "1001", "data": {"state": "ringing"}}
    await ws.close()


async def test_pages_redirect_to_login_and_login_form_works(aiohttp_client, web_app) -> None:
    client = await aiohttp_client(web_app[0])
    response = await client.get("/metrics", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/login?next=/metrics"
    form = await client.post("/login", data={"username": "sup", "password": "sup-password-1", "next": "/metrics"},
                             allow_redirects=False)
    assert form.status == 302 and form.headers["Location"] == "/metrics"
    assert (await client.get("/api/live/stats")).status == 200   # signed in by the form's cookie
    evil = await client.post("/login", data={"username": "sup", "password": "sup-password-1",
                                             "next": "https://evil.example/"}, allow_redirects=False)
    assert evil.headers["Location"] == "/"


async def test_only_supervisors_listen_in_and_bad_requests_say_why(aiohttp_client, web_app) -> None:
    """Who may; what reaches Asterisk is in tests/web/test_agent_actions.py (the real engine)."""
    client = await aiohttp_client(web_app[0])
    csrf = (await sign_in(client, "a1001", "agent-password-1"))["csrf_token"]
    r = await client.post("/api/agents/1001/spy", json={"mode": "listen"}, headers={"X-CSRF-Token": csrf})
    assert r.status == 403
    await client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    csrf = (await sign_in(client, "sup", "sup-password-1"))["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    r = await client.post("/api/agents/1001/spy", json={"mode": "shout"}, headers=headers)
    assert r.status == 400 and (await r.json())["error"].startswith("mode: ")
    r = await client.post("/api/agents/1001/spy", json={"mode": "listen", "endpoint": "PJSIP/00882161234567@trunk"},
                          headers=headers)
    assert r.status == 400 and (await r.json())["fields"] == [{"field": "endpoint", "error": "unknown field"}]


async def test_an_agent_pauses_and_resumes_the_recording_of_their_own_call_only(aiohttp_client, web_app) -> None:
    app, _, agents = web_app
    client = await aiohttp_client(app)
    headers = {"X-CSRF-Token": (await sign_in(client, "a1001", "agent-password-1"))["csrf_token"]}
    r = await client.post("/api/agents/1001/recording/pause", headers=headers)
    assert r.status == 200 and (await r.json())["paused"] is True
    r = await client.post("/api/agents/1001/recording/resume", headers=headers)
    assert (await r.json())["paused"] is False
    assert (await client.post("/api/agents/1002/recording/pause", headers=headers)).status == 403
    assert agents.done[-2:] == [("pause_recording", "1001", "True"), ("pause_recording", "1001", "False")]


async def test_an_agent_transfers_their_own_caller(aiohttp_client, web_app) -> None:
    app, _, agents = web_app
    client = await aiohttp_client(app)
    headers = {"X-CSRF-Token": (await sign_in(client, "a1001", "agent-password-1"))["csrf_token"]}
    r = await client.post("/api/agents/1001/transfer", json={"queue": "billing"}, headers=headers)
    assert r.status == 200 and agents.done[-1] == ("transfer", "1001", "billing")
    r = await client.post("/api/agents/1001/transfer", json={"queue": "nowhere"}, headers=headers)
    assert r.status == 404 and "nowhere" in (await r.json())["error"]
    assert (await client.post("/api/agents/1002/transfer", json={"agent": "1001"}, headers=headers)).status == 403
    r = await client.post("/api/agents/1001/consult", json={"agent": "1003"}, headers=headers)
    assert r.status == 200 and agents.done[-1] == ("consult", "1001", "1003")
    r = await client.post("/api/agents/1001/consult", json={"agent": "1009"}, headers=headers)
    assert r.status == 409 and "not available" in (await r.json())["error"]
    assert (await client.post("/api/agents/1001/consult", json={"agent": 7}, headers=headers)).status == 400
