"""The staff's pages: server-rendered (Jinja2), updated in part with htmx, in Chinese by default.

Each role has its own pages and lands on its own one after log-in: a field unit on `/unit`
(its orders on a phone, with the deadlines counting down and its steps 签收 / 到场 / 办结 /
延期申请 / 退单), agents and dispatchers on `/orders` (the work-order desk) besides `/agent`,
QA reviewers on `/qa`. A page the role may not open answers a 403 page in the reader's
language, not JSON.

The pages' actions go through the work-order API's own handlers (the same rights, the same
lifecycle, the same errors): htmx posts the form as JSON, the handler answers the order, and
the page answers the order's card, with the API's error in it when there is one.
"""
from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.pages import i18n, views
from callcenter.web import access, api, users
from callcenter.web.auth import SESSION_COOKIE
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.workorders import http as workorders_http
from callcenter.workorders import photos
from callcenter.workorders.deadlines import add_working_days
from callcenter.workorders.models import FollowUp, OrderPhoto, WorkOrder, WorkOrderCall

STATIC_DIR = Path(__file__).with_name("static")
AGENT, QA, SUP, ADMIN, UNIT = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN, access.UNIT
DESK = (AGENT, SUP, ADMIN)
N_ = views.N_

# Each role's pages, in the order of its navigation (the first one is where it lands).
NAV: dict[str, tuple[tuple[str, str], ...]] = {
    AGENT: (("/agent", N_("Agent desk")), ("/orders", N_("Work orders")), ("/qa/scores", N_("My QA scores"))),
    SUP: (("/wallboard", N_("Wallboard")), ("/supervisor", N_("Duty manager")), ("/orders", N_("Work orders")),
          ("/reports", N_("Reports")), ("/qa/disputes", N_("QA disputes")), ("/admin", N_("Administration"))),
    ADMIN: (("/wallboard", N_("Wallboard")), ("/supervisor", N_("Duty manager")), ("/orders", N_("Work orders")),
            ("/reports", N_("Reports")), ("/qa/disputes", N_("QA disputes")), ("/admin", N_("Administration"))),
    QA: (("/qa", N_("Quality review")), ("/qa/search", N_("Search calls"))),
    UNIT: (("/unit", N_("My orders")),),
    access.KIOSK: (("/wallboard", N_("Wallboard")),),
}
ROLE_LABELS = {AGENT: N_("Agent"), SUP: N_("Supervisor"), ADMIN: N_("Administrator"), QA: N_("QA reviewer"),
               UNIT: N_("Field unit"), access.KIOSK: N_("Wallboard screen")}


def landing(role: str) -> str:
    """Where a role lands after log-in."""
    return NAV[role][0][0]


# ------------------------------------------------------------------ rendering

def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    language = i18n.choose(request.query.get("lang"), request.cookies.get(i18n.COOKIE))
    user = request.get(access.USER)
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    text = i18n.environment(language).get_template(template).render(
        user=user if isinstance(user, access.User) else None, nav=NAV.get(getattr(user, "role", ""), ()),
        role_labels=ROLE_LABELS, csrf_token=request.get(access.CSRF_TOKEN, ""), hotline=settings.hotline,
        lang=language, path=request.path, now=now, tz=settings.hotline.timezone, views=views,
        local=lambda moment: views.local(moment, settings.hotline.timezone), **context)
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    if request.query.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, language, max_age=365 * 86400, samesite="Strict", httponly=True)
    return response


@web.middleware
async def forbidden_page(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """A page the role may not open: a 403 page with a way home (APIs keep their JSON)."""
    try:
        return await handler(request)
    except web.HTTPForbidden:
        if request.path.startswith(("/api/", "/ws/")) or request.method != "GET":
            raise
        return render(request, "403.html", status=403)


# ------------------------------------------------------------------ static files, log-out

def _file(path: Path, cache: str, content_type: str | None = None) -> web.Response:
    """A small file (the largest is a 5 MB photo), read whole: nothing stays open when the browser
    goes away mid-answer."""
    kind = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return web.Response(body=body, headers={"Content-Type": kind, "Cache-Control": cache})


# The files the pages may be served, by their name under the static folder: a request names one
# of these or gets 404 (no path is ever built from what a request carries).
ASSETS = {path.relative_to(STATIC_DIR).as_posix(): path for path in sorted(STATIC_DIR.rglob("*"))
          if path.is_file() and not any(part.startswith(".") for part in path.relative_to(STATIC_DIR).parts)}


class AssetPath(api.Path):
    path: Annotated[str, api.text(200, min_length=1)]


@access.public
@api.route(summary="The pages' own and vendored files", path=AssetPath, responses={200: None, 404: api.Problem})
async def asset(request: web.Request, path: AssetPath) -> web.StreamResponse:
    found = ASSETS.get(path.path)
    if found is None:
        raise web.HTTPNotFound()
    return _file(found, "public, max-age=3600")


@access.public
async def favicon(request: web.Request) -> web.StreamResponse:
    return _file(STATIC_DIR / "favicon.svg", "public, max-age=86400")


@access.allow(*access.ROLES)
async def logout_page(request: web.Request) -> web.StreamResponse:
    if SESSION_COOKIE in request.cookies:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            await users.close_page_session(session, request.cookies[SESSION_COOKIE])
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE)
    raise response


# ------------------------------------------------------------------ delegating to the API

async def _through_api(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], request: web.Request
                       ) -> tuple[dict[str, Any] | None, str | None]:
    """The API handler's order, or its error message (the order is unchanged then)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        return None, _error_text(exc.text, exc.reason)
    body = getattr(response, "text", None) or "{}"
    if response.status >= 400:
        return None, _error_text(body, "")
    return json.loads(body).get("order"), None


def _error_text(body: str | None, fallback: str) -> str:
    try:
        return str(json.loads(body or "")["error"])
    except (ValueError, KeyError, TypeError):
        return fallback or (body or "")


def _path_id(request: web.Request, key: str) -> int:
    """A database id from the path; anything else (letters, 0, a 20-digit number) is not found."""
    raw = request.match_info[key]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= 2**31 - 1:
        raise web.HTTPNotFound()
    return int(raw)


async def _load(request: web.Request, order_id: int) -> WorkOrder:
    async with request.app[SESSIONMAKER]() as session:
        order = await session.get(WorkOrder, order_id)
    if order is None:
        raise web.HTTPNotFound()
    return order


def _category_names(request: web.Request) -> dict[str, str]:
    return {key: c.name for key, c in request.app[workorders_http.ORDERS].categories.categories.items()}


def _extension_choices(order: WorkOrder, now: datetime, tz: str) -> list[tuple[str, int]]:
    """New deadlines a unit may ask for: 1, 2, 3 or 5 working days after the running one."""
    running = views.order_deadlines(order, now, tz)
    base = max(running[0].at, now) if running else now
    return [(add_working_days(base, days, tz).isoformat(), days) for days in (1, 2, 3, 5)]


# ------------------------------------------------------------------ the field unit's page (/unit)

async def _photo_counts(request: web.Request, order_ids: list[int]) -> dict[int, int]:
    async with request.app[SESSIONMAKER]() as session:
        rows = await session.execute(select(OrderPhoto.order_id).where(OrderPhoto.order_id.in_(order_ids)))
        ids = [order_id for (order_id,) in rows]
    return {order_id: ids.count(order_id) for order_id in order_ids}


async def _unit_card(request: web.Request, order: WorkOrder, error: str | None = None,
                     done: str | None = None) -> web.Response:
    settings, now = request.app[SETTINGS], datetime.now(UTC)
    return render(request, "unit_card.html", order=order, error=error, done=done,
                  photo_count=(await _photo_counts(request, [order.id]))[order.id],
                  deadlines=views.order_deadlines(order, now, settings.hotline.timezone),
                  steps=views.UNIT_STEPS.get(order.state, ()), categories=_category_names(request),
                  extensions=_extension_choices(order, now, settings.hotline.timezone))


@access.allow(UNIT)
async def unit_page(request: web.Request) -> web.Response:
    user, settings, now = access.current_user(request), request.app[SETTINGS], datetime.now(UTC)
    tz = settings.hotline.timezone
    query = (select(WorkOrder).where(WorkOrder.unit == user.unit, WorkOrder.state.in_(tuple(views.UNIT_STEPS)))
             .order_by(WorkOrder.id).limit(200))
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(query)).scalars())

    def first_deadline(order: WorkOrder) -> float:
        running = views.order_deadlines(order, now, tz)
        return running[0].seconds_left if running else float("inf")

    orders.sort(key=first_deadline)
    counts = await _photo_counts(request, [o.id for o in orders])
    cards = [{"order": o, "deadlines": views.order_deadlines(o, now, tz), "steps": views.UNIT_STEPS.get(o.state, ()),
              "extensions": _extension_choices(o, now, tz), "photo_count": counts[o.id]} for o in orders]
    return render(request, "unit.html", cards=cards, categories=_category_names(request))


@access.allow(UNIT)
async def unit_step(request: web.Request) -> web.Response:
    """One step of the unit on an order, through the unit API (签收, 到场, 办结, 延期申请, 退单)."""
    order_id = _path_id(request, "order_id")
    _, error = await _through_api(workorders_http.unit_action, request)
    order = await _load(request, order_id)
    if order.unit != access.current_user(request).unit:
        raise web.HTTPNotFound()
    return await _unit_card(request, order, error=error, done=None if error else request.match_info["action"])


def photos_dir(request: web.Request) -> Path:
    return Path(request.app[SETTINGS].paths.spool_dir) / "photos"


async def _read_photo(request: web.Request) -> bytes:
    """The form's `photo` part, read no further than the limit allows."""
    if not request.content_type.startswith("multipart/"):
        raise photos.PhotoRefused("photo: send the form as multipart/form-data")
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if getattr(part, "name", None) != "photo":
            continue
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):   # type: ignore[union-attr]
            data += chunk
            if len(data) > photos.MAX_BYTES:
                raise photos.PhotoRefused(f"photo: larger than {photos.MAX_BYTES // (1024 * 1024)} MB")
        return bytes(data)
    raise photos.PhotoRefused("photo: no file sent")


@access.allow(UNIT)
async def unit_photo(request: web.Request) -> web.Response:
    """A photo as evidence (现场照片), on one of the unit's own open orders."""
    user = access.current_user(request)
    order = await _load(request, _path_id(request, "order_id"))
    if order.unit != user.unit:
        raise web.HTTPNotFound()
    if order.state not in views.UNIT_STEPS:
        return await _unit_card(request, order, error="photo: the order is not open for the unit")
    try:
        await photos.add_photo(request.app[SESSIONMAKER], photos_dir(request), order.id, f"unit:{user.unit}",
                               await _read_photo(request))
    except photos.PhotoRefused as exc:
        return await _unit_card(request, order, error=str(exc))
    return await _unit_card(request, order, done="photo")


@access.allow(*DESK, UNIT)
async def order_photo(request: web.Request) -> web.StreamResponse:
    """A photo of an order, for the desk and for the order's own unit."""
    order_id, photo_id = _path_id(request, "order_id"), _path_id(request, "photo_id")
    async with request.app[SESSIONMAKER]() as session:
        photo = await session.get(OrderPhoto, photo_id)
        order = await session.get(WorkOrder, order_id)
    user = access.current_user(request)
    if photo is None or order is None or photo.order_id != order_id or (user.role == UNIT and order.unit != user.unit):
        raise web.HTTPNotFound()
    return _file(photos_dir(request) / photo.path, "private, max-age=3600", photo.content_type)


# ------------------------------------------------------------------ the work-order desk (/orders)

DEADLINE_FILTERS = {"overdue": N_("Overdue"), "warn": N_("Nearly due"), "ok": N_("On time")}


@access.allow(*DESK)
async def orders_page(request: web.Request) -> web.Response:
    settings, now, q = request.app[SETTINGS], datetime.now(UTC), request.query
    tz = settings.hotline.timezone
    query = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(500)
    for key in ("state", "unit", "category"):
        if q.get(key):
            query = query.where(getattr(WorkOrder, key) == q[key])
    if q.get("escalated") == "1":
        query = query.where(WorkOrder.escalation_level > 0)
    if q.get("number"):
        query = query.where(WorkOrder.caller_number == q["number"])
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(query)).scalars())
        units = sorted({u for (u,) in await session.execute(select(WorkOrder.unit).distinct())})
    rows: list[tuple[WorkOrder, views.Deadline | None]] = []
    for order in orders:
        running = views.order_deadlines(order, now, tz)
        if q.get("deadline") and (not running or running[0].level != q["deadline"]):
            continue
        rows.append((order, running[0] if running else None))
    rows.sort(key=lambda row: (row[1] is None, row[1].seconds_left if row[1] else 0))
    return render(request, "orders.html", rows=[{"order": o, "deadline": d} for o, d in rows], filters=dict(q), categories=_category_names(request),
                  units=units, states=views.STATE_LABELS, deadline_filters=DEADLINE_FILTERS)


async def _order_context(request: web.Request, order: WorkOrder) -> dict[str, Any]:
    settings, now, user = request.app[SETTINGS], datetime.now(UTC), access.current_user(request)
    history = await request.app[workorders_http.ORDERS].history(order.id)
    async with request.app[SESSIONMAKER]() as session:
        followups = list((await session.execute(select(FollowUp).where(FollowUp.order_id == order.id)
                                                .order_by(FollowUp.due_at))).scalars())
        attached = select(WorkOrderCall.call_id).where(WorkOrderCall.order_id == order.id)
        calls = list((await session.execute(
            select(Call).where((Call.id == order.call_id) | (Call.caller_number == order.caller_number)
                               | Call.id.in_(attached))
            .order_by(Call.arrived_at.desc()).limit(20))).scalars())
        order_photos = list((await session.execute(select(OrderPhoto).where(OrderPhoto.order_id == order.id)
                                                   .order_by(OrderPhoto.id))).scalars())
    events = set(workorders_http.DESK_EVENTS) | {"extend"}
    if user.role in (SUP, ADMIN):
        events |= workorders_http.SUPERVISOR_EVENTS
    return {"order": order, "history": history, "followups": followups, "calls": calls, "photos": order_photos,
            "deadlines": views.order_deadlines(order, now, settings.hotline.timezone),
            "escalations": [e for e in history if e.event == "escalate"],
            "returns": [e for e in history if e.event in ("send_back", "follow_up_contradicts")],
            "events": views.desk_actions(order.state, events), "categories": _category_names(request),
            "extensions": _extension_choices(order, now, settings.hotline.timezone)}


@access.allow(*DESK)
async def order_page(request: web.Request) -> web.Response:
    order = await _load(request, _path_id(request, "order_id"))
    return render(request, "order.html", **await _order_context(request, order))


@access.allow(*DESK)
async def order_step(request: web.Request) -> web.Response:
    """A desk action on an order (派单, 办结, 督办, 延期, 研判, 归档) through the order API."""
    order_id = _path_id(request, "order_id")
    _, error = await _through_api(workorders_http.order_event, request)
    order = await _load(request, order_id)
    return render(request, "order_detail.html", error=error, **await _order_context(request, order))


def setup_routes(app: web.Application) -> None:
    # The 403 page sits just outside the authentication (it needs to know who is asking).
    position = next((i for i, m in enumerate(app.middlewares) if getattr(m, "__name__", "") == "authenticate"),
                    len(app.middlewares))
    app.middlewares.insert(position, forbidden_page)
    r = app.router
    r.add_get("/favicon.ico", favicon)
    r.add_get("/assets/{path:.+}", asset)
    r.add_post("/logout", logout_page)
    r.add_get("/unit", unit_page)
    r.add_post(r"/unit/orders/{order_id}/photo", unit_photo)
    r.add_post(r"/unit/orders/{order_id}/{action}", unit_step)
    r.add_get(r"/orders/{order_id}/photos/{photo_id}", order_photo)
    r.add_get("/orders", orders_page)
    r.add_get(r"/orders/{order_id}", order_page)
    r.add_post(r"/orders/{order_id}/events", order_step)
    # The QA pages (the reviewer's inbox and player, the agent's scores, search, disputes): pages/qa.py.
    from callcenter.pages import qa as qa_pages

    qa_pages.setup_routes(app)
    # The reports as pages, with their drill-downs, and a call's record: pages/reports.py.
    from callcenter.pages import reports as report_pages

    report_pages.setup_routes(app)
    # The administrator's pages (users, agents, queues, notices, categories, audit): pages/admin.py.
    from callcenter.pages import admin as admin_pages

    admin_pages.setup_routes(app)
    # The live pages: the agent's desk, the wallboard (callcenter/pages/desk_http.py).
    from callcenter.pages import desk_http
    desk_http.setup_routes(app)
