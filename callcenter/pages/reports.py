"""The reports as pages (统计分析), for supervisors and admins.

    GET /reports                          yesterday's daily report
    GET /reports/{kind}?date=|week=|month=   daily ?date=2026-11-23, weekly ?week=2026-W48, the
                                          26th-25th cycle or the calendar month ?month=2026-11:
                                          the indicators, charts per day, category and unit, the
                                          notable cases, CSV / XLSX / printable downloads, and
                                          the reports the hotline wrote by itself
    GET /reports/{kind}/{figure}?...      the drill-down: exactly the calls, orders or follow-ups
                                          the figure counted (`part=of`: the rows a rate is a
                                          share of), narrowed to a category, unit or day of the
                                          period when the link came from a block; each row links
                                          to the call's or the order's page
    GET /reports/written/{name}           one of the written reports (CSV, XLSX, HTML)
    GET /calls/{call_id}                  a call's record, for whoever may see the call

The figures and the drill-downs come from the same definitions (workorders/reports.py: one set
per indicator). What a request carries is checked against fixed lists before it is used: the
kind, the figure's name and the part are names from the code, the dates are parsed and bounded
(2000-2099), a category, unit or day only narrows the query through bound values; a written
report is found by its name in the folder's own listing, never opened by a path built from
the request. A bad value is a 400 page naming the field.
"""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field, ValidationError
from sqlalchemy import func, select

from callcenter.calls import visibility
from callcenter.calls.models import Call
from callcenter.pages import http as pages
from callcenter.pages.views import N_
from callcenter.web import access, api
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.workorders import http as workorders_http
from callcenter.workorders import reports
from callcenter.workorders.models import FollowUp, WorkOrder
from callcenter.workorders.render import FORMATS

SUP, ADMIN = access.SUPERVISOR, access.ADMIN
PAGE_ROWS = 100
WHEN_FIELD = {"daily": "date", "weekly": "week", "cycle": "month", "monthly": "month"}
KIND_LABELS = {"daily": N_("Daily"), "weekly": N_("Weekly"), "cycle": N_("Month (26th to 25th)"),
               "monthly": N_("Calendar month")}
GROUPS = ((reports.CALLS, N_("Calls")), (reports.ORDERS, N_("Work orders")), (reports.FOLLOW_UPS, N_("Follow-ups")))
FIGURE_LABELS = {
    "calls": N_("Incoming calls"), "answered": N_("Answered by an agent"), "offered_to_agents": N_("Offered to agents"),
    "abandoned_in_queue": N_("Abandoned in queue"), "cut_by_pbx": N_("Cut by the PBX"),
    "answered_within_three_rings_pct": N_("Answered within three rings"),
    "abandon_rate_pct": N_("Abandon rate"), "asa_s": N_("Average speed of answer"),
    "aht_s": N_("Average handling time"), "survey_mean": N_("Survey rating (1-5)"), "survey_answers": N_("Survey answers"),
    "orders_taken": N_("Orders taken"), "orders_finished": N_("Orders finished"),
    "orders_unfinished": N_("Orders not finished"), "orders_unacknowledged": N_("Not acknowledged by the unit"),
    "orders_escalated": N_("Escalated orders"), "field_orders": N_("Field orders"),
    "dispatch_within_3_min_pct": N_("Dispatched within 3 minutes"), "on_time_arrival_pct": N_("On site in time"),
    "follow_up_rate_pct": N_("Follow-up rate"), "follow_ups_answered": N_("Follow-ups answered"),
    "satisfaction_pct": N_("Satisfaction"), "follow_up_same_day_pct": N_("Follow-ups closed the same day"),
    "complaints": N_("Complaints"), "complaint_rate_pct": N_("Complaint rate"),
    "repeat_complaints": N_("Repeat complaints"), "repeat_complaint_rate_pct": N_("Repeat-complaint rate"),
}
# What the rows of a set are, in the drill-down's words ("the calls answered within three rings").
SET_LABELS = {
    "call": N_("every call of the period"), "answered": N_("calls answered by an agent"),
    "offered": N_("calls that reached a queue"), "abandoned": N_("callers who hung up while waiting"),
    "cut": N_("calls the PBX cut (restarted or shut down)"),
    "within_rings": N_("calls answered within three rings"), "answered_with_wait": N_("answered calls (their wait)"),
    "answered_and_ended": N_("answered calls that ended (their talk time)"), "rated": N_("calls the caller rated"),
    "order": N_("every order taken in the period"), "finished": N_("orders finished"),
    "unfinished": N_("orders not finished"), "unacknowledged": N_("orders the unit has not acknowledged"),
    "escalated": N_("orders escalated at least once"), "field": N_("orders that needed field work"),
    "dispatched_in_time": N_("field orders dispatched by their deadline"),
    "with_arrival_deadline": N_("orders with an on-site deadline"),
    "arrived_in_time": N_("orders reached on site by their deadline"),
    "needs_follow_up": N_("orders that needed a follow-up"), "followed_up": N_("orders with an answered follow-up"),
    "complaint": N_("complaints"), "repeat_complaint": N_("repeat complaints"),
    "answered_follow_up": N_("follow-ups answered in the period"), "satisfied": N_("follow-ups answered satisfied"),
    "same_day": N_("follow-ups answered the day they were due"),
}
DISPOSITION_LABELS = {
    "answered": N_("Answered"), "abandoned_in_ivr": N_("Hung up in the menu"),
    "abandoned_in_queue": N_("Hung up while waiting"), "message_only": N_("Message only"),
    "callback": N_("Callback"), "failed": N_("Failed"), "cut_by_pbx": N_("Cut by the PBX"),
}
NARROWING_LABELS = {"category": N_("Category"), "subcategory": N_("Sub-category"), "unit": N_("Unit"), "day": N_("Day")}
HANGUP_LABELS = {"caller": N_("The caller"), "agent": N_("The agent"), "system": N_("The system")}
FOLLOW_UP_LABELS = {"satisfied": N_("Satisfied"), "unsatisfied": N_("Not satisfied")}
WRITTEN = re.compile(r"^(daily|weekly|cycle|monthly)-(\d{4}-\d{2}-\d{2}|\d{4}-W\d{2}|\d{4}-\d{2})\.(csv|xlsx|html)$")


# ------------------------------------------------------------------ what the routes take

Kind = Literal["daily", "weekly", "cycle", "monthly"]


class KindPath(api.Path):
    kind: Kind


class FigurePath(api.Path):
    kind: Kind
    figure: Annotated[str, api.text(64, min_length=1)] = Field(description="an indicator's name")


class PeriodQuery(api.Query):
    date: api.Day | None = Field(None, description="daily: the day")
    week: api.Week | None = Field(None, description="weekly: the ISO week, e.g. 2026-W48")
    month: api.Month | None = Field(None, description="cycle, monthly: e.g. 2026-11")


class DrillQuery(PeriodQuery):
    part: Literal["counted", "of"] = Field("counted", description="the rows counted, or the rows a rate is a share of")
    category: api.Name | None = None
    subcategory: api.Name | None = Field(None, description="'-': the orders without a sub-category")
    unit: api.Name | None = None
    day: api.Day | None = Field(None, description="one day of the period")
    offset: int = Field(0, ge=0, le=10_000_000)


class WrittenPath(api.Path):
    name: Annotated[str, api.text(40, min_length=1)]


class CallPath(api.Path):
    call_id: Annotated[str, api.text(36, min_length=1)]


class BadInput(Exception):
    """A value of the request that names no period, figure or part of one: a 400 page naming it."""


def _parsed(model: type[api.Query], request: web.Request) -> Any:
    given = {k: v for k, v in request.query.items() if v != "" and k != "lang"}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise BadInput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors(include_url=False))) from None


@dataclass(frozen=True)
class Chosen:
    """The report a page is about: its kind, the period's name and the figures' sets."""

    kind: str
    when: str
    field: str
    sets: reports.Sets

    def query(self, **more: Any) -> str:
        """The period (and more) as the query of a link."""
        return urlencode({self.field: self.when, **{k: v for k, v in more.items() if v not in (None, "")}})


async def _chosen(request: web.Request, kind: str, query: PeriodQuery) -> Chosen:
    settings = request.app[SETTINGS]
    field = WHEN_FIELD[kind]
    given = getattr(query, field)
    when = (given.isoformat() if isinstance(given, date) else given) or reports.default_when(
        kind, settings.hotline.timezone)
    async with request.app[SESSIONMAKER]() as session:
        dialect = session.get_bind().dialect.name
    try:
        sets = reports.sets_for(settings, dialect, request.app[workorders_http.ORDERS].categories, kind, when)
    except reports.ReportError as exc:
        raise BadInput(f"{field}: {exc}") from None
    return Chosen(kind, when, field, sets)


def _neighbours(kind: str, when: str) -> tuple[str | None, str | None]:
    """The periods before and after (none beyond the reports' years)."""
    if kind == "daily":
        day = date.fromisoformat(when)
        options = [(day + timedelta(days=d)).isoformat() for d in (-1, 1)]
    elif kind == "weekly":
        year, week = (int(part) for part in when.split("-W"))
        monday = date.fromisocalendar(year, week, 1)
        options = []
        for d in (-7, 7):
            y, w, _ = (monday + timedelta(days=d)).isocalendar()
            options.append(f"{y}-W{w:02d}")
    else:
        year, month = (int(part) for part in when.split("-"))
        index = year * 12 + month - 1
        options = [f"{i // 12}-{i % 12 + 1:02d}" for i in (index - 1, index + 1)]
    fits = [o if 2000 <= int(o[:4]) <= 2099 else None for o in options]
    return fits[0], fits[1]


# ------------------------------------------------------------------ the written reports

def _written_dir(request: web.Request) -> Path:
    return Path(request.app[SETTINGS].paths.spool_dir) / "reports"


def written_reports(folder: Path) -> dict[str, Path]:
    """The reports the hotline wrote by itself (workorders/runner.py), by file name: only names
    of the form kind-period.format, never a partial (.tmp) one."""
    if not folder.is_dir():
        return {}
    return {path.name: path for path in folder.iterdir() if path.is_file() and WRITTEN.match(path.name)}


def _written_sets(found: dict[str, Path]) -> list[dict[str, Any]]:
    """The written reports as sets (one period: its CSV, XLSX and HTML), newest first."""
    sets: dict[tuple[str, str], dict[str, Any]] = {}
    for name, path in found.items():
        match = WRITTEN.match(name)
        if match is None:
            continue
        kind, when, fmt = match.groups()
        entry = sets.setdefault((kind, when), {"kind": kind, "when": when, "files": {}, "at": 0.0})
        entry["files"][fmt] = name
        entry["at"] = max(entry["at"], path.stat().st_mtime)
    return sorted(sets.values(), key=lambda e: (e["at"], e["when"]), reverse=True)


# ------------------------------------------------------------------ pages

def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return pages.render(request, template, status=status, kind_labels=KIND_LABELS, figure_labels=FIGURE_LABELS,
                        set_labels=SET_LABELS, disposition_labels=DISPOSITION_LABELS,
                        follow_up_labels=FOLLOW_UP_LABELS, narrowing_labels=NARROWING_LABELS,
                        hangup_labels=HANGUP_LABELS, **context)


def _bad(request: web.Request, error: str, kind: str = "daily") -> web.Response:
    return _page(request, "report_error.html", status=400, error=error, kind=kind)


def bars(rows: list[dict[str, Any]], key: str) -> dict[int, int]:
    """Each row's bar length as a percentage of the largest (0-100)."""
    top = max((row[key] or 0 for row in rows), default=0) or 1
    return {i: round(100 * (row[key] or 0) / top) for i, row in enumerate(rows)}


@access.allow(SUP, ADMIN)
@api.route(summary="The reports page: yesterday's daily report", responses={200: "text/html", 400: "text/html"})
async def reports_home(request: web.Request) -> web.Response:
    return await _report_page(request, "daily")


@access.allow(SUP, ADMIN)
@api.route(summary="A report as a page: figures, charts, drill-downs and downloads", path=KindPath,
           responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def report_page(request: web.Request, path: KindPath) -> web.Response:
    return await _report_page(request, path.kind)


async def _report_page(request: web.Request, kind: str) -> web.Response:
    try:
        chosen = await _chosen(request, kind, _parsed(PeriodQuery, request))
    except BadInput as exc:
        return _bad(request, str(exc), kind)
    settings = request.app[SETTINGS]
    report = await reports.build_for(settings, request.app[SESSIONMAKER], request.app[workorders_http.ORDERS].categories,
                                     kind, chosen.when)
    days = report.days
    day_top = max((d["calls"] for d in days), default=0) or 1
    before, after = _neighbours(kind, chosen.when)
    return _page(request, "reports.html", report=report, chosen=chosen, indicators=reports.INDICATORS,
                 groups=GROUPS, first_day=days[0]["day"] if days else "", last_day=days[-1]["day"] if days else "", before=before, after=after, day_top=day_top,
                 category_bars=bars(report.categories, "taken"), unit_bars=bars(report.units, "taken"),
                 written=_written_sets(written_reports(_written_dir(request))), formats=tuple(FORMATS))


def _narrowing(query: DrillQuery, chosen: Chosen) -> reports.Narrowing:
    if query.subcategory is not None and query.category is None:
        raise BadInput("subcategory: give the category too")
    if query.day is not None and query.day.isoformat() not in {d.isoformat() for d in
                                                               chosen.sets.period.days(_zone(chosen))}:
        raise BadInput(f"day: {query.day.isoformat()} is not a day of {chosen.when}")
    sub = None if query.subcategory is None else ("" if query.subcategory == "-" else query.subcategory)
    return reports.Narrowing(category=query.category, subcategory=sub, unit=query.unit, day=query.day)


def _zone(chosen: Chosen) -> str:
    return str(chosen.sets.period.start.tzinfo or "UTC")


@access.allow(SUP, ADMIN)
@api.route(summary="A figure's drill-down: the calls, orders or follow-ups it counted", path=FigurePath,
           responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def drill_down(request: web.Request, path: FigurePath) -> web.Response:
    indicator = reports.BY_NAME.get(path.figure)
    if indicator is None:
        raise web.HTTPNotFound()
    try:
        query = _parsed(DrillQuery, request)
        chosen = await _chosen(request, path.kind, query)
        narrowing = _narrowing(query, chosen)
        if query.part == "of" and not indicator.of:
            raise BadInput(f"part: {indicator.name} is a {indicator.kind}, not a rate")
    except BadInput as exc:
        return _bad(request, str(exc), path.kind)
    sets = chosen.sets
    counted = sets.rows(indicator, query.part, narrowing).subquery()
    model: Any = {reports.CALLS: Call, reports.ORDERS: WorkOrder, reports.FOLLOW_UPS: FollowUp}[indicator.rows]
    listed = sets.rows(indicator, query.part, narrowing, model)
    order_by = {reports.CALLS: (Call.arrived_at, Call.id), reports.ORDERS: (WorkOrder.created_at, WorkOrder.id),
                reports.FOLLOW_UPS: (FollowUp.answered_at, FollowUp.id)}[indicator.rows]
    async with request.app[SESSIONMAKER]() as session:
        total = (await session.execute(select(func.count()).select_from(counted))).scalar_one()
        other = None
        if indicator.of:
            other_part = "counted" if query.part == "of" else "of"
            other = (await session.execute(select(func.count()).select_from(
                sets.rows(indicator, other_part, narrowing).subquery()))).scalar_one()
        rows = list((await session.scalars(listed.order_by(*order_by).offset(query.offset).limit(PAGE_ROWS))).all())
    narrowed = {k: v for k, v in (("category", query.category), ("subcategory", query.subcategory),
                                  ("unit", query.unit), ("day", query.day.isoformat() if query.day else None))
                if v is not None}
    set_name = indicator.of if query.part == "of" and indicator.of else indicator.counted
    tz = request.app[SETTINGS].hotline.timezone
    return _page(request, "report_drill.html", chosen=chosen, indicator=indicator, part=query.part, rows=rows,
                 total=total, other=other, set_name=set_name, narrowed=narrowed, offset=query.offset,
                 page_rows=PAGE_ROWS, categories=pages._category_names(request),
                 wait=lambda c: _seconds(c.arrived_at, c.agent_answered_at),
                 talk=lambda c: _seconds(c.agent_answered_at, c.ended_at),
                 local_s=lambda moment: _local_seconds(moment, tz))


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if start and end else None


def _local_seconds(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


@access.allow(SUP, ADMIN)
@api.route(summary="A report the hotline wrote by itself", path=WrittenPath,
           responses={200: tuple(FORMATS.values()), 404: "text/html"})
async def written_file(request: web.Request, path: WrittenPath) -> web.StreamResponse:
    found = written_reports(_written_dir(request)).get(path.name)
    if found is None:
        raise web.HTTPNotFound()
    fmt = found.suffix.lstrip(".")
    headers = {"Content-Type": FORMATS[fmt], "Cache-Control": "no-store"}
    if fmt != "html":
        headers["Content-Disposition"] = f'attachment; filename="{found.name}"'
    return web.Response(body=found.read_bytes(), headers=headers)


@access.allow(*visibility.READERS)
@api.route(summary="A call's record: arrival, queue, agent, wait, talk, outcome, its orders", path=CallPath,
           responses={200: "text/html", 404: "text/html"})
async def call_record(request: web.Request, path: CallPath) -> web.Response:
    sessionmaker, user = request.app[SESSIONMAKER], access.current_user(request)
    scope = await visibility.scope_for(sessionmaker, user)
    call = await visibility.visible_call(sessionmaker, path.call_id, scope)
    if call is None:
        raise web.HTTPNotFound()
    async with sessionmaker() as session:
        orders = list((await session.scalars(select(WorkOrder).where(WorkOrder.call_id == call.id)
                                             .order_by(WorkOrder.id))).all())
    tz = request.app[SETTINGS].hotline.timezone
    return _page(request, "call_record.html", call=call, orders=orders, may_listen=scope.audio,
                 may_open_orders=user.role in pages.DESK, categories=pages._category_names(request),
                 wait=_seconds(call.arrived_at, call.agent_answered_at), talk=_seconds(call.agent_answered_at, call.ended_at),
                 local_s=lambda moment: _local_seconds(moment, tz))


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/reports", reports_home)
    r.add_get("/reports/written/{name}", written_file)
    r.add_get("/reports/{kind}", report_page)
    r.add_get("/reports/{kind}/{figure}", drill_down)
    r.add_get("/calls/{call_id}", call_record)

