"""The live pages: the agent's desk (/agent) and the floor's screen (/wallboard).

Both are rendered from the live state's snapshot and then kept live by their script over the
one live socket (/ws/live): an agent's state and its time, the screen pop when the phone
rings, queues, callers waiting and agents as they change. What needs the call records (the
agent's own figures today, the follow-up worklist, the wallboard's figures over the last 24
hours, the orders nearest to their deadline, the outages running) is a part of the page that
htmx fetches again every so often. Every action goes through the agent API
(callcenter/web/agents_http.py), with its rights and its errors.
"""
from __future__ import annotations

import secrets
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import case, func, select, update

from callcenter.calls.models import ABANDONED_IN_IVR, ABANDONED_IN_QUEUE, Call
from callcenter.notices import http as notices_http
from callcenter.pages import floor, views
from callcenter.pages.http import render
from callcenter.web import access, api, users
from callcenter.web.agents_http import PAUSE_REASONS
from callcenter.web.auth import KIOSK_COOKIE
from callcenter.web.keys import LIVE, SESSIONMAKER, SETTINGS
from callcenter.web.models import ApiToken
from callcenter.web.models import User as UserRow
from callcenter.workorders import http as workorders_http
from callcenter.workorders.deadlines import FOLLOW_UP_WINDOWS
from callcenter.workorders.handover import HandoverError
from callcenter.workorders.models import Customer, Handover, WorkOrder

AGENT, SUP, ADMIN = access.AGENT, access.SUPERVISOR, access.ADMIN
OPEN_STATES = ("accepted", "dispatched", "acknowledged", "on_site", "returned", "adjudicating")


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400


def _words(request: web.Request) -> dict[str, Any]:
    """The words the page's script shows (states, reasons, call outcomes) in the reader's language."""
    from callcenter.pages import i18n

    language = i18n.choose(request.query.get("lang"), request.cookies.get(i18n.COOKIE))
    gettext = i18n.translations(language).gettext
    return {"states": {k: gettext(v) for k, v in floor.AGENT_STATE_LABELS.items()},
            "reasons": {k: gettext(v) for k, v in floor.PAUSE_REASON_LABELS.items()},
            "dispositions": {k: gettext(v) for k, v in floor.DISPOSITION_LABELS.items()},
            "calls": {k: gettext(v) for k, v in floor.CALL_STATE_LABELS.items()},
            "phone": {k: gettext(v) for k, v in floor.PHONE_LABELS.items()},
            "alerts": {k: gettext(v) for k, v in floor.ALERT_LABELS.items()},
            "orders": {k: gettext(v) for k, v in views.STATE_LABELS.items()},
            "categories": _categories(request)}


def _categories(request: web.Request) -> dict[str, str]:
    service = request.app.get(workorders_http.ORDERS)
    return {} if service is None else {k: c.name for k, c in service.categories.categories.items()}


# ------------------------------------------------------------------ the agent's desk

@access.allow(AGENT)
async def agent_page(request: web.Request) -> web.Response:
    """The agent's desk. Only an agent has one: a supervisor or an admin has no agent id to act for."""
    user, settings = access.current_user(request), request.app[SETTINGS]
    snapshot = await request.app[LIVE].snapshot()
    me = (snapshot.get("agents") or {}).get(user.agent_id or "") or {"state": "logged_out"}
    return render(request, "agent.html", me=me, agent_id=user.agent_id, words=_words(request),
                  queues=[q.name for q in settings.queues], reasons=PAUSE_REASONS,
                  reason_labels=floor.PAUSE_REASON_LABELS, state_labels=floor.AGENT_STATE_LABELS,
                  colleagues=floor.free_colleagues(snapshot, user.agent_id),
                  wrapup_s=settings.acd.wrapup_s, thresholds=floor.Thresholds.of(settings).as_dict(),
                  order_categories=_order_categories(request), urgency_labels=views.URGENCY_LABELS)


def _order_categories(request: web.Request) -> dict[str, dict[str, Any]]:
    """What the desk's order form shows of each category (names, unit, urgency): the categories
    file's, as the order service reads it. The deadlines are the service's to compute."""
    service = request.app.get(workorders_http.ORDERS)
    if service is None:
        return {}
    return {key: {"name": c.name, "unit": c.unit, "urgency": c.urgency, "field": c.needs_field_work,
                  "subcategories": dict(c.subcategories)} for key, c in service.categories.categories.items()}


async def agent_figures(request: web.Request, agent_id: str, since: datetime) -> dict[str, Any]:
    """The agent's own calls since `since`: answered, talk time, ring attempts not answered."""
    async with request.app[SESSIONMAKER]() as session:
        dialect = session.bind.dialect.name
        talk = _seconds(Call.ended_at, Call.agent_answered_at, dialect)
        answered, talk_total, talk_avg = (await session.execute(
            select(func.count(Call.id), func.sum(talk), func.avg(talk))
            .where(Call.agent_id == agent_id, Call.agent_answered_at >= since))).one()
        orders = (await session.execute(select(func.count(WorkOrder.id)).where(
            WorkOrder.agent_id == agent_id, WorkOrder.created_at >= since))).scalar_one()
    return {"answered": int(answered or 0), "talk_s": int(talk_total or 0),
            "talk_avg_s": int(talk_avg) if talk_avg is not None else None, "orders": int(orders or 0)}


@access.allow(AGENT)
async def agent_today(request: web.Request) -> web.Response:
    """The desk's slow part: the agent's figures today and the follow-up worklist (回访)."""
    user, settings = access.current_user(request), request.app[SETTINGS]
    zone = zoneinfo.ZoneInfo(settings.hotline.timezone)
    now = datetime.now(UTC)
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    figures = await agent_figures(request, user.agent_id or "", midnight)
    followups = []
    if workorders_http.FOLLOWUPS in request.app:
        followups = sorted(await request.app[workorders_http.FOLLOWUPS].agent_list(), key=lambda f: f.due_at)[:50]
    local_now = now.astimezone(zone).time()
    in_window = any(start <= local_now < end for start, end in FOLLOW_UP_WINDOWS)
    windows = [f"{start:%H:%M}–{end:%H:%M}" for start, end in FOLLOW_UP_WINDOWS]
    return render(request, "agent_today.html", figures=figures, followups=followups, in_window=in_window,
                  windows=windows, followup_labels=floor.FOLLOWUP_LABELS)


# ------------------------------------------------------------------ the wallboard

class WallboardQuery(api.Query):
    view: Literal["24h", "shift"] = "24h"


async def queue_figures(request: web.Request, since: datetime) -> dict[str, dict[str, Any]]:
    """Per queue since `since`: calls, answered, answered within the rings, abandoned, average speed of answer."""
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER]() as session:
        wait = _seconds(Call.agent_answered_at, Call.arrived_at, session.bind.dialect.name)
        rows = await session.execute(
            select(Call.queue, func.count(Call.id), func.count(Call.agent_answered_at),
                   func.sum(case((wait <= settings.telephony.answer_within_s, 1), else_=0)),
                   func.sum(case((Call.disposition.in_([ABANDONED_IN_QUEUE, ABANDONED_IN_IVR]), 1), else_=0)),
                   func.avg(wait))
            .where(Call.arrived_at >= since).group_by(Call.queue))
    return {str(q or ""): {"calls": c, "answered": a, "within": w, "abandoned": ab, "asa_s": asa}
            for q, c, a, w, ab, asa in rows}


async def nearest_deadlines(request: web.Request, now: datetime, limit: int = 8) -> list[dict[str, Any]]:
    """Open orders nearest to breaching their running deadline (working days on the hotline's calendar)."""
    tz = request.app[SETTINGS].hotline.timezone
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(select(WorkOrder).where(WorkOrder.state.in_(OPEN_STATES))
                                              .order_by(WorkOrder.id.desc()).limit(2000))).scalars())
    rows = []
    for order in orders:
        running = views.order_deadlines(order, now, tz)
        if running:
            rows.append({"order": order, "deadline": running[0]})
    rows.sort(key=lambda r: r["deadline"].seconds_left)
    return rows[:limit]


async def outages_running(request: web.Request, now: datetime) -> list[dict[str, Any]]:
    """Outages in force now, with the customers in their areas (the calls to expect) and the
    calls taken from those customers since the outage began."""
    service = request.app.get(notices_http.NOTICES)
    if service is None:
        return []
    rows = []
    for outage in await service.current(now):
        if outage.starts_at > now:
            continue
        areas = list(outage.areas or [])
        async with request.app[SESSIONMAKER]() as session:
            customers = (await session.execute(select(func.count()).select_from(Customer)
                                               .where(Customer.area.in_(areas)))).scalar_one()
            calls = (await session.execute(
                select(func.count(Call.id)).join(Customer, Customer.number == Call.caller_number)
                .where(Customer.area.in_(areas), Call.arrived_at >= outage.starts_at))).scalar_one()
        rows.append({"outage": outage, "areas": areas, "customers": int(customers or 0), "calls": int(calls or 0)})
    return rows


@access.allow(SUP, ADMIN, access.KIOSK)
async def wallboard_page(request: web.Request) -> web.Response:
    settings, now = request.app[SETTINGS], datetime.now(UTC)
    thresholds = floor.Thresholds.of(settings)
    snapshot = await request.app[LIVE].snapshot()
    return render(request, "wallboard.html", words=_words(request), thresholds=thresholds.as_dict(),
                  agents=floor.agent_rows(snapshot, now, thresholds),
                  waiting=floor.waiting_callers(snapshot, now, thresholds),
                  live_queues=floor.queue_rows(snapshot, {}, [q.name for q in settings.queues], thresholds),
                  state_labels=floor.AGENT_STATE_LABELS, reason_labels=floor.PAUSE_REASON_LABELS, floor=floor)


@access.allow(SUP, ADMIN, access.KIOSK)
@api.route(summary="The wallboard's figures: per queue over the last 24 hours or this shift, deadlines, outages",
           query=WallboardQuery, responses={200: "text/html", 400: api.Problem})
async def wallboard_figures(request: web.Request, query: WallboardQuery) -> web.Response:
    settings, now = request.app[SETTINGS], datetime.now(UTC)
    tz = settings.hotline.timezone
    since = now - timedelta(hours=24) if query.view == "24h" else floor.shift_start(now, tz, settings.wallboard.shift_hours)
    thresholds = floor.Thresholds.of(settings)
    snapshot = await request.app[LIVE].snapshot()
    queues = floor.queue_rows(snapshot, await queue_figures(request, since), [q.name for q in settings.queues],
                              thresholds)
    return render(request, "wallboard_figures.html", queues=queues, view=query.view, since=since,
                  deadlines=await nearest_deadlines(request, now), outages=await outages_running(request, now),
                  categories=_categories(request), answer_within_s=settings.telephony.answer_within_s,
                  rings=settings.telephony.answer_within_rings)


# ------------------------------------------------------------------ the duty manager's view

@access.allow(SUP, ADMIN)
async def supervisor_page(request: web.Request) -> web.Response:
    """The agents' grid with listen / whisper / barge (rung on the supervisor's own phone), force
    pause and log out; alerts for long pauses and waits; the shift handover."""
    settings, now = request.app[SETTINGS], datetime.now(UTC)
    thresholds = floor.Thresholds.of(settings)
    snapshot = await request.app[LIVE].snapshot()
    user = access.current_user(request)
    return render(request, "supervisor.html", words=_words(request), thresholds=thresholds.as_dict(),
                  agents=floor.agent_rows(snapshot, now, thresholds), phone=user.phone, reasons=PAUSE_REASONS,
                  state_labels=floor.AGENT_STATE_LABELS, reason_labels=floor.PAUSE_REASON_LABELS, floor=floor)


async def _handovers(request: web.Request, error: str | None = None, done: str | None = None) -> web.Response:
    settings, now = request.app[SETTINGS], datetime.now(UTC)
    start, end = floor.shift_bounds(now, settings.hotline.timezone, settings.wallboard.shift_hours)
    async with request.app[SESSIONMAKER]() as session:
        rows = list((await session.execute(select(Handover).order_by(Handover.shift_start.desc(), Handover.id.desc())
                                           .limit(5))).scalars())
    return render(request, "handovers.html", handovers=rows, error=error, done=done, shift_start=start,
                  shift_end=end, me=access.current_user(request).username)


@access.allow(SUP, ADMIN)
async def handovers_part(request: web.Request) -> web.Response:
    return await _handovers(request)


async def _handover_step(request: web.Request, step: str, work: Any) -> web.Response:
    try:
        await work()
    except (HandoverError, LookupError) as exc:
        return await _handovers(request, error=str(exc).strip("'\""))
    return await _handovers(request, done=step)


@access.allow(SUP, ADMIN)
@api.route(summary="Draft the running shift's handover (the page's part answers)", body=api.Empty,
           responses={200: "text/html"})
async def handover_draft_step(request: web.Request) -> web.Response:
    settings, user = request.app[SETTINGS], access.current_user(request)
    start, end = floor.shift_bounds(datetime.now(UTC), settings.hotline.timezone, settings.wallboard.shift_hours)
    return await _handover_step(request, "draft", lambda: request.app[workorders_http.HANDOVERS].draft(
        start, end, user.username))


class HandoverNote(api.Body):
    notes: api.Paragraph


@access.allow(SUP, ADMIN)
@api.route(summary="The outgoing shift's notes on a handover", path=workorders_http.HandoverPath, body=HandoverNote,
           responses={200: "text/html", 400: api.Problem, 404: api.Problem})
async def handover_notes_step(request: web.Request, path: Any, body: HandoverNote) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(request, "notes", lambda: request.app[workorders_http.HANDOVERS].add_notes(
        path.handover_id, user.username, body.notes))


def _handover_action(action: str) -> Any:
    @access.allow(SUP, ADMIN)
    @api.route(summary=f"Handover: {action} (the page's part answers)", path=workorders_http.HandoverPath,
               body=api.Empty, responses={200: "text/html", 404: api.Problem})
    async def handler(request: web.Request, path: Any) -> web.Response:
        service, user = request.app[workorders_http.HANDOVERS], access.current_user(request)
        step = service.accept if action == "accept" else service.close
        return await _handover_step(request, action, lambda: step(path.handover_id, user.username))

    handler.__name__ = f"handover_{action}_step"
    return handler


# ------------------------------------------------------------------ wallboard screens (kiosk)
# A TV on the floor shows the wallboard all day and night: it signs in with a token of its own
# (role kiosk: the wallboard and the live socket, nothing else, no caller's number, no screen
# pop), kept in a cookie by /kiosk, which no session time-out ends. A supervisor issues one on
# /supervisor (the token is shown once) and revokes it there: its socket closes at once.

KIOSK_PREFIX = "kiosk-"
KIOSK_COOKIE_AGE_S = 10 * 365 * 86400


class KioskName(api.Body):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="the screen's name, e.g. floor-1")]


class KioskPath(api.Path):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


class KioskToken(api.Body):
    token: Annotated[str, api.text(200, min_length=1)]


async def _kiosks(request: web.Request, issued: tuple[str, str] | None = None) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        screens = list((await session.execute(select(UserRow).where(UserRow.role == access.KIOSK)
                                              .order_by(UserRow.username))).scalars())
    return render(request, "kiosks.html", screens=screens, issued=issued, prefix=KIOSK_PREFIX)


@access.allow(SUP, ADMIN)
async def kiosks_part(request: web.Request) -> web.Response:
    return await _kiosks(request)


@access.allow(SUP, ADMIN)
@api.route(summary="Issue a wallboard screen's token (shown once)", body=KioskName,
           responses={200: "text/html", 400: api.Problem})
async def kiosk_issue(request: web.Request, body: KioskName) -> web.Response:
    from callcenter.web.app import PASSWORD_POOL

    username = KIOSK_PREFIX + body.name
    async with request.app[SESSIONMAKER]() as session, session.begin():
        row = await users.create_user(session, username, secrets.token_urlsafe(32), access.KIOSK,
                                      pool=request.app[PASSWORD_POOL])
        token = await users.issue_token(session, row, label="wallboard screen")
    return await _kiosks(request, issued=(username, token))


@access.allow(SUP, ADMIN)
@api.route(summary="Revoke a wallboard screen (its socket closes)", path=KioskPath, body=api.Empty,
           responses={200: "text/html", 404: api.Problem})
async def kiosk_revoke(request: web.Request, path: KioskPath) -> web.Response:
    from callcenter.web.app import LIVE_SOCKETS

    async with request.app[SESSIONMAKER]() as session, session.begin():
        row = (await session.execute(select(UserRow).where(UserRow.username == KIOSK_PREFIX + path.name,
                                                            UserRow.role == access.KIOSK))).scalar_one_or_none()
        if row is None:
            raise api.refuse("name", "no such wallboard screen", web.HTTPNotFound)
        row.active = False
        await session.execute(update(ApiToken).where(ApiToken.user_id == row.id).values(revoked=True))
        user_id = row.id
    request.app[LIVE_SOCKETS].end_user(user_id, "wallboard screen revoked")
    return await _kiosks(request)


@access.public
async def kiosk_page(request: web.Request) -> web.Response:
    return render(request, "kiosk.html", error=None)


@access.public
@api.route(summary="A wallboard screen signs in with its token (kept in a cookie)", body=KioskToken, form=True,
           responses={302: None, 401: "text/html"})
async def kiosk_sign_in(request: web.Request, body: KioskToken) -> web.StreamResponse:
    async with request.app[SESSIONMAKER]() as session:
        row = await users.user_for_token(session, body.token)
    if row is None or row.role != access.KIOSK:
        return render(request, "kiosk.html", status=401, error=True)
    response = web.HTTPFound("/wallboard")
    response.set_cookie(KIOSK_COOKIE, body.token, httponly=True, samesite="Strict", max_age=KIOSK_COOKIE_AGE_S,
                        secure=request.app[SETTINGS].web.host not in ("127.0.0.1", "localhost"))
    raise response


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/agent", agent_page)
    r.add_get("/agent/today", agent_today)
    r.add_get("/wallboard", wallboard_page)
    r.add_get("/wallboard/figures", wallboard_figures)
    r.add_get("/kiosk", kiosk_page)
    r.add_post("/kiosk", kiosk_sign_in)
    r.add_get("/supervisor/kiosks", kiosks_part)
    r.add_post("/supervisor/kiosks", kiosk_issue)
    r.add_post(r"/supervisor/kiosks/{name}/revoke", kiosk_revoke)
    r.add_get("/supervisor", supervisor_page)
    r.add_get("/supervisor/handovers", handovers_part)
    r.add_post("/supervisor/handovers", handover_draft_step)
    r.add_post(r"/supervisor/handovers/{handover_id:\d+}/notes", handover_notes_step)
    r.add_post(r"/supervisor/handovers/{handover_id:\d+}/accept", _handover_action("accept"))
    r.add_post(r"/supervisor/handovers/{handover_id:\d+}/close", _handover_action("close"))
