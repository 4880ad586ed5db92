"""The callback that keeps the caller's place, carried out on the real Asterisk: the caller
leaves a callback when no agent is there; when an agent logs in, the engine rings the agent
first, then dials the citizen through the trunk and bridges them."""
from __future__ import annotations

import pytest

from callcenter.sipp import Key, agent_scenario, caller_scenario, expect_ok
from tests.e2e.conftest import Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


async def test_the_kept_place_callback_rings_the_agent_then_the_citizen(hotline: Hotline) -> None:
    line = hotline
    caller = await start_caller(line, "caller_wants_callback", caller_scenario(
        number="13911112222", keys=(Key("2", MENU_KEY_AFTER_MS), Key("1", 3000)), hangup_after_ms=20_000))
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.disposition == "callback" and call.attempts == []
    citizen = await line.sipp.start("citizen_called_back", agent_scenario(ring_ms=500, hangup_after_ms=4000),
                                    sip_port=5090, media_port=27000, target=None, calls=1, timeout_s=60)
    agent = await start_agent(line, "1002")
    await line.engine.login("1002")

    async def attempt_done() -> bool:
        [c] = await line.calls()
        return bool(c.attempts) and c.attempts[-1].result is not None

    await wait_until(attempt_done, 40, "the callback attempt is over")
    [call] = await line.calls()
    assert [(a.agent_id, a.result) for a in call.attempts] == [("1002", "callback_answered")]
    await expect_ok(citizen, 30)
    await wait_until(lambda: line.agent_state("1002") in ("wrap_up", "available"), 10, "agent 1002 freed")
    assert line.engine.acd.agent("1002").calls_taken == 1
    await expect_ok(agent)
    await line.no_channels_left()
