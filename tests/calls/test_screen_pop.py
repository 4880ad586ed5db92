"""The screen pop: the caller's customer account, open orders (the earliest first, with the
owner), last calls and the outage running in their area — read from a real database (SQLite
and PostgreSQL), and published by the engine to the agent whose phone rings (fake AMI)."""
from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from callcenter.acd.live import LiveState
from callcenter.calls.models import Call
from callcenter.calls.screen_pop import OPEN_ORDERS_SHOWN, ScreenPops
from callcenter.notices.models import Outage
from callcenter.workorders.models import Customer, WorkOrder
from tests.calls.fake_line import agent, running_line

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CALLER = "13800138000"


def order(n: int, created_at: datetime, state: str = "accepted", agent_id: str | None = "1001",
          number: str = CALLER, **extra) -> WorkOrder:
    return WorkOrder(caller_number=number, category="leak", description=f"leak {n}", address="东区1号",
                     account="A-1", urgency="urgent", unit="pipes", agent_id=agent_id, state=state,
                     created_at=created_at, **extra)


def call(call_id: str, arrived_at: datetime, number: str = CALLER, **extra) -> Call:
    return Call(id=call_id, uniqueid=f"u-{call_id}", linkedid=f"u-{call_id}", channel=f"PJSIP/trunk-{call_id}",
                caller_number=number, arrived_at=arrived_at, **extra)


def outage(areas: list[str], starts_at: datetime, ends_at: datetime, **extra) -> Outage:
    return Outage(kind="temporary", areas=areas, starts_at=starts_at, ends_at=ends_at, text="东区停水抢修",
                  created_at=starts_at - timedelta(hours=1), created_by="sup", **extra)


async def test_the_pop_has_the_customer_their_open_orders_oldest_first_last_calls_and_the_running_outage(
        sessionmaker) -> None:
    async with sessionmaker() as db, db.begin():
        db.add_all([
            Customer(number=CALLER, account="A-1", name="王先生", address="东区1号", area="east"),
            order(1, NOW - timedelta(days=1), agent_id="1002", arrive_by=NOW + timedelta(hours=2),
                  reply_by=NOW + timedelta(days=3)),
            order(2, NOW - timedelta(days=3), state="dispatched", arrive_by=NOW - timedelta(hours=1)),
            order(3, NOW - timedelta(days=5), state="resolved"),            # closed: not shown
            order(4, NOW - timedelta(days=4), number="13900000000"),       # someone else's
            call("earlier", NOW - timedelta(days=3), agent_id="1001", disposition="answered", category="leak",
                 queue="leak"),
            call("yesterday", NOW - timedelta(days=1), disposition="abandoned_in_queue", queue="leak"),
            call("this-call", NOW),
            call("other", NOW - timedelta(hours=1), number="13900000000"),
            outage(["west"], NOW - timedelta(hours=2), NOW + timedelta(hours=2)),                # not their area
            outage(["east"], NOW - timedelta(hours=1), NOW + timedelta(hours=5)),
            outage(["east"], NOW + timedelta(hours=3), NOW + timedelta(hours=6)),                # not yet
            outage(["east"], NOW - timedelta(hours=3), NOW + timedelta(hours=1), cancelled=True),
        ])
    pop = await ScreenPops(sessionmaker).build(call_id="this-call", caller=CALLER, name="WANG", queue="leak",
                                               category="leak", now=NOW)
    assert {k: pop[k] for k in ("call_id", "caller", "name", "queue", "category", "customer_name", "account",
                                "address", "area", "open_orders_total")} == {
        "call_id": "this-call", "caller": CALLER, "name": "WANG", "queue": "leak", "category": "leak",
        "customer_name": "王先生", "account": "A-1", "address": "东区1号", "area": "east", "open_orders_total": 2}
    first, second = pop["open_orders"]
    assert (first["description"], first["owner"], first["state"]) == ("leak 2", "1001", "dispatched")
    assert (first["due"], datetime.fromisoformat(first["due_at"])) == ("arrive_by", NOW - timedelta(hours=1))
    assert (second["description"], second["owner"], second["due"]) == ("leak 1", "1002", "arrive_by")
    assert datetime.fromisoformat(second["created_at"]) == NOW - timedelta(days=1)
    assert [(c["call_id"], c["disposition"], c["agent_id"]) for c in pop["last_calls"]] == [
        ("yesterday", "abandoned_in_queue", None), ("earlier", "answered", "1001")]
    assert datetime.fromisoformat(pop["last_calls"][0]["arrived_at"]) == NOW - timedelta(days=1)
    running = pop["outage"]
    assert running["kind"] == "temporary" and running["text"] == "东区停水抢修"
    assert datetime.fromisoformat(running["ends_at"]) == NOW + timedelta(hours=5)
    assert datetime.fromisoformat(running["starts_at"]) == NOW - timedelta(hours=1)


async def test_a_caller_who_is_no_customer_gets_nulls_and_a_long_list_is_cut_but_counted(sessionmaker) -> None:
    async with sessionmaker() as db, db.begin():
        db.add_all([order(n, NOW - timedelta(hours=n)) for n in range(OPEN_ORDERS_SHOWN + 2)])
        db.add(outage(["east"], NOW - timedelta(hours=1), NOW + timedelta(hours=5)))
    pop = await ScreenPops(sessionmaker).build(call_id="c1", caller=CALLER, now=NOW)
    assert (pop["customer_name"], pop["account"], pop["address"], pop["area"], pop["outage"]) == (None,) * 5
    assert pop["open_orders_total"] == OPEN_ORDERS_SHOWN + 2
    assert [o["description"] for o in pop["open_orders"]] == [f"leak {n}" for n in
                                                              range(OPEN_ORDERS_SHOWN + 1, 1, -1)]
    assert pop["last_calls"] == []
    nobody = await ScreenPops(sessionmaker).build(call_id="c2", caller="", now=NOW)
    assert nobody["open_orders"] == [] and nobody["open_orders_total"] == 0 and nobody["customer_name"] is None


async def test_the_engine_pops_the_whole_screen_to_the_ringing_agent(settings, sessionmaker, redis_client) -> None:
    client, prefix = redis_client
    now = datetime.now(UTC)
    async with sessionmaker() as db, db.begin():
        db.add_all([Customer(number=CALLER, account="A-9", name="李女士", address="北区9号", area="north"),
                    order(1, now - timedelta(days=2), agent_id="1002"),
                    call("before", now - timedelta(days=2), agent_id="1002", disposition="answered"),
                    outage(["north"], now - timedelta(hours=1), now + timedelta(hours=4))])
    async with running_line(settings, sessionmaker, [agent("1001")]) as line:
        live = LiveState(client, prefix, "fake-line")
        line.engine.live = live
        pops: list[dict] = []

        async def listen() -> None:
            async for change in live.updates():
                if change["kind"] == "screen_pop":
                    pops.append(change)

        listener = asyncio.create_task(listen())
        try:
            async def subscribed() -> None:
                async with asyncio.timeout(5):
                    while not any(n for _, n in await client.pubsub_numsub(live.channel)):  # noqa: ASYNC110
                        await asyncio.sleep(0.01)

            await subscribed()
            await line.engine.login("1001")
            line.call_in(CALLER)
            await line.dial_sent()
            await line.until(lambda: bool(pops))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        line.hang_up()
        await line.until(lambda: line.engine.calls_closed == 1)
    assert pops[0]["id"] == "1001"
    pop = pops[0]["data"]
    assert (pop["caller"], pop["customer_name"], pop["account"], pop["address"]) == (CALLER, "李女士", "A-9", "北区9号")
    assert [(o["owner"], o["description"]) for o in pop["open_orders"]] == [("1002", "leak 1")]
    assert [c["call_id"] for c in pop["last_calls"]] == ["before"]
    assert pop["outage"]["text"] == "东区停水抢修" and pop["queue"] == "leak"
