"""Text messages to the hotline's own people.

- Warning SMS (热线预警短信) to the duty manager's and supervisors' phones (`sms.duty_phones`):
  an urgent order breaching its deadline, an escalation past level 1, an outage-driven surge
  (one message per event, however many calls it brings). Each warning expects a reply: any
  reply from a duty phone acknowledges it (the wallboard may too: `acknowledge`).
- Dispatch SMS (派单短信) to a unit's on-duty phone (`sms.unit_phones`) with the order's number,
  address, category and deadline; the unit's reply 1 (or 签收, with the short code when several
  are open) acknowledges the order as the unit API would.
Staff messages are not held by quiet hours and not subject to opt-out.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.sms import core
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import Outgoing, SmsService
from callcenter.workorders import lifecycle
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.service import WorkOrderService

log = logging.getLogger(__name__)
DISPATCH = "【派单】工单{order} {category} 地址：{address} 时限：{deadline}。回复1签收（多条请加编号{{code}}）"


class SmsWarnings:
    """An alert sink (callcenter/workorders/alerts.py) that texts the duty phones."""

    def __init__(self, sms: SmsService, orders: WorkOrderService, hotline_name: str) -> None:
        self.sms, self.orders = sms, orders
        orders.sinks.append(self)
        self.hotline_name = hotline_name.split()[0]
        self.phones = list(sms.settings.duty_phones)
        sms.reply_handlers["warning"] = self.acknowledged

    async def send(self, alert: dict[str, Any]) -> None:
        """Work-order alerts: an urgent order breaching its deadline; an escalation past level 1."""
        if alert.get("kind") != "escalated":
            return
        order_id, deadline = alert.get("order_id"), alert.get("deadline")
        category = self.orders.categories.categories.get(str(alert.get("category")))
        if deadline and category is not None and category.urgency == "urgent":
            # The deadline watcher escalates an order whose deadline passed.
            await self.warn(f"breached:{order_id}:{deadline}",
                            f"紧急工单{order_id}（{category.name}）已超{deadline}时限")
        if int(alert.get("escalation_level") or 0) > 1:
            await self.warn(f"escalated:{order_id}:{alert.get('escalation_level')}",
                            f"工单{order_id}已升级至第{alert.get('escalation_level')}级：{alert.get('reason', '')}")

    async def outage_surge(self, outage_id: int, calls: int, area: str) -> None:
        """One warning per outage event, however many calls it raises."""
        await self.warn(f"surge:outage:{outage_id}", f"停水{outage_id}（{area}）来电激增，已{calls}通")

    async def warn(self, event: str, text: str) -> int:
        messages = [Outgoing(phone, f"【{self.hotline_name}预警】{text}。回复1确认", "warning",
                             key=f"warning:{event}:{phone}", urgent=True, ref=f"warning:{event}", expects_reply=True)
                    for phone in self.phones]
        return await self.sms.enqueue_many(messages) if messages else 0

    async def acknowledged(self, message: SmsMessage, reply: core.Reply, now: datetime) -> None:
        """One duty phone's reply acknowledges the warning for all of them."""
        await self.sms.acknowledge(message.ref or "", message.number, now)
        log.info("warning %s acknowledged by %s", message.ref, message.number)


class DispatchTexts:
    def __init__(self, sms: SmsService, orders: WorkOrderService) -> None:
        self.sms, self.orders = sms, orders
        self.phones = dict(sms.settings.unit_phones)
        orders.dispatched_listeners.append(self.dispatched)
        sms.reply_handlers["dispatch"] = self.replied

    async def dispatched(self, order: WorkOrder, now: datetime) -> None:
        phone = self.phones.get(order.unit)
        if phone is None:
            return
        category = self.orders.categories.categories.get(order.category)
        deadline = order.arrive_by or order.result_by
        zone = ZoneInfo(self.orders.timezone)
        text = DISPATCH.format(order=order.id, category=category.name if category else order.category,
                               address=order.address or "见工单",
                               deadline=deadline.astimezone(zone).strftime("%m-%d %H:%M") if deadline else "见工单")
        await self.sms.enqueue(Outgoing(phone, text, "dispatch", key=f"dispatch:{order.id}:{order.returns}",
                                        ref=f"order:{order.id}", expects_reply=True), now)

    async def replied(self, message: SmsMessage, reply: core.Reply, now: datetime) -> None:
        if reply.digit != "1" or not (message.ref or "").startswith("order:"):
            return
        order_id = int((message.ref or "").removeprefix("order:"))
        unit = next((u for u, p in self.phones.items() if p == message.number), "unit")
        try:
            await self.orders.apply(order_id, lifecycle.Event.ACKNOWLEDGE, actor=f"{unit} (SMS)",
                                    reason="签收 by SMS reply", now=now)
        except lifecycle.IllegalTransition as exc:
            log.info("dispatch reply for order %s ignored: %s", order_id, exc)
