"""Follow-up by SMS (短信回访): the policy picks SMS, the automated call or a person per case;
the SMS asks for 1 satisfied / 2 unsatisfied / 3 not resolved; the reply (matched by number
and time, by its short code when several are open) is recorded as the automated call's key
would be, so unsatisfied or not resolved returns the order by the same rule (first time back
to the unit, second time to a supervisor). No reply within the window: the automated call.
A follow-up SMS that cannot be delivered goes to a person (or is retried, by the settings).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from callcenter.config import SmsSettings
from callcenter.sms import core
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import Outgoing, SmsService
from callcenter.workorders.deadlines import next_follow_up_slot
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.models import FollowUp, WorkOrder

log = logging.getLogger(__name__)
BY_SMS, BY_AGENT = "sms", "by_agent"   # FollowUp.state while the SMS waits; a person's to make
TEXT = ("【{hotline}】您反映的{category}问题（工单{order}）已处理，请回复：1满意 2不满意 3未解决。"
        "如有多条待评价，请在数字后加编号{{code}}。回复TD退订")


def policy_of(settings: SmsSettings) -> core.FollowUpPolicy:
    return core.FollowUpPolicy(frozenset(settings.follow_up_none), frozenset(settings.follow_up_person),
                               frozenset(settings.follow_up_call), frozenset(settings.follow_up_person_when))


def cases_of(order: WorkOrder) -> set[str]:
    cases = set()
    if order.repeat_of is not None:
        cases.add("repeat")
    if order.transferred:
        cases.add("transferred")
    if order.escalation_level > 0:
        cases.add("escalated")
    return cases


class SmsFollowUps:
    def __init__(self, sms: SmsService, followups: FollowUpService, hotline_name: str) -> None:
        self.sms, self.followups, self.orders = sms, followups, followups.orders
        self.hotline_name = hotline_name.split()[0]
        self.policy = policy_of(sms.settings)
        # After the automated call's own listener (it may have scheduled a call already).
        self.orders.resolved_listeners.append(self.order_resolved)
        sms.reply_handlers["follow_up"] = self.replied
        sms.failure_handlers["follow_up"] = self.undeliverable

    async def order_resolved(self, order: WorkOrder, now: datetime) -> None:
        channel = self.policy.channel(order.category, cases_of(order))
        if channel == "none":
            return
        follow_up = await self._follow_up_of(order.id)
        if channel == "call":
            if follow_up is None:
                await self.followups.schedule(order.id, now)
            return
        if follow_up is None or follow_up.state in ("unsatisfied", "not_resolved"):
            # (resolved again after a return: a new follow-up)
            follow_up = await self.followups.schedule(order.id, now)
        elif follow_up.state != "scheduled":
            return   # already under way or answered
        if channel == "person":
            await self._set(follow_up.id, state=BY_AGENT, needs_agent=True)
            return
        await self._set(follow_up.id, state=BY_SMS)
        category = self.orders.categories.categories.get(order.category)
        text = TEXT.format(hotline=self.hotline_name, category=category.name if category else order.category,
                           order=order.id)
        try:
            await self.sms.enqueue(Outgoing(follow_up.number, text, "follow_up", key=f"followup:{follow_up.id}",
                                            ref=f"followup:{follow_up.id}", expects_reply=True), now)
        except ValueError as exc:   # the number may not be texted: the automated call instead
            log.info("follow-up %s by call: %s", follow_up.id, exc)
            await self._set(follow_up.id, state="scheduled")

    async def replied(self, message: SmsMessage, reply: core.Reply, now: datetime) -> None:
        answer = core.FOLLOW_UP_DIGITS.get(reply.digit)
        follow_up_id = (message.ref or "").removeprefix("followup:")
        if answer is None or not follow_up_id:
            return
        # 3 (not resolved) contradicts the unit's report as 2 does.
        await self.followups.record_answer(follow_up_id, "1" if answer == "satisfied" else "2", now)
        if answer == "not_resolved":
            await self._set(follow_up_id, state="not_resolved", digit="3")

    async def undeliverable(self, message: SmsMessage, now: datetime) -> None:
        follow_up_id = (message.ref or "").removeprefix("followup:")
        if follow_up_id:
            await self._set(follow_up_id, state=BY_AGENT, needs_agent=True)

    async def housekeeping(self) -> None:
        await self.fall_back_to_calls()

    async def fall_back_to_calls(self, now: datetime | None = None) -> int:
        """Follow-up SMS whose reply window closed unanswered: the automated call, in its windows."""
        now = now or self.sms.clock.now()
        moved = 0
        for message in await self.sms.expired_replies("follow_up", now):
            follow_up_id = (message.ref or "").removeprefix("followup:")
            await self.sms.close_reply_window(message.id)
            if follow_up_id:
                await self._set(follow_up_id, state="scheduled", due_at=next_follow_up_slot(now, self.orders.timezone),
                                only_from=BY_SMS)
                moved += 1
        return moved

    async def _follow_up_of(self, order_id: int) -> FollowUp | None:
        async with self.sms.sessionmaker() as session:
            return (await session.execute(select(FollowUp).where(FollowUp.order_id == order_id)
                                          .order_by(FollowUp.created_at.desc()).limit(1))).scalar_one_or_none()

    async def _set(self, follow_up_id: str, only_from: str | None = None, **values: object) -> None:
        async with self.sms.sessionmaker() as session, session.begin():
            follow_up = await session.get(FollowUp, follow_up_id)
            if follow_up is None or (only_from is not None and follow_up.state != only_from):
                return
            for key, value in values.items():
                setattr(follow_up, key, value)
