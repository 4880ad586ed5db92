"""Who is calling: bearer tokens for APIs, session cookies for pages; CSRF for cookie-borne
changes; security headers on every answer; log-in attempts limited (Redis, shared by every
engine; an in-process limiter when Redis is down, so a dead Redis never opens the door)."""
from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callcenter.web import access, users
from callcenter.web.keys import REDIS, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

SESSION_COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "connect-src 'self' ws: wss:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def json_error(status: int, message: str, **extra: str) -> web.Response:
    body = json.dumps({"error": message}, ensure_ascii=False)
    return web.Response(status=status, text=body, content_type="application/json", headers=extra)


def json_exception(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    """The same {"error": ...} body, as an exception a helper deep in a handler can raise."""
    return kind(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def json_body(request: web.Request) -> dict[str, Any]:
    """A request's JSON object ({} when it has no body); 400 when it is not one."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise json_exception(web.HTTPBadRequest, "body is not JSON") from None
    if not isinstance(data, dict):
        raise json_exception(web.HTTPBadRequest, "body must be a JSON object")
    return data


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.content_type != "application/json":
            response = json_error(exc.status, exc.reason)
        else:
            response = exc
            if not isinstance(response, web.Response):
                raise
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Set request[USER] from a bearer token or a session cookie, then apply the allow-list."""
    sessionmaker = request.app[SESSIONMAKER]
    user: access.User | None = None
    header = request.headers.get("Authorization", "")
    via_cookie = False
    if header.startswith("Bearer "):
        async with sessionmaker() as session:
            row = await users.user_for_token(session, header.removeprefix("Bearer ").strip())
        if row is None:
            return json_error(401, "unknown or revoked token")
        user = users.as_user(row)
    elif SESSION_COOKIE in request.cookies:
        async with sessionmaker() as session:
            found = await users.page_session(session, request.cookies[SESSION_COOKIE], datetime.now(UTC))
        if found is not None:
            user, via_cookie = users.as_user(found[0]), True
            request[access.CSRF_TOKEN] = found[1].csrf_token
    request[access.USER] = user
    route_handler = request.match_info.handler
    if request.match_info.http_exception is not None:
        raise request.match_info.http_exception
    try:
        access.authorize(user, route_handler)
    except web.HTTPUnauthorized:
        if not request.path.startswith(("/api/", "/ws/")):
            raise web.HTTPFound(f"/login?next={request.path}") from None
        raise
    if via_cookie and request.method in UNSAFE and not access.is_public(route_handler):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get("csrf_token", ""))
        if sent != request.get(access.CSRF_TOKEN):
            return json_error(403, "missing or wrong CSRF token")
    return await handler(request)


class LoginLimiter:
    """Wrong log-ins per user name and per address, per minute."""

    def __init__(self, limit: int, prefix: str) -> None:
        self.limit = limit
        self.prefix = prefix
        self._local: dict[str, deque[float]] = defaultdict(deque)

    def _keys(self, username: str, address: str) -> list[str]:
        return [f"{self.prefix}login:user:{username}", f"{self.prefix}login:addr:{address}"]

    async def blocked(self, request: web.Request, username: str) -> int:
        """Seconds to wait, or 0."""
        keys = self._keys(username, request.remote or "?")
        try:
            redis = request.app[REDIS]
            counts = await redis.mget(keys)
            if any(int(c or 0) >= self.limit for c in counts):
                return max(1, max([await redis.ttl(k) for k in keys] + [1]))
            return 0
        except Exception as exc:
            log.warning("login limiter: Redis unavailable (%s); limiting in this process", exc)
            now = time.monotonic()
            for key in keys:
                hits = self._local[key]
                while hits and hits[0] < now - 60:
                    hits.popleft()
                if len(hits) >= self.limit:
                    return max(1, int(60 - (now - hits[0])))
            return 0

    async def failed(self, request: web.Request, username: str) -> None:
        keys = self._keys(username, request.remote or "?")
        now = time.monotonic()
        for key in keys:
            self._local[key].append(now)
        try:
            redis = request.app[REDIS]
            async with redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.incr(key)
                    pipe.expire(key, 60, nx=True)
                await pipe.execute()
        except Exception as exc:
            log.warning("login limiter: could not count in Redis: %s", exc)


def limiter_for(app: web.Application) -> LoginLimiter:
    settings = app[SETTINGS]
    return LoginLimiter(settings.web.login_attempts_per_minute, settings.redis.prefix)
