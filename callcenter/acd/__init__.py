"""The ACD: who answers which waiting caller.

`core.Acd` is pure (events in, commands out; see events.py, commands.py, states.py);
`reservation.Reservations` and `live.LiveState` are its Redis adapters for several engines
and the wallboard; `settings.RoutingPolicy` is its configuration.
"""
from callcenter.acd.core import Acd, AgentView, CallView, QueueStats
from callcenter.acd.errors import (
    AcdError,
    BadEvent,
    IllegalTransition,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
)
from callcenter.acd.settings import AcdPolicy, QueuePolicy, RoutingPolicy, Strategy
from callcenter.acd.states import AgentState, CallState

__all__ = [
    "Acd", "AcdError", "AcdPolicy", "AgentState", "AgentView", "BadEvent", "CallState", "CallView",
    "IllegalTransition", "QueuePolicy", "QueueStats", "RoutingPolicy", "Strategy", "UnknownAgent", "UnknownCall",
    "UnknownQueue",
]
