"""Reports (统计分析): daily, weekly (Monday, about last week), monthly for the platform cycle
(26th of last month to 25th of this month) and for the calendar month.

A report is computed by aggregate queries (the database does the counting, on SQLite and
PostgreSQL alike) into a plain `Report`, which `render.py` writes as CSV, XLSX or HTML.

Each indicator is defined once, in `INDICATORS` and the sets of `Sets`: which rows (calls,
orders, follow-ups) it counts, and for a rate the rows it is a share of. The figure is the count
(or the mean) of that set; the drill-down of the figure (`Sets.rows`) lists the same set's rows,
so a figure and its list cannot drift apart.

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
- escalated: orders taken in the period that were escalated (督办) at least once.
- complaint rate: complaints, of all orders; repeat-complaint rate: second complaints
  (二次投诉, a complaint while the caller's earlier order was still open), of complaints.
- same-day follow-up closure: follow-ups answered the day they were due (日结日清).
"""
from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, not_, or_, select, true
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
    counts: dict[str, int] = field(default_factory=dict)                # how many rows each set of Sets has


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


# ------------------------------------------------------------------ what each figure counts

CALLS, ORDERS, FOLLOW_UPS = "calls", "orders", "follow_ups"


@dataclass(frozen=True)
class Indicator:
    """One figure of the report and the rows behind it.

    - a count: the number of `rows` in the set `counted`;
    - a share (`of`): the rows of `counted` as a percentage of the rows of `of`;
    - a mean (`mean`): the mean of that value over the rows of `counted`.
    The sets are `Sets`'s conditions, the same for the figure and for its drill-down."""

    name: str
    rows: str                     # calls, orders or follow_ups
    counted: str
    of: str | None = None
    mean: str | None = None
    digits: int = 1               # a mean's rounding

    @property
    def kind(self) -> str:
        return "share" if self.of else "mean" if self.mean else "count"


# Every indicator of the report, in the order it is printed.
INDICATORS: tuple[Indicator, ...] = (
    Indicator("calls", CALLS, "call"),
    Indicator("answered", CALLS, "answered"),
    Indicator("offered_to_agents", CALLS, "offered"),
    Indicator("abandoned_in_queue", CALLS, "abandoned"),
    Indicator("cut_by_pbx", CALLS, "cut"),
    Indicator("answered_within_three_rings_pct", CALLS, "within_rings", of="offered"),
    Indicator("abandon_rate_pct", CALLS, "abandoned", of="offered"),
    Indicator("asa_s", CALLS, "answered_with_wait", mean="wait_s"),
    Indicator("aht_s", CALLS, "answered_and_ended", mean="talk_s"),
    Indicator("survey_mean", CALLS, "rated", mean="survey", digits=2),
    Indicator("survey_answers", CALLS, "rated"),
    Indicator("orders_taken", ORDERS, "order"),
    Indicator("orders_finished", ORDERS, "finished"),
    Indicator("orders_unfinished", ORDERS, "unfinished"),
    Indicator("orders_unacknowledged", ORDERS, "unacknowledged"),
    Indicator("orders_escalated", ORDERS, "escalated"),
    Indicator("field_orders", ORDERS, "field"),
    Indicator("dispatch_within_3_min_pct", ORDERS, "dispatched_in_time", of="field"),
    Indicator("on_time_arrival_pct", ORDERS, "arrived_in_time", of="with_arrival_deadline"),
    Indicator("follow_up_rate_pct", ORDERS, "followed_up", of="needs_follow_up"),
    Indicator("follow_ups_answered", FOLLOW_UPS, "answered_follow_up"),
    Indicator("satisfaction_pct", FOLLOW_UPS, "satisfied", of="answered_follow_up"),
    Indicator("follow_up_same_day_pct", FOLLOW_UPS, "same_day", of="answered_follow_up"),
    Indicator("complaints", ORDERS, "complaint"),
    Indicator("complaint_rate_pct", ORDERS, "complaint", of="order"),
    Indicator("repeat_complaints", ORDERS, "repeat_complaint"),
    Indicator("repeat_complaint_rate_pct", ORDERS, "repeat_complaint", of="complaint"),
)
BY_NAME = {indicator.name: indicator for indicator in INDICATORS}


@dataclass(frozen=True)
class Narrowing:
    """A part of the period a drill-down looks at: one category (and sub-category: "" for the
    orders without one), one unit, one day of the period."""

    category: str | None = None
    subcategory: str | None = None
    unit: str | None = None
    day: date | None = None


class Sets:
    """The period's rows and every set an indicator counts, as SQL conditions: the one
    definition of each figure, used for its count (`figures`, `per`) and for the list of the rows
    it counted (`rows`). Nothing of a request reaches it but bound values."""

    def __init__(self, dialect: str, p: Period, answer_within_s: float, categories: Categories) -> None:
        self.period, self.dialect = p, dialect
        self.counted: dict[str, int] = {}    # filled by `figures`: how many rows each set has
        dispatched, arrived = self._first("dispatch"), self._first("arrive")
        answered_fu = (select(FollowUp.order_id).where(FollowUp.state.in_(ANSWERED_FOLLOW_UPS))
                       .group_by(FollowUp.order_id).subquery("answered_fu"))
        any_fu = select(FollowUp.order_id).distinct().subquery("any_fu")
        self._joins = {name: subquery for name, subquery in
                       (("dispatch", dispatched), ("arrive", arrived), ("answered_fu", answered_fu), ("any_fu", any_fu))}
        always = [cid for cid, c in categories.categories.items() if c.follow_up == "always"] or [""]
        # A call the PBX cut (restarted, shut down) while its caller talked to an agent was
        # answered; cut before that, it was neither offered to the agents nor abandoned.
        cut = Call.disposition == CUT_BY_PBX
        answered = or_(Call.disposition == ANSWERED, and_(cut, Call.agent_answered_at.is_not(None)))
        wait = seconds_between(dialect, Call.arrived_at, Call.agent_answered_at)
        finished = WorkOrder.state.in_(FINISHED_STATES)
        field_order = WorkOrder.dispatch_by.is_not(None)
        complaint = WorkOrder.category == COMPLAINT
        self.sets: dict[str, tuple[str, ColumnElement[bool]]] = {
            "call": (CALLS, true()),
            "answered": (CALLS, answered),
            "offered": (CALLS, and_(Call.queued_at.is_not(None), or_(Call.disposition.is_(None), not_(cut),
                                                                     Call.agent_answered_at.is_not(None)))),
            "cut": (CALLS, cut),
            "abandoned": (CALLS, Call.disposition == ABANDONED_IN_QUEUE),
            "within_rings": (CALLS, and_(answered, wait <= answer_within_s)),
            "answered_with_wait": (CALLS, and_(answered, Call.agent_answered_at.is_not(None))),
            "answered_and_ended": (CALLS, and_(answered, Call.agent_answered_at.is_not(None),
                                               Call.ended_at.is_not(None))),
            "rated": (CALLS, Call.survey_score.is_not(None)),
            "order": (ORDERS, true()),
            "finished": (ORDERS, finished),
            "unfinished": (ORDERS, not_(finished)),
            "unacknowledged": (ORDERS, WorkOrder.state == "dispatched"),
            "escalated": (ORDERS, WorkOrder.escalation_level > 0),
            "field": (ORDERS, field_order),
            "dispatched_in_time": (ORDERS, and_(field_order, dispatched.c.at <= WorkOrder.dispatch_by)),
            "with_arrival_deadline": (ORDERS, WorkOrder.arrive_by.is_not(None)),
            "arrived_in_time": (ORDERS, and_(WorkOrder.arrive_by.is_not(None), arrived.c.at <= WorkOrder.arrive_by)),
            "needs_follow_up": (ORDERS, or_(WorkOrder.category.in_(always), any_fu.c.order_id.is_not(None))),
            "followed_up": (ORDERS, answered_fu.c.order_id.is_not(None)),
            "complaint": (ORDERS, complaint),
            "repeat_complaint": (ORDERS, and_(complaint, WorkOrder.repeat_of.is_not(None))),
            "answered_follow_up": (FOLLOW_UPS, true()),
            "satisfied": (FOLLOW_UPS, FollowUp.state == "satisfied"),
            "same_day": (FOLLOW_UPS, seconds_between(dialect, FollowUp.due_at, FollowUp.answered_at) < 86400),
        }
        self.values: dict[str, ColumnElement[Any]] = {
            "wait_s": wait, "talk_s": seconds_between(dialect, Call.agent_answered_at, Call.ended_at),
            "survey": cast(Call.survey_score, Float),
        }

    @staticmethod
    def _first(event: str) -> Any:
        return (select(WorkOrderEvent.order_id, func.min(WorkOrderEvent.at).label("at"))
                .where(WorkOrderEvent.event == event).group_by(WorkOrderEvent.order_id).subquery(event))

    # -------------------------------------------------------------- the rows of a population

    def source(self, rows: str, names: Sequence[str] = ()) -> Any:
        """What the rows are read from: the orders joined to their first dispatch and arrival and
        their follow-ups only when one of the sets asks for those (a plain count per category
        or day has no need to aggregate the events)."""
        if rows != ORDERS:
            return {CALLS: Call.__table__, FOLLOW_UPS: FollowUp.__table__}[rows]
        needed = {join for name in names for join in JOINS.get(name, ())}
        source: Any = WorkOrder.__table__
        for join, subquery in self._joins.items():
            if join in needed:
                source = source.outerjoin(subquery, subquery.c.order_id == WorkOrder.id)
        return source

    def in_period(self, rows: str, narrowing: Narrowing | None = None) -> list[ColumnElement[bool]]:
        """The population's rows of the period (calls by arrival, orders by taking, follow-ups by
        their answer), narrowed to a category, unit or day when asked."""
        n = narrowing or Narrowing()
        start, end = self.period.start, self.period.end
        if n.day is not None:
            zone = self.period.start.tzinfo or UTC
            start = max(start, datetime.combine(n.day, time(0), tzinfo=zone))
            end = min(end, datetime.combine(n.day + timedelta(days=1), time(0), tzinfo=zone))
        if rows == CALLS:
            return [Call.arrived_at >= start, Call.arrived_at < end]
        if rows == FOLLOW_UPS:
            return [FollowUp.answered_at >= start, FollowUp.answered_at < end,
                    FollowUp.state.in_(ANSWERED_FOLLOW_UPS)]
        where = [WorkOrder.created_at >= start, WorkOrder.created_at < end]
        if n.category is not None:
            where.append(WorkOrder.category == n.category)
            if n.subcategory is not None:
                where.append(WorkOrder.subcategory.is_(None) if n.subcategory == "" else
                             WorkOrder.subcategory == n.subcategory)
        if n.unit is not None:
            where.append(WorkOrder.unit == n.unit)
        return where

    def condition(self, name: str, rows: str) -> ColumnElement[bool]:
        found, condition = self.sets[name]
        if found != rows:
            raise ReportError(f"{name!r} is a set of {found}, not of {rows}")
        return condition

    # -------------------------------------------------------------- counting

    def counts(self, rows: str, names: Sequence[str], means: Sequence[str] = ()) -> Select[Any]:
        """One aggregate row: how many rows of each set, and each mean over its set."""
        columns: list[ColumnElement[Any]] = [
            func.sum(case((self.condition(name, rows), 1), else_=0)).label(name) for name in names]
        columns += [func.avg(case((self.condition(BY_MEAN[m], rows), self.values[m]))).label(m) for m in means]
        return select(*columns).select_from(self.source(rows, [*names, *(BY_MEAN[m] for m in means)]))

    async def figures(self, session: AsyncSession) -> dict[str, float | int | None]:
        """Every indicator of the period, one aggregate query per population."""
        found: dict[str, float | int | None] = {}
        for rows in (CALLS, ORDERS, FOLLOW_UPS):
            mine = [i for i in INDICATORS if i.rows == rows]
            names = sorted({i.counted for i in mine} | {i.of for i in mine if i.of})
            means = sorted({i.mean for i in mine if i.mean})
            row = (await session.execute(self.counts(rows, names, means).where(*self.in_period(rows)))).one()
            values = dict(zip([*names, *means], row, strict=True))
            self.counted.update({name: values[name] or 0 for name in names})
            for i in mine:
                if i.of:
                    found[i.name] = _pct(values[i.counted], values[i.of])
                elif i.mean:
                    found[i.name] = _round(values[i.mean], i.digits)
                else:
                    found[i.name] = values[i.counted] or 0
        return found

    async def per(self, session: AsyncSession, rows: str, by: list[Any], names: list[str]) -> list[Any]:
        """The sets' counts per group (category and sub-category, unit)."""
        query = (self.counts(rows, names).add_columns(*by).where(*self.in_period(rows))
                 .group_by(*by).order_by(*by))
        return list((await session.execute(query)).all())

    # -------------------------------------------------------------- the rows behind a figure

    def rows(self, indicator: Indicator, part: str = "counted", narrowing: Narrowing | None = None,
             *columns: Any) -> Select[Any]:
        """The rows a figure counted (`part` "counted"), or the rows its share is of ("of"): the
        same sets and the same period as `figures`. Their ids, or the `columns` asked for (the
        drill-down asks for the whole row: `Call`, `WorkOrder`, `FollowUp`)."""
        name = indicator.of if part == "of" and indicator.of else indicator.counted
        key = {CALLS: Call.id, ORDERS: WorkOrder.id, FOLLOW_UPS: FollowUp.id}[indicator.rows]
        return (select(*(columns or (key,))).select_from(self.source(indicator.rows, [name]))
                .where(*self.in_period(indicator.rows, narrowing), self.condition(name, indicator.rows)))


ANSWERED_FOLLOW_UPS = ("satisfied", "unsatisfied")
# The order sets that read the order's first dispatch or arrival or its follow-ups, and which
# (the others read the order alone).
JOINS = {"dispatched_in_time": ("dispatch",), "arrived_in_time": ("arrive",), "needs_follow_up": ("any_fu",),
         "followed_up": ("answered_fu",)}
BY_MEAN = {i.mean: i.counted for i in INDICATORS if i.mean}


async def build(sessionmaker: async_sessionmaker[AsyncSession], kind: str, when: str, *, tz: str,
                categories: Categories, answer_within_s: float, hotline: str = "",
                now: datetime | None = None) -> Report:
    p = period(kind, when, tz)
    async with sessionmaker() as session:
        sets = Sets(session.get_bind().dialect.name, p, answer_within_s, categories)
        report = Report(p, hotline, now or datetime.now(UTC), await sets.figures(session))
        report.counts = dict(sets.counted)
        await _blocks(session, sets, categories, report)
    return report


async def build_for(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], categories: Categories,
                    kind: str, when: str) -> Report:
    """`build` with the hotline's own zone, three-ring time and name."""
    return await build(sessionmaker, kind, when, tz=settings.hotline.timezone, categories=categories,
                       answer_within_s=settings.telephony.answer_within_s, hotline=settings.hotline.name)


def sets_for(settings: Settings, dialect: str, categories: Categories, kind: str, when: str) -> Sets:
    """The sets of a period with the hotline's own zone and three-ring time (the drill-down's)."""
    return Sets(dialect, period(kind, when, settings.hotline.timezone), settings.telephony.answer_within_s,
                categories)


def category_name(categories: Categories, category: str, sub: str | None) -> str:
    cat = categories.categories.get(category)
    if cat is None:
        return category
    return f"{cat.name} / {cat.subcategories.get(sub, sub)}" if sub else cat.name


async def _blocks(session: AsyncSession, sets: Sets, categories: Categories, report: Report) -> None:
    """Per category and sub-category, per unit, per day, and the notable cases: counted by the
    same sets as the indicators (taken = "order", finished = "finished", ...)."""
    per_category = await sets.per(session, ORDERS, [WorkOrder.category, WorkOrder.subcategory], ["order", "finished"])
    report.categories = [{"category": c, "subcategory": s or "", "name": category_name(categories, c, s),
                          "taken": n or 0, "finished": f or 0} for n, f, c, s in per_category]
    per_unit = await sets.per(session, ORDERS, [WorkOrder.unit],
                              ["order", "finished", "unfinished", "unacknowledged", "escalated"])
    report.units = [{"unit": u, "taken": n or 0, "finished": f or 0, "unfinished": un or 0,
                     "unacknowledged": ack or 0, "escalated": esc or 0} for n, f, un, ack, esc, u in per_unit]
    notable = (await session.execute(
        select(WorkOrder.id, WorkOrder.category, WorkOrder.unit, WorkOrder.state, WorkOrder.escalation_level,
               WorkOrder.returns, WorkOrder.description, WorkOrder.repeat_of)
        .where(*sets.in_period(ORDERS), (WorkOrder.escalation_level + WorkOrder.returns) > 0)
        .order_by((WorkOrder.escalation_level + WorkOrder.returns).desc(), WorkOrder.id).limit(2))).all()
    report.notable = [{"order_id": oid, "category": category_name(categories, cat, None), "unit": unit,
                       "state": state, "escalation_level": level, "returns": returns, "description": desc or "",
                       "repeat_of": repeat} for oid, cat, unit, state, level, returns, desc, repeat in notable]
    call_hours = await sets.per(session, CALLS, [_hour(sets.dialect, Call.arrived_at)], ["call", "answered"])
    order_hours = await sets.per(session, ORDERS, [_hour(sets.dialect, WorkOrder.created_at)], ["order"])
    zone = sets.period.start.tzinfo or UTC
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: {"calls": 0, "answered": 0, "orders": 0})
    for n, answered, hour in call_hours:
        day = per_day[_as_utc_hour(hour).astimezone(zone).date()]
        day["calls"] += n or 0
        day["answered"] += answered or 0
    for n, hour in order_hours:
        per_day[_as_utc_hour(hour).astimezone(zone).date()]["orders"] += n or 0
    report.days = [{"day": d.isoformat(), **per_day[d]} for d in sets.period.days(str(zone))]
