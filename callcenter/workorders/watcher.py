"""The deadline watcher: warn before a deadline passes, escalate after (the unit's manager,
then upward, one level per `escalate_every` overdue). The decision is pure (`decide`); `scan`
reads the open orders, applies the escalations through the audited lifecycle and sends alerts.

Which deadline is running depends on the state: an accepted field order must be dispatched
(dispatch_by), a dispatched or acknowledged one reached on site (arrive_by), an order on site
resolved the same day (result_by); the unit's working-day reply (reply_by) runs throughout.
The earliest deadline that still applies is the one watched.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.sql.elements import ColumnElement

from callcenter.db.base import UTCDateTime, seconds_between
from callcenter.workorders import lifecycle
from callcenter.workorders.alerts import order_alert, send_all
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.service import OPEN_STATES, WorkOrderService

log = logging.getLogger(__name__)

# The deadlines that still apply in each open state.
RUNNING: dict[str, tuple[str, ...]] = {
    "accepted": ("dispatch_by", "arrive_by", "result_by", "reply_by"),
    "dispatched": ("arrive_by", "result_by", "reply_by"),
    "acknowledged": ("arrive_by", "result_by", "reply_by"),
    "on_site": ("result_by", "reply_by"),
    "returned": ("reply_by",),
}
WATCHED_COLUMNS = (WorkOrder.id, WorkOrder.state, WorkOrder.created_at, WorkOrder.escalation_level,
                   WorkOrder.warned, WorkOrder.dispatch_by, WorkOrder.arrive_by, WorkOrder.result_by,
                   WorkOrder.reply_by)


@dataclass(frozen=True)
class Policy:
    warn_at_fraction: float = 0.8
    escalate_every: timedelta = timedelta(minutes=30)
    max_level: int = 3


@dataclass(frozen=True)
class Watched:
    """What the watcher reads of an order."""

    id: int
    state: str
    created_at: datetime
    escalation_level: int
    warned: str | None
    deadlines: dict[str, datetime | None]


@dataclass(frozen=True)
class Warn:
    order_id: int
    deadline: str
    due: datetime


@dataclass(frozen=True)
class Escalate:
    order_id: int
    deadline: str
    due: datetime
    to_level: int


def running_deadline(order: Watched) -> tuple[str, datetime] | None:
    running = [(at, name) for name in RUNNING.get(order.state, ()) if (at := order.deadlines.get(name)) is not None]
    if not running:
        return None
    at, name = min(running)
    return name, at


def decide(order: Watched, now: datetime, policy: Policy) -> Warn | Escalate | None:
    found = running_deadline(order)
    if found is None:
        return None
    name, due = found
    if now >= due:
        overdue = now - due
        level = min(policy.max_level, 1 + int(overdue / policy.escalate_every))
        if order.escalation_level < level:
            return Escalate(order.id, name, due, level)
        return None
    warn_at = order.created_at + (due - order.created_at) * policy.warn_at_fraction
    if now >= warn_at and order.warned != name:
        return Warn(order.id, name, due)
    return None


FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _running_due_sql(dialect: str) -> ColumnElement[datetime]:
    """The running deadline, computed by the database (the same table as RUNNING)."""
    least = func.min if dialect == "sqlite" else func.least
    far = literal(FAR, UTCDateTime())

    def earliest(*names: str) -> ColumnElement[datetime]:
        columns = [func.coalesce(getattr(WorkOrder, n), far) for n in names]
        return columns[0] if len(columns) == 1 else least(*columns)

    return case(*((WorkOrder.state == state, earliest(*names)) for state, names in RUNNING.items()), else_=far)


def needs_a_look(dialect: str, now: datetime, policy: Policy) -> ColumnElement[bool]:
    """A conservative filter the database applies first: the orders whose running deadline is
    at its warning point or past (`decide` makes the final call on these few)."""
    due = _running_due_sql(dialect)
    now_param = literal(now, UTCDateTime())
    return seconds_between(dialect, WorkOrder.created_at, due) * policy.warn_at_fraction <= seconds_between(
        dialect, WorkOrder.created_at, now_param)


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


async def scan(service: WorkOrderService, policy: Policy, now: datetime | None = None) -> list[Warn | Escalate]:
    """One pass over the open orders; returns what it did."""
    now = now or datetime.now(UTC)
    async with service.sessionmaker() as session:
        dialect = session.bind.dialect.name
        rows = (await session.execute(select(*WATCHED_COLUMNS).where(
            WorkOrder.state.in_(OPEN_STATES), needs_a_look(dialect, now, policy)))).all()
    actions = []
    for row in rows:
        watched = Watched(row.id, row.state, row.created_at, row.escalation_level, row.warned,
                          {"dispatch_by": row.dispatch_by, "arrive_by": row.arrive_by,
                           "result_by": row.result_by, "reply_by": row.reply_by})
        action = decide(watched, now, policy)
        if action is not None:
            actions.append(action)
    warns = [a for a in actions if isinstance(a, Warn)]
    if warns:
        async with service.sessionmaker() as session, session.begin():
            for warn in warns:
                await session.execute(update(WorkOrder).where(WorkOrder.id == warn.order_id)
                                      .values(warned=warn.deadline))
    for action in actions:
        try:
            await _carry_out(service, action, now)
        except (lifecycle.IllegalTransition, LookupError) as exc:
            log.info("watcher: order %s moved on meanwhile: %s", action.order_id, exc)
    return actions


async def _carry_out(service: WorkOrderService, action: Warn | Escalate, now: datetime) -> None:
    if isinstance(action, Warn):
        async with service.sessionmaker() as session:
            order = await session.get(WorkOrder, action.order_id)
        if order is not None:
            reason = f"{action.deadline} in {_minutes(action.due - now)} ({action.due.isoformat()})"
            await send_all(service.sinks, order_alert("warning", order, reason, now, action.deadline))
        return
    reason = f"{action.deadline} passed {_minutes(now - action.due)} ago"
    order = None
    async with service.sessionmaker() as session:
        current = await session.get(WorkOrder, action.order_id)
        levels = action.to_level - current.escalation_level if current is not None else 0
    for _ in range(levels):
        order = await service.apply(action.order_id, lifecycle.Event.ESCALATE, actor="deadline watcher",
                                    reason=reason, now=now)
    if order is not None:
        await send_all(service.sinks, order_alert("escalated", order, reason, now, action.deadline))
