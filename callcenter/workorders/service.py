"""Work orders from calls, and their life (async: the store around the pure lifecycle)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import AgentAttempt, Call
from callcenter.notices.models import Outage
from callcenter.workorders import lifecycle
from callcenter.workorders.alerts import AlertSink, order_alert, send_all
from callcenter.workorders.categories import Categories, CategoryError
from callcenter.workorders.deadlines import order_deadlines
from callcenter.workorders.models import Customer, WorkOrder, WorkOrderCall, WorkOrderEvent

log = logging.getLogger(__name__)
DRAFT_FALLBACK_CATEGORY = "other"
COMPLAINT = "complaint"
OUTAGE = "outage"          # the category an outage's order is opened in (when the categories have it)
OPEN_STATES = tuple(s.value for s in lifecycle.OPEN)
MAX_EXTENSION_HOURS = 72   # a category the file no longer has: the file's default


class CallAlreadyFiled(Exception):
    """The call has an order already (its own, or one it is attached to): a call is one case."""


class ExtensionTooLong(PermissionError):
    """An agent's or a unit's extension past the category's bound (a supervisor may grant it)."""


# Checks who may act on an order; called with the order locked, raises PermissionError to refuse.
Rights = Callable[[WorkOrder], None]


def _permit(rights: Rights | None, order: WorkOrder) -> None:
    if rights is not None:
        rights(order)


class WorkOrderService:
    """An engine hook too: every closed call is drafted into an order (首问负责制: no call
    ends without a record)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], categories: Categories, timezone: str,
                 sinks: Sequence[AlertSink] = ()) -> None:
        self.sessionmaker = sessionmaker
        self.categories = categories
        self.timezone = timezone
        self.sinks = list(sinks)
        # Called with (order, now) after an order becomes resolved (the follow-up policy listens).
        self.resolved_listeners: list[Callable[[WorkOrder, datetime], Awaitable[None]]] = []
        # Told of every order dispatched to its unit (e.g. the unit's dispatch SMS).
        self.dispatched_listeners: list[Callable[[WorkOrder, datetime], Awaitable[None]]] = []

    async def draft_from_call(self, call_id: str, now: datetime | None = None) -> WorkOrder:
        """The order of a call, drafted once: replaying the same call end returns the same order."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session:
            existing = await self._order_of_call(session, call_id)
            if existing is not None:
                return existing   # its own, or the open order the agent attached it to
            call = await session.get(Call, call_id)
            if call is None:
                raise LookupError(f"no call {call_id!r}")
        category_id, needs_review = call.category or DRAFT_FALLBACK_CATEGORY, call.category is None
        try:
            category = self.categories.get(category_id)
        except CategoryError as exc:
            log.warning("call %s: %s; drafted as %s for the agent to correct", call_id, exc, DRAFT_FALLBACK_CATEGORY)
            category_id, needs_review = DRAFT_FALLBACK_CATEGORY, True
            category = self.categories.get(category_id)
        async with self.sessionmaker() as session:
            legs = (await session.execute(select(func.count()).select_from(AgentAttempt).where(
                AgentAttempt.call_id == call_id, AgentAttempt.result == "answered"))).scalar_one()
            customer = await session.get(Customer, call.caller_number)
            earlier = (await session.execute(
                select(WorkOrder.id).where(WorkOrder.caller_number == call.caller_number,
                                           WorkOrder.state.in_(OPEN_STATES))
                .order_by(WorkOrder.id.desc()).limit(1))).scalar_one_or_none()
        if customer is None or not customer.address:
            needs_review = True   # the agent asks the caller for the address
        order = WorkOrder(
            call_id=call_id, caller_number=call.caller_number, category=category_id, urgency=category.urgency,
            unit=category.unit, agent_id=call.agent_id, state=lifecycle.State.ACCEPTED.value, created_at=call.arrived_at,
            needs_review=needs_review, address=customer.address if customer else None,
            account=customer.account if customer else None,
            repeat_of=earlier if category_id == COMPLAINT else None, transferred=legs > 1,
            **order_deadlines(category, call.arrived_at, self.timezone),
        )
        try:
            async with self.sessionmaker() as session, session.begin():
                session.add(order)
                await session.flush()
                session.add(WorkOrderEvent(order_id=order.id, at=now, actor=call.agent_id or "engine", event="draft",
                                           from_state=None, to_state=order.state, reason=f"call {call_id}"))
        except IntegrityError:
            # The same call end replayed at the same moment: the other one stored it.
            async with self.sessionmaker() as session:
                return (await session.execute(select(WorkOrder).where(WorkOrder.call_id == call_id))).scalar_one()
        if order.repeat_of is not None:
            # 二次投诉: a second complaint about a case still open escalates at once, both orders.
            reason = f"second complaint (二次投诉) from {order.caller_number}, earlier order {order.repeat_of}"
            order = await self.apply(order.id, lifecycle.Event.ESCALATE, actor="engine", reason=reason, now=now)
            try:
                await self.apply(order.repeat_of, lifecycle.Event.ESCALATE, actor="engine",
                                 reason=f"second complaint: order {order.id}", now=now)
            except lifecycle.IllegalTransition:
                pass   # closed in between: nothing left to escalate
            await send_all(self.sinks, order_alert("escalated", order, reason, now))
        return order

    @staticmethod
    async def _order_of_call(session: AsyncSession, call_id: str) -> WorkOrder | None:
        own = (await session.execute(select(WorkOrder).where(WorkOrder.call_id == call_id))).scalar_one_or_none()
        if own is not None:
            return own
        attached = await session.get(WorkOrderCall, call_id)
        return None if attached is None else await session.get(WorkOrder, attached.order_id)

    async def order_of_call(self, call_id: str) -> tuple[WorkOrder, bool] | None:
        """The call's order and whether the call is attached to it (not its own); None before either."""
        async with self.sessionmaker() as session:
            order = await self._order_of_call(session, call_id)
        return None if order is None else (order, order.call_id != call_id)

    async def attached_calls(self, order_id: int) -> list[str]:
        async with self.sessionmaker() as session:
            return list((await session.execute(select(WorkOrderCall.call_id).where(WorkOrderCall.order_id == order_id)
                                               .order_by(WorkOrderCall.at))).scalars())

    # ------------------------------------------------------------------ the desk, during the call

    async def take_call(self, call_id: str, actor: str, *, category: str | None = None,
                        subcategory: str | None = None, description: str | None = None,
                        address: str | None = None, now: datetime | None = None,
                        rights: Rights | None = None) -> WorkOrder:
        """The desk's order form sent during the call: the call's order is drafted now as every
        call's is (draft_from_call: the menu's category, the customer's address, the category's
        urgency, unit and deadlines from the call's arrival) and completed with what the agent
        wrote (correct). Sent again, it corrects the same order; the call's end drafts no other.
        Refused (CallAlreadyFiled) for a call attached to another order."""
        async with self.sessionmaker() as session:
            attached = await session.get(WorkOrderCall, call_id)
        if attached is not None:
            raise CallAlreadyFiled(f"call {call_id} is attached to order {attached.order_id}")
        order = await self.draft_from_call(call_id, now)
        if category is None and subcategory is None and description is None and address is None:
            return order
        return await self.correct(order.id, actor, category=category, subcategory=subcategory,
                                  description=description, address=address, now=now, rights=rights)

    async def attach_call(self, call_id: str, order_id: int, actor: str, now: datetime | None = None) -> WorkOrder:
        """One click instead of a new order: the call is attached to an open order (the caller's
        own, or the outage's), in its audit trail; its end drafts nothing. A complaint attached to
        the caller's own open order is a second complaint (二次投诉): the order is escalated, as a
        drafted one would be. Attaching again to the same order changes nothing."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            call = await session.get(Call, call_id)
            if call is None:
                raise LookupError(f"no call {call_id!r}")
            order = await session.get(WorkOrder, order_id, with_for_update=True)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            filed = await self._order_of_call(session, call_id)
            if filed is not None:
                if filed.id == order_id and filed.call_id != call_id:
                    return order
                raise CallAlreadyFiled(f"call {call_id} is already in order {filed.id}")
            if order.state not in OPEN_STATES:
                raise lifecycle.IllegalTransition(f"order {order_id} is '{order.state}': open a new order for the call")
            session.add(WorkOrderCall(call_id=call_id, order_id=order_id, at=now, actor=actor))
            session.add(WorkOrderEvent(order_id=order_id, at=now, actor=actor, event="attach_call",
                                       from_state=order.state, to_state=order.state,
                                       reason=f"call {call_id} from {call.caller_number}"))
            second = call.category == COMPLAINT and call.caller_number == order.caller_number
        if second:
            reason = f"second complaint (二次投诉) from {call.caller_number}: call {call_id}"
            order = await self.apply(order_id, lifecycle.Event.ESCALATE, actor="engine", reason=reason, now=now)
            await send_all(self.sinks, order_alert("escalated", order, reason, now))
        return order

    async def attach_to_outage(self, call_id: str, outage_id: int, actor: str, now: datetime | None = None,
                               rights: Rights | None = None) -> WorkOrder:
        """The call is about the outage running in the caller's area: attached to the outage's
        order; the first such call opens that order (in the outage category, with the notice's
        text), so an outage is one case and not a hundred."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session:
            outage = await session.get(Outage, outage_id)
            if outage is None:
                raise LookupError(f"no outage {outage_id}")
            if outage.cancelled or not outage.starts_at <= now < outage.ends_at:
                raise ValueError(f"outage_id: outage {outage_id} is not running now")
            master = (await session.execute(
                select(WorkOrder).where(WorkOrder.outage_id == outage_id, WorkOrder.state.in_(OPEN_STATES))
                .order_by(WorkOrder.id).limit(1))).scalar_one_or_none()
        if master is not None:
            return await self.attach_call(call_id, master.id, actor, now)
        category = OUTAGE if OUTAGE in self.categories.categories else None
        order = await self.take_call(call_id, actor, category=category, description=outage.text, now=now,
                                     rights=rights)
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(WorkOrder, order.id, with_for_update=True)
            assert row is not None
            row.outage_id = outage_id
            session.add(WorkOrderEvent(order_id=row.id, at=now, actor=actor, event="outage_order",
                                       from_state=row.state, to_state=row.state, reason=f"outage {outage_id}"))
            order = row
        return order

    async def apply(self, order_id: int, event: lifecycle.Event, actor: str, reason: str = "",
                    now: datetime | None = None, *, rights: Rights | None = None) -> WorkOrder:
        """Move an order by one event, audited; an illegal event changes nothing. `rights`, when
        given, decides on the locked order whether the actor may (so no state slips in between)."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(WorkOrder, order_id, with_for_update=True)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            _permit(rights, order)
            before = lifecycle.Order(lifecycle.State(order.state), order.returns, order.escalation_level)
            after = lifecycle.apply(before, event)
            order.state, order.returns, order.escalation_level = after.state.value, after.returns, after.escalation_level
            session.add(WorkOrderEvent(order_id=order.id, at=now, actor=actor, event=event.value,
                                       from_state=before.state.value, to_state=after.state.value, reason=reason))
        for state, listeners in ((lifecycle.State.DISPATCHED, self.dispatched_listeners),
                                 (lifecycle.State.RESOLVED, self.resolved_listeners)):
            if after.state is state and before.state is not state:
                for listener in listeners:
                    try:
                        await listener(order, now)
                    except Exception as exc:
                        log.error("order %s %s, but %s failed: %s", order.id, state.value, listener, exc)
        return order

    async def correct(self, order_id: int, actor: str, *, category: str | None = None,
                      subcategory: str | None = None, description: str | None = None,
                      address: str | None = None, now: datetime | None = None,
                      rights: Rights | None = None) -> WorkOrder:
        """The agent completes or corrects the draft. A new category brings its unit, urgency and
        deadlines (counted from when the call was taken); an unknown one is refused."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(WorkOrder, order_id, with_for_update=True)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            _permit(rights, order)
            changed = []
            if category is not None or subcategory is not None:
                new_category = category or order.category
                cat = self.categories.get(new_category, subcategory)   # CategoryError names the known ones
                if new_category != order.category:
                    if order.state != lifecycle.State.ACCEPTED.value:
                        raise lifecycle.IllegalTransition(
                            f"the category of an order that is '{order.state}' is not changed any more")
                    order.category, order.unit, order.urgency = new_category, cat.unit, cat.urgency
                    for key, value in order_deadlines(cat, order.created_at, self.timezone).items():
                        setattr(order, key, value)
                    changed.append(f"category {new_category}")
                order.subcategory = subcategory
            if description is not None:
                order.description = description
                changed.append("description")
            if address is not None:
                if not address.strip():
                    raise ValueError("address: empty")
                order.address = address.strip()
                changed.append("address")
            order.needs_review = order.address is None
            session.add(WorkOrderEvent(order_id=order.id, at=now, actor=actor, event="correct",
                                       from_state=order.state, to_state=order.state, reason=", ".join(changed)))
        return order

    async def extend(self, order_id: int, actor: str, reason: str, new_deadline: datetime,
                     now: datetime | None = None, *, rights: Rights | None = None,
                     bounded: bool = True) -> WorkOrder:
        """More time, with a stated reason: the running deadline moves later (never into the past,
        never before itself). `bounded` (an agent or the unit): at most the category's
        `max_extension_hours` past the running deadline; longer needs a supervisor
        (ExtensionTooLong)."""
        from callcenter.workorders.watcher import RUNNING

        now = now or datetime.now(UTC)
        if not reason.strip():
            raise ValueError("reason: an extension needs a stated reason")
        if new_deadline.tzinfo is None:
            raise ValueError("new_deadline: give the time zone (e.g. 2026-11-23T18:00:00+08:00)")
        if new_deadline <= now:
            raise ValueError(f"new_deadline: {new_deadline.isoformat()} is in the past")
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(WorkOrder, order_id, with_for_update=True)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            _permit(rights, order)
            lifecycle.apply(lifecycle.Order(lifecycle.State(order.state)), lifecycle.Event.EXTEND)
            running = [n for n in RUNNING.get(order.state, ()) if getattr(order, n) is not None]
            name = min(running, key=lambda n: getattr(order, n)) if running else "reply_by"
            old = getattr(order, name)
            if old is not None and new_deadline <= old:
                raise ValueError(f"new_deadline: {new_deadline.isoformat()} is not after the current {name} "
                                 f"{old.isoformat()}")
            category = self.categories.categories.get(order.category)
            hours = category.max_extension_hours if category else MAX_EXTENSION_HOURS
            if bounded and new_deadline - (old or now) > timedelta(hours=hours):
                raise ExtensionTooLong(f"new_deadline: at most {hours} h past the current {name} "
                                       f"({(old or now).isoformat()}) for {order.category}; "
                                       "a longer extension needs a supervisor")
            setattr(order, name, new_deadline)
            order.warned = None
            session.add(WorkOrderEvent(order_id=order.id, at=now, actor=actor, event="extend", from_state=order.state,
                                       to_state=order.state,
                                       reason=f"{name} {old.isoformat() if old else '-'} → {new_deadline.isoformat()}: "
                                              f"{reason.strip()}"))
        return order

    async def history(self, order_id: int) -> list[WorkOrderEvent]:
        async with self.sessionmaker() as session:
            rows = await session.execute(select(WorkOrderEvent).where(WorkOrderEvent.order_id == order_id)
                                         .order_by(WorkOrderEvent.id))
            return list(rows.scalars())

    # engine hooks
    async def call_closed(self, call_id: str) -> None:
        try:
            await self.draft_from_call(call_id)
        except Exception as exc:
            log.error("call %s: work order not drafted: %s", call_id, exc)

    async def recording_finalised(self, call_id: str, wav_path: Path) -> None:
        return None
