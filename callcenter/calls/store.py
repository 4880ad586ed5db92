"""The call records in the database (async). One row per call, one per agent attempt.

The writes (`open`, `update`, `add_attempt`, `end_attempt`) go through one `SerialWriter`
(db/writer.py): in the order they were asked, batched, one transaction at a time. Each returns
at once something to await (its commit) or not: a call's steps need not wait for the disk,
and the writes after a call's `open` find its row, since they are written after it.

Writes never stop a call: a failed write is retried a few times and then logged with the
call id and every field it carried, so nothing said about the call is lost from the logs.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.calls.models import AgentAttempt, Call
from callcenter.db.writer import SerialWriter

log = logging.getLogger(__name__)

RETRIES = 3


class Attempt:
    """An agent attempt asked to be written. `await` it for its row id (None if it could not
    be written); `end_attempt` takes it at once, before it is written (it is written after)."""

    def __init__(self) -> None:
        self.id: int | None = None
        self.written: asyncio.Future[int | None] | None = None

    def __await__(self) -> Generator[Any, None, int | None]:
        assert self.written is not None
        return self.written.__await__()


class CallStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.writer = SerialWriter(sessionmaker, retries=RETRIES)

    async def flush(self) -> None:
        """Wait until every write asked so far is in the database."""
        await self.writer.flush()

    def open(self, **fields: Any) -> asyncio.Future[None]:
        async def work(session: AsyncSession) -> None:
            session.add(Call(**fields))

        return self.writer.submit(work, f"call {fields['id']}: open, fields={fields!r}")

    def update(self, call_id: str, **fields: Any) -> asyncio.Future[None]:
        async def work(session: AsyncSession) -> None:
            await session.execute(update(Call).where(Call.id == call_id).values(**fields))

        return self.writer.submit(work, f"call {call_id}: update, fields={fields!r}")

    def add_attempt(self, call_id: str, agent_id: str, started_at: datetime) -> Attempt:
        attempt = Attempt()

        async def work(session: AsyncSession) -> int:
            attempt.id = None     # a batch rolled back and written again gets a new id
            row = AgentAttempt(call_id=call_id, agent_id=agent_id, started_at=started_at)
            session.add(row)
            await session.flush()
            attempt.id = row.id
            return row.id

        attempt.written = self.writer.submit(
            work, f"call {call_id}: add_attempt, fields={ {'agent_id': agent_id, 'started_at': started_at}!r}")
        return attempt

    def end_attempt(self, call_id: str, attempt: Attempt | int | None, result: str, ended_at: datetime
                    ) -> asyncio.Future[None]:
        fields = {"result": result, "ended_at": ended_at}
        if attempt is None:     # never written: nothing to end
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        async def work(session: AsyncSession) -> None:
            attempt_id = attempt.id if isinstance(attempt, Attempt) else attempt
            if attempt_id is not None:
                await session.execute(update(AgentAttempt).where(AgentAttempt.id == attempt_id).values(**fields))

        return self.writer.submit(work, f"call {call_id}: end_attempt, fields={fields!r}")

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
