"""Warning SMS to the duty phones and dispatch SMS to a unit's phone, through Kannel."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.models import Call
from callcenter.config import SmsSettings
from callcenter.notices.service import NoticeService
from callcenter.sms.staff import DispatchTexts, SmsWarnings, SurgeWatch, service_level_warning
from callcenter.workorders.alerts import order_alert
from callcenter.workorders.categories import load_categories
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.models import Customer, WorkOrder
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


def test_a_surge_is_told_once_when_the_window_holds_enough_callers() -> None:
    watch = SurgeWatch(calls=3, window_s=60)
    assert [watch.heard(7, t) for t in (0, 10, 61)] == [None, None, None]    # the first one fell out
    assert watch.heard(8, 61) is None                                        # another outage counts apart
    assert watch.heard(7, 70) == 3
    assert [watch.heard(7, t) for t in range(71, 100)] == [None] * 29        # told once
    assert [watch.heard(8, t) for t in (62, 63)] == [None, 3]


@pytest.mark.parametrize(("figures", "warned"), [
    ({"answered": 40, "answered_within_rings_pct": 63.0}, True),
    ({"answered": 40, "answered_within_rings_pct": 80.0}, False),        # at the threshold: fine
    ({"answered": 3, "answered_within_rings_pct": 0.0}, False),          # three calls are no figure
    ({"answered": 0, "answered_within_rings_pct": None}, False),
])
def test_the_service_level_warns_below_its_threshold_once_an_hour(figures, warned) -> None:
    settings = SmsSettings(service_level_below_pct=80, service_level_min_calls=20)
    at = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    warning = service_level_warning(figures, settings, at)
    assert (warning is not None) == warned
    if warning:
        assert warning[0] == "service_level:2026-12-01T10" and "63%" in warning[1] and "低于80%" in warning[1]
        assert service_level_warning(figures, settings, at + timedelta(minutes=40))[0] == warning[0]
    assert service_level_warning(figures, SmsSettings(service_level_below_pct=0), at) is None   # turned off


async def test_fifty_callers_routed_to_one_outage_raise_one_warning_sms(
        gateway, hotline, sessionmaker, sms_settings, tmp_path) -> None:
    callers = [f"1360000{i:04d}" for i in range(50)]
    async with sessionmaker() as session, session.begin():
        session.add_all([Customer(number=n, account=f"a{n}", area="A1") for n in callers])
    notices = NoticeService(sessionmaker, tmp_path / "prompts", "Asia/Shanghai")
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    warnings = SmsWarnings(hotline.service, orders, "96666 供水服务热线", sms_settings, notices)
    warnings.phones = [DUTY]
    now = datetime.now(UTC)
    outage = await notices.create(kind="temporary", areas=["A1"], starts_at=now, ends_at=now + timedelta(hours=4),
                                  text="A1片区爆管抢修", by="sup")
    since = gateway.carrier.offset()
    heard = await asyncio.gather(*(notices.notice_for(n) for n in callers))     # what the engine asks per call
    assert {h.notice_id for h in heard} == {str(outage.id)}
    [(_, to, text)] = await gateway.carrier.wait_for(since, 1)
    assert to == DUTY and f"停水{outage.id}（A1）来电激增，已20通" in text
    assert await wait_until(lambda: _delivered(hotline, 1))
    assert len(gateway.carrier.received(since)) == 1


async def test_a_low_service_level_texts_the_duty_phone_once_an_hour(gateway, hotline, sessionmaker,
                                                                     sms_settings) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        for i in range(30):     # 30 answered in the last hour, 12 of them within three rings: 40%
            arrived = now - timedelta(minutes=50) + timedelta(seconds=60 * i)
            wait = timedelta(seconds=5 if i < 12 else 40)
            session.add(Call(id=f"sl-{i}", uniqueid=f"sl-{i}", linkedid=f"sl-{i}", channel="PJSIP/trunk-1",
                             caller_number="13812345678", arrived_at=arrived, agent_answered_at=arrived + wait,
                             agent_id="1001", disposition="answered", closed=True))
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    warnings = SmsWarnings(hotline.service, orders, "96666 供水服务热线", sms_settings)
    warnings.phones = [DUTY]
    since = gateway.carrier.offset()
    await warnings.housekeeping()
    await warnings.housekeeping()           # a minute later, the same hour: nothing more
    [(_, to, text)] = await gateway.carrier.wait_for(since, 1)
    assert to == DUTY and "服务水平40%，低于80%" in text and "接听30通" in text
    assert await wait_until(lambda: _delivered(hotline, 1))
    assert len(gateway.carrier.received(since)) == 1


async def _delivered(hotline, n: int) -> bool:
    return (await hotline.service.counts()).get("delivered", 0) >= n


async def _state(hotline, message_id: str, state: str) -> bool:
    return (await hotline.service.get(message_id)).state == state


async def _order_state(sessionmaker, order_id: int, state: str) -> bool:
    async with sessionmaker() as session:
        return (await session.get(WorkOrder, order_id)).state == state


async def _open_refs_are(hotline, refs: list[str]) -> bool:
    return await _open_refs(hotline) == refs
