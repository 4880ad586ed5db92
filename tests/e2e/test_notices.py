"""Outage notices on the real Asterisk: only callers from the affected area hear the notice
before the menu, and one of them presses 1 to leave (the notice was all they needed)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.notices.service import NoticeService
from callcenter.sipp import Key, caller_scenario, expect_ok
from callcenter.workorders.models import Customer
from tests.e2e.conftest import Hotline
from tests.e2e.test_spine import start_caller

pytestmark = pytest.mark.asterisk


async def test_the_notice_is_heard_only_by_callers_from_the_area(hotline: Hotline) -> None:
    line = hotline
    async with line.sessionmaker() as session, session.begin():
        session.add_all([Customer(number="13922220001", account="A-1", address="东区幸福路 1 号", area="east"),
                         Customer(number="13922220002", account="A-2", address="西区和平路 2 号", area="west")])
    notices = NoticeService(line.sessionmaker, line.settings.paths.prompts_dir, line.settings.hotline.timezone)
    now = datetime.now(UTC)
    outage = await notices.create(kind="temporary", areas=["east"], starts_at=now - timedelta(hours=1),
                                  ends_at=now + timedelta(hours=5), text="东区今日抢修停水，预计十八点恢复供水。",
                                  cause="主管道爆裂", by="sup")
    assert outage.announced_late   # a burst main is announced as it happens, not 24 h ahead
    line.engine.notices_lookup = notices.notice_for
    east = await start_caller(line, "caller_east", caller_scenario(number="13922220001", keys=(Key("1", 2000),),
                                                                   hangup_after_ms=8000))
    west = await start_caller(line, "caller_west", caller_scenario(number="13922220002", hangup_after_ms=3000))
    await expect_ok(east)
    await expect_ok(west)
    calls = {c.caller_number: c for c in await line.closed_calls(2)}
    assert calls["13922220001"].ivr_path[:2] == ["notice", "notice:left"]
    assert calls["13922220001"].disposition == "message_only"
    assert "notice" not in calls["13922220002"].ivr_path and calls["13922220002"].disposition == "abandoned_in_ivr"
    assert await notices.expected_load() == {"outages": 1, "areas": 1, "customers_affected": 1}
    await line.no_channels_left()
