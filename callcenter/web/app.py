"""The web app: `init_app(...)` builds it; every domain adds its routes with `setup_routes(app)`."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.web import access, agents_http, stats, users
from callcenter.web.auth import SESSION_COOKIE, authenticate, json_error, limiter_for, security_headers
from callcenter.web.keys import (
    AGENT_CONTROL,
    AMI_STATUS,
    LIVE,
    REDIS,
    SESSIONMAKER,
    SETTINGS,
    AgentControl,
    LiveSource,
)
from callcenter.web.metrics import METRICS

log = logging.getLogger(__name__)
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=True)
WEBSOCKETS = web.AppKey("websockets", set)
LIMITER = web.AppKey("limiter", object)


def page(name: str, **context: Any) -> web.Response:
    return web.Response(text=TEMPLATES.get_template(name).render(**context), content_type="text/html")


# ---------------------------------------------------------------- public


@access.public
async def health(request: web.Request) -> web.Response:
    parts: dict[str, Any] = {}
    try:
        async with request.app[SESSIONMAKER]() as session:
            await session.execute(text("SELECT 1"))
        parts["database"] = {"ok": True}
    except Exception as exc:
        parts["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        await asyncio.wait_for(request.app[REDIS].ping(), 2)
        parts["redis"] = {"ok": True}
    except Exception as exc:
        parts["redis"] = {"ok": False, "error": type(exc).__name__}
    if AMI_STATUS in request.app:
        parts["ami"] = await request.app[AMI_STATUS]()
    ok = all(p.get("ok") for p in parts.values())
    return web.json_response({"ok": ok, **parts}, status=200 if ok else 503)


@access.public
async def login_page(request: web.Request) -> web.Response:
    return page("login.html", next=_safe_next(request.query.get("next", "/")), error=None)


def _safe_next(target: str) -> str:
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc and target.startswith("/") else "/"


@access.public
async def login(request: web.Request) -> web.StreamResponse:
    is_json = request.content_type == "application/json"
    data: Any = await request.json() if is_json else await request.post()
    username, password = str(data.get("username", ""))[:64], str(data.get("password", ""))[:256]
    limiter = request.app[LIMITER]
    wait = await limiter.blocked(request, username)  # type: ignore[attr-defined]
    if wait:
        return json_error(429, "too many wrong log-ins; try again later", **{"Retry-After": str(wait)})
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER]() as session, session.begin():
        user = await users.check_password(session, username, password)
        if user is None:
            await limiter.failed(request, username)  # type: ignore[attr-defined]
            if is_json:
                return json_error(401, "wrong user name or password")
            return page("login.html", next=_safe_next(str(data.get("next", "/"))), error="用户名或密码错误")
        sid, csrf = await users.open_page_session(session, user, settings.web.session_ttl_s, datetime.now(UTC))
    target = _safe_next(str(data.get("next", "/")))
    response: web.StreamResponse = (web.json_response({"user": user.username, "role": user.role, "csrf_token": csrf})
                                    if is_json else web.HTTPFound(target))
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", max_age=settings.web.session_ttl_s,
                        secure=settings.web.host not in ("127.0.0.1", "localhost"))
    if isinstance(response, web.HTTPFound):
        raise response
    return response


@access.allow(*access.ROLES)
async def logout(request: web.Request) -> web.Response:
    if SESSION_COOKIE in request.cookies:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            await users.close_page_session(session, request.cookies[SESSION_COOKIE])
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE)
    return response


# ---------------------------------------------------------------- live


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
async def live_stats(request: web.Request) -> web.Response:
    snapshot = await request.app[LIVE].snapshot()
    today = await stats.today(request.app[SESSIONMAKER], request.app[SETTINGS], datetime.now(UTC))
    return web.json_response({**stats.live_figures(snapshot), "today": today})


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
async def live_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    user = access.current_user(request)

    async def relay() -> None:
        async for change in request.app[LIVE].updates():
            if change.get("kind") == "screen_pop" and user.role == access.AGENT and change.get("id") != user.agent_id:
                continue   # an agent sees only their own screen pops
            await ws.send_str(json.dumps(change, ensure_ascii=False, default=str))

    task = asyncio.create_task(relay())
    try:
        await ws.send_str(json.dumps({"kind": "snapshot", "data": await request.app[LIVE].snapshot()}, default=str))
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        request.app[WEBSOCKETS].discard(ws)
    return ws


@access.allow(access.SUPERVISOR, access.ADMIN)
async def wallboard(request: web.Request) -> web.Response:
    return page("wallboard.html", settings=request.app[SETTINGS], csrf_token=request.get(access.CSRF_TOKEN, ""))


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
async def agent_page(request: web.Request) -> web.Response:
    user = access.current_user(request)
    return page("agent.html", user=user, csrf_token=request.get(access.CSRF_TOKEN, ""))


@access.allow(access.ADMIN)
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(METRICS), headers={"Content-Type": CONTENT_TYPE_LATEST})


STATIC_DIR = Path(__file__).with_name("static")


@access.public
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


@access.allow(*access.ROLES)
async def home(request: web.Request) -> web.StreamResponse:
    # Each role lands on its own page (callcenter/pages knows the pages of each role).
    from callcenter.pages.http import landing

    raise web.HTTPFound(landing(access.current_user(request).role))


# ---------------------------------------------------------------- the factory


async def _close_websockets(app: web.Application) -> None:
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=1001, message=b"server shutting down")


def init_app(settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession], redis: aioredis.Redis,
             live: LiveSource, agent_control: AgentControl | None = None,
             route_setups: Sequence[Callable[[web.Application], None]] = (),
             ami_status: Callable[[], Any] | None = None) -> web.Application:
    if settings.web.secret_key is None:
        raise ValueError("web.secret_key: required (run `callcenter init`)")
    app = web.Application(middlewares=[security_headers, authenticate], client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[REDIS] = redis
    app[LIVE] = live
    app[WEBSOCKETS] = set()
    app[LIMITER] = limiter_for(app)
    if agent_control is not None:
        app[AGENT_CONTROL] = agent_control
    if ami_status is not None:
        app[AMI_STATUS] = ami_status
    app.router.add_get("/", home)
    app.router.add_get("/health", health)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/live/stats", live_stats)
    app.router.add_get("/ws/live", live_socket)
    app.router.add_get("/wallboard", wallboard)
    app.router.add_get("/agent", agent_page)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/static/{name}", static)
    agents_http.setup_routes(app)
    for setup in route_setups:
        setup(app)
    app.on_shutdown.append(_close_websockets)
    return app
