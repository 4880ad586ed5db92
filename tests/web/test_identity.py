"""Log-in under a flood, revocation and live sockets, through aiohttp's test client on a real
database, a real Redis and the real live state (callcenter.acd.live.LiveState)."""
from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from callcenter.acd.live import LiveState
from callcenter.config import Settings, UserSettings
from callcenter.web import access, sockets, users
from callcenter.web.app import init_app
from callcenter.web.auth import AttemptWindows, Credential, LoginLimiter
from callcenter.web.keys import SETTINGS

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def web_settings(settings: Settings, prefix: str, **web: Any) -> Settings:
    return settings.model_copy(update={
        "redis": settings.redis.model_copy(update={"prefix": prefix}),
        "web": settings.web.model_copy(update=web),
    })


@pytest.fixture
async def people(sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "sup", "sup-password-1", access.SUPERVISOR)
        await users.create_user(session, "a1001", "agent-password-1", access.AGENT, agent_id="1001")
        await users.create_user(session, "a1002", "agent-password-2", access.AGENT, agent_id="1002")


@pytest.fixture
def make_app(settings, sessionmaker, redis_client, people):
    client, prefix = redis_client

    def make(**web: Any) -> tuple[web.Application, LiveState]:
        live = LiveState(client, prefix, "e1")
        return init_app(web_settings(settings, prefix, **web), sessionmaker=sessionmaker, redis=client,
                        live=live), live
    return make


async def sign_in(client: TestClient, username: str, password: str) -> dict[str, Any]:
    response = await client.post("/api/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return await response.json()


async def from_address(aiohttp_client, server, address: str) -> TestClient:
    """A client whose connections come from another loopback address (another machine)."""
    return await aiohttp_client(server, connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> tuple[int | None, str]:
    """Read until the server closes the socket: its close code and reason."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type == WSMsgType.CLOSE:
                return int(message.data), str(message.extra or "")
            if message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return ws.close_code, ""


async def numsub(redis: aioredis.Redis, channel: str) -> int:
    return int((await redis.pubsub_numsub(channel))[0][1])


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait (bounded) until condition() holds; it may be a coroutine function."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------- log-in under a flood


async def test_forty_parallel_wrong_logins_stop_at_the_limit_and_health_answers_while_argon2_works(
        aiohttp_client, make_app, monkeypatch) -> None:
    """The count is atomic (exactly the limit reaches the password check) and the checks run in
    the password threads: while every one of them is held, /health still answers. How fast it
    answers under a flood is a figure of bench/login_flood.py, not of this test."""
    app, _ = make_app()
    client = await aiohttp_client(app)
    limit = app[SETTINGS].web.login_attempts_per_minute
    held, checking = threading.Event(), threading.Semaphore(0)
    threads: list[str] = []
    real = users._hasher

    class HeldHasher:
        def verify(self, password_hash: str, password: str) -> bool:
            threads.append(threading.current_thread().name)
            checking.release()
            assert held.wait(10), "the test never let the check go"
            return real.verify(password_hash, password)

    monkeypatch.setattr(users, "_hasher", HeldHasher())
    flood = asyncio.gather(*(client.post("/api/login", json={"username": "sup", "password": f"wrong-{n}"})
                             for n in range(40)))
    try:
        assert await asyncio.to_thread(checking.acquire, True, 10), "no password check started"
        for _ in range(5):
            response = await asyncio.wait_for(client.get("/health"), 5)
            assert response.status == 200
    finally:
        held.set()
    answers = await flood
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) == limit and statuses.count(429) == 40 - limit, statuses
    assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status == 429)
    assert len(threads) == limit and all(name.startswith("passwords") for name in threads), threads


async def test_a_flooded_name_lets_its_owner_in_elsewhere_and_other_users_in_here(aiohttp_client, aiohttp_server,
                                                                                   make_app) -> None:
    app, _ = make_app()
    server = await aiohttp_server(app)
    here = await aiohttp_client(server)
    elsewhere = await from_address(aiohttp_client, server, "127.0.0.2")
    answers = await asyncio.gather(*(here.post("/api/login", json={"username": "sup", "password": "wrong"})
                                     for _ in range(40)))
    assert {r.status for r in answers} == {401, 429}
    await sign_in(elsewhere, "sup", "sup-password-1")       # the owner, from their own desk
    await sign_in(here, "a1001", "agent-password-1")         # a colleague behind the flooded address
    refused = await here.post("/api/login", json={"username": "sup", "password": "sup-password-1"})
    assert refused.status == 429                              # the flooded name from the flooding address


async def test_a_right_password_starts_the_count_again(aiohttp_client, make_app) -> None:
    client = await aiohttp_client(make_app(login_attempts_per_minute=5)[0])
    for _ in range(2):
        for _ in range(4):
            assert (await client.post("/api/login", json={"username": "sup", "password": "typo"})).status == 401
        await sign_in(client, "sup", "sup-password-1")


async def test_many_names_from_one_address_meet_the_address_cap(aiohttp_client, make_app) -> None:
    client = await aiohttp_client(make_app(login_attempts_per_address_per_minute=8)[0])
    statuses = [(await client.post("/api/login", json={"username": f"user{n}", "password": "x"})).status
                for n in range(12)]
    assert statuses == [401] * 8 + [429] * 4


async def test_one_name_from_many_addresses_meets_the_user_cap(aiohttp_client, aiohttp_server, make_app) -> None:
    server = await aiohttp_server(make_app(login_attempts_per_minute=3, login_attempts_per_user_per_minute=6)[0])
    statuses = []
    for n in range(2, 6):
        client = await from_address(aiohttp_client, server, f"127.0.0.{n}")
        for _ in range(3):
            statuses.append((await client.post("/api/login", json={"username": "sup", "password": "x"})).status)
    assert statuses == [401] * 6 + [429] * 6


async def test_without_redis_the_limit_still_holds_in_parallel() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limiter = LoginLimiter(dead, "x:", per_pair=3, per_address=10, per_user=10)
    waits = await asyncio.gather(*(limiter.attempt("10.0.0.1", "sup") for _ in range(20)))
    assert waits.count(0) == 3 and all(w > 0 for w in waits if w)
    assert await limiter.attempt("10.0.0.1", "qa1") == 0       # another name from that address
    await limiter.succeeded("10.0.0.1", "sup")
    assert await limiter.attempt("10.0.0.1", "sup") == 0
    await dead.aclose()


def test_attempt_windows_end_after_their_minute() -> None:
    windows = AttemptWindows(60)
    limits = [("pair", 2), ("addr", 5), ("user", 5)]
    assert windows.take(limits, 0.0) == (0, 0)
    assert windows.take(limits, 1.0) == (0, 0)
    assert windows.take(limits, 30.0) == (1, 30)
    assert windows.take(limits, 60.0) == (0, 0)


# ---------------------------------------------------------------- revocation


def with_users(settings: Settings, *specs: tuple[str, str, str], cli_token: str | None = None) -> Settings:
    return settings.model_copy(update={
        "users": [UserSettings(username=u, password=p, role=r, agent_id="1001" if r == "agent" else None)
                  for u, p, r in specs],
        "web": settings.web.model_copy(update={"cli_token": None if cli_token is None else SecretStr(cli_token)}),
    })


async def test_rotating_the_cli_token_revokes_the_old_one(aiohttp_client, settings, sessionmaker, make_app) -> None:
    await users.seed_users(sessionmaker, with_users(settings, cli_token="old-cli-token"), NOW)
    await users.seed_users(sessionmaker, with_users(settings, cli_token="new-cli-token"), NOW)
    client = await aiohttp_client(make_app()[0])
    old = await client.get("/api/live/stats", headers={"Authorization": "Bearer old-cli-token"})
    new = await client.get("/api/live/stats", headers={"Authorization": "Bearer new-cli-token"})
    assert (old.status, new.status) == (401, 200)
    await users.seed_users(sessionmaker, with_users(settings), NOW)     # no cli token at all
    assert (await client.get("/api/live/stats", headers={"Authorization": "Bearer new-cli-token"})).status == 401


async def test_the_cli_token_follows_the_admin_of_the_settings(aiohttp_client, settings, sessionmaker,
                                                               make_app) -> None:
    await users.seed_users(sessionmaker, with_users(settings, ("root1", "root-password-1", "admin"),
                                                    cli_token="cli-token"), NOW)
    await users.seed_users(sessionmaker, with_users(settings, ("root2", "root-password-2", "admin"),
                                                    cli_token="cli-token"), NOW)    # root1 is gone
    client = await aiohttp_client(make_app()[0])
    assert (await client.get("/api/live/stats", headers={"Authorization": "Bearer cli-token"})).status == 200
    refused = await client.post("/api/login", json={"username": "root1", "password": "root-password-1"})
    assert refused.status == 401


async def test_a_user_removed_from_the_settings_is_signed_out_and_their_socket_closes(
        aiohttp_client, settings, sessionmaker, make_app) -> None:
    both = with_users(settings, ("boss", "boss-password-1", "supervisor"), ("desk1", "desk-password-1", "agent"))
    await users.seed_users(sessionmaker, both, NOW)
    client = await aiohttp_client(make_app(live_recheck_s=0.1)[0])
    await sign_in(client, "desk1", "desk-password-1")
    ws = await client.ws_connect("/ws/live")
    assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    # Another engine starts with desk1 gone from the settings:
    await users.seed_users(sessionmaker, with_users(settings, ("boss", "boss-password-1", "supervisor")), NOW)
    assert (await client.get("/api/live/stats")).status == 401
    assert await closed_with(ws) == (sockets.SIGNED_OUT, "signed out")
    refused = await client.post("/api/login", json={"username": "desk1", "password": "desk-password-1"})
    assert refused.status == 401


async def test_a_new_password_in_the_settings_ends_sessions_and_a_chosen_one_stays(
        aiohttp_client, settings, sessionmaker, make_app) -> None:
    await users.seed_users(sessionmaker, with_users(settings, ("boss", "boss-password-1", "supervisor")), NOW)
    client = await aiohttp_client(make_app()[0])
    csrf = (await sign_in(client, "boss", "boss-password-1"))["csrf_token"]
    response = await client.post("/api/password", json={"current": "boss-password-1", "new": "chosen-by-boss"},
                                 headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    await users.seed_users(sessionmaker, with_users(settings, ("boss", "boss-password-1", "supervisor")), NOW)
    assert (await client.get("/api/live/stats")).status == 200        # same settings: nothing ended
    await sign_in(await aiohttp_client(client.server), "boss", "chosen-by-boss")
    await users.seed_users(sessionmaker, with_users(settings, ("boss", "boss-password-2", "supervisor")), NOW)
    assert (await client.get("/api/live/stats")).status == 401
    await sign_in(client, "boss", "boss-password-2")


async def test_a_password_change_ends_the_other_sessions_and_closes_their_sockets(aiohttp_client, aiohttp_server,
                                                                                   make_app) -> None:
    server = await aiohttp_server(make_app()[0])           # re-check every 30 s: closing must not wait for it
    mine, other = await aiohttp_client(server), await aiohttp_client(server)
    csrf = {"X-CSRF-Token": (await sign_in(mine, "a1001", "agent-password-1"))["csrf_token"]}
    await sign_in(other, "a1001", "agent-password-1")
    my_ws, other_ws = await mine.ws_connect("/ws/live"), await other.ws_connect("/ws/live")
    for ws in (my_ws, other_ws):
        assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    for body, status, field in [({"current": "agent-password-1", "new": "short"}, 400, "new"),
                                ({"new": "long-enough-password"}, 400, "current"),
                                ({"current": "agent-password-1", "new": 1234567890}, 400, "new"),
                                ({"current": "not-mine-at-all", "new": "long-enough-password"}, 403, "current")]:
        response = await mine.post("/api/password", json=body, headers=csrf)
        assert response.status == status and (await response.json())["error"].startswith(field + ":")
    response = await mine.post("/api/password", json={"current": "agent-password-1", "new": "long-enough-password"},
                               headers=csrf)
    assert response.status == 200
    assert await closed_with(other_ws, timeout=2) == (sockets.SIGNED_OUT, "password changed")
    assert (await other.get("/api/live/stats")).status == 401
    assert (await mine.get("/api/live/stats")).status == 200
    assert not my_ws.closed
    old = await other.post("/api/login", json={"username": "a1001", "password": "agent-password-1"})
    assert old.status == 401
    await sign_in(other, "a1001", "long-enough-password")
    await my_ws.close()


async def test_log_out_closes_the_socket_at_once(aiohttp_client, make_app) -> None:
    client = await aiohttp_client(make_app()[0])
    csrf = (await sign_in(client, "sup", "sup-password-1"))["csrf_token"]
    ws = await client.ws_connect("/ws/live")
    assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    assert (await client.post("/api/logout", headers={"X-CSRF-Token": csrf})).status == 200
    assert await closed_with(ws, timeout=2) == (sockets.SIGNED_OUT, "signed out")


async def test_a_log_out_on_another_engine_ends_the_socket_here(aiohttp_client, make_app) -> None:
    here = await aiohttp_client(make_app(live_recheck_s=0.1)[0])
    there = await aiohttp_client(make_app()[0])
    login = await sign_in(here, "sup", "sup-password-1")
    sid = next(c.value for c in here.session.cookie_jar if c.key == "cc_session")
    ws = await here.ws_connect("/ws/live")
    assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    response = await there.post("/api/logout", headers={"Cookie": f"cc_session={sid}",
                                                        "X-CSRF-Token": login["csrf_token"]})
    assert response.status == 200
    assert await closed_with(ws) == (sockets.SIGNED_OUT, "signed out")


# ---------------------------------------------------------------- live sockets


async def test_one_subscription_per_app_however_many_sockets(aiohttp_client, make_app, redis_client) -> None:
    redis, _ = redis_client
    app, live = make_app()
    before = await numsub(redis, live.channel)
    client = await aiohttp_client(app)
    await until(lambda: numsub_is(redis, live.channel, before + 1))
    await sign_in(client, "sup", "sup-password-1")
    opened = [await client.ws_connect("/ws/live") for _ in range(3)]
    for ws in opened:
        assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    assert await numsub(redis, live.channel) == before + 1
    await live.publish_agent("1001", "available", NOW)
    for ws in opened:
        change = await ws.receive_json(timeout=5)
        assert (change["kind"], change["id"], change["data"]["state"]) == ("agent", "1001", "available")
        await ws.close()


async def numsub_is(redis: aioredis.Redis, channel: str, expected: int) -> bool:
    return await numsub(redis, channel) == expected


async def test_a_fifth_socket_closes_the_users_oldest(aiohttp_client, make_app) -> None:
    app, live = make_app(live_sockets_per_user=2)
    client = await aiohttp_client(app)
    await sign_in(client, "sup", "sup-password-1")
    first, second = await client.ws_connect("/ws/live"), await client.ws_connect("/ws/live")
    for ws in (first, second):
        assert (await ws.receive_json(timeout=5))["kind"] == "snapshot"
    third = await client.ws_connect("/ws/live")
    assert (await third.receive_json(timeout=5))["kind"] == "snapshot"
    code, reason = await closed_with(first, timeout=2)
    assert code == sockets.TOO_MANY and "oldest" in reason
    await live.publish_agent("1001", "available", NOW)
    for ws in (second, third):
        assert (await ws.receive_json(timeout=5))["id"] == "1001"
        await ws.close()


async def test_agents_see_only_their_own_screen_pops_and_callers(aiohttp_client, aiohttp_server, make_app) -> None:
    app, live = make_app()
    server = await aiohttp_server(app)
    agent_client, sup_client = await aiohttp_client(server), await aiohttp_client(server)
    await sign_in(agent_client, "a1001", "agent-password-1")
    await sign_in(sup_client, "sup", "sup-password-1")
    await live.publish_call("c-theirs", "on_call", NOW, caller="13900000002", queue="general", agent_id="1002")
    await live.publish_call("c-mine", "on_call", NOW, caller="13900000001", queue="general", agent_id="1001")
    agent_ws, sup_ws = await agent_client.ws_connect("/ws/live"), await sup_client.ws_connect("/ws/live")
    agent_snapshot = await agent_ws.receive_json(timeout=5)
    sup_snapshot = await sup_ws.receive_json(timeout=5)
    assert "caller" not in agent_snapshot["data"]["calls"]["c-theirs"]
    assert agent_snapshot["data"]["calls"]["c-mine"]["caller"] == "13900000001"
    assert sup_snapshot["data"]["calls"]["c-theirs"]["caller"] == "13900000002"
    await live.publish_screen_pop("1002", {"caller": "13900000002", "call_id": "c-theirs"})
    await live.publish_call("c-theirs", "on_hold", NOW, caller="13900000002", queue="general", agent_id="1002")
    await live.publish_screen_pop("1001", {"caller": "13900000001", "call_id": "c-mine"})
    await live.publish_agent("1001", "on_call", NOW)      # the last one: everything before has arrived
    agent_saw = await _until_agent_change(agent_ws)
    sup_saw = await _until_agent_change(sup_ws)
    assert "13900000002" not in json.dumps(agent_snapshot) + json.dumps(agent_saw)
    assert [(c["kind"], c["id"]) for c in agent_saw] == [("call", "c-theirs"), ("screen_pop", "1001"),
                                                         ("agent", "1001")]
    assert agent_saw[1]["data"]["caller"] == "13900000001"
    assert [(c["kind"], c["id"]) for c in sup_saw] == [("screen_pop", "1002"), ("call", "c-theirs"),
                                                       ("screen_pop", "1001"), ("agent", "1001")]
    await agent_ws.close()
    await sup_ws.close()


async def _until_agent_change(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    seen = []
    while True:
        change = await ws.receive_json(timeout=5)
        seen.append(change)
        if change["kind"] == "agent":
            return seen


class _StubSocket:
    closed = False

    def __init__(self) -> None:
        self.closed_with: tuple[int, bytes] | None = None

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed_with = (code, message)


class _StubTransport:
    def __init__(self, unsent: int) -> None:
        self.data, self.unsent = bytearray(), unsent

    def write(self, data: bytes) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return False


async def test_a_slow_socket_is_closed_and_the_others_still_get_every_change() -> None:
    live = sockets.LiveSockets(per_user=4, max_pending=3, send_buffer=1000)
    sup = access.User("sup", access.SUPERVISOR)
    slow_ws, quick_ws = _StubSocket(), _StubSocket()
    slow_out, quick_out = _StubTransport(unsent=5000), _StubTransport(unsent=0)   # the slow one's client reads nothing
    slow = live.add(slow_ws, sup, Credential(1, "session", "s1"))    # type: ignore[arg-type]
    quick = live.add(quick_ws, sup, Credential(1, "session", "s2"))  # type: ignore[arg-type]
    live.started(slow, slow_out)     # type: ignore[arg-type]
    live.started(quick, quick_out)   # type: ignore[arg-type]
    for n in range(10):
        live.publish({"kind": "agent", "id": str(n), "data": None})
        await asyncio.sleep(0)
    await until(lambda: slow_ws.closed_with is not None)
    assert slow_ws.closed_with is not None and slow_ws.closed_with[0] == sockets.TOO_SLOW
    assert slow_out.data == b""
    await until(lambda: quick_out.data.count(b'"kind": "agent"') == 10)
    assert quick_ws.closed_with is None


class _LiveThatFailsOnTheWayOut:
    """A live source whose clean-up raises (a Redis connection already closed by the server)."""

    def __init__(self) -> None:
        self.following = asyncio.Event()

    async def snapshot(self) -> dict[str, Any]:
        return {}

    async def updates(self):  # type: ignore[no-untyped-def]
        try:
            self.following.set()
            await asyncio.Event().wait()
            yield {}
        finally:
            raise ConnectionError("Connection closed by server.")


async def test_stopping_the_fan_out_stops_it_even_when_its_clean_up_fails() -> None:
    live = _LiveThatFailsOnTheWayOut()
    follower = asyncio.create_task(sockets.LiveSockets(per_user=4).follow(live, retry_s=0.01))
    await asyncio.wait_for(live.following.wait(), 5)
    follower.cancel()
    done, _ = await asyncio.wait([follower], timeout=5)
    assert done and follower.cancelled()
