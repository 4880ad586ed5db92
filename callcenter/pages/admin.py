"""The administrator's pages (/admin): users, agents, queues with their office hours, outage
notices (heard before they are published), categories and units, the audit trail.

The administrator changes; the supervisor may look. Forms are plain HTML posts (with the CSRF
token) that go through the same service as the API (admin/service.py), so a page and a script
meet the same checks; a refusal shows the field it names, a change is followed by the page again.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.admin.http import ADMIN, audit_json
from callcenter.admin.service import AdminError
from callcenter.notices import http as notices_http
from callcenter.notices.service import NoticeAudioError, NoticeError
from callcenter.pages import views
from callcenter.pages.http import render
from callcenter.web import access
from callcenter.web.keys import SETTINGS
from callcenter.workorders import http as orders_http

N_ = views.N_
CHANGE = (access.ADMIN,)
VIEW = (access.ADMIN, access.SUPERVISOR)
SECTIONS = (("agents", N_("Agents")), ("queues", N_("Queues")), ("users", N_("Users")),
            ("notices", N_("Outage notices")), ("catalogue", N_("Categories and units")), ("audit", N_("Audit trail")))
ROLES = ("agent", "qa", "supervisor", "admin", "unit")
USER_ACTIONS = {"deactivate": N_("Deactivate"), "activate": N_("Activate"), "revoke_tokens": N_("Revoke tokens"),
                "reset_password": N_("Reset password"), "role": N_("Change role")}


async def _context(request: web.Request, section: str) -> dict[str, Any]:
    service = request.app[ADMIN]
    context: dict[str, Any] = {"section": section, "sections": SECTIONS, "done": request.query.get("done"),
                               "may_change": access.current_user(request).role in CHANGE}
    if section in ("agents", "queues"):
        context["agents"] = await service.agents()
        context["queues"] = await service.queues()
    if section == "users":
        context["users"] = await service.users()
        context["roles"], context["user_actions"] = ROLES, USER_ACTIONS
    if section == "notices":
        context["outages"] = await request.app[notices_http.NOTICES].current()
    if section in ("queues", "catalogue"):
        categories = request.app[orders_http.ORDERS].categories.categories
        context["categories"] = categories
        units: dict[str, list[str]] = {}
        for key, c in categories.items():
            units.setdefault(c.unit, []).append(key)
        context["units"] = units
    if section == "audit":
        context["entries"] = [{**audit_json(e), "changes": changes(e.before, e.after)} for e in await service.audit(200)]
    return context


def _shown(value: Any) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False)


def changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """What an audit entry changed, key by key: (key, before, after), only the keys that differ."""
    before, after = before or {}, after or {}
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return [(k, _shown(before.get(k)), _shown(after.get(k))) for k in keys]


async def _page(request: web.Request, section: str, error: str | None = None, status: int = 200,
                form: dict[str, Any] | None = None) -> web.Response:
    return render(request, "admin.html", status=status, error=error, form=form or {},
                  **await _context(request, section))


def _done(section: str, what: str) -> web.HTTPException:
    return web.HTTPSeeOther(f"/admin/{section}?done={what}")


@access.allow(*VIEW)
async def admin_home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/agents")


def _section_page(section: str) -> Any:
    @access.allow(*VIEW)
    async def page(request: web.Request) -> web.Response:
        return await _page(request, section)
    page.__name__ = f"admin_{section}"
    return page


def _int(form: Any, key: str, field: str) -> int:
    raw = str(form.get(key, "")).strip()
    if not raw.lstrip("-").isdigit() or len(raw) > 6:
        raise AdminError(field, "a whole number")
    return int(raw)


def _actor(request: web.Request) -> str:
    return access.current_user(request).username


@access.allow(*CHANGE)
async def add_agent(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        queues = [str(q) for q in form.getall("queue", [])]
        skills = {q: _int(form, f"level_{q}", f"skills.{q}") for q in queues if str(form.get(f"level_{q}", "")).strip()}
        await request.app[ADMIN].create_agent(_actor(request), str(form.get("id", "")).strip(),
                                              str(form.get("name", "")), str(form.get("sip_password", "")),
                                              queues, skills)
    except AdminError as exc:
        return await _page(request, "agents", str(exc), 400, {k: v for k, v in form.items() if k != "sip_password"})
    raise _done("agents", "agent")


@access.allow(*CHANGE)
async def agent_active(request: web.Request) -> web.Response:
    form = await request.post()
    agent_id = request.match_info["agent_id"]
    try:
        await request.app[ADMIN].change_agent(_actor(request), agent_id, active=form.get("active") == "1")
    except AdminError as exc:
        return await _page(request, "agents", str(exc), 400)
    except LookupError:
        raise web.HTTPNotFound() from None
    raise _done("agents", "agent")


@access.allow(*CHANGE)
async def change_queue(request: web.Request) -> web.Response:
    form = await request.post()
    name = request.match_info["name"]
    spans = [s.strip() for s in str(form.get("open_hours", "")).replace("，", ",").split(",") if s.strip()]
    changes: dict[str, Any] = {"open_hours": spans, "open_days": str(form.get("open_days", "every_day")),
                               "when_closed": str(form.get("when_closed", "")) or None,
                               "overflow_to": str(form.get("overflow_to", "")) or None,
                               "title": str(form.get("title", ""))[:64]}
    try:
        changes["priority"] = _int(form, "priority", "priority")
        await request.app[ADMIN].change_queue(_actor(request), name, changes)
    except AdminError as exc:
        return await _page(request, "queues", f"{name}: {exc}", 400)
    except LookupError:
        raise web.HTTPNotFound() from None
    raise _done("queues", "queue")


@access.allow(*CHANGE)
async def add_user(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        await request.app[ADMIN].create_user(
            _actor(request), str(form.get("username", "")).strip(), str(form.get("password", "")),
            str(form.get("role", "")), str(form.get("agent_id", "")).strip() or None,
            str(form.get("unit", "")).strip() or None)
    except AdminError as exc:
        return await _page(request, "users", str(exc), 400, {k: v for k, v in form.items() if k != "password"})
    raise _done("users", "user")


@access.allow(*CHANGE)
async def user_action(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        await request.app[ADMIN].change_user(
            _actor(request), request.match_info["username"], str(form.get("action", "")),
            password=str(form.get("password", "")) if form.get("action") == "reset_password" else None,
            role=str(form.get("role", "")) or None)
    except AdminError as exc:
        return await _page(request, "users", str(exc), 400)
    except LookupError:
        raise web.HTTPNotFound() from None
    raise _done("users", "user")


def _local_moment(form: Any, key: str, tz: str) -> datetime:
    raw = str(form.get(key, "")).strip()
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        raise NoticeError(f"{key}: a date and time, e.g. 2026-12-01T18:00") from None


@access.allow(*CHANGE)
async def add_notice(request: web.Request) -> web.Response:
    """An outage notice, published once its spoken text was heard on the page."""
    form = await request.post()
    tz = request.app[SETTINGS].hotline.timezone
    kept = dict(form.items())
    try:
        areas = [a.strip() for a in str(form.get("areas", "")).replace("，", ",").split(",") if a.strip()]
        outage = await request.app[notices_http.NOTICES].create(
            kind=str(form.get("kind", "")), areas=list(areas), starts_at=_local_moment(form, "starts_at", tz),
            ends_at=_local_moment(form, "ends_at", tz), text=str(form.get("text", "")),
            cause=str(form.get("cause", "")), by=_actor(request))
    except NoticeError as exc:
        return await _page(request, "notices", str(exc), 400, kept)
    except NoticeAudioError as exc:
        return await _page(request, "notices", str(exc), 503, kept)
    await request.app[ADMIN].record(_actor(request), "notice", str(outage.id), "create", None,
                                    notices_http.outage_json(outage))
    raise _done("notices", "notice")


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", admin_home)
    for section, _ in SECTIONS:
        r.add_get(f"/admin/{section}", _section_page(section))
    r.add_post("/admin/agents", add_agent)
    r.add_post(r"/admin/agents/{agent_id:[A-Za-z0-9_-]{1,32}}/active", agent_active)
    r.add_post(r"/admin/queues/{name:[a-z][a-z0-9_-]{0,31}}", change_queue)
    r.add_post("/admin/users", add_user)
    r.add_post(r"/admin/users/{username:[A-Za-z0-9_.-]{1,64}}", user_action)
    r.add_post("/admin/notices", add_notice)
