"""Work orders over HTTP: agents complete and move orders, field units see and report on their
own orders only (per-unit tokens), supervisors adjudicate, read reports and run the handover.

Who may act on an order (首问负责制, the agent who took the call owns the case):
- desk routes (correct, dispatch, resolve, escalate, extend): the owning agent
  (order.agent_id == the user's agent id), supervisors and admins; any other agent gets 403;
- a field order the unit has acknowledged (acknowledged, on_site) is resolved by the unit on its
  own route, or by a supervisor or admin, not by an agent;
- unit routes: the order's own unit only;
- extensions: an agent or the unit at most the category's `max_extension_hours` past the running
  deadline (categories.yaml); longer needs a supervisor or admin (403 naming new_deadline);
- follow-up answers: over HTTP only for follow-ups on the agents' list (the automated call was
  unhappy or not answered); an automated follow-up's answer comes only from the dialer (409).
Reading orders stays open to every agent: whoever answers a citizen's call sees that caller's
orders. The rights are checked on the locked order, in the same transaction as the change.

Errors are JSON {"error": ...}: 400 bad input (unknown category, a deadline in the past),
403 another agent's or unit's order, 404 unknown, 409 an event that does not fit the order's state.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from callcenter.calls.models import AgentAttempt, Call
from callcenter.web import access, api
from callcenter.web.auth import json_error, json_exception
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.workorders import lifecycle
from callcenter.workorders.categories import CategoryError, load_categories
from callcenter.workorders.followups import AutomatedFollowUp, FollowUpService
from callcenter.workorders.handover import HandoverError, HandoverService
from callcenter.workorders.models import FollowUp, WorkOrder, WorkOrderEvent
from callcenter.workorders.render import FORMATS, render
from callcenter.workorders.reports import KINDS, ReportError, build_for, default_when
from callcenter.workorders.service import CallAlreadyFiled, Rights, WorkOrderService

ORDERS = web.AppKey("workorders", WorkOrderService)
FOLLOWUPS = web.AppKey("followups", FollowUpService)
HANDOVERS = web.AppKey("handovers", HandoverService)

AGENT, QA, SUP, ADMIN, UNIT = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN, access.UNIT
# What an agent or supervisor may do to an order; units use their own routes.
DESK_EVENTS = {"dispatch", "resolve", "escalate"}
SUPERVISOR_EVENTS = {"adjudicate", "archive"}
UNIT_ACTIONS = {"acknowledge": lifecycle.Event.ACKNOWLEDGE, "arrive": lifecycle.Event.ARRIVE,
                "resolve": lifecycle.Event.RESOLVE, "return": lifecycle.Event.SEND_BACK}
# A field order the unit has taken on: the unit resolves it (or a supervisor), not an agent.
WITH_THE_UNIT = frozenset({lifecycle.State.ACKNOWLEDGED.value, lifecycle.State.ON_SITE.value})


# ------------------------------------------------------------------ what the routes take and answer

Number = Annotated[str, api.text(32, min_length=1)]


class OrderPath(api.Path):
    order_id: api.Id


class OrderQuery(api.Query):
    limit: int = Field(100, ge=1, le=500)
    state: api.Name | None = None
    unit: api.Name | None = None
    category: api.Name | None = None
    caller_number: Number | None = None
    needs_review: bool = False


class OrderPatch(api.Body):
    category: api.Name | None = None
    subcategory: api.Name | None = None
    description: api.Paragraph | None = None
    address: Annotated[str, api.text(500, multiline=True)] | None = None


class CallPath(api.Path):
    call_id: Annotated[str, api.text(36, min_length=1)]


class CallOrderBody(OrderPatch):
    """The desk's order form, sent during the call (every field as it stands in the form)."""


class AttachBody(api.Body):
    order_id: api.Id | None = Field(None, description="an open order: the caller's own, usually")
    outage_id: api.Id | None = Field(None, description="the outage running in the caller's area: its order")


class OrderEventBody(api.Body):
    event: Literal["dispatch", "resolve", "escalate", "adjudicate", "archive", "extend"]
    reason: api.Line = ""
    new_deadline: api.Moment | None = Field(None, description="extend: the new deadline, with its UTC offset")


class UnitOrderQuery(api.Query):
    open: bool = False


class UnitActionPath(api.Path):
    order_id: api.Id
    action: Literal["acknowledge", "arrive", "resolve", "extend", "return"]


class UnitActionBody(api.Body):
    reason: api.Line = ""
    result: api.Line = ""
    new_deadline: api.Moment | None = Field(None, description="extend: the new deadline, with its UTC offset")


class FollowUpPath(api.Path):
    followup_id: Annotated[str, api.text(36, min_length=1)]


class FollowUpAnswer(api.Body):
    digit: Literal["1", "2"] | None = Field(None, description="1 satisfied, 2 not satisfied, null not reached")


class ReportPath(api.Path):
    kind: Literal["daily", "weekly", "cycle", "monthly"]


class ReportQuery(api.Query):
    format: Literal["html", "csv", "xlsx"] = "html"
    date: api.Day | None = Field(None, description="daily: the day")
    week: api.Week | None = Field(None, description="weekly: the ISO week, e.g. 2026-W47")
    month: api.Month | None = Field(None, description="cycle, monthly: e.g. 2026-11")


class HandoverPath(api.Path):
    handover_id: api.Id


class HandoverDraft(api.Body):
    shift_start: api.Moment
    shift_end: api.Moment


class HandoverNotes(api.Body):
    notes: api.Paragraph | None = None
    flood_notes: api.Paragraph | None = None


class OrderOut(api.Answer):
    id: int
    caller_number: str
    category: str
    state: str
    unit: str
    created_at: str | None


class EventOut(api.Answer):
    at: str
    actor: str
    event: str
    to: str


class OneOrder(api.Answer):
    order: OrderOut


class CallOrder(OneOrder):
    attached: bool


class MaybeCallOrder(api.Answer):
    order: OrderOut | None
    attached: bool


class OrderWithHistory(OneOrder):
    history: list[EventOut]


class OrderList(api.Answer):
    orders: list[OrderOut]


class UnitOrderList(OrderList):
    unit: str | None


class FollowUpOut(api.Answer):
    id: str
    order_id: int
    state: str
    digit: str | None


class FollowUpList(api.Answer):
    follow_ups: list[FollowUpOut]


class OneFollowUp(api.Answer):
    follow_up: FollowUpOut


class HandoverOut(api.Answer):
    id: int
    shift_start: str
    shift_end: str
    drafted_by: str
    content: dict[str, Any]
    notes: str


class OneHandover(api.Answer):
    handover: HandoverOut


ERRORS = {404: api.Problem, 409: api.Problem}


def order_json(order: WorkOrder) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": order.id, "call_id": order.call_id, "caller_number": order.caller_number,
            "category": order.category, "subcategory": order.subcategory, "description": order.description,
            "address": order.address, "account": order.account, "urgency": order.urgency, "unit": order.unit,
            "agent_id": order.agent_id, "state": order.state, "returns": order.returns,
            "escalation_level": order.escalation_level, "needs_review": order.needs_review,
            "repeat_of": order.repeat_of, "outage_id": order.outage_id, "created_at": iso(order.created_at), "dispatch_by": iso(order.dispatch_by),
            "arrive_by": iso(order.arrive_by), "result_by": iso(order.result_by), "reply_by": iso(order.reply_by)}


def event_json(event: WorkOrderEvent) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "actor": event.actor, "event": event.event, "from": event.from_state,
            "to": event.to_state, "reason": event.reason}


def _deadline(body: OrderEventBody | UnitActionBody) -> datetime:
    if body.new_deadline is None:
        raise api.refuse("new_deadline", "an ISO time such as 2026-11-23T18:00:00+08:00")
    return body.new_deadline


async def _guard(action: Callable[[], Awaitable[Any]]) -> Any:
    """Domain errors as HTTP errors; the order is unchanged in every case."""
    try:
        return await action()
    except LookupError as exc:
        raise json_exception(web.HTTPNotFound, str(exc)) from None
    except PermissionError as exc:
        raise json_exception(web.HTTPForbidden, str(exc)) from None
    except (lifecycle.IllegalTransition, AutomatedFollowUp, CallAlreadyFiled) as exc:
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

def desk_refusal(user: access.User, order: WorkOrder, action: str) -> str | None:
    """Why this desk user may not `action` ("correct", "extend" or a lifecycle event) the order;
    None when they may."""
    if user.role in (SUP, ADMIN):
        return None
    if user.role != AGENT or not user.agent_id or order.agent_id != user.agent_id:
        return (f"order {order.id} is the case of agent {order.agent_id or '(none)'} (首问负责制): only that "
                "agent, a supervisor or an admin may change it")
    if action == lifecycle.Event.RESOLVE.value and order.state in WITH_THE_UNIT:
        return (f"order {order.id} is {order.state} with the unit {order.unit}: the unit resolves it, "
                "or a supervisor")
    return None


def _desk_rights(user: access.User, action: str) -> Rights:
    def check(order: WorkOrder) -> None:
        if (why := desk_refusal(user, order, action)) is not None:
            raise PermissionError(why)
    return check


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="The latest work orders, filtered", query=OrderQuery, responses={200: OrderList})
async def list_orders(request: web.Request, query: OrderQuery) -> web.Response:
    sql = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(query.limit)
    states = [s.value for s in lifecycle.State]
    if query.state is not None and query.state not in states:
        raise api.refuse("state", f"one of {', '.join(states)}")
    for key in ("state", "unit", "category", "caller_number"):
        if getattr(query, key) is not None:
            sql = sql.where(getattr(WorkOrder, key) == getattr(query, key))
    if query.needs_review:
        sql = sql.where(WorkOrder.needs_review.is_(True))
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(sql)).scalars())
    return web.json_response({"orders": [order_json(o) for o in orders]})


@access.allow(AGENT, SUP, ADMIN, UNIT)
@api.route(summary="An order and its history", path=OrderPath, responses={200: OrderWithHistory, **ERRORS})
async def get_order(request: web.Request, path: OrderPath) -> web.Response:
    order = await _order(request, path.order_id)
    _same_unit(request, order)
    history = await request.app[ORDERS].history(order.id)
    return web.json_response({"order": order_json(order), "history": [event_json(e) for e in history]})


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="Complete or correct an order", path=OrderPath, body=OrderPatch, responses={200: OneOrder, **ERRORS})
async def correct_order(request: web.Request, path: OrderPath, body: OrderPatch) -> web.Response:
    user = access.current_user(request)
    order = await _guard(lambda: request.app[ORDERS].correct(
        path.order_id, user.agent_id or user.username, category=body.category,
        subcategory=body.subcategory, description=body.description, address=body.address,
        rights=_desk_rights(user, "correct")))
    return web.json_response({"order": order_json(order)})


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="Move an order: dispatch, resolve, escalate, extend; supervisors also adjudicate, archive",
           path=OrderPath, body=OrderEventBody, responses={200: OneOrder, **ERRORS})
async def order_event(request: web.Request, path: OrderPath, body: OrderEventBody) -> web.Response:
    user = access.current_user(request)
    name = body.event
    allowed = DESK_EVENTS | (SUPERVISOR_EVENTS if user.role in (SUP, ADMIN) else set()) | {"extend"}
    if name not in allowed:
        return json_error(400, f"event {name!r}: you may use {', '.join(sorted(allowed))}")
    actor, reason, order_id = user.agent_id or user.username, body.reason, path.order_id
    service, rights = request.app[ORDERS], _desk_rights(user, name)
    if name == "extend":
        order = await _guard(lambda: service.extend(order_id, actor, reason, _deadline(body), rights=rights,
                                                    bounded=user.role not in (SUP, ADMIN)))
    else:
        order = await _guard(lambda: service.apply(order_id, lifecycle.Event(name), actor, reason, rights=rights))
    return web.json_response({"order": order_json(order)})


# ------------------------------------------------------------------ the desk during a call

async def _call_of_desk(request: web.Request, call_id: str, *, filing: bool) -> Call:
    """The call, if this user may see (`filing` False) or file it: an agent rung for it sees it,
    the agent who answered it files it (首问负责制: the order is theirs); supervisors and admins may
    do both."""
    user = access.current_user(request)
    async with request.app[SESSIONMAKER]() as session:
        call = await session.get(Call, call_id)
        if call is None:
            raise json_exception(web.HTTPNotFound, f"no call {call_id}")
        if user.role in (SUP, ADMIN) or (user.agent_id is not None and call.agent_id == user.agent_id):
            return call
        rung = user.agent_id is not None and (await session.execute(
            select(AgentAttempt.id).where(AgentAttempt.call_id == call_id, AgentAttempt.agent_id == user.agent_id)
            .limit(1))).first() is not None
    if not rung:
        raise json_exception(web.HTTPForbidden, f"call {call_id} is not yours: only its agent files it")
    if filing:
        raise json_exception(web.HTTPConflict, f"call {call_id}: answer it first (whoever answers owns the case)")
    return call


def _call_order_json(order: WorkOrder, call_id: str) -> dict[str, Any]:
    return {"order": order_json(order), "attached": order.call_id != call_id}


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="The order of a call: its own, or the open order it is attached to (null: not filed yet)",
           path=CallPath, responses={200: MaybeCallOrder, 403: api.Problem, 404: api.Problem})
async def call_order(request: web.Request, path: CallPath) -> web.Response:
    await _call_of_desk(request, path.call_id, filing=False)
    found = await request.app[ORDERS].order_of_call(path.call_id)
    if found is None:
        return web.json_response({"order": None, "attached": False})   # not filed yet
    return web.json_response(_call_order_json(found[0], path.call_id))


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="Open (or correct) the call's own order from the desk's form, during the call", path=CallPath,
           body=CallOrderBody, responses={200: CallOrder, 400: api.Problem, 403: api.Problem, **ERRORS})
async def take_call(request: web.Request, path: CallPath, body: CallOrderBody) -> web.Response:
    user = access.current_user(request)
    await _call_of_desk(request, path.call_id, filing=True)
    order = await _guard(lambda: request.app[ORDERS].take_call(
        path.call_id, user.agent_id or user.username, category=body.category, subcategory=body.subcategory,
        description=body.description, address=body.address, rights=_desk_rights(user, "correct")))
    return web.json_response(_call_order_json(order, path.call_id))


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="Attach the call to an open order or to the running outage's order, instead of a new one",
           path=CallPath, body=AttachBody, responses={200: CallOrder, 400: api.Problem, 403: api.Problem, **ERRORS})
async def attach_call(request: web.Request, path: CallPath, body: AttachBody) -> web.Response:
    user = access.current_user(request)
    if (body.order_id is None) == (body.outage_id is None):
        raise api.refuse("order_id", "give order_id or outage_id, one of them")
    await _call_of_desk(request, path.call_id, filing=True)
    service, actor = request.app[ORDERS], user.agent_id or user.username
    if body.order_id is not None:
        order_id = body.order_id
        order = await _guard(lambda: service.attach_call(path.call_id, order_id, actor))
    else:
        outage_id = body.outage_id
        assert outage_id is not None
        order = await _guard(lambda: service.attach_to_outage(path.call_id, outage_id, actor,
                                                              rights=_desk_rights(user, "correct")))
    return web.json_response(_call_order_json(order, path.call_id))


# ------------------------------------------------------------------ field units (责任单位)

def _same_unit(request: web.Request, order: WorkOrder) -> None:
    user = access.current_user(request)
    if user.role == UNIT and order.unit != user.unit:
        raise json_exception(web.HTTPForbidden, f"order {order.id} belongs to another unit")


def _unit_rights(user: access.User) -> Rights:
    def check(order: WorkOrder) -> None:
        if order.unit != user.unit:
            raise PermissionError(f"order {order.id} belongs to another unit")
    return check


@access.allow(UNIT)
@api.route(summary="The unit's own orders", query=UnitOrderQuery, responses={200: UnitOrderList})
async def unit_orders(request: web.Request, query: UnitOrderQuery) -> web.Response:
    user = access.current_user(request)
    sql = select(WorkOrder).where(WorkOrder.unit == user.unit).order_by(WorkOrder.id.desc()).limit(500)
    if query.open:
        sql = sql.where(WorkOrder.state.in_([s.value for s in lifecycle.OPEN]))
    async with request.app[SESSIONMAKER]() as session:
        orders = list((await session.execute(sql)).scalars())
    return web.json_response({"unit": user.unit, "orders": [order_json(o) for o in orders]})


@access.allow(UNIT)
@api.route(summary="A unit acknowledges, arrives, resolves, extends or returns (退单) its order", path=UnitActionPath,
           body=UnitActionBody, responses={200: OneOrder, **ERRORS})
async def unit_action(request: web.Request, path: UnitActionPath, body: UnitActionBody) -> web.Response:
    user, action = access.current_user(request), path.action
    order = await _order(request, path.order_id)
    _same_unit(request, order)
    actor, reason, service = f"unit:{user.unit}", body.reason or body.result or "", request.app[ORDERS]
    rights = _unit_rights(user)
    if action == "return" and not reason.strip():
        return json_error(400, "reason: a returned order (退单) needs a stated reason")
    if action == "extend":
        order = await _guard(lambda: service.extend(order.id, actor, reason, _deadline(body), rights=rights))
    elif action in UNIT_ACTIONS:
        order = await _guard(lambda: service.apply(order.id, UNIT_ACTIONS[action], actor, reason, rights=rights))
    else:
        return json_error(404, f"no unit action {action!r} (actions: acknowledge, arrive, resolve, return, extend)")
    return web.json_response({"order": order_json(order)})


# ------------------------------------------------------------------ follow-ups (回访)

def followup_json(f: FollowUp) -> dict[str, Any]:
    return {"id": f.id, "order_id": f.order_id, "number": f.number, "due_at": f.due_at.isoformat(),
            "state": f.state, "digit": f.digit, "needs_agent": f.needs_agent}


@access.allow(AGENT, SUP, ADMIN)
@api.route(summary="Follow-ups waiting for an agent", responses={200: FollowUpList})
async def followup_list(request: web.Request) -> web.Response:
    return web.json_response({"follow_ups": [followup_json(f) for f in await request.app[FOLLOWUPS].agent_list()]})


@access.allow(AGENT, SUP, ADMIN)
@api.route(path=FollowUpPath, body=FollowUpAnswer, responses={200: OneFollowUp, **ERRORS})
async def followup_answer(request: web.Request, path: FollowUpPath, body: FollowUpAnswer) -> web.Response:
    """An agent's follow-up call: what the citizen said (1 satisfied, 2 not, none: unreachable).
    Only for follow-ups on the agents' list; an automated one is answered by the dialer (409)."""
    digit = body.digit
    followup = await _guard(lambda: request.app[FOLLOWUPS].record_answer(path.followup_id, digit, by_person=True))
    return web.json_response({"follow_up": followup_json(followup)})


# ------------------------------------------------------------------ reports

@access.allow(SUP, ADMIN)
@api.route(summary="A report: daily ?date=, weekly ?week=, cycle or monthly ?month=; HTML, CSV or XLSX",
           path=ReportPath, query=ReportQuery,
           responses={200: tuple(FORMATS.values()), 404: api.Problem})
async def report(request: web.Request, path: ReportPath, query: ReportQuery) -> web.Response:
    settings, kind = request.app[SETTINGS], path.kind
    fmt = query.format
    given = [key for key in ("date", "week", "month") if getattr(query, key)]
    when = ((query.date.isoformat() if query.date else None) or query.week or query.month
            or default_when(kind, settings.hotline.timezone))
    try:
        built = await build_for(settings, request.app[SESSIONMAKER], request.app[ORDERS].categories, kind, when)
    except ReportError as exc:
        return json_error(400, f"{given[0]}: {exc}" if given and kind in KINDS else str(exc))
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
@api.route(summary="Draft the handover of a shift (a time without offset is the hotline's)", body=HandoverDraft,
           responses={200: OneHandover, **ERRORS})
async def handover_draft(request: web.Request, body: HandoverDraft) -> web.Response:
    user = access.current_user(request)
    zone = ZoneInfo(request.app[SETTINGS].hotline.timezone)
    start, end = body.shift_start, body.shift_end
    start, end = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (start, end))
    return await _handover_step(lambda: request.app[HANDOVERS].draft(start, end, user.username))


@access.allow(SUP, ADMIN)
@api.route(summary="A handover", path=HandoverPath, responses={200: OneHandover, **ERRORS})
async def handover_get(request: web.Request, path: HandoverPath) -> web.Response:
    return await _handover_step(lambda: request.app[HANDOVERS].get(path.handover_id))


@access.allow(SUP, ADMIN)
@api.route(summary="Add the outgoing shift's notes", path=HandoverPath, body=HandoverNotes,
           responses={200: OneHandover, **ERRORS})
async def handover_notes(request: web.Request, path: HandoverPath, body: HandoverNotes) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].add_notes(
        path.handover_id, user.username, body.notes, body.flood_notes))


@access.allow(SUP, ADMIN)
@api.route(summary="The incoming shift accepts the handover", path=HandoverPath, body=api.Empty,
           responses={200: OneHandover, **ERRORS})
async def handover_accept(request: web.Request, path: HandoverPath, body: api.Empty) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].accept(path.handover_id, user.username))


@access.allow(SUP, ADMIN)
@api.route(summary="The outgoing shift closes an accepted handover", path=HandoverPath, body=api.Empty,
           responses={200: OneHandover, **ERRORS})
async def handover_close(request: web.Request, path: HandoverPath, body: api.Empty) -> web.Response:
    user = access.current_user(request)
    return await _handover_step(lambda: request.app[HANDOVERS].close(path.handover_id, user.username))


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
    r.add_get(r"/api/calls/{call_id}/order", call_order)
    r.add_post(r"/api/calls/{call_id}/order", take_call)
    r.add_post(r"/api/calls/{call_id}/attach", attach_call)
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


