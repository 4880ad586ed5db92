"""Routing policy: how the ACD treats each queue and agent.

A superset of the ``[acd]`` and ``[[queues]]`` sections of callcenter/config.py: every key
those sections have is here with the same name and meaning, plus the routing keys the core
needs (wrap-up per queue, max wait, max length, overflow, widening, strategy, announcements,
priorities). `RoutingPolicy.from_settings(settings)` builds one from today's `Settings`; once
the new keys are wired into config.py the same model validates them from TOML.

Skill levels run from 1 (can take the call) to 10 (expert); higher is better.
"""
from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"   # the agent idle longest since their last call
    FEWEST_CALLS = "fewest_calls"   # the agent who took fewest calls since logging in
    ROUND_ROBIN = "round_robin"     # in turn, remembering who was rung last
    RING_ALL = "ring_all"           # small teams: ring every available skilled agent at once


MAX_SKILL_LEVEL = 10


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcdPolicy(_Section):
    ring_timeout_s: int = Field(default=15, gt=0, le=300)
    wrapup_s: float = Field(default=10, ge=0)
    strategy: Strategy = Strategy.LONGEST_IDLE
    # Consecutive unanswered rings before an agent is paused (reason "no_answer"); 0: never.
    auto_pause_after_no_answers: int = Field(default=2, ge=0)
    # Position announcements: the first after this long in the queue, then every announce_every_s.
    announce_first_after_s: float = Field(default=30, ge=0)
    announce_every_s: float = Field(default=60, gt=0)
    # Priority added to calls in these categories (漏水 leak, 水质 water quality) ...
    emergency_categories: tuple[str, ...] = ("leak", "water_quality")
    emergency_priority: int = Field(default=100, ge=0)
    # ... to a repeat caller with an open work order (二次投诉) ...
    repeat_priority: int = Field(default=20, ge=0)
    # ... who is first offered to the agent who took the earlier call (首问负责制) this long,
    preferred_agent_window_s: float = Field(default=20, ge=0)
    # ... and to VIP callers.
    vip_priority: int = Field(default=10, ge=0)
    # Estimated wait: the mean of the last N handle times (talk + wrap-up) of a queue,
    # default_handle_s until the queue has any.
    handle_time_window: int = Field(default=50, ge=1, le=10_000)
    default_handle_s: float = Field(default=180, gt=0)
    # ring_all rings at most this many agents at once.
    ring_all_max: int = Field(default=8, ge=1, le=100)
    # A kept-place callback not placed within this long expires (CallbackExpired).
    callback_expire_s: float = Field(default=4 * 3600, gt=0)


def parse_span(queue: str, span: str) -> tuple[time, time]:
    """'08:30-17:30' → (08:30, 17:30); '24:00' may end a span (until midnight)."""
    try:
        start, end = (part.strip() for part in span.split("-"))
        opens = time.fromisoformat(start)
        closes = time.max if end == "24:00" else time.fromisoformat(end)
    except ValueError:
        raise ValueError(f"queue {queue}: open_hours {span!r} is not like '08:30-17:30'") from None
    if closes <= opens:
        raise ValueError(f"queue {queue}: open_hours {span!r} closes before it opens")
    return opens, closes


class QueuePolicy(_Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str = ""
    category: str = "other"
    priority: int = 0
    wrapup_s: float | None = Field(default=None, ge=0)          # None: acd.wrapup_s
    strategy: Strategy | None = None                            # None: acd.strategy
    max_wait_s: float | None = Field(default=None, gt=0)        # None: no limit
    max_length: int | None = Field(default=None, ge=1)          # None: no limit
    overflow_to: str | None = None                              # None: offer a callback instead
    # Widening: a new caller is offered only to agents at initial_skill_level or above; every
    # widen_after_s the floor drops by one level, never below min_skill_level.
    initial_skill_level: int = Field(default=1, ge=1, le=MAX_SKILL_LEVEL)
    min_skill_level: int = Field(default=1, ge=1, le=MAX_SKILL_LEVEL)
    widen_after_s: float | None = Field(default=None, gt=0)
    # Opening hours: empty means always open (the hotline never closes). A queue with hours
    # (e.g. billing: ["08:30-12:00", "13:30-17:30"] on working days) sends callers, when it
    # is closed, to `when_closed` — another queue, so no caller meets a closed door.
    open_hours: list[str] = Field(default_factory=list)
    open_days: Literal["every_day", "working_days"] = "every_day"
    when_closed: str | None = None

    @model_validator(mode="after")
    def _hours(self) -> QueuePolicy:
        for span in self.open_hours:
            parse_span(self.name, span)
        if self.open_hours and self.when_closed is None:
            raise ValueError(f"queue {self.name}: open_hours needs when_closed (the queue that takes its callers)")
        if self.when_closed == self.name:
            raise ValueError(f"queue {self.name}: when_closed names the queue itself")
        return self

    def is_open(self, local: datetime, working_day: bool) -> bool:
        """Open at this local time? (`working_day` from the Chinese calendar)"""
        if self.open_days == "working_days" and not working_day:
            return False
        if not self.open_hours:
            return True
        now = local.time()
        return any(start <= now < end for start, end in (parse_span(self.name, s) for s in self.open_hours))

    @model_validator(mode="after")
    def _levels(self) -> QueuePolicy:
        if self.min_skill_level > self.initial_skill_level:
            raise ValueError(
                f"queue {self.name}: min_skill_level {self.min_skill_level} is above "
                f"initial_skill_level {self.initial_skill_level}"
            )
        if self.overflow_to == self.name:
            raise ValueError(f"queue {self.name}: overflow_to names the queue itself")
        return self

    def required_level(self, waited_s: float) -> int:
        """The lowest skill level that may take a caller who has waited `waited_s`."""
        if self.widen_after_s is None or self.initial_skill_level == self.min_skill_level:
            return self.initial_skill_level
        steps = int(max(0.0, waited_s) // self.widen_after_s)
        return max(self.min_skill_level, self.initial_skill_level - steps)


class RoutingPolicy(_Section):
    acd: AcdPolicy = AcdPolicy()
    queues: tuple[QueuePolicy, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _queue_names(self) -> RoutingPolicy:
        names = [q.name for q in self.queues]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"queue names must be unique, repeated: {', '.join(repeated)}")
        for q in self.queues:
            if q.overflow_to is not None and q.overflow_to not in names:
                raise ValueError(f"queue {q.name}: overflow_to {q.overflow_to!r} is not a queue")
            if q.when_closed is not None and q.when_closed not in names:
                raise ValueError(f"queue {q.name}: when_closed {q.when_closed!r} is not a queue")
        return self

    def open_queue(self, name: str, local: datetime, working_day: bool) -> str:
        """The queue that takes a caller routed to `name` now: `name` itself while it is open,
        else its `when_closed` (followed further if that one is closed too)."""
        seen = []
        while True:
            queue = self.queue(name)
            if queue.is_open(local, working_day) or queue.when_closed is None or name in seen:
                return name
            seen.append(name)
            name = queue.when_closed

    def queue(self, name: str) -> QueuePolicy:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    @classmethod
    def from_settings(cls, settings: Any, **acd_overrides: Any) -> RoutingPolicy:
        """From callcenter.config.Settings (its [acd] and [[queues]]), new keys at their defaults."""
        acd = {**settings.acd.model_dump(), **acd_overrides}
        queues = [q.model_dump() for q in settings.queues]
        return cls.model_validate({"acd": acd, "queues": queues})


# The keys to add to defaults.toml when this is wired into Settings (the [acd] section; the
# per-queue keys are optional in each [[queues]] table).
DEFAULTS: dict[str, Any] = {
    "acd": AcdPolicy().model_dump(mode="json"),
}
