"""Outage notices by SMS through Kannel: exactly the customers of the area, once each, and
the cancellation too."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.notices.service import NoticeService
from callcenter.sms.outages import OutageTexts
from callcenter.workorders.models import Customer
from tests.sms.conftest import wait_until


async def test_a_notice_for_a1_reaches_its_customers_once_and_so_does_its_cancellation(
        gateway, hotline, sessionmaker, tmp_path) -> None:
    a1 = [f"1370000{i:04d}" for i in range(5)]
    async with sessionmaker() as session, session.begin():
        session.add_all([Customer(number=n, account=f"a{n}", area="A1") for n in a1])
        session.add_all([Customer(number="13711110000", account="b", area="B2"),
                         Customer(number="057188886666", account="c", area="A1")])   # a landline: no SMS
    notices = NoticeService(sessionmaker, tmp_path / "prompts", "Asia/Shanghai")
    OutageTexts(hotline.service, notices, "96666 供水服务热线")
    since = gateway.carrier.offset()
    now = datetime.now(UTC)
    outage = await notices.create(kind="temporary", areas=["A1"], starts_at=now + timedelta(hours=2),
                                  ends_at=now + timedelta(hours=6), text="A1片区管道抢修", by="sup")
    got = await gateway.carrier.wait_for(since, 5)
    assert sorted(g[1] for g in got) == a1 and all("A1片区管道抢修" in g[2] for g in got)
    await notices.cancel(outage.id)
    await notices.cancel(outage.id)            # told twice: sent once
    got = await gateway.carrier.wait_for(since, 10)
    cancelled = [g for g in got if "已取消" in g[2]]
    assert sorted(g[1] for g in cancelled) == a1
    assert await wait_until(lambda: _delivered(hotline, 10))
    assert len(gateway.carrier.received(since)) == 10


async def _delivered(hotline, n: int) -> bool:
    return (await hotline.service.counts()).get("delivered", 0) >= n
