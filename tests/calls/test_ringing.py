"""Ringing an agent on the real Engine over the fake AMI: only an agent's phone is ever dialled."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callcenter.acd import events as acd_ev
from tests.calls.fake_line import CALLER, FakeLine, agent, running_line


@pytest.fixture
async def line(settings, sessionmaker) -> AsyncIterator[FakeLine]:
    async with running_line(settings, sessionmaker, [agent("1001")]) as running:
        yield running


async def test_an_endpoint_that_is_no_agents_phone_is_never_dialled_and_the_caller_waits(line: FakeLine) -> None:
    # As a shared agent record written before endpoints were checked would log the agent in.
    await line.engine.feed_acd(acd_ev.AgentLoggedIn(agent_id="1001", endpoint="PJSIP/00882161234567@trunk",
                                                    skills={"general": 1, "leak": 1},
                                                    at=line.engine.clock.monotonic()))
    line.call_in()
    await line.until(lambda: line.engine.acd.agent("1001").state.value == "paused")
    assert line.engine.acd.agent("1001").reason == "unavailable"
    assert line.dials() == []
    assert [c.state.value for c in line.engine.acd.calls()] == ["waiting"]     # still in line, not hung up
    assert not any(a.get("Channel") == CALLER for a in line.sent("Hangup"))
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)
