"""Outage notices by SMS (停水通知短信): when a notice is published, every customer of the
affected areas gets one message; each change (new times, text or areas) one more, and its
cancellation one more. Temporary (unplanned) outages are urgent and go at any hour; planned
ones wait out the quiet hours — except for key customers (大客户: hospitals, factories,
schools), who are told at any hour and first. Keys make each customer's message once per
notice, event and revision, however often the event is told."""
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
CHANGED = "【{hotline}】停水通知变更：{text}（{start}至{end}）。回复TD退订"
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
            rows = (await session.execute(select(Customer.number, Customer.key_customer)
                                          .where(Customer.area.in_(outage.areas)))).all()
        key = {number for number, is_key in rows if is_key}
        textable = []
        # Key customers first; each number once.
        for number in sorted({number for number, _ in rows}, key=lambda n: (n not in key, n)):
            try:
                textable.append(self.sms.check_number(number))
            except ValueError:
                continue   # a landline: the notice before the menu reaches it
        zone = ZoneInfo(self.notices.timezone)
        start = outage.starts_at.astimezone(zone).strftime("%m月%d日%H:%M")
        end = outage.ends_at.astimezone(zone).strftime("%m月%d日%H:%M")
        template = {"cancelled": CANCELLED, "changed": CHANGED}.get(event, PUBLISHED)
        text = template.format(hotline=self.hotline_name, text=outage.text, start=start, end=end)
        told = f"changed{outage.revision}" if event == "changed" else event
        added = await self.sms.enqueue_many([
            Outgoing(n, text, "outage", key=f"outage:{outage.id}:{told}:{n}",
                     urgent=outage.kind == "temporary" or n in key, ref=f"outage:{outage.id}") for n in textable])
        log.info("outage %s %s: %d SMS to %d customers", outage.id, event, added, len(textable))
        return added
