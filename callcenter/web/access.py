"""Who may call what: roles and the per-handler allow-list (deny by default).

Every domain's `http.py` marks each handler with `@allow(...)` (or `@public`). The web app's
authentication middleware puts the signed-in `User` on ``request[USER]`` and then calls
`authorize`, which refuses any handler that is not explicitly allowed for the user's role.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

AGENT = "agent"            # 受理员/座席
QA = "qa"                  # 质检
SUPERVISOR = "supervisor"  # 值班长/运营
ADMIN = "admin"
UNIT = "unit"              # 责任单位 (field unit)
KIOSK = "kiosk"            # 大屏终端: a wallboard screen, read-only, signed in by a token that does not expire
ROLES = (AGENT, QA, SUPERVISOR, ADMIN, UNIT, KIOSK)

_ALLOWED = "__callcenter_allowed_roles__"
_PUBLIC = "__callcenter_public__"

H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True)
class User:
    username: str
    role: str
    agent_id: str | None = None   # the agent this log-in speaks for (role agent)
    unit: str | None = None       # the field unit this log-in speaks for (role unit)
    phone: str | None = None      # the user's own phone endpoint id (supervisors: listen/whisper/barge)


# Where the authentication middleware leaves the signed-in user: request[USER].
USER = web.RequestKey("user", object)
CSRF_TOKEN = web.RequestKey("csrf_token", str)


def allow(*roles: str) -> Callable[[H], H]:
    """Allow a handler for these roles only (admin is not implied)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown or missing roles: {sorted(unknown)}")

    def mark(handler: H) -> H:
        setattr(handler, _ALLOWED, frozenset(roles))
        return handler

    return mark


def public(handler: H) -> H:
    """A handler anyone may call without signing in (health, log-in page)."""
    setattr(handler, _PUBLIC, True)
    return handler


def is_public(handler: Any) -> bool:
    return bool(getattr(_unwrap(handler), _PUBLIC, False))


def allowed_roles(handler: Any) -> frozenset[str]:
    return getattr(_unwrap(handler), _ALLOWED, frozenset())


def authorize(user: User | None, handler: Any) -> None:
    """Raise 401/403 unless the handler is public or allowed for the user's role."""
    if is_public(handler):
        return
    if user is None:
        raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type="application/json")
    if user.role not in allowed_roles(handler):
        raise web.HTTPForbidden(text='{"error": "not allowed for your role"}', content_type="application/json")


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if not isinstance(user, User):
        raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type="application/json")
    return user


def _unwrap(handler: Any) -> Any:
    # aiohttp wraps class-based views and partials; look through the common wrappers.
    return getattr(handler, "__wrapped__", handler)
