"""Who is calling: bearer tokens for APIs, session cookies for pages; CSRF for cookie-borne
changes; security headers on every answer; log-in attempts limited (Redis, shared by every
engine; an in-process limiter when Redis is down, so a dead Redis never opens the door).

Log-in policy. Every attempt is counted before its password is checked, in one atomic step
with the check of the limits (a Lua script in Redis), so parallel tries cannot slip past.
Three counts, each over a fixed minute:
- per (address, user name): `web.login_attempts_per_minute` (5). A flood on one name from one
  address stops there: its attempts beyond this are refused without counting anywhere else,
  so they neither lock the owner out from other addresses nor refuse other users behind
  that address.
- per address, over all names: `web.login_attempts_per_address_per_minute` (50): a sweep of
  many names from one address. High enough for a shift change behind one office address,
  because a right password gives its slot back.
- per user name, over all addresses: `web.login_attempts_per_user_per_minute` (20): guessing
  one name from many addresses. Only such a spread flood (at least four addresses at the
  default figures) can lock a name for the rest of the minute; that is the price of bounding
  guesses against one account.
A right password resets its (address, user) count and gives back its slot in the other two.
The address is the peer of the connection (no forwarded-for header is trusted).
argon2 runs off the event loop, in the app's small password pool (see `users`)."""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from callcenter.web import access, users
from callcenter.web.keys import REDIS, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

SESSION_COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
WINDOW_S = 60
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KIOSK_COOKIE = "cc_kiosk"   # a wallboard screen's token (callcenter/pages/desk_http.py: /kiosk)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "connect-src 'self' ws: wss:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Credential:
    """What signed a request in: a page session or an API token (its SHA-256), and whose."""

    user_id: int
    kind: str      # "session" | "token"
    digest: str


# Where the authentication middleware leaves it: request[CREDENTIAL] (absent when signed out).
CREDENTIAL = web.RequestKey("credential", Credential)


def json_error(status: int, message: str, **extra: str) -> web.Response:
    body = json.dumps({"error": message}, ensure_ascii=False)
    return web.Response(status=status, text=body, content_type="application/json", headers=extra)


def json_exception(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    """The same {"error": ...} body, as an exception a helper deep in a handler can raise."""
    return kind(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")



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
        token = header.removeprefix("Bearer ").strip()
        async with sessionmaker() as session:
            row = await users.user_for_token(session, token)
        if row is None:
            return json_error(401, "unknown or revoked token")
        user = users.as_user(row)
        request[CREDENTIAL] = Credential(row.id, "token", users.sha256(token))
    elif SESSION_COOKIE in request.cookies:
        async with sessionmaker() as session:
            found = await users.page_session(session, request.cookies[SESSION_COOKIE], datetime.now(UTC))
        if found is not None:
            user, via_cookie = users.as_user(found[0]), True
            request[access.CSRF_TOKEN] = found[1].csrf_token
            request[CREDENTIAL] = Credential(found[0].id, "session", found[1].id_sha256)
    elif KIOSK_COOKIE in request.cookies:
        # A wallboard screen: its token, kept in a cookie by /kiosk, signs in only a kiosk user.
        async with sessionmaker() as session:
            row = await users.user_for_token(session, request.cookies[KIOSK_COOKIE])
        if row is not None and row.role == access.KIOSK:
            user = users.as_user(row)
            request[CREDENTIAL] = Credential(row.id, "token", users.sha256(request.cookies[KIOSK_COOKIE]))
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


# Check the three counts and, when none is at its limit, count the attempt in each: one
# atomic step, so parallel tries cannot all pass a check that none has counted yet.
# KEYS: (address, user), address, user; ARGV: their limits, then the window in seconds.
_TAKE = """
for i = 1, 3 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 1 then
      redis.call('EXPIRE', KEYS[i], ARGV[4])
      ttl = tonumber(ARGV[4])
    end
    return {i, ttl}
  end
end
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return {0, 0}
"""
# A right password: the (address, user) count starts again; the wider counts get their slot back.
_GIVE_BACK = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""
SCOPES = ("address and user", "address", "user")


class AttemptWindows:
    """Attempts counted in fixed windows by key, in this process: the fallback when Redis is
    down. `take` checks and counts in one synchronous call, so no other coroutine can come
    between the check and the count (the same atomicity the Redis script gives)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._counts: dict[str, tuple[float, int]] = {}

    def _current(self, key: str, now: float) -> tuple[float, int]:
        start, n = self._counts.get(key, (now, 0))
        return (now, 0) if now - start >= self.window_s else (start, n)

    def take(self, limits: Sequence[tuple[str, int]], now: float) -> tuple[int, int]:
        """(0, 0) when counted; else (which limit, 1-based; seconds until its window ends)."""
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window_s}
        for i, (key, limit) in enumerate(limits, start=1):
            start, n = self._current(key, now)
            if n >= limit:
                return i, max(1, math.ceil(start + self.window_s - now))
        for key, _ in limits:
            start, n = self._current(key, now)
            self._counts[key] = (start, n + 1)
        return 0, 0

    def give_back(self, pair: str, wider: Sequence[str], now: float) -> None:
        self._counts.pop(pair, None)
        for key in wider:
            start, n = self._current(key, now)
            if n > 0:
                self._counts[key] = (start, n - 1)


class LoginLimiter:
    """Log-in attempts a minute, counted before the password is checked (see the module
    docstring for the policy): per (address, user name), per address and per user name."""

    def __init__(self, redis: aioredis.Redis, prefix: str, per_pair: int, per_address: int, per_user: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limits = (per_pair, per_address, per_user)
        self._take = redis.register_script(_TAKE)
        self._give_back = redis.register_script(_GIVE_BACK)
        self._local = AttemptWindows(WINDOW_S)

    def _keys(self, address: str, username: str) -> list[str]:
        return [f"{self.prefix}login:pair:{address} {username}", f"{self.prefix}login:addr:{address}",
                f"{self.prefix}login:user:{username}"]

    async def attempt(self, address: str, username: str) -> int:
        """0: counted, go on and check the password; else the seconds to wait (answer 429)."""
        keys = self._keys(address, username)
        try:
            which, wait = (int(x) for x in await self._take(keys=keys, args=[*self.limits, WINDOW_S]))
        except (RedisError, OSError) as exc:
            log.warning("login limiter: Redis unavailable (%s); counting in this process", exc)
            which, wait = self._local.take(list(zip(keys, self.limits, strict=True)), time.monotonic())
        if which:
            log.warning("log-in refused for %r from %s: limit per %s reached", username, address, SCOPES[which - 1])
            return max(1, wait)
        return 0

    async def succeeded(self, address: str, username: str) -> None:
        keys = self._keys(address, username)
        self._local.give_back(keys[0], keys[1:], time.monotonic())
        try:
            await self._give_back(keys=keys)
        except (RedisError, OSError) as exc:
            log.warning("login limiter: could not reset the count in Redis: %s", exc)


def limiter_for(app: web.Application) -> LoginLimiter:
    web_settings = app[SETTINGS].web
    return LoginLimiter(app[REDIS], app[SETTINGS].redis.prefix, web_settings.login_attempts_per_minute,
                        web_settings.login_attempts_per_address_per_minute,
                        web_settings.login_attempts_per_user_per_minute)
