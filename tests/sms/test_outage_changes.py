"""Outage notices by SMS, below Kannel (the messages as stored): key customers first and at any
hour, each change told once per revision, an area never taken away by a change."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.config import SmsSettings
from callcenter.notices.service import NoticeError, NoticeService
from callcenter.sms.models import SmsMessage
from callcenter.sms.outages import OutageTexts
from callcenter.sms.service import SmsService
from callcenter.workorders.models import Customer

TZ = "Asia/Shanghai"
NIGHT = datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo(TZ)).astimezone(UTC)    # inside the quiet hours
MORNING = datetime(2026, 12, 2, 8, 0, tzinfo=ZoneInfo(TZ)).astimezone(UTC)    # when they end


class At:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return 0.0

    def call_later(self, delay, callback, *args):   # not used by the store
        raise AssertionError("no timers here")


@pytest.fixture
async def outages(sessionmaker, tmp_path):
    async with sessionmaker() as session, session.begin():
        session.add_all([Customer(number="13700000001", account="h", name="市第一医院", area="A1", key_customer=True),
                         Customer(number="13700000002", account="r2", area="A1"),
                         Customer(number="13700000003", account="r3", area="A1"),
                         Customer(number="13700000004", account="r4", area="B2")])
    sms = SmsService(sessionmaker, SmsSettings(quiet_start="21:00", quiet_end="08:00"), TZ, clock=At(NIGHT))
    notices = NoticeService(sessionmaker, tmp_path / "prompts", TZ)
    OutageTexts(sms, notices, "96666 供水服务热线")
    return sms, notices


async def stored(sessionmaker) -> list[SmsMessage]:
    async with sessionmaker() as session:
        return list((await session.execute(select(SmsMessage).order_by(SmsMessage.created_at,
                                                                        SmsMessage.idempotency_key))).scalars())


async def test_a_planned_notice_at_night_reaches_the_key_customer_now_and_the_others_in_the_morning(
        outages, sessionmaker) -> None:
    _, notices = outages
    await notices.create(kind="planned", areas=["A1"], starts_at=NIGHT + timedelta(days=12),
                         ends_at=NIGHT + timedelta(days=12, hours=6), text="A1片区管网改造", by="sup", now=NIGHT)
    rows = await stored(sessionmaker)
    due = {m.number: m.next_attempt_at for m in rows}
    assert due == {"13700000001": NIGHT, "13700000002": MORNING, "13700000003": MORNING}
    assert [m.urgent for m in rows if m.number == "13700000001"] == [True]


async def test_each_change_is_told_once_to_every_area_and_an_area_cannot_be_taken_away(outages, sessionmaker) -> None:
    _, notices = outages
    outage = await notices.create(kind="temporary", areas=["A1"], starts_at=NIGHT + timedelta(hours=2),
                                  ends_at=NIGHT + timedelta(hours=6), text="A1片区管道抢修", by="sup", now=NIGHT)
    changed = await notices.change(outage.id, by="sup", ends_at=NIGHT + timedelta(hours=9), areas=["A1", "B2"],
                                   now=NIGHT)
    assert changed.revision == 1 and changed.areas == ["A1", "B2"]
    await notices.change(outage.id, by="sup", text="A1、B2片区管道抢修，延长至早上", now=NIGHT)
    texts = [(m.number, m.text) for m in await stored(sessionmaker)]
    first = [n for n, t in texts if "变更" not in t]
    firsts_change = [n for n, t in texts if "变更" in t and "延长" not in t]
    second_change = [n for n, t in texts if "延长" in t]
    assert sorted(first) == ["13700000001", "13700000002", "13700000003"]
    assert sorted(firsts_change) == sorted(second_change) == ["13700000001", "13700000002", "13700000003",
                                                              "13700000004"]
    assert all("08:30" in t for n, t in texts if "变更" in t)       # the new end, local time
    with pytest.raises(NoticeError, match="areas: B2 cannot be taken away"):
        await notices.change(outage.id, by="sup", areas=["A1"], now=NIGHT)
    with pytest.raises(NoticeError, match="nothing to change"):
        await notices.change(outage.id, by="sup", areas=["A1", "B2"], now=NIGHT)
    await notices.cancel(outage.id)
    with pytest.raises(LookupError, match="cancelled"):
        await notices.change(outage.id, by="sup", text="x", now=NIGHT)
    assert len(await stored(sessionmaker)) == 3 + 4 + 4 + 4       # published, two changes, the cancellation


async def test_a_changed_text_is_spoken_again_in_place(outages, tmp_path) -> None:
    _, notices = outages
    outage = await notices.create(kind="temporary", areas=["A1"], starts_at=NIGHT + timedelta(hours=2),
                                  ends_at=NIGHT + timedelta(hours=6), text="抢修", by="sup", now=NIGHT)
    prompt = tmp_path / "prompts" / f"notice_{outage.id}.wav"
    before = prompt.read_bytes()
    await notices.change(outage.id, by="sup", text="A1片区管道抢修，预计早上六点恢复供水", now=NIGHT)
    assert prompt.read_bytes() != before and len(prompt.read_bytes()) > len(before)
    assert [p.name for p in prompt.parent.iterdir()] == [prompt.name]     # no pending file left
