"""Follow-up by SMS through Kannel: the SMS reaches the phone, the reply 2 returns the order."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from callcenter.sms import core
from callcenter.sms.followups import TEXT, SmsFollowUps, policy_of
from callcenter.workorders.categories import load_categories
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.lifecycle import Event
from callcenter.workorders.models import FollowUp, WorkOrder
from callcenter.workorders.service import WorkOrderService
from tests.sms.conftest import wait_until
from tests.workorders.test_service import a_call

CALLER = "13812345678"   # tests.workorders.test_service.a_call's caller


def test_the_policy_picks_sms_the_call_or_a_person_per_case(sms_settings) -> None:
    policy = policy_of(sms_settings.sms)
    assert policy.channel("leak", set()) == "sms"
    assert policy.channel("inquiry", set()) == "none" and policy.channel("praise", {"repeat"}) == "none"
    assert policy.channel("complaint", set()) == "person"
    assert policy.channel("leak", {"repeat"}) == "person" and policy.channel("leak", {"transferred"}) == "person"
    assert core.FollowUpPolicy(frozenset(), frozenset(), frozenset({"billing"}), frozenset()).channel(
        "billing", set()) == "call"


async def _resolved(sessionmaker, hotline, call_id: str) -> tuple[SmsFollowUps, int]:
    orders = WorkOrderService(sessionmaker, load_categories(), "Asia/Shanghai")
    sms_followups = SmsFollowUps(hotline.service, FollowUpService(sessionmaker, orders), "96666 供水服务热线")
    await a_call(sessionmaker, call_id)
    order = await orders.draft_from_call(call_id)
    for event in (Event.DISPATCH, Event.ACKNOWLEDGE, Event.ARRIVE, Event.RESOLVE):
        await orders.apply(order.id, event, "unit")
    return sms_followups, order.id


async def _follow_up(sessionmaker, order_id: int) -> FollowUp:
    async with sessionmaker() as session:
        return (await session.execute(select(FollowUp).where(FollowUp.order_id == order_id))).scalar_one()


async def _order_state(sessionmaker, order_id: int) -> str:
    async with sessionmaker() as session:
        return (await session.get(WorkOrder, order_id)).state


async def test_the_follow_up_sms_reaches_the_phone_and_a_reply_of_2_returns_the_order(
        gateway, hotline, sessionmaker) -> None:
    since = gateway.carrier.offset()
    _, order_id = await _resolved(sessionmaker, hotline, "sms-f1")
    follow_up = await _follow_up(sessionmaker, order_id)
    assert follow_up.state == "sms"
    [message] = await hotline.service.by_ref(f"followup:{follow_up.id}")
    expected = TEXT.format(hotline="96666", category="漏水", order=order_id).replace("{code}", message.reply_code)
    assert message.text == expected and message.parts == 1 and len(expected) <= 70
    got = await gateway.carrier.wait_for(since, 1)
    assert got == [("96666", CALLER, expected)]
    assert await wait_until(lambda: _message_state(hotline, message.id, "delivered"))
    gateway.inject_mo(CALLER, "2")
    assert await wait_until(lambda: _order_state_is(sessionmaker, order_id, "returned"))
    answered = await _follow_up(sessionmaker, order_id)
    assert answered.state == "unsatisfied" and answered.digit == "2" and answered.needs_agent


async def test_no_reply_within_the_window_falls_back_to_the_automated_call(gateway, hotline, sessionmaker) -> None:
    sms_followups, order_id = await _resolved(sessionmaker, hotline, "sms-f2")
    follow_up = await _follow_up(sessionmaker, order_id)
    [message] = await hotline.service.by_ref(f"followup:{follow_up.id}")
    assert await sms_followups.fall_back_to_calls(now=message.created_at + timedelta(hours=47)) == 0
    assert await sms_followups.fall_back_to_calls(now=message.created_at + timedelta(hours=48)) == 1
    fallen = await _follow_up(sessionmaker, order_id)
    assert fallen.state == "scheduled" and fallen.due_at >= message.created_at + timedelta(hours=48)
    assert await sms_followups.fall_back_to_calls(now=message.created_at + timedelta(hours=49)) == 0   # once


async def _message_state(hotline, message_id: str, state: str) -> bool:
    return (await hotline.service.get(message_id)).state == state


async def _order_state_is(sessionmaker, order_id: int, state: str) -> bool:
    return await _order_state(sessionmaker, order_id) == state
