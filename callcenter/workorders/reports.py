"""Reports (统计分析): daily, weekly (Monday, about last week), monthly for the platform cycle
(26th of last month to 25th of this month) and for the calendar month.

A report is computed by aggregate queries (the database does the counting, on SQLite and
PostgreSQL alike) into a plain `Report`, which `render.py` writes as CSV, XLSX or HTML.

Indicators, as the hotline defines them
---------------------------------------
- calls: calls that arrived in the period; answered: a human agent answered.
- answered within three rings %: answered with arrival→agent ≤ the three-ring time (15 s on
  the Chinese cadence), of the calls that asked for an agent (reached a queue).
- abandon rate: callers who hung up while waiting, of the calls that reached a queue.
- cut by the PBX: calls Asterisk cut by shutting down or restarting. Nobody chose to leave
  them, so a call cut before an agent answered is neither offered to agents nor abandoned
  (it is out of the three-ring and abandon rates); one cut in the talk was answered.
- ASA: mean arrival→agent of answered calls; AHT: mean agent answer→hang-up.
- dispatch within 3 minutes %: field orders dispatched by their dispatch deadline, of the
  field orders taken; on-time arrival %: on site by the arrival deadline, of those with one.
- follow-up rate: orders with an answered follow-up, of the orders that needed one (the
  categories followed up always, and every order a follow-up was scheduled for).
- satisfaction: follow-ups answered "satisfied", of all answered; survey: the mean rating
  callers gave at the end of the call.
- complaint rate: complaints, of all orders; repeat-complaint rate: second complaints
  (二次投诉, a complaint while the caller's earlier order was still open), of complaints.
- same-day follow-up closure: follow-ups answered the day they were due (日结日清).
"""
from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from callcenter.calls.models import ABANDONED_IN_QUEUE, ANSWERED, CUT_BY_PBX, Call
from callcenter.config import Settings
from callcenter.db.base import seconds_between
from callcenter.workdays import check_day, iso_week
from callcenter.workorders.categories import Categories
from callcenter.workorders.models import FollowUp, WorkOrder, WorkOrderEvent
from callcenter.workorders.service import COMPLAINT

KINDS = ("daily", "weekly", "cycle", "monthly")
FINISHED_STATES = ("resolved", "adjudicating", "followed_up", "archived")
CYCLE_FIRST_DAY = 26   # the 12345 platform's month: 26th of last month to 25th of this one


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    kind: str
    label: str
    start: datetime   # aware, inclusive
    end: datetime     # aware, exclusive

    def days(self, tz: str) -> list[date]:
        zone = zoneinfo.ZoneInfo(tz)
        first, last = self.start.astimezone(zone).date(), (self.end - timedelta(seconds=1)).astimezone(zone).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zoneinfo.ZoneInfo(tz))


def period(kind: str, when: str, tz: str) -> Period:
    """The period a report covers. `when`: daily 2026-11-23, weekly 2026-W47, cycle and
    monthly 2026-11 (the cycle of November is 26 Oct – 25 Nov), in the years 2000–2099."""
    try:
        if kind == "daily":
            day = check_day(date.fromisoformat(when), "date")
            return Period(kind, day.isoformat(), _local_midnight(day, tz), _local_midnight(day + timedelta(days=1), tz))
        if kind == "weekly":
            return Period(kind, when, *iso_week(when, tz))
        year, month = (int(part) for part in when.split("-"))
        first = check_day(date(year, month, 1), "month")
        if kind == "monthly":
            after = date(year + month // 12, month % 12 + 1, 1)
            return Period(kind, when, _local_midnight(first, tz), _local_midnight(after, tz))
        if kind == "cycle":
            previous = date(year - (month == 1), (month - 2) % 12 + 1, CYCLE_FIRST_DAY)
            end = date(year, month, CYCLE_FIRST_DAY)
            return Period(kind, when, _local_midnight(previous, tz), _local_midnight(end, tz))
    except ValueError:
        pass
    examples = {"daily": "2026-11-23", "weekly": "2026-W47", "cycle": "2026-11", "monthly": "2026-11"}
    if kind not in examples:
        raise ReportError(f"unknown report {kind!r} (reports: {', '.join(KINDS)})")
    raise ReportError(f"{kind} report: {when!r} is not a period; expected e.g. {examples[kind]}")


def last_week(today: date) -> str:
    """The ISO week before `today`'s week (what Monday's report is about)."""
    year, week, _ = (today - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def default_when(kind: str, tz: str, now: datetime | None = None) -> str:
    """The period a report is about when none is named: yesterday, last week, this month."""
    today = (now or datetime.now(UTC)).astimezone(zoneinfo.ZoneInfo(tz)).date()
    if kind == "daily":
        return (today - timedelta(days=1)).isoformat()
    if kind == "weekly":
        return last_week(today)
    return f"{today.year}-{today.month:02d}"


def due_reports(today: date) -> list[tuple[str, str]]:
    """The reports that go out on `today` (local): yesterday's daily; on Monday last week's
    weekly; on the 26th the platform cycle that ended on the 25th; on the 1st last month's."""
    due = [("daily", (today - timedelta(days=1)).isoformat())]
    if today.weekday() == 0:
        due.append(("weekly", last_week(today)))
    if today.day == CYCLE_FIRST_DAY:
        due.append(("cycle", f"{today.year}-{today.month:02d}"))
    if today.day == 1:
        previous = today - timedelta(days=1)
        due.append(("monthly", f"{previous.year}-{previous.month:02d}"))
    return due


@dataclass
class Report:
    period: Period
    hotline: str
    generated_at: datetime
    indicators: dict[str, float | int | None]
    categories: list[dict[str, Any]] = field(default_factory=list)      # per category and sub-category
    units: list[dict[str, Any]] = field(default_factory=list)           # per unit: taken, finished, open
    days: list[dict[str, Any]] = field(default_factory=list)            # per day: calls, answered, orders
    notable: list[dict[str, Any]] = field(default_factory=list)         # case analyses (案例分析)


def _hour(dialect: str, column: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:00:00", column)
    return func.date_trunc("hour", column)


def _pct(part: float | int | None, whole: float | int | None) -> float | None:
    return round(100.0 * (part or 0) / whole, 2) if whole else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(float(value), digits) if value is not None else None


def _as_utc_hour(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def build(sessionmaker: async_sessionmaker[AsyncSession], kind: str, when: str, *, tz: str,
                categories: Categories, answer_within_s: float, hotline: str = "",
                now: datetime | None = None) -> Report:
    p = period(kind, when, tz)
    async with sessionmaker() as session:
        dialect = session.bind.dialect.name
        calls = await _call_figures(session, dialect, p, answer_within_s)
        orders = await _order_figures(session, dialect, p, categories)
        report = Report(p, hotline, now or datetime.now(UTC), {**calls.pop("indicators"), **orders.pop("indicators")})
        report.categories = orders["categories"]
        report.units = orders["units"]
        report.notable = orders["notable"]
        report.days = _merge_days(p, tz, calls["hours"], orders["hours"])
    return report


async def build_for(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], categories: Categories,
                    kind: str, when: str) -> Report:
    """`build` with the hotline's own zone, three-ring time and name."""
    return await build(sessionmaker, kind, when, tz=settings.hotline.timezone, categories=categories,
                       answer_within_s=settings.telephony.answer_within_s, hotline=settings.hotline.name)


async def _call_figures(session: AsyncSession, dialect: str, p: Period, within_s: float) -> dict[str, Any]:
    in_period = and_(Call.arrived_at >= p.start, Call.arrived_at < p.end)
    cut = Call.disposition == CUT_BY_PBX
    answered = or_(Call.disposition == ANSWERED, and_(cut, Call.agent_answered_at.is_not(None)))
    reached_agents = and_(Call.queued_at.is_not(None), or_(Call.disposition.is_(None), Call.disposition != CUT_BY_PBX,
                                                           Call.agent_answered_at.is_not(None)))
    wait = seconds_between(dialect, Call.arrived_at, Call.agent_answered_at)
    talk = seconds_between(dialect, Call.agent_answered_at, Call.ended_at)
    row = (await session.execute(select(
        func.count(),
        func.sum(case((answered, 1), else_=0)),
        func.sum(case((reached_agents, 1), else_=0)),
        func.sum(case((Call.disposition == ABANDONED_IN_QUEUE, 1), else_=0)),
        func.sum(case((and_(answered, wait <= within_s), 1), else_=0)),
        func.avg(case((answered, wait))),
        func.avg(case((and_(answered, Call.ended_at.is_not(None)), talk))),
        func.avg(cast(Call.survey_score, Float)),
        func.count(Call.survey_score),
        func.sum(case((cut, 1), else_=0)),
    ).where(in_period))).one()
    total, n_answered, offered, abandoned, within, asa, aht, survey, rated, n_cut = row
    hour = _hour(dialect, Call.arrived_at)
    hours = (await session.execute(
        select(hour, func.count(), func.sum(case((answered, 1), else_=0))).where(in_period).group_by(hour))).all()
    return {
        "indicators": {
            "calls": total, "answered": n_answered or 0, "offered_to_agents": offered or 0,
            "abandoned_in_queue": abandoned or 0, "cut_by_pbx": n_cut or 0,
            "answered_within_three_rings_pct": _pct(within, offered),
            "abandon_rate_pct": _pct(abandoned, offered),
            "asa_s": _round(asa), "aht_s": _round(aht),
            "survey_mean": _round(survey, 2), "survey_answers": rated,
        },
        "hours": [(_as_utc_hour(h), n, a or 0) for h, n, a in hours],
    }


async def _order_figures(session: AsyncSession, dialect: str, p: Period, categories: Categories) -> dict[str, Any]:
    in_period = and_(WorkOrder.created_at >= p.start, WorkOrder.created_at < p.end)

    def first(event: str) -> Any:
        return (select(WorkOrderEvent.order_id, func.min(WorkOrderEvent.at).label("at"))
                .where(WorkOrderEvent.event == event).group_by(WorkOrderEvent.order_id).subquery(event))

    dispatched, arrived = first("dispatch"), first("arrive")
    answered_fu = (select(FollowUp.order_id,
                          func.max(case((FollowUp.state == "satisfied", 1), else_=0)).label("satisfied"))
                   .where(FollowUp.state.in_(("satisfied", "unsatisfied"))).group_by(FollowUp.order_id)
                   .subquery("answered_fu"))
    any_fu = select(FollowUp.order_id).distinct().subquery("any_fu")
    always = [cid for cid, c in categories.categories.items() if c.follow_up == "always"] or [""]
    finished = WorkOrder.state.in_(FINISHED_STATES)
    is_field = WorkOrder.dispatch_by.is_not(None)
    needs_fu = WorkOrder.category.in_(always) | any_fu.c.order_id.is_not(None)
    complaint = WorkOrder.category == COMPLAINT

    base = (select(
        func.count(),
        func.sum(case((finished, 1), else_=0)),
        func.sum(case((is_field, 1), else_=0)),
        func.sum(case((and_(is_field, dispatched.c.at <= WorkOrder.dispatch_by), 1), else_=0)),
        func.sum(case((WorkOrder.arrive_by.is_not(None), 1), else_=0)),
        func.sum(case((and_(WorkOrder.arrive_by.is_not(None), arrived.c.at <= WorkOrder.arrive_by), 1), else_=0)),
        func.sum(case((needs_fu, 1), else_=0)),
        func.sum(case((answered_fu.c.order_id.is_not(None), 1), else_=0)),
        func.sum(case((complaint, 1), else_=0)),
        func.sum(case((and_(complaint, WorkOrder.repeat_of.is_not(None)), 1), else_=0)),
        func.sum(case((WorkOrder.state == "dispatched", 1), else_=0)),
    ).select_from(WorkOrder)
        .outerjoin(dispatched, dispatched.c.order_id == WorkOrder.id)
        .outerjoin(arrived, arrived.c.order_id == WorkOrder.id)
        .outerjoin(answered_fu, answered_fu.c.order_id == WorkOrder.id)
        .outerjoin(any_fu, any_fu.c.order_id == WorkOrder.id)
        .where(in_period))
    (taken, n_finished, field_orders, on_time_dispatch, with_arrival, on_time_arrival, needing_fu, followed,
     complaints, repeats, unacknowledged) = (await session.execute(base)).one()

    fu_in_period = and_(FollowUp.answered_at >= p.start, FollowUp.answered_at < p.end,
                        FollowUp.state.in_(("satisfied", "unsatisfied")))
    fu_answered, fu_satisfied, fu_same_day = (await session.execute(select(
        func.count(), func.sum(case((FollowUp.state == "satisfied", 1), else_=0)),
        func.sum(case((seconds_between(dialect, FollowUp.due_at, FollowUp.answered_at) < 86400, 1), else_=0)),
    ).where(fu_in_period))).one()

    per_category = (await session.execute(
        select(WorkOrder.category, WorkOrder.subcategory, func.count(), func.sum(case((finished, 1), else_=0)))
        .where(in_period).group_by(WorkOrder.category, WorkOrder.subcategory)
        .order_by(WorkOrder.category, WorkOrder.subcategory))).all()
    per_unit = (await session.execute(
        select(WorkOrder.unit, func.count(), func.sum(case((finished, 1), else_=0)),
               func.sum(case((WorkOrder.state == "dispatched", 1), else_=0)),
               func.sum(case((WorkOrder.escalation_level > 0, 1), else_=0)))
        .where(in_period).group_by(WorkOrder.unit).order_by(WorkOrder.unit))).all()
    notable = (await session.execute(
        select(WorkOrder.id, WorkOrder.category, WorkOrder.unit, WorkOrder.state, WorkOrder.escalation_level,
               WorkOrder.returns, WorkOrder.description, WorkOrder.repeat_of)
        .where(in_period, (WorkOrder.escalation_level + WorkOrder.returns) > 0)
        .order_by((WorkOrder.escalation_level + WorkOrder.returns).desc(), WorkOrder.id).limit(2))).all()
    hour = _hour(dialect, WorkOrder.created_at)
    hours = (await session.execute(select(hour, func.count(), literal(0)).where(in_period).group_by(hour))).all()

    def name(category: str, sub: str | None) -> str:
        cat = categories.categories.get(category)
        if cat is None:
            return category
        return f"{cat.name} / {cat.subcategories.get(sub, sub)}" if sub else cat.name

    return {
        "indicators": {
            "orders_taken": taken, "orders_finished": n_finished or 0,
            "orders_unfinished": taken - (n_finished or 0), "orders_unacknowledged": unacknowledged or 0,
            "field_orders": field_orders or 0,
            "dispatch_within_3_min_pct": _pct(on_time_dispatch, field_orders),
            "on_time_arrival_pct": _pct(on_time_arrival, with_arrival),
            "follow_up_rate_pct": _pct(followed, needing_fu),
            "follow_ups_answered": fu_answered, "satisfaction_pct": _pct(fu_satisfied, fu_answered),
            "follow_up_same_day_pct": _pct(fu_same_day, fu_answered),
            "complaints": complaints or 0, "complaint_rate_pct": _pct(complaints, taken),
            "repeat_complaints": repeats or 0, "repeat_complaint_rate_pct": _pct(repeats, complaints),
        },
        "categories": [{"category": c, "subcategory": s or "", "name": name(c, s), "taken": n,
                        "finished": f or 0} for c, s, n, f in per_category],
        "units": [{"unit": u, "taken": n, "finished": f or 0, "unfinished": n - (f or 0),
                   "unacknowledged": un or 0, "escalated": esc or 0} for u, n, f, un, esc in per_unit],
        "notable": [{"order_id": oid, "category": name(cat, None), "unit": unit, "state": state,
                     "escalation_level": level, "returns": returns, "description": desc or "",
                     "repeat_of": repeat} for oid, cat, unit, state, level, returns, desc, repeat in notable],
        "hours": [(_as_utc_hour(h), n, 0) for h, n, _ in hours],
    }


def _merge_days(p: Period, tz: str, call_hours: list[tuple[datetime, int, int]],
                order_hours: list[tuple[datetime, int, int]]) -> list[dict[str, Any]]:
    zone = zoneinfo.ZoneInfo(tz)
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: {"calls": 0, "answered": 0, "orders": 0})
    for hour, n, answered in call_hours:
        day = per_day[hour.astimezone(zone).date()]
        day["calls"] += n
        day["answered"] += answered
    for hour, n, _ in order_hours:
        per_day[hour.astimezone(zone).date()]["orders"] += n
    return [{"day": d.isoformat(), **per_day[d]} for d in p.days(tz)]
