"""Outage notices: the rules on notice ahead of time, bad input, the area lookup, the menu step."""
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.ivr.flow import Hangup, IvrFlow, Notice, PlayAndCollect, PlayMessage
from callcenter.ivr.model import load_menu
from callcenter.notices.service import NoticeError, NoticeService, announced_late
from callcenter.workorders.models import Customer

TZ = "Asia/Shanghai"
# Friday 2026-09-25 10:00 local; National Day week follows (1–8 Oct off, 27 Sep and 10 Oct worked).
FRIDAY = datetime(2026, 9, 25, 2, 0, tzinfo=UTC)


def test_planned_outages_need_seven_working_days_and_temporary_ones_a_day() -> None:
    assert announced_late("planned", FRIDAY + timedelta(days=7), FRIDAY, TZ)            # the holiday is not work
    assert not announced_late("planned", FRIDAY + timedelta(days=20), FRIDAY, TZ)
    assert announced_late("temporary", FRIDAY + timedelta(hours=23), FRIDAY, TZ)
    assert not announced_late("temporary", FRIDAY + timedelta(hours=25), FRIDAY, TZ)


@pytest.fixture
def notices(sessionmaker, tmp_path) -> NoticeService:
    return NoticeService(sessionmaker, tmp_path / "prompts", TZ)


async def test_bad_notices_are_refused_with_the_key(notices) -> None:
    now = datetime.now(UTC)
    good = {"kind": "planned", "areas": ["east"], "starts_at": now + timedelta(days=30),
            "ends_at": now + timedelta(days=30, hours=8), "text": "计划停水", "by": "sup"}
    for change, message in (({"kind": "someday"}, "kind"), ({"areas": [" "]}, "areas"), ({"text": ""}, "text"),
                            ({"ends_at": now + timedelta(days=29)}, "ends_at: must be after"),
                            ({"starts_at": now - timedelta(days=3), "ends_at": now - timedelta(days=2)},
                             "already past"),
                            ({"starts_at": datetime(2026, 12, 1)}, "time zone")):
        with pytest.raises(NoticeError, match=message):
            await notices.create(**{**good, **change})
    assert await notices.current() == []


async def test_only_customers_in_an_affected_area_get_the_notice(notices, sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        session.add_all([Customer(number="1", account="a", address="x", area="east"),
                         Customer(number="2", account="b", address="y", area="west")])
    now = datetime.now(UTC)
    outage = await notices.create(kind="temporary", areas=["east", "north"], starts_at=now, text="东区停水",
                                  ends_at=now + timedelta(hours=3), by="sup")
    assert (notices.prompts_dir / f"notice_{outage.id}.wav").stat().st_size > 1000
    assert await notices.notice_for("1") == Notice(prompt=f"notice_{outage.id}", notice_id=str(outage.id))
    assert await notices.notice_for("2") is None and await notices.notice_for("unknown") is None
    assert await notices.notice_for("1", now=now + timedelta(hours=4)) is None   # over
    await notices.cancel(outage.id)
    assert await notices.notice_for("1") is None


def test_the_notice_plays_before_the_menu_and_1_leaves_with_a_goodbye() -> None:
    flow = IvrFlow(load_menu(), Notice(prompt="notice_7", notice_id="7"))
    first = flow.start()
    assert isinstance(first, PlayAndCollect) and first.prompt == "notice_7"
    assert flow.on_digit("1") == PlayMessage("goodbye")
    assert isinstance(flow.on_played(), Hangup) and flow.path[:2] == ["notice", "notice:left"]
    stay = IvrFlow(load_menu(), Notice(prompt="notice_7"))
    stay.start()
    assert isinstance(stay.on_digit(None), PlayAndCollect)   # no key: on to the menu
