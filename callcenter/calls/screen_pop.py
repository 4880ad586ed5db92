"""The screen pop: what the agent whose phone rings sees about the caller, before they answer.

`assemble(...)` is pure: it turns what the database holds about the caller into one JSON
object. `ScreenPops.build(...)` reads those rows (one database session) and calls it; the
engine publishes the result on the live channel (`{"kind": "screen_pop", "id": <agent>}`).

The object is flat: plain values at the top, lists of flat objects, and one flat object or
null for the outage. Times are ISO-8601 strings with their UTC offset; ids as stored.

    call_id          str            this call
    caller           str            the caller's number (caller ID)
    name             str            the caller-ID name ("" when none)
    queue, category  str | null     where the call was routed
    customer_name    str | null     the customer account the number belongs to (customers table);
    account          str | null         all four null when the number is no customer's
    address          str | null
    area             str | null     the supply area (片区) outage notices are addressed to
    open_orders      list           the caller's open work orders, the earliest first (at most
                                    OPEN_ORDERS_SHOWN), each:
        order_id int, category str, state str, unit str, urgency str, description str,
        address str | null,
        owner str | null            the agent who took the call (首问负责制: they own the order),
        created_at str, due_at str | null (the deadline running now), due str | null (which one),
        escalation_level int
    open_orders_total int           all of the caller's open orders (the list may be cut)
    last_calls       list           the caller's latest calls, newest first (at most LAST_CALLS_SHOWN):
        call_id str, arrived_at str, category str | null, queue str | null,
        agent_id str | null, disposition str | null (how it ended; null while in progress)
    outage           object | null  the outage running now in the caller's area (the one
                                    started first when several are):
        outage_id int, kind str (planned | temporary), starts_at str, ends_at str, text str,
        announced_late bool
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import Call
from callcenter.notices.models import Outage
from callcenter.workorders.models import Customer, WorkOrder
from callcenter.workorders.service import OPEN_STATES
from callcenter.workorders.watcher import RUNNING

OPEN_ORDERS_SHOWN = 10
LAST_CALLS_SHOWN = 5


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _running_deadline(order: WorkOrder) -> tuple[str | None, datetime | None]:
    """The deadline that runs in the order's state (the deadline watcher's table)."""
    running = [(at, name) for name in RUNNING.get(order.state, ()) if (at := getattr(order, name)) is not None]
    if not running:
        return None, None
    at, name = min(running)
    return name, at


def order_line(order: WorkOrder) -> dict[str, Any]:
    due, due_at = _running_deadline(order)
    return {"order_id": order.id, "category": order.category, "state": order.state, "unit": order.unit,
            "urgency": order.urgency, "description": order.description, "address": order.address,
            "owner": order.agent_id, "created_at": _iso(order.created_at), "due_at": _iso(due_at), "due": due,
            "escalation_level": order.escalation_level}


def call_line(call: Call) -> dict[str, Any]:
    return {"call_id": call.id, "arrived_at": _iso(call.arrived_at), "category": call.category, "queue": call.queue,
            "agent_id": call.agent_id, "disposition": call.disposition}


def running_outage(outages: Sequence[Outage], area: str | None, now: datetime) -> Outage | None:
    """The outage under way now (started, not ended, not cancelled) that covers `area`."""
    if not area:
        return None
    running = [o for o in outages if not o.cancelled and o.starts_at <= now < o.ends_at and area in o.areas]
    return min(running, key=lambda o: (o.starts_at, o.id), default=None)


def assemble(*, call_id: str, caller: str, name: str = "", queue: str | None = None, category: str | None = None,
             customer: Customer | None, open_orders: Sequence[WorkOrder], open_orders_total: int | None = None,
             last_calls: Sequence[Call], outages: Sequence[Outage], now: datetime) -> dict[str, Any]:
    """The screen pop from the caller's rows (see the module's docstring for the shape)."""
    orders = sorted(open_orders, key=lambda o: (o.created_at, o.id))
    calls = sorted(last_calls, key=lambda c: (c.arrived_at, c.id), reverse=True)
    area = customer.area if customer is not None else None
    outage = running_outage(outages, area, now)
    return {
        "call_id": call_id, "caller": caller, "name": name, "queue": queue, "category": category,
        "customer_name": customer.name if customer is not None else None,
        "account": customer.account if customer is not None else None,
        "address": customer.address if customer is not None else None,
        "area": area or None,
        "open_orders": [order_line(o) for o in orders[:OPEN_ORDERS_SHOWN]],
        "open_orders_total": len(orders) if open_orders_total is None else open_orders_total,
        "last_calls": [call_line(c) for c in calls[:LAST_CALLS_SHOWN]],
        "outage": None if outage is None else {
            "outage_id": outage.id, "kind": outage.kind, "starts_at": _iso(outage.starts_at),
            "ends_at": _iso(outage.ends_at), "text": outage.text, "announced_late": outage.announced_late},
    }


class ScreenPops:
    """Reads the caller's customer account, open orders, last calls and running outages."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def build(self, *, call_id: str, caller: str, now: datetime, name: str = "", queue: str | None = None,
                    category: str | None = None) -> dict[str, Any]:
        customer, orders, total, calls, outages = None, [], 0, [], []
        if caller:
            async with self.sessionmaker() as session:
                customer = await session.get(Customer, caller)
                open_filter = (WorkOrder.caller_number == caller, WorkOrder.state.in_(OPEN_STATES))
                orders = list((await session.execute(
                    select(WorkOrder).where(*open_filter).order_by(WorkOrder.created_at, WorkOrder.id)
                    .limit(OPEN_ORDERS_SHOWN))).scalars())
                total = (await session.execute(select(func.count()).select_from(WorkOrder)
                                               .where(*open_filter))).scalar_one()
                calls = list((await session.execute(
                    select(Call).where(Call.caller_number == caller, Call.id != call_id)
                    .order_by(Call.arrived_at.desc(), Call.id.desc()).limit(LAST_CALLS_SHOWN))).scalars())
                if customer is not None and customer.area:
                    # The areas are a JSON list: the few running outages are read, the area is matched here.
                    outages = list((await session.execute(
                        select(Outage).where(Outage.cancelled.is_(False), Outage.starts_at <= now,
                                             Outage.ends_at > now))).scalars())
        return assemble(call_id=call_id, caller=caller, name=name, queue=queue, category=category,
                        customer=customer, open_orders=orders, open_orders_total=total, last_calls=calls,
                        outages=outages, now=now)
