"""Shift handover (交接班): the system drafts the record of a shift; the incoming crew accepts
it; only then may the outgoing crew close it.

The draft lists the shift's calls, the complaints still open, the orders no unit has
acknowledged, the outages and their causes, and from May to September a flood-control section
(防汛记录). The outgoing crew adds what else to pass on as notes.
"""
from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import ABANDONED_IN_IVR, ABANDONED_IN_QUEUE, ANSWERED, Call
from callcenter.workorders.models import Handover, WorkOrder
from callcenter.workorders.service import COMPLAINT, OPEN_STATES

FLOOD_SEASON = range(5, 10)          # May to September
OUTAGE_CATEGORIES = ("outage",)      # 停水
FLOOD_CATEGORIES = ("leak", "manhole_cover", "outage")


class HandoverError(Exception):
    """A handover step out of order (the message says which)."""


def _order_line(order: WorkOrder) -> dict[str, Any]:
    return {"id": order.id, "category": order.category, "unit": order.unit, "state": order.state,
            "address": order.address, "description": order.description, "created_at": order.created_at.isoformat(),
            "escalation_level": order.escalation_level}


async def draft_content(session: AsyncSession, start: datetime, end: datetime, tz: str) -> dict[str, Any]:
    in_shift = and_(Call.arrived_at >= start, Call.arrived_at < end)
    total, answered, abandoned = (await session.execute(select(
        func.count(), func.sum(case((Call.disposition == ANSWERED, 1), else_=0)),
        func.sum(case((Call.disposition.in_((ABANDONED_IN_QUEUE, ABANDONED_IN_IVR)), 1), else_=0)),
    ).where(in_shift))).one()

    async def orders(*where: Any) -> list[dict[str, Any]]:
        rows = await session.execute(select(WorkOrder).where(*where).order_by(WorkOrder.id).limit(500))
        return [_order_line(o) for o in rows.scalars()]

    content: dict[str, Any] = {
        "calls": {"total": total, "answered": answered or 0, "abandoned": abandoned or 0},
        "open_complaints": await orders(WorkOrder.category == COMPLAINT, WorkOrder.state.in_(OPEN_STATES)),
        "unacknowledged_orders": await orders(WorkOrder.state == "dispatched"),
        "outages": await orders(WorkOrder.category.in_(OUTAGE_CATEGORIES),
                                (WorkOrder.state.in_(OPEN_STATES)) | and_(WorkOrder.created_at >= start,
                                                                           WorkOrder.created_at < end)),
    }
    if end.astimezone(zoneinfo.ZoneInfo(tz)).month in FLOOD_SEASON:
        content["flood_control"] = {
            "orders": await orders(WorkOrder.category.in_(FLOOD_CATEGORIES), WorkOrder.created_at >= start,
                                   WorkOrder.created_at < end),
            "notes": "",
        }
    return content


class HandoverService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], timezone: str) -> None:
        self.sessionmaker = sessionmaker
        self.timezone = timezone

    async def draft(self, start: datetime, end: datetime, by: str, now: datetime | None = None) -> Handover:
        if end <= start:
            raise HandoverError("the shift must end after it starts")
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            handover = Handover(shift_start=start, shift_end=end, drafted_at=now, drafted_by=by,
                                content=await draft_content(session, start, end, self.timezone), notes="")
            session.add(handover)
        return handover

    async def get(self, handover_id: int) -> Handover:
        async with self.sessionmaker() as session:
            handover = await session.get(Handover, handover_id)
        if handover is None:
            raise LookupError(f"no handover {handover_id}")
        return handover

    async def add_notes(self, handover_id: int, by: str, notes: str | None = None,
                        flood_notes: str | None = None) -> Handover:
        async with self.sessionmaker() as session, session.begin():
            handover = await self._locked(session, handover_id)
            if handover.accepted_at is not None:
                raise HandoverError(f"handover {handover_id} was accepted by {handover.accepted_by}; it is final")
            if notes is not None:
                handover.notes = notes
            if flood_notes is not None:
                if "flood_control" not in handover.content:
                    raise HandoverError("this shift is outside the flood season (May–September)")
                handover.content = {**handover.content,
                                    "flood_control": {**handover.content["flood_control"], "notes": flood_notes}}
        return handover

    async def accept(self, handover_id: int, by: str, now: datetime | None = None) -> Handover:
        """The incoming crew takes over (someone other than who drafted it)."""
        async with self.sessionmaker() as session, session.begin():
            handover = await self._locked(session, handover_id)
            if handover.accepted_at is not None:
                raise HandoverError(f"handover {handover_id} was already accepted by {handover.accepted_by}")
            if by == handover.drafted_by:
                raise HandoverError("the incoming shift accepts a handover, not the one who drafted it")
            handover.accepted_by, handover.accepted_at = by, now or datetime.now(UTC)
        return handover

    async def close(self, handover_id: int, by: str, now: datetime | None = None) -> Handover:
        """The outgoing crew signs off, once the incoming one has accepted."""
        async with self.sessionmaker() as session, session.begin():
            handover = await self._locked(session, handover_id)
            if handover.accepted_at is None:
                raise HandoverError(f"handover {handover_id} is not accepted yet: the outgoing shift stays on")
            if handover.closed_at is not None:
                raise HandoverError(f"handover {handover_id} is already closed")
            handover.closed_at = now or datetime.now(UTC)
        return handover

    @staticmethod
    async def _locked(session: AsyncSession, handover_id: int) -> Handover:
        handover = await session.get(Handover, handover_id, with_for_update=True)
        if handover is None:
            raise LookupError(f"no handover {handover_id}")
        return handover
