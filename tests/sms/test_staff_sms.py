"""Warning SMS to the duty phones and dispatch SMS to a unit's phone, through Kannel."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from callcenter.sms.staff import DispatchTexts, SmsWarnings
from callcenter.workorders.alerts import order_alert
from callcenter.workorders.categories import load_categories
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.service import WorkOrderService
from tests.sms.conftest import wait_until
from tests.workorders.test_service import a_call

DUTY = "13900009999"
UNIT_PHONE = "13900008888"


async def test_an_urgent_breach_warns_the_duty_manager_once_and_a_surge_is_one_message(
        gateway, hotline, sessionmaker) -> None:
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    warnings = SmsWarnings(hotline.service, orders, "96666 供水服务热线")
    warnings.phones = [DUTY]
    await a_call(sessionmaker, "sms-w1")                       # a leak: urgent
    order = await orders.draft_from_call("sms-w1")
    since = gateway.carrier.offset()
    now = datetime.now(UTC)
    alert = order_alert("escalated", order, "arrive passed 1 min ago", now, "arrive")
    for sink in orders.sinks:                                  # the watcher tells it; told again, nothing more
        await sink.send(alert)
        await sink.send(alert)
    await asyncio.gather(*(warnings.outage_surge(7, calls, "A1") for calls in range(1, 51)))   # 50 calls, one outage
    got = await gateway.carrier.wait_for(since, 2)
    assert await wait_until(lambda: _delivered(hotline, 2))
    got = gateway.carrier.received(since)
    assert len(got) == 2 and {g[1] for g in got} == {DUTY}
    assert any(f"紧急工单{order.id}" in g[2] for g in got) and any("停水7" in g[2] for g in got)
    gateway.inject_mo(DUTY, f"1#{(await hotline.service.by_ref('warning:surge:outage:7'))[0].reply_code}")
    assert await wait_until(lambda: _open_refs_are(hotline, [f"warning:breached:{order.id}:arrive"]))
    assert await hotline.service.acknowledge(f"warning:breached:{order.id}:arrive", "sup") == 1   # the wallboard
    assert await hotline.service.open_warnings() == []


async def _open_refs(hotline) -> list[str]:
    return [m.ref for m in await hotline.service.open_warnings()]


async def test_a_dispatch_sms_reaches_the_unit_and_its_reply_acknowledges_the_order(
        gateway, hotline, sessionmaker) -> None:
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    dispatch = DispatchTexts(hotline.service, orders)
    dispatch.phones = {"repair_team": UNIT_PHONE}
    await a_call(sessionmaker, "sms-d1")
    order = await orders.draft_from_call("sms-d1")
    since = gateway.carrier.offset()
    await orders.apply(order.id, Event.DISPATCH, "agent")
    [(_, to, text)] = await gateway.carrier.wait_for(since, 1)
    assert to == UNIT_PHONE and f"工单{order.id}" in text and "漏水" in text and "时限" in text
    [message] = await hotline.service.by_ref(f"order:{order.id}")
    assert await wait_until(lambda: _state(hotline, message.id, "delivered"))
    gateway.inject_mo(UNIT_PHONE, "签收")
    assert await wait_until(lambda: _order_state(sessionmaker, order.id, "acknowledged"))


async def _delivered(hotline, n: int) -> bool:
    return (await hotline.service.counts()).get("delivered", 0) >= n


async def _state(hotline, message_id: str, state: str) -> bool:
    return (await hotline.service.get(message_id)).state == state


async def _order_state(sessionmaker, order_id: int, state: str) -> bool:
    async with sessionmaker() as session:
        return (await session.get(WorkOrder, order_id)).state == state


async def _open_refs_are(hotline, refs: list[str]) -> bool:
    return await _open_refs(hotline) == refs
