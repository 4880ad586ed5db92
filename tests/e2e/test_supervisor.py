"""Supervisor tools on the real Asterisk: listen on an agent's call through ChanSpy; every use
is kept; agents may not."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from callcenter.calls.models import Supervision
from callcenter.sipp import Key, caller_scenario, expect_ok
from tests.e2e.conftest import Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


async def test_a_supervisor_listens_on_an_agents_call(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=60_000)
    supervisor_phone = await start_agent(line, "1004", hangup_after_ms=60_000)   # 1004's phone is the supervisor's
    caller = await start_caller(line, "caller_spied", caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                                      hangup_after_ms=12_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "agent 1001 on the call")
    with pytest.raises(ValueError, match="not on a call"):
        await line.engine.spy("1002", "1004", "listen", "sup")
    done = await line.engine.spy("1001", "1004", "listen", "sup")
    await wait_until(lambda: "ChanSpy" in line.rig.rx("core show channels concise"), 15,
                     "the supervisor's phone runs ChanSpy")
    assert done["agent_channel"].startswith("PJSIP/1001-")
    async with line.sessionmaker() as session:
        [kept] = (await session.execute(select(Supervision))).scalars().all()
    assert (kept.supervisor, kept.agent_id, kept.mode, kept.call_id) == ("sup", "1001", "listen", done["call_id"])
    await expect_ok(caller)
    for phone in (agent, supervisor_phone):
        await expect_ok(phone)   # the agent's call, and the supervisor's ChanSpy call: both end with the caller
    await line.no_channels_left()
