"""The lifecycle table, exhaustively: every legal transition works, every illegal one is refused."""
import itertools

import pytest

from callcenter.workorders.lifecycle import TRANSITIONS, Event, IllegalTransition, Order, State, apply

PAIRS = list(itertools.product(State, Event))


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_state_and_event(state: State, event: Event) -> None:
    order = Order(state=state)
    if event in TRANSITIONS[state]:
        after = apply(order, event)
        if event is Event.ESCALATE:
            assert after.state is state and after.escalation_level == 1
        elif event is Event.FOLLOW_UP_CONTRADICTS:
            assert after.state is State.RETURNED and after.returns == 1
        else:
            assert after.state is TRANSITIONS[state][event]
    else:
        with pytest.raises(IllegalTransition, match=str(event)):
            apply(order, event)
        assert order == Order(state=state)


def test_first_time_back_to_the_unit_second_time_a_supervisor_decides() -> None:
    order = Order(state=State.RESOLVED)
    order = apply(order, Event.FOLLOW_UP_CONTRADICTS)
    assert order.state is State.RETURNED
    for event in (Event.ACKNOWLEDGE, Event.ARRIVE, Event.RESOLVE):
        order = apply(order, event)
    order = apply(order, Event.FOLLOW_UP_CONTRADICTS)
    assert (order.state, order.returns) == (State.ADJUDICATING, 2)
    assert apply(order, Event.ADJUDICATE).state is State.FOLLOWED_UP


def test_the_whole_closed_loop() -> None:
    order = Order()
    for event in (Event.DISPATCH, Event.ACKNOWLEDGE, Event.EXTEND, Event.ARRIVE, Event.RESOLVE,
                  Event.FOLLOW_UP_AGREES, Event.ARCHIVE):
        order = apply(order, event)
    assert order.state is State.ARCHIVED


def test_a_unit_sends_back_an_order_before_it_is_on_site_and_never_after() -> None:
    """退单: the unit returns a dispatched or acknowledged order to the desk (accepted again)."""
    for state in (State.DISPATCHED, State.ACKNOWLEDGED):
        assert apply(Order(state), Event.SEND_BACK) == Order(State.ACCEPTED)
    for state in (State.ON_SITE, State.RESOLVED, State.ACCEPTED, State.RETURNED):
        with pytest.raises(IllegalTransition):
            apply(Order(state), Event.SEND_BACK)
