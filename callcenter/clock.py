"""Time, injected. The pure cores take `now` as an argument; the adapters ask a Clock.

Tests use `ManualClock` so ring timeouts, wrap-up, SLA and deadlines run instantly.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any: ...


class SystemClock:
    """Wall clock in UTC and the running loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)


@dataclass
class _Timer:
    when: float
    callback: Callable[..., Any]
    args: tuple[Any, ...]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class ManualClock:
    """A clock that moves only when told to; timers fire in `advance`."""

    start: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    elapsed: float = 0.0
    timers: list[_Timer] = field(default_factory=list)

    def now(self) -> datetime:
        from datetime import timedelta

        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(self.elapsed + max(0.0, delay), callback, args)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        target = self.elapsed + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= target]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.elapsed = max(self.elapsed, timer.when)
            timer.callback(*timer.args)
        self.elapsed = target
