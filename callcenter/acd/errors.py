"""What can go wrong when the ACD is fed an event; all leave the core unchanged."""
from __future__ import annotations


class AcdError(Exception):
    """Base of the ACD's errors."""


class IllegalTransition(AcdError):
    """The event does not fit the current state of its agent or call; nothing was changed."""


class UnknownAgent(IllegalTransition):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} is not known to the ACD (not logged in)")
        self.agent_id = agent_id


class UnknownCall(IllegalTransition):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id!r} is not known to the ACD (never queued, or already ended)")
        self.call_id = call_id


class UnknownQueue(AcdError):
    def __init__(self, queue: str, where: str) -> None:
        super().__init__(f"{where}: queue {queue!r} is not configured")
        self.queue = queue


class BadEvent(AcdError):
    """An event whose own fields are wrong (e.g. a skill level out of range)."""


class ReservationError(AcdError):
    """Redis refused or lost an agent reservation."""
