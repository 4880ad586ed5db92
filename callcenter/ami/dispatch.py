"""Running the engine's event handler: per call in wire order, calls side by side.

`TaskSupervisor` keeps a reference to every task the adapter starts and logs the ones that
fail (panoramisk fires coroutine callbacks and forgets them, so their errors vanish).

`CallOrderedDispatcher` gives each call (its `call_key`) a queue and one worker: the events
of a call reach the handler one after the other in the order Asterisk sent them, while
different calls are handled concurrently. A worker ends as soon as its queue is empty, so
idle calls cost nothing. A handler that raises is logged and counted; the next event of the
same call is still delivered.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from callcenter.ami.events import Event

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]


class TaskSupervisor:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failures = 0

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failures += 1
            log.error("AMI adapter task %s failed: %r", task.get_name(), exc, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class CallOrderedDispatcher:
    def __init__(self, handler: EventHandler, tasks: TaskSupervisor) -> None:
        self._handler = handler
        self._tasks = tasks
        self._queues: dict[str, deque[Event]] = {}
        self.delivered = 0
        self.handler_failures = 0

    @property
    def active_calls(self) -> int:
        """Calls with events waiting or being handled right now."""
        return len(self._queues)

    def submit(self, key: str, event: Event) -> None:
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(event)
            return
        queue = deque((event,))
        self._queues[key] = queue
        self._tasks.spawn(self._drain(key, queue), name=f"ami-events:{key or 'system'}")

    async def _drain(self, key: str, queue: deque[Event]) -> None:
        handler = self._handler
        try:
            while queue:
                event = queue.popleft()
                try:
                    await handler(event)
                except Exception:
                    self.handler_failures += 1
                    log.exception("event handler failed on %s for call %s; carrying on with the call's next event",
                                  type(event).__name__, key or "-")
                self.delivered += 1
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def idle(self, timeout: float) -> bool:
        """Wait (bounded) until every submitted event has been handled; True if so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._queues:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.001)
        return True
