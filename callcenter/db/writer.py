"""One writer for a hot path's rows: writes in the order they were asked, in batches.

Why: each call writes its record a handful of times (opened, menu path, queued, each agent
rung, answered, closed). Written from every call's own task, each in its own transaction,
twenty calls a second meant a dozen transactions at once on SQLite, which has one write lock:
the others slept in SQLite's busy handler (measured: 41 % of the engine's samples), holding
their pool connections, until the pool ran out and the calls' next steps (the agent's new
state on the wallboard among them) waited seconds behind their writes.

So the writes of a `SerialWriter` go through one queue and one task: what was asked while a
transaction ran is written by the next one, together (at most `batch` writes per transaction),
on one connection at a time, so the lock is never fought over by its own writes and the pool
is not drained. Each `submit` returns a future at once: the caller may go on (the write is
ordered after every write asked before it) or await it (resolved when committed).

Writes never stop the caller: a batch that fails is rolled back and its writes are tried one
by one, each `retries` times; one that still fails is logged with what it carried (`what`) and
its future resolves to None. The task ends whenever the queue is empty and starts again with
the next write, so nothing has to be started or stopped; `flush()` waits for what was asked.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

Work = Callable[[AsyncSession], Awaitable[Any]]


@dataclass(eq=False)
class _Write:
    work: Work
    what: str                     # for the log when it cannot be written
    done: asyncio.Future[Any]


class SerialWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, batch: int = 200, retries: int = 3,
                 retry_s: float = 0.05) -> None:
        self.sessionmaker = sessionmaker
        self.batch = batch
        self.retries = retries
        self.retry_s = retry_s
        self._queue: deque[_Write] = deque()
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0          # committed (a figure for the benchmarks)

    def submit(self, work: Work, what: str) -> asyncio.Future[Any]:
        """Write `work(session)` after everything asked before; the future gets its result
        once committed (None when it could not be written)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(work, what, done))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="db-writer")
        return done

    def __len__(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Wait until everything asked so far is written (or given up)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def _run(self) -> None:
        while self._queue:
            writes = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                results = await self._transaction(writes)
            except asyncio.CancelledError:
                for write in writes:
                    if not write.done.done():
                        write.done.cancel()
                raise
            except Exception as exc:     # the batch is rolled back: each write alone
                if len(writes) > 1:
                    log.warning("a batch of %d writes failed (%s); writing them one by one", len(writes), exc)
                results = [await self._alone(write) for write in writes]
            for write, result in zip(writes, results, strict=True):
                if not write.done.done():
                    write.done.set_result(result)

    async def _transaction(self, writes: list[_Write]) -> list[Any]:
        async with self.sessionmaker() as session, session.begin():
            results = [await write.work(session) for write in writes]
        self.transactions += 1
        return results

    async def _alone(self, write: _Write) -> Any:
        for attempt in range(1, self.retries + 1):
            try:
                return (await self._transaction([write]))[0]
            except SQLAlchemyError as exc:
                if attempt == self.retries:
                    log.error("%s failed after %d tries: %s", write.what, attempt, exc)
                    return None
                await asyncio.sleep(self.retry_s * attempt)
            except Exception:
                log.exception("%s could not be written", write.what)
                return None
        return None
