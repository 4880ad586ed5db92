"""Text messages to the hotline's own people.

- Warning SMS (热线预警短信) to the duty manager's and supervisors' phones (`sms.duty_phones`):
  an urgent order breaching its deadline, an escalation past level 1, an outage-driven surge
  (`sms.surge_calls` callers routed to one outage's notice within `sms.surge_window_s`: one
  message per outage, however many calls it brings), and the service level (answered within
  three rings over the last `sms.service_level_window_min` minutes) below
  `sms.service_level_below_pct` — at most one a clock hour while it stays low, and only once
  `sms.service_level_min_calls` calls were answered in the window (three calls are no
  figure). Each warning expects a reply: any reply from a duty phone acknowledges it (the
  wallboard may too: `acknowledge`).
- Dispatch SMS (派单短信) to a unit's on-duty phone (`sms.unit_phones`) with the order's number,
  address, category and deadline; the unit's reply 1 (or 签收, with the short code when several
  are open) acknowledges the order as the unit API would.
Staff messages are not held by quiet hours and not subject to opt-out.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.config import Settings, SmsSettings
from callcenter.notices.service import NoticeService
from callcenter.sms import core
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import Outgoing, SmsService
from callcenter.web.stats import period
from callcenter.workorders import lifecycle
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.service import WorkOrderService

log = logging.getLogger(__name__)
DISPATCH = "【派单】工单{order} {category} 地址：{address} 时限：{deadline}。回复1签收（多条请加编号{{code}}）"


class SurgeWatch:
    """Callers routed to each outage's notice within a sliding window (pure): `heard` gives the
    count once, when it first reaches `calls`, and nothing for that outage afterwards."""

    def __init__(self, calls: int, window_s: float) -> None:
        self.calls, self.window_s = calls, window_s
        self._heard: dict[int, deque[float]] = {}
        self._told: set[int] = set()

    def heard(self, outage_id: int, at: float) -> int | None:
        if outage_id in self._told:
            return None
        times = self._heard.setdefault(outage_id, deque())
        times.append(at)
        while at - times[0] > self.window_s:
            times.popleft()
        if len(times) < self.calls:
            return None
        self._told.add(outage_id)
        del self._heard[outage_id]
        return len(times)


def service_level_warning(figures: dict[str, Any], settings: SmsSettings,
                          local_now: datetime) -> tuple[str, str] | None:
    """(event, text) when the window's service level is below the threshold; the event names
    the clock hour, so a level that stays low warns once an hour."""
    threshold, pct = settings.service_level_below_pct, figures.get("answered_within_rings_pct")
    answered = int(figures.get("answered") or 0)
    if threshold <= 0 or pct is None or answered < settings.service_level_min_calls or pct >= threshold:
        return None
    return (f"service_level:{local_now.strftime('%Y-%m-%dT%H')}",
            f"服务水平{pct:.0f}%，低于{threshold:.0f}%（近{settings.service_level_window_min}分钟接听{answered}通）")


class SmsWarnings:
    """An alert sink (callcenter/workorders/alerts.py) that texts the duty phones; it also
    watches the callers routed to outage notices and the service level."""

    def __init__(self, sms: SmsService, orders: WorkOrderService, hotline_name: str,
                 settings: Settings | None = None, notices: NoticeService | None = None) -> None:
        self.sms, self.orders, self.settings = sms, orders, settings
        orders.sinks.append(self)
        self.hotline_name = hotline_name.split()[0]
        self.phones = list(sms.settings.duty_phones)
        sms.reply_handlers["warning"] = self.acknowledged
        self.surge = SurgeWatch(sms.settings.surge_calls, sms.settings.surge_window_s)
        self._tasks: set[asyncio.Task[Any]] = set()
        if notices is not None:
            notices.heard.append(self.heard)

    def heard(self, outage_id: int, area: str) -> None:
        """A caller was routed to an outage's notice (on the call's path: the message is sent
        by a task of its own)."""
        calls = self.surge.heard(outage_id, time.monotonic())
        if calls is not None:
            task = asyncio.get_running_loop().create_task(self.outage_surge(outage_id, calls, area))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def housekeeping(self) -> None:
        """The service level of the last window, warned of when it is low."""
        if self.settings is None:
            return
        now = self.sms.clock.now()
        window = timedelta(minutes=self.sms.settings.service_level_window_min)
        figures = await period(self.sms.sessionmaker, self.settings, now - window, now)
        warning = service_level_warning(figures, self.sms.settings,
                                        now.astimezone(ZoneInfo(self.settings.hotline.timezone)))
        if warning is not None:
            await self.warn(*warning)

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
