"""Follow-ups (回访): scheduled in the calling windows, placed as automated calls, answered
with a key; unhappy or unanswered ones land on an agent's follow-up list, and a contradiction
of the unit's report sends the order back (first time) or to a supervisor (second time).

States: scheduled -> calling -> satisfied | unsatisfied | no_answer | refused. `refused`: the
dial policy does not let the hotline dial the citizen's number (international, premium, not
a number at all); nobody was called, so a person handles it (needs_agent), as no_answer."""
from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.workdays import iso_week
from callcenter.workorders import lifecycle
from callcenter.workorders.deadlines import next_follow_up_slot
from callcenter.workorders.models import FollowUp, WorkOrder
from callcenter.workorders.service import WorkOrderService

log = logging.getLogger(__name__)
SATISFIED, UNSATISFIED = "1", "2"


class AutomatedFollowUp(Exception):
    """A follow-up that is the automated call's: its answer comes from the dialer, not a person."""


class FollowUpDialer(Protocol):
    async def place_followup_call(self, followup_id: str, number: str) -> None: ...


def weekly_sample(order_ids: Sequence[int], week: str, pct: float, seed: str) -> list[int]:
    """The week's random sample of field orders: reproducible (the same week, seed and orders
    give the same sample) and at least `pct` percent, rounded up (one at least when any)."""
    if not order_ids:
        return []
    size = max(1, math.ceil(len(order_ids) * pct / 100))
    ranked = sorted(order_ids, key=lambda oid: hashlib.sha256(f"{seed}|{week}|{oid}".encode()).digest())
    return sorted(ranked[:size])


def iso_week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """'2026-W47' → (Monday 00:00, next Monday 00:00) in the hotline's zone."""
    try:
        return iso_week(week, tz)
    except ValueError:
        raise ValueError(f"week {week!r}: expected an ISO week like 2026-W47") from None


class FollowUpService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], orders: WorkOrderService) -> None:
        self.sessionmaker = sessionmaker
        self.orders = orders
        orders.resolved_listeners.append(self.order_resolved)

    async def order_resolved(self, order: WorkOrder, now: datetime) -> None:
        """Policy: every complaint, rush repair and report (categories marked `always`) and every
        repeat, escalated or transferred case is followed up once it is resolved."""
        category = self.orders.categories.categories.get(order.category)
        always = category is not None and category.follow_up == "always"
        if always or order.repeat_of is not None or order.escalation_level > 0 or order.transferred:
            if not await self._has_follow_up(order.id):
                await self.schedule(order.id, now)

    async def draw_weekly_sample(self, week: str, pct: float, seed: str, now: datetime | None = None) -> list[int]:
        """Schedule follow-ups for the week's sample of field orders; drawing again adds nothing."""
        now = now or datetime.now(UTC)
        start, end = iso_week_bounds(week, self.orders.timezone)
        field = [cid for cid, c in self.orders.categories.categories.items() if c.needs_field_work]
        async with self.sessionmaker() as session:
            ids = list((await session.execute(
                select(WorkOrder.id).where(WorkOrder.category.in_(field), WorkOrder.created_at >= start,
                                           WorkOrder.created_at < end))).scalars())
        sample = weekly_sample(ids, week, pct, seed)
        for order_id in sample:
            if not await self._has_follow_up(order_id):
                await self.schedule(order_id, now)
        log.info("weekly follow-up sample %s: %d of %d field orders", week, len(sample), len(ids))
        return sample

    async def _has_follow_up(self, order_id: int) -> bool:
        async with self.sessionmaker() as session:
            found = await session.execute(select(FollowUp.id).where(FollowUp.order_id == order_id).limit(1))
            return found.first() is not None

    async def schedule(self, order_id: int, now: datetime | None = None) -> FollowUp:
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(WorkOrder, order_id)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            follow_up = FollowUp(id=str(uuid.uuid4()), order_id=order_id, number=order.caller_number,
                                 due_at=next_follow_up_slot(now, self.orders.timezone), state="scheduled",
                                 created_at=now)
            session.add(follow_up)
        return follow_up

    async def call_due(self, dialer: FollowUpDialer, now: datetime | None = None) -> int:
        """Place the automated calls that are due now (the schedule keeps them in the windows)."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            due = list((await session.execute(
                select(FollowUp).where(FollowUp.state == "scheduled", FollowUp.due_at <= now))).scalars())
            for follow_up in due:
                follow_up.state = "calling"
        for follow_up in due:
            await dialer.place_followup_call(follow_up.id, follow_up.number)
        return len(due)

    async def record_answer(self, followup_id: str, digit: str | None, now: datetime | None = None, *,
                            by_person: bool = False) -> FollowUp:
        """What the citizen pressed: 1 satisfied, 2 not; None: no answer. `by_person`: an agent
        reports a call they made, which is only for follow-ups on the agents' list (the
        automated call was unhappy or not answered); an automated follow-up's answer comes only
        from the dialer (AutomatedFollowUp)."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            follow_up = await session.get(FollowUp, followup_id, with_for_update=True)
            if follow_up is None:
                raise LookupError(f"no follow-up {followup_id!r}")
            if by_person and not follow_up.needs_agent:
                raise AutomatedFollowUp(f"follow-up {followup_id} is the automated call's ({follow_up.state}): "
                                        "its answer comes from the dialer, not over HTTP")
            follow_up.digit, follow_up.answered_at = digit, now
            follow_up.state = {SATISFIED: "satisfied", UNSATISFIED: "unsatisfied"}.get(digit or "", "no_answer")
            follow_up.needs_agent = follow_up.state != "satisfied"
            order_id, state = follow_up.order_id, follow_up.state
        order = await self._order(order_id)
        if order is not None and order.state == lifecycle.State.RESOLVED.value and state != "no_answer":
            event = lifecycle.Event.FOLLOW_UP_AGREES if state == "satisfied" else lifecycle.Event.FOLLOW_UP_CONTRADICTS
            await self.orders.apply(order_id, event, actor="follow-up call", reason=f"citizen pressed {digit}", now=now)
        log.info("follow-up %s of order %s: %s", followup_id, order_id, state)
        return follow_up

    async def record_refused(self, followup_id: str, reason: str) -> FollowUp:
        """The automated call was not placed: the dial policy refuses the number. Not an
        answer: the order is left as it is, and the follow-up goes to an agent's list."""
        async with self.sessionmaker() as session, session.begin():
            follow_up = await session.get(FollowUp, followup_id)
            if follow_up is None:
                raise LookupError(f"no follow-up {followup_id!r}")
            follow_up.state, follow_up.digit, follow_up.needs_agent = "refused", None, True
            order_id = follow_up.order_id
        log.warning("follow-up %s of order %s: number refused (%s)", followup_id, order_id, reason)
        return follow_up

    async def agent_list(self) -> list[FollowUp]:
        """Follow-ups a person must make: unhappy answers, unanswered calls, refused numbers."""
        async with self.sessionmaker() as session:
            return list((await session.execute(
                select(FollowUp).where(FollowUp.needs_agent.is_(True)).order_by(FollowUp.due_at))).scalars())

    async def _order(self, order_id: int) -> WorkOrder | None:
        async with self.sessionmaker() as session:
            return await session.get(WorkOrder, order_id)
