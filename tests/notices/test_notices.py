"""Outage notices: the rules on notice ahead of time, bad input (in the service and over HTTP),
spoken before stored, the area lookup, the menu step."""
import re
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import SessionTransaction

from callcenter.ivr.flow import Hangup, IvrFlow, Notice, PlayAndCollect, PlayMessage
from callcenter.ivr.model import load_menu
from callcenter.ivr.prompts import PromptError
from callcenter.notices import http as notices_http
from callcenter.notices import service
from callcenter.notices.models import Outage
from callcenter.notices.service import NoticeAudioError, NoticeError, NoticeService, announced_late
from callcenter.web import access, users
from callcenter.web.app import init_app
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


# ---------------------------------------------------------------- spoken first, then stored


async def outages(sessionmaker) -> list[Outage]:
    async with sessionmaker() as session:
        return list((await session.execute(select(Outage))).scalars())


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def good_notice(**change: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"kind": "temporary", "areas": ["east"], "starts_at": now, "ends_at": now + timedelta(hours=3),
            "text": "东区停水", "by": "sup", **change}


async def test_a_speech_engine_failure_stores_nothing(notices, sessionmaker, monkeypatch) -> None:
    def broken(*args: object) -> None:
        raise PromptError("espeak-ng failed: no voice")

    monkeypatch.setattr(service, "speak", broken)
    with pytest.raises(NoticeAudioError, match="text: the spoken notice could not be made"):
        await notices.create(**good_notice())
    assert await outages(sessionmaker) == [] and files(notices.prompts_dir) == []


async def test_an_impossible_voice_stores_nothing(sessionmaker, tmp_path) -> None:
    notices = NoticeService(sessionmaker, tmp_path / "prompts", TZ, voice="zz")
    with pytest.raises(NoticeAudioError, match="espeak-ng failed"):
        await notices.create(**good_notice())
    assert await outages(sessionmaker) == [] and files(notices.prompts_dir) == []


async def test_a_failure_while_storing_leaves_no_audio(notices, sessionmaker, monkeypatch) -> None:
    def lost(outage_id: int) -> str:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(service, "prompt_id", lost)
    with pytest.raises(RuntimeError, match="went away"):
        await notices.create(**good_notice())
    assert await outages(sessionmaker) == [] and files(notices.prompts_dir) == []


async def test_a_commit_that_fails_takes_the_placed_audio_back(notices, sessionmaker, monkeypatch) -> None:
    commit = SessionTransaction.commit

    def refused(self: SessionTransaction, *args: object, **kwargs: object) -> object:
        if list(notices.prompts_dir.glob("notice_*.wav")):    # the audio is in place: now fail
            raise OSError("disk full")
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(SessionTransaction, "commit", refused)
    with pytest.raises(OSError, match="disk full"):
        await notices.create(**good_notice())
    monkeypatch.undo()
    assert await outages(sessionmaker) == [] and files(notices.prompts_dir) == []


async def test_a_stored_notice_has_its_audio_and_nothing_else_is_left(notices, sessionmaker) -> None:
    outage = await notices.create(**good_notice(text="  -f/etc/os-release  "))
    assert [o.id for o in await outages(sessionmaker)] == [outage.id] and outage.text == "-f/etc/os-release"
    assert files(notices.prompts_dir) == [f"notice_{outage.id}.wav"]


@pytest.mark.parametrize(("change", "message"), [
    ({"text": "停" * 501}, "text: at most 500 characters"),
    ({"text": "东区\x07停水"}, "text: control character U+0007 at position 2"),
    ({"text": "东区\x00停水"}, "text: control character U+0000"),
    ({"text": "东区\ud800停水"}, "text: control character U+D800"),
    ({"areas": [f"a{n}" for n in range(51)]}, "areas: at most 50"),
    ({"areas": ["east", "x" * 65]}, "areas[1]: at most 64 characters"),
    ({"areas": ["east\x00"]}, "areas[0]: control character"),
    ({"areas": [7]}, "areas[0]: an area name"),
    ({"cause": "管" * 501}, "cause: at most 500 characters"),
    ({"cause": "a\x1bb"}, "cause: control character U+001B"),
])
async def test_text_areas_and_cause_are_bounded(notices, sessionmaker, change, message) -> None:
    with pytest.raises(NoticeError, match=re.escape(message)):
        await notices.create(**good_notice(**change))
    assert await outages(sessionmaker) == [] and files(notices.prompts_dir) == []


async def test_five_hundred_characters_and_line_breaks_are_a_notice(notices) -> None:
    outage = await notices.create(**good_notice(text="东区停水。\n" + "停" * 494))
    assert len(outage.text) == 500


# ---------------------------------------------------------------- over HTTP


class NoLive:
    async def snapshot(self) -> dict[str, object]:
        return {}

    async def updates(self) -> AsyncIterator[dict[str, object]]:
        yield {}


@pytest.fixture
async def http(aiohttp_client, settings, sessionmaker, redis_client):
    """A signed-in supervisor's client on the notices routes, and the prompts folder."""
    client, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    async with sessionmaker() as session, session.begin():
        sup = await users.create_user(session, "sup", "sup-password-1", access.SUPERVISOR)
        await users.issue_token(session, sup, token="sup-token")
    app = init_app(settings, sessionmaker=sessionmaker, redis=client, live=NoLive(),
                   route_setups=[notices_http.setup_routes])
    web_client = await aiohttp_client(app, headers={"Authorization": "Bearer sup-token"})
    return web_client, settings.paths.prompts_dir


def good_body(**change: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"kind": "temporary", "areas": ["east"], "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(), "text": "东区停水", **change}


@pytest.mark.parametrize(("change", "message"), [
    ({"starts_at": "9999-12-31T00:00:00+08:00"}, "starts_at: at most 366 days ahead"),
    ({"ends_at": "9999-12-31T00:00:00+08:00"}, "ends_at: an outage lasts at most 31 days"),
    ({"starts_at": "0001-01-01T00:00:00+00:00"}, "starts_at: more than 31 days ago"),
    ({"starts_at": "0001-01-01T00:00:00+08:00"}, "starts_at: 0001-01-01T00:00:00+08:00 is out of range"),
    ({"ends_at": "9999-12-31T23:00:00-12:00"}, "ends_at: 9999-12-31T23:00:00-12:00 is out of range"),
    ({"starts_at": "2026-12-01T08:00:00-14:00"}, "starts_at: UTC offset -1400 is not a real one"),
    ({"ends_at": "2026-12-01T08:00:00+15:00"}, "ends_at: UTC offset +1500"),
    ({"starts_at": "2026-12-01T08:00:00"}, "starts_at: give the time zone"),
    ({"ends_at": "9999-W52"}, "ends_at: give the time zone"),
    ({"starts_at": "tomorrow"}, "starts_at: an ISO time"),
    ({"ends_at": 20261201}, "ends_at: an ISO time"),
    ({"starts_at": None}, "starts_at: an ISO time"),
    ({"text": "停" * 501}, "text: at most 500 characters"),
    ({"text": "东区\x00停水"}, "text: control character U+0000"),
    ({"text": "东区\ud800停水"}, "body: not JSON"),   # a lone surrogate is not JSON text at all
    ({"text": ["-f/etc/os-release"]}, "text: text"),
    ({"cause": {"a": 1}}, "cause: text"),
    ({"areas": "east"}, "areas: a list"),
])
async def test_bad_notices_over_http_are_400_naming_the_field(http, sessionmaker, change, message) -> None:
    client, prompts = http
    response = await client.post("/api/notices", json=good_body(**change))
    assert response.status == 400, await response.text()
    # The field is named; the words are the input layer's (api.py) or the service's (check_times).
    field = message.split(":")[0]
    assert (await response.json())["error"].startswith(f"{field}: "), (message, await response.text())
    assert await outages(sessionmaker) == [] and files(prompts) == []


async def test_a_notice_that_reads_like_an_option_is_spoken_over_http(http, sessionmaker, tmp_path) -> None:
    client, prompts = http
    for text in ("-f/etc/os-release", f"-w{tmp_path / 'written.wav'}", "--help"):
        response = await client.post("/api/notices", json=good_body(text=text))
        assert response.status == 201, await response.text()
        outage = (await response.json())["outage"]
        assert outage["text"] == text
        with wave.open(str(prompts / f"notice_{outage['id']}.wav"), "rb") as audio:
            assert audio.getnframes() / audio.getframerate() < 10   # the words, not /etc/os-release
    assert not (tmp_path / "written.wav").exists()
    assert len(files(prompts)) == len(await outages(sessionmaker)) == 3


async def test_a_speech_engine_failure_over_http_is_503_with_nothing_stored(http, sessionmaker, monkeypatch) -> None:
    client, prompts = http

    def broken(*args: object) -> None:
        raise PromptError("espeak-ng failed: no voice")

    monkeypatch.setattr(service, "speak", broken)
    response = await client.post("/api/notices", json=good_body())
    assert response.status == 503 and (await response.json())["error"].startswith("text: the spoken notice")
    assert await outages(sessionmaker) == [] and files(prompts) == []


@pytest.mark.parametrize("outage_id", ["99999999999999999999", "2147483648", "0", "9" * 5000])
async def test_cancelling_an_unknown_notice_is_404(http, outage_id) -> None:
    client, _ = http
    response = await client.delete(f"/api/notices/{outage_id}")
    assert response.status == 404 and (await response.json())["error"].startswith("outage_id: ")


async def test_a_notice_changed_over_http_keeps_its_areas_and_names_the_bad_field(http, sessionmaker) -> None:
    client, _ = http
    created = await client.post("/api/notices", json=good_body())
    outage_id = (await created.json())["outage"]["id"]
    later = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    response = await client.patch(f"/api/notices/{outage_id}", json={"ends_at": later, "areas": ["east", "west"]})
    assert response.status == 200, await response.text()
    changed = (await response.json())["outage"]
    assert changed["revision"] == 1 and changed["areas"] == ["east", "west"]
    for body, field in (({"areas": ["west"]}, "areas"), ({"ends_at": "9999-W52"}, "ends_at"),
                        ({"text": "停" * 501}, "text"), ({"revision": 7}, "revision"), ({}, "body")):
        response = await client.patch(f"/api/notices/{outage_id}", json=body)
        assert response.status == 400, (body, await response.text())
        assert (await response.json())["error"].startswith(f"{field}: "), (body, await response.text())
    response = await client.patch("/api/notices/2147483648", json={"text": "x"})
    assert response.status == 404
    assert [o.revision for o in await outages(sessionmaker)] == [1]
