"""Outage notices: stored, spoken (espeak-ng, like every prompt), and looked up per caller.

A caller hears a notice when their number belongs to a customer in an affected area and the
outage is announced and not over (from its creation to its end). The rules on notice ahead of
time — planned outages 7 working days, temporary ones 24 hours (power rules, SPEC.md) — are
checked when an outage is entered: a late one is still announced (the water stops either way)
but marked `announced_late` for the reports.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ivr.flow import Notice
from callcenter.ivr.prompts import render_prompt
from callcenter.notices.models import Outage
from callcenter.workorders.deadlines import add_working_days
from callcenter.workorders.models import Customer

log = logging.getLogger(__name__)
KINDS = ("planned", "temporary")
PLANNED_AHEAD_WORKING_DAYS = 7
TEMPORARY_AHEAD = timedelta(hours=24)


class NoticeError(ValueError):
    pass


def prompt_id(outage_id: int) -> str:
    return f"notice_{outage_id}"


def announced_late(kind: str, starts_at: datetime, now: datetime, tz: str) -> bool:
    if kind == "planned":
        # 7 whole working days between the notice and the outage's day.
        return starts_at < add_working_days(now, PLANNED_AHEAD_WORKING_DAYS, tz)
    return starts_at - now < TEMPORARY_AHEAD


class NoticeService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], prompts_dir: Path, timezone: str,
                 voice: str = "cmn", speed_wpm: int = 150) -> None:
        self.sessionmaker = sessionmaker
        self.prompts_dir = prompts_dir
        self.timezone = timezone
        self.voice, self.speed_wpm = voice, speed_wpm
        # Told of every notice published or cancelled (event, outage), e.g. to text the customers.
        self.listeners: list[Callable[[str, Outage], Awaitable[None]]] = []

    async def _tell(self, event: str, outage: Outage) -> None:
        for listener in self.listeners:
            try:
                await listener(event, outage)
            except Exception as exc:
                log.error("outage %s %s, but %s failed: %s", outage.id, event, listener, exc)

    async def create(self, *, kind: str, areas: list[str], starts_at: datetime, ends_at: datetime, text: str,
                     by: str, cause: str = "", now: datetime | None = None) -> Outage:
        now = now or datetime.now(UTC)
        if kind not in KINDS:
            raise NoticeError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
        areas = [a.strip() for a in areas if isinstance(a, str) and a.strip()]
        if not areas:
            raise NoticeError("areas: name at least one affected area")
        if not text.strip():
            raise NoticeError("text: the notice callers hear is empty")
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise NoticeError("starts_at, ends_at: give the time zone")
        if ends_at <= starts_at:
            raise NoticeError("ends_at: must be after starts_at")
        if ends_at <= now:
            raise NoticeError(f"ends_at: {ends_at.isoformat()} is already past")
        outage = Outage(kind=kind, areas=areas, starts_at=starts_at, ends_at=ends_at, text=text.strip(),
                        cause=cause, created_at=now, created_by=by,
                        announced_late=announced_late(kind, starts_at, now, self.timezone))
        async with self.sessionmaker() as session, session.begin():
            session.add(outage)
        # The spoken notice is ready before any caller can be routed to it.
        await asyncio.to_thread(render_prompt, prompt_id(outage.id), outage.text, self.prompts_dir,
                                self.voice, self.speed_wpm)
        log.info("outage %s (%s) for %s announced%s", outage.id, kind, ", ".join(areas),
                 " late" if outage.announced_late else "")
        await self._tell("published", outage)
        return outage

    async def cancel(self, outage_id: int) -> Outage:
        async with self.sessionmaker() as session, session.begin():
            outage = await session.get(Outage, outage_id)
            if outage is None:
                raise LookupError(f"no outage {outage_id}")
            outage.cancelled = True
        await self._tell("cancelled", outage)
        return outage

    async def current(self, now: datetime | None = None) -> list[Outage]:
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as session:
            rows = await session.execute(select(Outage).where(Outage.cancelled.is_(False), Outage.ends_at > now)
                                         .order_by(Outage.starts_at))
            return list(rows.scalars())

    async def notice_for(self, caller_number: str, now: datetime | None = None) -> Notice | None:
        """The notice this caller hears before the menu, if their area is affected."""
        async with self.sessionmaker() as session:
            area = (await session.execute(select(Customer.area).where(Customer.number == caller_number)))\
                .scalar_one_or_none()
        if not area:
            return None
        for outage in await self.current(now):
            if area in outage.areas:
                return Notice(prompt=prompt_id(outage.id), notice_id=str(outage.id))
        return None

    async def expected_load(self, now: datetime | None = None) -> dict[str, int]:
        """For the wallboard: outages running now and the customers in their areas (the calls to expect)."""
        now = now or datetime.now(UTC)
        running = [o for o in await self.current(now) if o.starts_at <= now]
        areas = sorted({a for o in running for a in o.areas})
        customers = 0
        if areas:
            async with self.sessionmaker() as session:
                customers = (await session.execute(select(func.count()).select_from(Customer)
                                                   .where(Customer.area.in_(areas)))).scalar_one()
        return {"outages": len(running), "areas": len(areas), "customers_affected": customers}
