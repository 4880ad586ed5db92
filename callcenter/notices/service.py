"""Outage notices: stored, spoken (espeak-ng, like every prompt), and looked up per caller.

A caller hears a notice when their number belongs to a customer in an affected area and the
outage is announced and not over (from its creation to its end). The rules on notice ahead of
time — planned outages 7 working days, temporary ones 24 hours (power rules, SPEC.md) — are
checked when an outage is entered: a late one is still announced (the water stops either way)
but marked `announced_late` for the reports.

What a supervisor enters is bounded before anything is kept: the text callers hear (500
characters, no control characters), the areas (50 names of at most 64 characters), the cause,
and the times (a real UTC offset, starting within a year and not over 31 days ago, lasting at
most 31 days). The notice is spoken first, to a name of its own; only then is the outage
stored and its audio moved to `notice_<id>.wav` in the same transaction, so a failure leaves
neither a row nor a file, and no caller is ever routed to a notice without a prompt.

A notice may change (its times, its text, more areas) and be cancelled; each change counts up
its `revision` and is told to the listeners once (the SMS channel texts the customers). A
change cannot take an area away: that is a cancellation and a new notice, so nobody is left
believing the water stops when it does not. A changed text is spoken before anything is
kept, as for a new notice, and replaces the prompt in one move.

Each caller routed to a notice is told to the `heard` callbacks (plain functions, on the call's
path: they must not block), which is how an outage-driven surge of calls is noticed.
"""
from __future__ import annotations

import asyncio
import logging
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ivr.flow import Notice
from callcenter.ivr.prompts import PromptError, speak
from callcenter.notices.models import Outage
from callcenter.workorders.deadlines import add_working_days
from callcenter.workorders.models import Customer

log = logging.getLogger(__name__)
KINDS = ("planned", "temporary")
PLANNED_AHEAD_WORKING_DAYS = 7
TEMPORARY_AHEAD = timedelta(hours=24)
MAX_TEXT = 500
MAX_CAUSE = 500
MAX_AREAS = 50
MAX_AREA_NAME = 64        # workorders.models.Customer.area
MAX_AHEAD = timedelta(days=366)
MAX_DURATION = timedelta(days=31)
# Real zones run from UTC-12:00 to UTC+14:00.
OFFSETS = (timedelta(hours=-12), timedelta(hours=14))
MAX_ID = 2**31 - 1        # the id column is a 32-bit integer


class NoticeError(ValueError):
    """Bad input: the message names the field."""


class NoticeAudioError(RuntimeError):
    """The speech engine could not speak the notice: nothing was stored."""


def check_words(field: str, value: str, limit: int) -> str:
    """`value` stripped, at most `limit` characters, no control characters but line breaks."""
    value = value.strip()
    if len(value) > limit:
        raise NoticeError(f"{field}: at most {limit} characters (got {len(value)})")
    for position, char in enumerate(value):
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cs"):
            raise NoticeError(f"{field}: control character U+{ord(char):04X} at position {position}")
    return value


def check_areas(areas: list[object]) -> list[str]:
    if len(areas) > MAX_AREAS:
        raise NoticeError(f"areas: at most {MAX_AREAS} areas (got {len(areas)})")
    names: list[str] = []
    for n, area in enumerate(areas):
        if not isinstance(area, str):
            raise NoticeError(f"areas[{n}]: an area name (text)")
        name = check_words(f"areas[{n}]", area, MAX_AREA_NAME)
        if name and name not in names:
            names.append(name)
    if not names:
        raise NoticeError("areas: name at least one affected area")
    return names


def check_times(starts_at: datetime, ends_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The outage's start and end in UTC, or a NoticeError naming the field."""
    checked = []
    for field, when in (("starts_at", starts_at), ("ends_at", ends_at)):
        offset = when.utcoffset()
        if offset is None:
            raise NoticeError(f"{field}: give the time zone, e.g. 2026-11-28T08:00:00+08:00")
        if not OFFSETS[0] <= offset <= OFFSETS[1]:
            raise NoticeError(f"{field}: UTC offset {when.strftime('%z')} is not a real one (-1200 to +1400)")
        try:
            checked.append(when.astimezone(UTC))
        except OverflowError:
            raise NoticeError(f"{field}: {when.isoformat()} is out of range") from None
    starts_at, ends_at = checked
    if starts_at - now > MAX_AHEAD:
        raise NoticeError(f"starts_at: at most {MAX_AHEAD.days} days ahead")
    if now - starts_at > MAX_DURATION:
        raise NoticeError(f"starts_at: more than {MAX_DURATION.days} days ago")
    if ends_at <= starts_at:
        raise NoticeError("ends_at: must be after starts_at")
    if ends_at <= now:
        raise NoticeError(f"ends_at: {ends_at.isoformat()} is already past")
    if ends_at - starts_at > MAX_DURATION:
        raise NoticeError(f"ends_at: an outage lasts at most {MAX_DURATION.days} days")
    return starts_at, ends_at


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
        # Told of each caller routed to a notice: (outage id, the caller's area).
        self.heard: list[Callable[[int, str], None]] = []

    async def _tell(self, event: str, outage: Outage) -> None:
        for listener in self.listeners:
            try:
                await listener(event, outage)
            except Exception as exc:
                log.error("outage %s %s, but %s failed: %s", outage.id, event, listener, exc)

    async def create(self, *, kind: str, areas: list[object], starts_at: datetime, ends_at: datetime, text: str,
                     by: str, cause: str = "", now: datetime | None = None) -> Outage:
        now = now or datetime.now(UTC)
        if kind not in KINDS:
            raise NoticeError(f"kind: {kind[:20]!r} is not one of {', '.join(KINDS)}")
        names = check_areas(areas)
        text = check_words("text", text, MAX_TEXT)
        if not text:
            raise NoticeError("text: the notice callers hear is empty")
        cause = check_words("cause", cause, MAX_CAUSE)
        starts_at, ends_at = check_times(starts_at, ends_at, now)
        outage = Outage(kind=kind, areas=names, starts_at=starts_at, ends_at=ends_at, text=text,
                        cause=cause, created_at=now, created_by=by,
                        announced_late=announced_late(kind, starts_at, now, self.timezone))
        # The spoken notice is ready before any caller can be routed to it: spoken first, under
        # a name no caller is routed to, then stored and moved in place in one transaction.
        pending = self.prompts_dir / f".pending-{uuid.uuid4().hex}.wav"
        try:
            await asyncio.to_thread(speak, text, pending, self.voice, self.speed_wpm)
        except PromptError as exc:
            raise NoticeAudioError(f"text: the spoken notice could not be made: {exc}") from None
        placed: Path | None = None
        try:
            async with self.sessionmaker() as session, session.begin():
                session.add(outage)
                await session.flush()
                placed = self.prompts_dir / f"{prompt_id(outage.id)}.wav"
                pending.replace(placed)
        except BaseException:
            if placed is not None:
                placed.unlink(missing_ok=True)
            raise
        finally:
            pending.unlink(missing_ok=True)
        log.info("outage %s (%s) for %s announced%s", outage.id, kind, ", ".join(names),
                 " late" if outage.announced_late else "")
        await self._tell("published", outage)
        return outage

    async def cancel(self, outage_id: int) -> Outage:
        if not 0 < outage_id <= MAX_ID:
            raise LookupError(f"no outage {outage_id}")
        async with self.sessionmaker() as session, session.begin():
            outage = await session.get(Outage, outage_id)
            if outage is None:
                raise LookupError(f"no outage {outage_id}")
            outage.cancelled = True
        await self._tell("cancelled", outage)
        return outage

    async def change(self, outage_id: int, *, by: str, starts_at: datetime | None = None,
                     ends_at: datetime | None = None, text: str | None = None, areas: list[object] | None = None,
                     now: datetime | None = None) -> Outage:
        """Change a running or coming notice; what is not given stays. A NoticeError names the
        field; LookupError when there is no such notice (or it was cancelled)."""
        now = now or datetime.now(UTC)
        if not 0 < outage_id <= MAX_ID:
            raise LookupError(f"no outage {outage_id}")
        async with self.sessionmaker() as session:
            outage = await session.get(Outage, outage_id)
        if outage is None or outage.cancelled:
            raise LookupError(f"no outage {outage_id}" if outage is None else f"outage {outage_id} was cancelled")
        names = outage.areas
        if areas is not None:
            names = check_areas(areas)
            dropped = sorted(set(outage.areas) - set(names))
            if dropped:
                raise NoticeError(f"areas: {', '.join(dropped)} cannot be taken away from a notice; "
                                  "cancel it and enter a new one")
        new_text = outage.text if text is None else check_words("text", text, MAX_TEXT)
        if not new_text:
            raise NoticeError("text: the notice callers hear is empty")
        new_start, new_end = check_times(starts_at or outage.starts_at, ends_at or outage.ends_at, now)
        if (names, new_text, new_start, new_end) == (outage.areas, outage.text, outage.starts_at, outage.ends_at):
            raise NoticeError("body: nothing to change")
        pending: Path | None = None
        if new_text != outage.text:
            pending = self.prompts_dir / f".pending-{uuid.uuid4().hex}.wav"
            try:
                await asyncio.to_thread(speak, new_text, pending, self.voice, self.speed_wpm)
            except PromptError as exc:
                pending.unlink(missing_ok=True)
                raise NoticeAudioError(f"text: the spoken notice could not be made: {exc}") from None
        try:
            async with self.sessionmaker() as session, session.begin():
                stored = await session.get(Outage, outage_id, with_for_update=True)
                if stored is None or stored.cancelled:
                    raise LookupError(f"outage {outage_id} was cancelled meanwhile")
                stored.areas, stored.text, stored.starts_at, stored.ends_at = names, new_text, new_start, new_end
                stored.revision += 1
                if pending is not None:
                    pending.replace(self.prompts_dir / f"{prompt_id(outage_id)}.wav")
                outage = stored
        finally:
            if pending is not None:
                pending.unlink(missing_ok=True)
        log.info("outage %s changed by %s (revision %d)", outage_id, by, outage.revision)
        await self._tell("changed", outage)
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
                for heard in self.heard:
                    try:
                        heard(outage.id, area)
                    except Exception:
                        log.exception("outage %s: a listener of callers heard failed", outage.id)
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
