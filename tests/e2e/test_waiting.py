"""While the caller waits: announcements of place and wait, overflow, the agent's screen pop."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from callcenter.sipp import Key, caller_scenario, expect_ok
from callcenter.workorders.models import Customer
from tests.e2e.conftest import Hotline, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize("hotline", [{"acd": {"announce_first_after_s": 2, "announce_every_s": 4}}], indirect=True)
async def test_a_waiting_caller_hears_their_place_and_the_wait(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=14_000)          # a long first call
    first = await start_caller(line, "caller_first", caller_scenario(
        number="13900000001", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=30_000))
    await wait_until(lambda: line.agent_state("1001") == "on_call", 30, "the first caller talks to 1001")
    second = await start_caller(line, "caller_second", caller_scenario(
        number="13900000002", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=12_000))

    def second_session():
        return next((s for s in line.engine.sessions.values() if s.caller_number == "13900000002"), None)

    await wait_until(lambda: second_session() is not None and second_session().announcements >= 1, 30,
                     "the second caller heard an announcement")
    await expect_ok(second, 40)
    await expect_ok(first)
    calls = {c.caller_number: c for c in await line.closed_calls(2, timeout=30)}
    assert calls["13900000001"].disposition == "answered"
    # The second caller came when 1001 had just answered; it gives up after 12 s, before 1001's 14 s talk ends.
    assert calls["13900000002"].disposition == "abandoned_in_queue"
    await expect_ok(agent)
    await line.no_channels_left(timeout=30)


@pytest.mark.parametrize("hotline", [{"queues": [
    {"name": "general", "title": "综合", "category": "other"},
    {"name": "leak", "title": "漏水", "category": "leak", "max_wait_s": 3, "overflow_to": "general"},
    {"name": "billing", "title": "水费", "category": "billing"},
    {"name": "complaint", "title": "投诉", "category": "complaint"},
]}], indirect=True)
async def test_a_caller_who_waits_too_long_overflows_to_another_queue(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1002", queues=["general"])            # nobody on the leak queue
    agent = await start_agent(line, "1002", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_overflow", caller_scenario(
        keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=40_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert call.category == "leak" and call.queue == "general"      # came in on leak, answered from general
    assert call.agent_id == "1002" and call.disposition == "answered"
    await expect_ok(caller, 30)
    await expect_ok(agent)
    await line.no_channels_left()


async def test_the_agent_gets_a_screen_pop_with_the_callers_last_calls(hotline: Hotline, redis_client) -> None:
    from callcenter.acd.live import LiveState

    line = hotline
    client, _ = redis_client
    live = LiveState(client, line.settings.redis.prefix, "e2e")
    line.engine.live = live
    pops: list[dict] = []

    async def listen() -> None:
        async for change in live.updates():
            if change["kind"] == "screen_pop":
                pops.append(change)

    listener = asyncio.create_task(listen())

    async def subscribed() -> bool:
        return any(count for _, count in await client.pubsub_numsub(live.channel))

    await wait_until(subscribed, 5, "the listener follows the live channel")
    async with line.sessionmaker() as session, session.begin():
        session.add(Customer(number="13700000007", account="W-7", name="张先生", address="东区7号", area="east"))
    await line.engine.login("1003")
    agent = await start_agent(line, "1003", hangup_after_ms=1500, calls=2)
    for n in range(2):
        caller = await start_caller(line, f"caller_pop{n}", caller_scenario(
            number="13700000007", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=20_000))
        await line.closed_calls(n + 1, timeout=45)
        await expect_ok(caller, 30)
        await wait_until(lambda: line.agent_state("1003") == "available", 15, "1003 free again")

        async def drafted(n: int = n) -> bool:
            return len(await line.work_orders()) == n + 1

        await wait_until(drafted, 15, "the call's work order is drafted")
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    assert len(pops) == 2 and all(p["id"] == "1003" for p in pops)
    assert pops[0]["data"]["caller"] == "13700000007" and pops[0]["data"]["last_calls"] == []
    assert [c["agent_id"] for c in pops[1]["data"]["last_calls"]] == ["1003"]
    first, second = pops[0]["data"], pops[1]["data"]
    assert (first["customer_name"], first["account"], first["address"]) == ("张先生", "W-7", "东区7号")
    assert first["open_orders"] == [] and first["outage"] is None
    # The first call's order is still open: the second pop shows it, with its owner (首问负责制).
    assert [(o["owner"], o["state"]) for o in second["open_orders"]] == [("1003", "accepted")]
    await expect_ok(agent)   # its two calls
    await line.no_channels_left()


@pytest.mark.parametrize("hotline", [{"queues": [
    {"name": "general", "title": "综合", "category": "other"},
    {"name": "leak", "title": "漏水", "category": "leak"},
    # Billing keeps office hours on a calendar no caller can hit (one second after midnight):
    {"name": "billing", "title": "水费", "category": "billing", "open_hours": ["00:00-00:00:01"],
     "when_closed": "general"},
    {"name": "complaint", "title": "投诉", "category": "complaint"},
]}], indirect=True)
async def test_a_closed_queue_sends_its_callers_to_the_queue_that_covers_it(hotline: Hotline) -> None:
    line = hotline
    await line.engine.login("1003", queues=["general"])
    agent = await start_agent(line, "1003", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_billing_closed", caller_scenario(
        keys=(Key("3", MENU_KEY_AFTER_MS),), hangup_after_ms=30_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert (call.category, call.queue, call.agent_id, call.disposition) == ("billing", "general", "1003", "answered")
    await expect_ok(caller, 30)
    await expect_ok(agent)
    await line.no_channels_left()
