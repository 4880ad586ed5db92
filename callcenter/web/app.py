"""The web app: `init_app(...)` builds it; every domain adds its routes with `setup_routes(app)`."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import jinja2
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.web import access, agents_http, api, stats, users
from callcenter.web.auth import (
    CREDENTIAL,
    SESSION_COOKIE,
    LoginLimiter,
    authenticate,
    json_error,
    limiter_for,
    security_headers,
)
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
from callcenter.web.metrics import HotlineMetrics
from callcenter.web.sockets import LiveSockets, snapshot_for, snapshot_text

log = logging.getLogger(__name__)
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=True)
LIVE_SOCKETS = web.AppKey("live_sockets", LiveSockets)
LIMITER = web.AppKey("limiter", LoginLimiter)
METRICS = web.AppKey("metrics", HotlineMetrics)
# argon2 hashes and checks: a few threads, never the event loop that drives live calls.
PASSWORD_POOL = web.AppKey("password_pool", Executor)
PASSWORD_THREADS = 2
PASSWORD_NICE = 19     # Linux: a thread's own niceness; argon2's lane threads inherit it
NEW_PASSWORD_MIN = 10


def page(name: str, **context: Any) -> web.Response:
    return web.Response(text=TEMPLATES.get_template(name).render(**context), content_type="text/html")


# ---------------------------------------------------------------- what the routes take and answer


class Part(api.Answer):
    ok: bool
    error: str | None = None


class Health(api.Answer):
    ok: bool
    database: Part
    redis: Part


class NextPage(api.Query):
    next: api.Target = "/"


class LogIn(api.Body):
    username: api.Name
    password: api.Secret
    next: api.Target = "/"


class SignedIn(api.Answer):
    user: str
    role: str
    csrf_token: str


class Done(api.Answer):
    ok: bool


class Today(api.Answer):
    calls: int
    answered: int
    abandoned: int


class LiveView(api.Query):
    view: Literal["all", "desk"] = "all"


class LiveStats(api.Answer):
    waiting: int
    longest_wait_s: float
    queues: dict[str, Any]
    agents_by_state: dict[str, int]
    today: Today


HTML = "text/html"

# ---------------------------------------------------------------- public


@access.public
@api.route(summary="Whether the database, Redis and Asterisk answer", responses={200: Health, 503: Health})
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
@api.route(summary="The log-in page", query=NextPage, responses={200: HTML})
async def login_page(request: web.Request, query: NextPage) -> web.Response:
    return page("login.html", next=_safe_next(query.next), error=None)


def _safe_next(target: str) -> str:
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc and target.startswith("/") else "/"


@access.public
@api.route(summary="Sign in: a session cookie and the CSRF token for it", body=LogIn, form=True,
           responses={200: SignedIn, 302: None, 401: api.Problem, 429: api.Problem})
async def login(request: web.Request, body: LogIn) -> web.StreamResponse:
    is_json = request.content_type not in api.FORM_TYPES
    data = body.model_dump()
    username, password = body.username, body.password
    limiter, address = request.app[LIMITER], request.remote or "?"
    wait = await limiter.attempt(address, username)
    if wait:
        return json_error(429, "too many wrong log-ins; try again later", **{"Retry-After": str(wait)})
    settings = request.app[SETTINGS]
    user = await users.check_password(request.app[SESSIONMAKER], username, password, request.app[PASSWORD_POOL])
    if user is None:
        if is_json:
            return json_error(401, "wrong user name or password")
        return page("login.html", next=_safe_next(str(data.get("next", "/"))), error="用户名或密码错误")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        sid, csrf = await users.open_page_session(session, user, settings.web.session_ttl_s, datetime.now(UTC))
    await limiter.succeeded(address, username)
    target = _safe_next(str(data.get("next", "/")))
    response: web.StreamResponse = (web.json_response({"user": user.username, "role": user.role, "csrf_token": csrf})
                                    if is_json else web.HTTPFound(target))
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", max_age=settings.web.session_ttl_s,
                        secure=settings.web.host not in ("127.0.0.1", "localhost"))
    if isinstance(response, web.HTTPFound):
        raise response
    return response


@access.allow(*access.ROLES)
@api.route(summary="Sign out (ends this session)", responses={200: Done})
async def logout(request: web.Request) -> web.Response:
    if SESSION_COOKIE in request.cookies:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            await users.close_page_session(session, request.cookies[SESSION_COOKIE])
        request.app[LIVE_SOCKETS].end_credential(users.sha256(request.cookies[SESSION_COOKIE]), "signed out")
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE)
    return response


class PasswordChange(api.Body):
    current: api.Secret
    new: api.Secret


@access.allow(*access.ROLES)
@api.route(summary="Change your own password: your other sessions and their live sockets end", body=PasswordChange,
           responses={200: Done, 403: api.Problem, 429: api.Problem})
async def change_password(request: web.Request, body: PasswordChange) -> web.Response:
    """{"current", "new"}: the signed-in user's new password; their other sessions end."""
    current, new = body.current, body.new
    if not NEW_PASSWORD_MIN <= len(new) <= 256:
        return json_error(400, f"new: a password of {NEW_PASSWORD_MIN} to 256 characters is required")
    if new == current:
        return json_error(400, "new: must differ from the current password")
    user, credential = access.current_user(request), request[CREDENTIAL]
    limiter, address = request.app[LIMITER], request.remote or "?"
    wait = await limiter.attempt(address, user.username)
    if wait:
        return json_error(429, "too many wrong passwords; try again later", **{"Retry-After": str(wait)})
    pool = request.app[PASSWORD_POOL]
    keep = credential.digest if credential.kind == "session" else None
    if await users.check_password(request.app[SESSIONMAKER], user.username, current, pool) is None:
        return json_error(403, "current: wrong password")
    new_hash = await users.hash_password(new, pool)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        await users.change_password(session, credential.user_id, new_hash, keep_session=keep)
    await limiter.succeeded(address, user.username)
    request.app[LIVE_SOCKETS].end_user(credential.user_id, "password changed", keep=credential.digest)
    return web.json_response({"ok": True})


# ---------------------------------------------------------------- live


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
@api.route(summary="Queues, agents and today's figures, now", responses={200: LiveStats})
async def live_stats(request: web.Request) -> web.Response:
    snapshot = await request.app[LIVE].snapshot()
    today = await stats.today(request.app[SESSIONMAKER], request.app[SETTINGS], datetime.now(UTC))
    return web.json_response({**stats.live_figures(snapshot), "today": today})


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN, access.KIOSK)
@api.route(summary="Live changes over a websocket (a snapshot first)", query=LiveView,
           responses={101: None, 400: None})
async def live_socket(request: web.Request, query: LiveView) -> web.WebSocketResponse:
    """A snapshot, then every change (as this user may see them) until the socket closes;
    ?view=desk: only what the agent's desk shows (web/sockets.py)."""
    user, credential = access.current_user(request), request[CREDENTIAL]
    # Uncompressed: the fan-out writes each change's frame, built once, to every socket's
    # transport (web/sockets.py); per-socket compression would make that once per socket.
    ws = web.WebSocketResponse(heartbeat=20, compress=False)
    await ws.prepare(request)
    sockets = request.app[LIVE_SOCKETS]
    sock = sockets.add(ws, user, credential, query.view)   # before the snapshot: no change falls between
    try:
        read = await sockets.snapshot(request.app[LIVE])
        await ws.send_str(snapshot_text(read, snapshot_for(read.data, user, query.view)))
        sockets.started(sock, request.transport)
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        sockets.forget(sock)
    return ws


@access.allow(access.ADMIN)
@api.route(summary="Prometheus metrics", responses={200: "text/plain"})
async def prometheus_metrics(request: web.Request) -> web.Response:
    figures = request.app[METRICS]
    await figures.refresh()
    return web.Response(body=generate_latest(figures.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@access.allow(*access.ROLES)
@api.route(summary="To the page of the signed-in role", responses={302: None})
async def home(request: web.Request) -> web.StreamResponse:
    # Each role lands on its own page (callcenter/pages knows the pages of each role).
    from callcenter.pages.http import landing

    raise web.HTTPFound(landing(access.current_user(request).role))


# ---------------------------------------------------------------- the factory


async def _close_websockets(app: web.Application) -> None:
    await app[LIVE_SOCKETS].close_all()


def _behind_calls() -> None:
    """Password threads (and the threads argon2 starts from them) yield the CPU to the loop."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_NICE)


class PasswordPool(Executor):
    """The threads that hash and check passwords: made on first use, shut down with the app (an
    app started again gets new ones; its state cannot be replaced once it runs)."""

    def __init__(self) -> None:
        self._threads: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=PASSWORD_THREADS, thread_name_prefix="passwords",
                                               initializer=_behind_calls)
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=wait, cancel_futures=cancel_futures)


async def _password_pool(app: web.Application) -> AsyncIterator[None]:
    yield
    app[PASSWORD_POOL].shutdown(wait=True, cancel_futures=True)


async def _live_fanout(app: web.Application) -> AsyncIterator[None]:
    """One subscription to the live changes for all of this app's sockets, and their re-check."""
    sockets = app[LIVE_SOCKETS]
    tasks = [asyncio.create_task(sockets.follow(app[LIVE]), name="live fan-out"),
             asyncio.create_task(sockets.recheck(app[SESSIONMAKER], app[SETTINGS].web.live_recheck_s),
                                 name="live sockets re-check")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def init_app(settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession], redis: aioredis.Redis,
             live: LiveSource, agent_control: AgentControl | None = None,
             route_setups: Sequence[Callable[[web.Application], None]] = (),
             ami_status: Callable[[], Any] | None = None, metrics: HotlineMetrics | None = None) -> web.Application:
    if settings.web.secret_key is None:
        raise ValueError("web.secret_key: required (run `callcenter init`)")
    app = web.Application(middlewares=[security_headers, authenticate], client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[REDIS] = redis
    app[LIVE] = live
    app[LIVE_SOCKETS] = LiveSockets(settings.web.live_sockets_per_user)
    app[METRICS] = metrics or HotlineMetrics()   # the hotline's own registry (web/metrics.py)
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
    app.router.add_post("/api/password", change_password)
    app.router.add_get("/api/live/stats", live_stats)
    app.router.add_get("/ws/live", live_socket)
    app.router.add_get("/metrics", prometheus_metrics)
    agents_http.setup_routes(app)
    for setup in route_setups:
        setup(app)
    api.setup_routes(app)
    app[PASSWORD_POOL] = PasswordPool()
    app.cleanup_ctx.append(_password_pool)
    app.cleanup_ctx.append(_live_fanout)
    app.on_shutdown.append(_close_websockets)
    return app
