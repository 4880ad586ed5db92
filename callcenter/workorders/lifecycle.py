"""A work order's life, as a transition table. Pure.

Rules
-----
- Every order starts `accepted` (受理). Field work is `dispatched` (派单) to a unit, which
  `acknowledged` it, reports `on_site` (到场), then `resolved` (处理完毕). Orders without
  field work are resolved by the agent who took the call.
- A resolved order is followed up (回访). A follow-up that agrees with the unit's report
  makes it `followed_up`; one that contradicts it sends it back: the first time `returned`
  to the unit (第一遍退回), the second time to a supervisor, `adjudicating` (第二遍研判),
  whose decision closes it. Followed-up orders are `archived` (归档).
- A unit that finds a dispatched order is not its own sends it back (退单, with a reason)
  before it is on site: the order is `accepted` again, for the desk to dispatch anew.
- While open, an order may be `extend`ed (a reason and a new deadline; state unchanged) and
  `escalate`d (to the unit's manager, then upward: a level counter; state unchanged).
- An event that does not fit the state raises `IllegalTransition` and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class State(StrEnum):
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    RETURNED = "returned"
    ADJUDICATING = "adjudicating"
    FOLLOWED_UP = "followed_up"
    ARCHIVED = "archived"


class Event(StrEnum):
    DISPATCH = "dispatch"
    ACKNOWLEDGE = "acknowledge"
    ARRIVE = "arrive"
    RESOLVE = "resolve"
    FOLLOW_UP_AGREES = "follow_up_agrees"
    FOLLOW_UP_CONTRADICTS = "follow_up_contradicts"
    ADJUDICATE = "adjudicate"
    ARCHIVE = "archive"
    EXTEND = "extend"
    ESCALATE = "escalate"
    SEND_BACK = "send_back"   # 退单: the unit returns the order to the desk


class IllegalTransition(Exception):
    pass


S, E = State, Event
OPEN = (S.ACCEPTED, S.DISPATCHED, S.ACKNOWLEDGED, S.ON_SITE, S.RETURNED)
TRANSITIONS: dict[State, dict[Event, State]] = {
    S.ACCEPTED: {E.DISPATCH: S.DISPATCHED, E.RESOLVE: S.RESOLVED},
    S.DISPATCHED: {E.ACKNOWLEDGE: S.ACKNOWLEDGED, E.SEND_BACK: S.ACCEPTED},
    S.ACKNOWLEDGED: {E.ARRIVE: S.ON_SITE, E.RESOLVE: S.RESOLVED, E.SEND_BACK: S.ACCEPTED},
    S.ON_SITE: {E.RESOLVE: S.RESOLVED},
    S.RESOLVED: {E.FOLLOW_UP_AGREES: S.FOLLOWED_UP, E.FOLLOW_UP_CONTRADICTS: S.RETURNED},
    S.RETURNED: {E.ACKNOWLEDGE: S.ACKNOWLEDGED},
    S.ADJUDICATING: {E.ADJUDICATE: S.FOLLOWED_UP},
    S.FOLLOWED_UP: {E.ARCHIVE: S.ARCHIVED},
    S.ARCHIVED: {},
}
for _state in OPEN:
    TRANSITIONS[_state][E.EXTEND] = _state
    TRANSITIONS[_state][E.ESCALATE] = _state


@dataclass(frozen=True)
class Order:
    """The part of a work order its lifecycle decides on."""

    state: State = S.ACCEPTED
    returns: int = 0             # follow-ups that contradicted the unit
    escalation_level: int = 0    # 0 the unit, 1 its manager, 2 and up: further up


def apply(order: Order, event: Event) -> Order:
    """The order after `event`; raises IllegalTransition (and changes nothing) if it does not fit."""
    try:
        target = TRANSITIONS[order.state][event]
    except KeyError:
        raise IllegalTransition(f"'{event}' does not fit an order that is '{order.state}'") from None
    if event is E.FOLLOW_UP_CONTRADICTS:
        # First time back to the unit; the second time a supervisor decides.
        return replace(order, state=S.RETURNED if order.returns == 0 else S.ADJUDICATING, returns=order.returns + 1)
    if event is E.ESCALATE:
        return replace(order, escalation_level=order.escalation_level + 1)
    return replace(order, state=target)
