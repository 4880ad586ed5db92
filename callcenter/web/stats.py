"""Today's figures for the wallboard: from the live state (Redis) and the call records."""
from __future__ import annotations

import zoneinfo
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import ABANDONED_IN_IVR, ABANDONED_IN_QUEUE, Call
from callcenter.config import Settings


def day_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Start and end of `now`'s day in the hotline's time zone."""
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    start = datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)
    return start, start + timedelta(days=1)


async def today(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> dict[str, Any]:
    start, end = day_bounds(now, settings.hotline.timezone)
    return {"day": start.date().isoformat(), **await period(sessionmaker, settings, start, end)}


async def period(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, start: datetime,
                 end: datetime) -> dict[str, Any]:
    """The calls that arrived in [start, end): answered, abandoned, within three rings, ASA."""
    wait_s = (func.julianday(Call.agent_answered_at) - func.julianday(Call.arrived_at)) * 86400
    async with sessionmaker() as session:
        if session.bind.dialect.name == "postgresql":
            wait_s = func.extract("epoch", Call.agent_answered_at - Call.arrived_at)
        row = (await session.execute(
            select(
                func.count(Call.id),
                func.count(Call.agent_answered_at),
                func.sum(case((wait_s <= settings.telephony.answer_within_s, 1), else_=0)),
                func.sum(case((Call.disposition.in_([ABANDONED_IN_QUEUE, ABANDONED_IN_IVR]), 1), else_=0)),
                func.avg(wait_s),
            ).where(Call.arrived_at >= start, Call.arrived_at < end)
        )).one()
    calls, answered, within, abandoned, asa = row
    return {
        "calls": calls,
        "answered": answered,
        "abandoned": int(abandoned or 0),
        "answered_within_rings": int(within or 0),
        "answered_within_rings_pct": round(100.0 * (within or 0) / answered, 1) if answered else None,
        "answer_within_s": settings.telephony.answer_within_s,
        "asa_s": round(float(asa), 1) if asa is not None else None,
    }


def live_figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    queues = snapshot.get("queues", {})
    agents = snapshot.get("agents", {})
    return {
        "waiting": sum(q.get("waiting", 0) for q in queues.values()),
        "longest_wait_s": max((q.get("longest_wait_s", 0.0) for q in queues.values()), default=0.0),
        "queues": queues,
        "agents_by_state": dict(Counter(a.get("state", "unknown") for a in agents.values())),
    }
