"""Outage notices by SMS (停水通知短信): when a notice is published, every customer of the
affected areas gets one message; when it is cancelled, one more. Temporary (unplanned)
outages are urgent and go at any hour; planned ones wait out the quiet hours. Keys make each
customer's message once per notice and event, however often the event is told."""
from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.notices.models import Outage
from callcenter.notices.service import NoticeService
from callcenter.sms.service import Outgoing, SmsService
from callcenter.workorders.models import Customer

log = logging.getLogger(__name__)
PUBLISHED = "【{hotline}】停水通知：{text}（{start}至{end}）。回复TD退订"
CANCELLED = "【{hotline}】原定{start}至{end}的停水已取消，供水正常。回复TD退订"


class OutageTexts:
    def __init__(self, sms: SmsService, notices: NoticeService, hotline_name: str) -> None:
        self.sms, self.notices = sms, notices
        self.hotline_name = hotline_name.split()[0]
        notices.listeners.append(self.told)

    async def told(self, event: str, outage: Outage) -> None:
        await self.send(event, outage)

    async def send(self, event: str, outage: Outage) -> int:
        """Enqueue the event's messages; the number added."""
        async with self.sms.sessionmaker() as session:
            numbers = sorted(set((await session.execute(
                select(Customer.number).where(Customer.area.in_(outage.areas)))).scalars()))
        textable = []
        for number in numbers:
            try:
                textable.append(self.sms.check_number(number))
            except ValueError:
                continue   # a landline: the notice before the menu reaches it
        zone = ZoneInfo(self.notices.timezone)
        start = outage.starts_at.astimezone(zone).strftime("%m月%d日%H:%M")
        end = outage.ends_at.astimezone(zone).strftime("%m月%d日%H:%M")
        template = CANCELLED if event == "cancelled" else PUBLISHED
        text = template.format(hotline=self.hotline_name, text=outage.text, start=start, end=end)
        added = await self.sms.enqueue_many([
            Outgoing(n, text, "outage", key=f"outage:{outage.id}:{event}:{n}", urgent=outage.kind == "temporary",
                     ref=f"outage:{outage.id}") for n in textable])
        log.info("outage %s %s: %d SMS to %d customers", outage.id, event, added, len(textable))
        return added
