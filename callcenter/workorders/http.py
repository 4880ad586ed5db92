"""Work orders over HTTP: agents complete and move orders, field units see and report on their
own orders only (per-unit tokens), supervisors adjudicate, read reports and run the handover.

Errors are JSON {"error": ...}: 400 bad input (unknown category, a deadline in the past),
403 another unit's order, 404 unknown, 409 an event that does not fit the order's state.
"""
from __future__ import annotations

import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from callcenter.web import access
from callcenter.web.auth import json_body, json_error, json_exception
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.workorders import lifecycle
from callcenter.workorders.categories import CategoryError, load_categories
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.handover import HandoverError, HandoverService
from callcenter.workorders.models import FollowUp, WorkOrder, WorkOrderEvent
from callcenter.workorders.render import FORMATS, render
from callcenter.workorders.reports import ReportError, build_for, default_when
from callcenter.workorders.service import WorkOrderService

ORDERS = web.AppKey("workorders", WorkOrderService)
FOLLOWUPS = web.AppKey("followups", FollowUpService)
HANDOVERS = web.AppKey("handovers", HandoverService)

AGENT, QA, SUP, ADMIN, UNIT = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN, access.UNIT
# What an agent or supervisor may do to an order; units use their own routes.
DESK_EVENTS = {"dispatch", "resolve", "escalate"}
SUPERVISOR_EVENTS = {"adjudicate", "archive"}
UNIT_ACTIONS = {"acknowledge": lifecycle.Event.ACKNOWLEDGE, "arrive": lifecycle.Event.ARRIVE,
                "resolve": lifecycle.Event.RESOLVE, "return": lifecycle.Event.SEND_BACK}


def order_json(order: WorkOrder) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": order.id, "call_id": order.call_id, "caller_number": order.caller_number,
            "category": order.category, "subcategory": order.subcategory, "description": order.description,
            "address": order.address, "account": order.account, "urgency": order.urgency, "unit": order.unit,
            "agent_id": order.agent_id, "state": order.state, "returns": order.returns,
            "escalation_level": order.escalation_level, "needs_review": order.needs_review,
            "repeat_of": order.repeat_of, "created_at": iso(order.created_at), "dispatch_by": iso(order.dispatch_by),
            "arrive_by": iso(order.arrive_by), "result_by": iso(order.result_by), "reply_by": iso(order.reply_by)}


def event_json(event: WorkOrderEvent) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "actor": event.actor, "event": event.event, "from": event.from_state,
            "to": event.to_state, "reason": event.reason}


def _order_id(request: web.Request) -> int:
    try:
        return int(request.match_info["order_id"])
    except ValueError:
        raise json_exception(web.HTTPNotFound, "no such order") from None


def _str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise json_exception(web.HTTPBadRequest, f"{key}: must be text")
    return value


def _deadline(body: dict[str, Any]) -> datetime:
    raw = _str(body, "new_deadline")
    try:
        return datetime.fromisoformat(raw or "")
    except ValueError:
        raise json_exception(web.HTTPBadRequest,
                             "new_deadline: an ISO time such as 2026-11-23T18:00:00+08:00") from None


async def _guard(action: Callable[[], Awaitable[Any]]) -> Any:
    """Domain errors as HTTP errors; the order is unchanged in every case."""
    try:
        return await action()
    except LookupError as exc:
        raise json_exception(web.HTTPNotFound, str(exc)) from None
    except lifecycle.IllegalTransition as exc:
        raise json_exception(web.HTTPConflict, str(exc)) from None
    except (CategoryError, ValueError) as exc:
        raise json_exception(web.HTTPBadRequest, str(exc)) from None


async def _order(request: web.Request, order_id: int) -> WorkOrder:
    async with request.app[SESSIONMAKER]() as session:
        order = await session.get(WorkOrder, order_id)
    if order is None:
        raise json_exception(web.HTTPNotFound, f"no work order {order_id}")
    return order


# ------------------------------------------------------------------ desk: agents and supervisors

@access.allow(AGENT, SUP, ADMIN)
async def list_orders(request: web.Request) -> web.Response:
    query = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(min(int(request.query.get("limit", 100)), 500))
    for key in ("state", "unit", "category", "caller_number"):
        if key in request.query:
            query = query.where(getattr(WorkOrder, key) == request.query[key])
    if request.query.get("needs_review") == "true":
        query = query.where(WorkOrder.needs_review.is_(True))
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(query)).scalars())
    return web.json_response({"orders": [order_json(o) for o in orders]})


@access.allow(AGENT, SUP, ADMIN, UNIT)
async def get_order(request: web.Request) -> web.Response:
    order = await _order(request, _order_id(request))
    _same_unit(request, order)
    history = await request.app[ORDERS].history(order.id)
    return web.json_response({"order": order_json(order), "history": [event_json(e) for e in history]})


@access.allow(AGENT, SUP, ADMIN)
async def correct_order(request: web.Request) -> web.Response:
    body, user = await json_body(request), access.current_user(request)
    order = await _guard(lambda: request.app[ORDERS].correct(
        _order_id(request), user.agent_id or user.username, category=_str(body, "category"),
        subcategory=_str(body, "subcategory"), description=_str(body, "description"), address=_str(body, "address")))
    return web.json_response({"order": order_json(order)})


@access.allow(AGENT, SUP, ADMIN)
async def order_event(request: web.Request) -> web.Response:
    body, user = await json_body(request), access.current_user(request)
    name = _str(body, "event") or ""
    allowed = DESK_EVENTS | (SUPERVISOR_EVENTS if user.role in (SUP, ADMIN) else set()) | {"extend"}
    if name not in allowed:
        return json_error(400, f"event {name!r}: you may use {', '.join(sorted(allowed))}")
    actor, reason, order_id = user.agent_id or user.username, _str(body, "reason") or "", _order_id(request)
    service = request.app[ORDERS]
    if name == "extend":
        order = await _guard(lambda: service.extend(order_id, actor, reason, _deadline(body)))
    else:
        order = await _guard(lambda: service.apply(order_id, lifecycle.Event(name), actor, reason))
    return web.json_response({"order": order_json(order)})


# ------------------------------------------------------------------ field units (责任单位)

def _same_unit(request: web.Request, order: WorkOrder) -> None:
    user = access.current_user(request)
    if user.role == UNIT and order.unit != user.unit:
        raise json_exception(web.HTTPForbidden, f"order {order.id} belongs to another unit")


@access.allow(UNIT)
async def unit_orders(request: web.Request) -> web.Response:
    user = access.current_user(request)
    query = select(WorkOrder).where(WorkOrder.unit == user.unit).order_by(WorkOrder.id.desc()).limit(500)
    if request.query.get("open") == "true":
        query = query.where(WorkOrder.state.in_([s.value for s in lifecycle.OPEN]))
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(query)).scalars())
    return web.json_response({"unit": user.unit, "orders": [order_json(o) for o in orders]})


@access.allow(UNIT)
async def unit_action(request: web.Request) -> web.Response:
    user, action = access.current_user(request), request.match_info["action"]
    order = await _order(request, _order_id(request))
    _same_unit(request, order)
    body = await json_body(request)
    actor, reason, service = f"unit:{user.unit}", _str(body, "reason") or _str(body, "result") or "", request.app[ORDERS]
    if action == "return" and not reason.strip():
        return json_error(400, "reason: a returned order (退单) needs a stated reason")
    if action == "extend":
        order = await _guard(lambda: service.extend(order.id, actor, reason, _deadline(body)))
    elif action in UNIT_ACTIONS:
        order = await _guard(lambda: service.apply(order.id, UNIT_ACTIONS[action], actor, reason))
    else:
        return json_error(404, f"no unit action {action!r} (actions: acknowledge, arrive, resolve, return, extend)")
    return web.json_response({"order": order_json(order)})


# ------------------------------------------------------------------ follow-ups (回访)

def followup_json(f: FollowUp) -> dict[str, Any]:
    return {"id": f.id, "order_id": f.order_id, "number": f.number, "due_at": f.due_at.isoformat(),
            "state": f.state, "digit": f.digit, "needs_agent": f.needs_agent}


@access.allow(AGENT, SUP, ADMIN)
async def followup_list(request: web.Request) -> web.Response:
    return web.json_response({"follow_ups": [followup_json(f) for f in await request.app[FOLLOWUPS].agent_list()]})


@access.allow(AGENT, SUP, ADMIN)
async def followup_answer(request: web.Request) -> web.Response:
    """An agent's own follow-up call: what the citizen said (1 satisfied, 2 not, none: unreachable)."""
    body = await json_body(request)
    digit = _str(body, "digit")
    if digit not in ("1", "2", None):
        return json_error(400, "digit: 1 (satisfied), 2 (not satisfied) or null (not reached)")
    followup = await _guard(lambda: request.app[FOLLOWUPS].record_answer(request.match_info["followup_id"], digit))
    return web.json_response({"follow_up": followup_json(followup)})


# ------------------------------------------------------------------ reports

@access.allow(SUP, ADMIN)
async def report(request: web.Request) -> web.Response:
    settings, kind = request.app[SETTINGS], request.match_info["kind"]
    fmt = request.query.get("format", "html")
    if fmt not in FORMATS:
        return json_error(400, f"format {fmt!r}: one of {', '.join(FORMATS)}")
    when = (request.query.get("date") or request.query.get("week") or request.query.get("month")
            or default_when(kind, settings.hotline.timezone))
    try:
        built = await build_for(settings, request.app[SESSIONMAKER], request.app[ORDERS].categories, kind, when)
    except ReportError as exc:
        return json_error(400, str(exc))
    headers = {} if fmt == "html" else {"Content-Disposition": f'attachment; filename="{kind}-{when}.{fmt}"'}
    return web.Response(body=render(built, fmt), headers={"Content-Type": FORMATS[fmt], **headers})


# ------------------------------------------------------------------ shift handover (交接班)

def handover_json(h: Any) -> dict[str, Any]:
    return {"id": h.id, "shift_start": h.shift_start.isoformat(), "shift_end": h.shift_end.isoformat(),
            "drafted_by": h.drafted_by, "drafted_at": h.drafted_at.isoformat(), "content": h.content,
            "notes": h.notes, "accepted_by": h.accepted_by,
            "accepted_at": h.accepted_at.isoformat() if h.accepted_at else None,
            "closed_at": h.closed_at.isoformat() if h.closed_at else None}


async def _handover_step(action: Callable[[], Awaitable[Any]]) -> web.Response:
    try:
        return web.json_response({"handover": handover_json(await action())})
    except LookupError as exc:
        return json_error(404, str(exc))
    except HandoverError as exc:
        return json_error(409, str(exc))


@access.allow(SUP, ADMIN)
async def handover_draft(request: web.Request) -> web.Response:
    body, user = await json_body(request), access.current_user(request)
    zone = zoneinfo.ZoneInfo(request.app[SETTINGS].hotline.timezone)
    try:
        start, end = (datetime.fromisoformat(_str(body, k) or "") for k in ("shift_start", "shift_end"))
    except ValueError:
        return json_error(400, "shift_start, shift_end: ISO times such as 2026-11-23T08:00:00+08:00")
    start, end = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (start, end))
    return await _handover_step(lambda: request.app[HANDOVERS].draft(start, end, user.username))


@access.allow(SUP, ADMIN)
async def handover_get(request: web.Request) -> web.Response:
    return await _handover_step(lambda: request.app[HANDOVERS].get(int(request.match_info["handover_id"])))


@access.allow(SUP, ADMIN)
async def handover_notes(request: web.Request) -> web.Response:
    body, user = await json_body(request), access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].add_notes(
        int(request.match_info["handover_id"]), user.username, _str(body, "notes"), _str(body, "flood_notes")))


@access.allow(SUP, ADMIN)
async def handover_accept(request: web.Request) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].accept(int(request.match_info["handover_id"]),
                                                                      user.username))


@access.allow(SUP, ADMIN)
async def handover_close(request: web.Request) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].close(int(request.match_info["handover_id"]),
                                                                     user.username))


async def _services(app: web.Application) -> None:
    """The services, unless the wiring (callcenter/app.py) put in the ones the engine uses."""
    settings = app[SETTINGS]
    if ORDERS not in app:
        app[ORDERS] = WorkOrderService(app[SESSIONMAKER], load_categories(settings.workorders.categories_file or None),
                                       settings.hotline.timezone)
    if FOLLOWUPS not in app:
        app[FOLLOWUPS] = FollowUpService(app[SESSIONMAKER], app[ORDERS])
    if HANDOVERS not in app:
        app[HANDOVERS] = HandoverService(app[SESSIONMAKER], settings.hotline.timezone)


def setup_routes(app: web.Application) -> None:
    app.on_startup.append(_services)
    r = app.router
    r.add_get("/api/orders", list_orders)
    r.add_get(r"/api/orders/{order_id}", get_order)
    r.add_patch(r"/api/orders/{order_id}", correct_order)
    r.add_post(r"/api/orders/{order_id}/events", order_event)
    r.add_get("/api/unit/orders", unit_orders)
    r.add_post(r"/api/unit/orders/{order_id}/{action}", unit_action)
    r.add_get("/api/followups", followup_list)
    r.add_post(r"/api/followups/{followup_id}/answer", followup_answer)
    r.add_get(r"/api/reports/{kind}", report)
    r.add_post("/api/handovers", handover_draft)
    r.add_get(r"/api/handovers/{handover_id:\d+}", handover_get)
    r.add_patch(r"/api/handovers/{handover_id:\d+}", handover_notes)
    r.add_post(r"/api/handovers/{handover_id:\d+}/accept", handover_accept)
    r.add_post(r"/api/handovers/{handover_id:\d+}/close", handover_close)


