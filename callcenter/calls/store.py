"""The call records in the database (async). One row per call, one per agent attempt.

Writes never stop a call: a failed write is retried a few times and then logged with the
call id and every field it carried, so nothing said about the call is lost from the logs.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.calls.models import AgentAttempt, Call

log = logging.getLogger(__name__)

RETRIES = 3


class CallStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _retry(self, what: str, call_id: str, fields: dict[str, Any], work: Any) -> Any:
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.sessionmaker() as session, session.begin():
                    return await work(session)
            except SQLAlchemyError as exc:
                if attempt == RETRIES:
                    log.error("call %s: %s failed after %d tries, fields=%r: %s", call_id, what, attempt, fields, exc)
                    return None
                await asyncio.sleep(0.05 * attempt)
        return None

    async def open(self, **fields: Any) -> None:
        async def work(session: AsyncSession) -> None:
            session.add(Call(**fields))

        await self._retry("open", fields["id"], fields, work)

    async def update(self, call_id: str, **fields: Any) -> None:
        async def work(session: AsyncSession) -> None:
            await session.execute(update(Call).where(Call.id == call_id).values(**fields))

        await self._retry("update", call_id, fields, work)

    async def add_attempt(self, call_id: str, agent_id: str, started_at: datetime) -> int | None:
        fields = {"agent_id": agent_id, "started_at": started_at}

        async def work(session: AsyncSession) -> int:
            attempt = AgentAttempt(call_id=call_id, agent_id=agent_id, started_at=started_at)
            session.add(attempt)
            await session.flush()
            return attempt.id

        result: int | None = await self._retry("add_attempt", call_id, fields, work)
        return result

    async def end_attempt(self, call_id: str, attempt_id: int | None, result: str, ended_at: datetime) -> None:
        if attempt_id is None:
            return
        fields = {"result": result, "ended_at": ended_at}

        async def work(session: AsyncSession) -> None:
            await session.execute(update(AgentAttempt).where(AgentAttempt.id == attempt_id).values(**fields))

        await self._retry("end_attempt", call_id, fields, work)

    async def get(self, call_id: str) -> Call | None:
        async with self.sessionmaker() as session:
            return await session.get(Call, call_id)

    async def open_calls(self) -> list[Call]:
        async with self.sessionmaker() as session:
            return list((await session.execute(select(Call).where(Call.closed.is_(False)))).scalars())

    async def open_calls_of(self, engine_id: str) -> list[Call]:
        """The calls an engine holds that have not ended (to adopt them when it is gone)."""
        async with self.sessionmaker() as session:
            rows = await session.execute(select(Call).options(selectinload(Call.attempts))
                                         .where(Call.closed.is_(False), Call.engine_id == engine_id)
                                         .order_by(Call.arrived_at))
            return list(rows.scalars())

    async def take_over(self, call_id: str, from_engine: str, to_engine: str) -> bool:
        """Move one call to another engine, atomically: only one engine can win it."""
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(update(Call).where(Call.id == call_id, Call.engine_id == from_engine,
                                                              Call.closed.is_(False)).values(engine_id=to_engine))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def last_agent_for(self, caller_number: str) -> str | None:
        """The agent who last talked with this caller (首问负责制: a repeat caller goes back to them)."""
        async with self.sessionmaker() as session:
            row = await session.execute(
                select(Call.agent_id).where(Call.caller_number == caller_number, Call.agent_id.is_not(None))
                .order_by(Call.arrived_at.desc()).limit(1)
            )
            return row.scalar_one_or_none()
