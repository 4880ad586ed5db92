"""The live pages through aiohttp's client: who may open them, the figures over a rolling 24
hours (not since midnight) and this shift, bad input refused by name."""
from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.pages import floor
from callcenter.web.keys import SETTINGS
from tests.pages.test_pages_http import sign_in


async def _add_call(sessionmaker, call_id: str, arrived: datetime, wait_s: float | None, disposition: str,
                    agent_id: str | None = "1002", talk_s: float = 60) -> None:
    answered = None if wait_s is None else arrived + timedelta(seconds=wait_s)
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=f"u-{call_id}", linkedid=f"u-{call_id}", channel="PJSIP/trunk-1",
                         caller_number="13900000009", arrived_at=arrived, queue="general", agent_id=agent_id,
                         agent_answered_at=answered, ended_at=None if answered is None else answered + timedelta(seconds=talk_s),
                         disposition=disposition, closed=True))


def _row(text: str, queue: str) -> list[str]:
    row = re.search(rf'<tr id="figures-{queue}">(.*?)</tr>', text, re.S)
    assert row, text
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]


async def test_only_an_agent_has_a_desk_others_get_the_chinese_403_page(aiohttp_client, hotline) -> None:
    for username in ("sup", "admin"):
        client = await aiohttp_client(hotline.app)
        await sign_in(client, username)
        page = await client.get("/agent")
        text = await page.text()
        assert page.status == 403 and "您的角色无权打开此页面" in text and "/api/agents/" not in text, username
        await client.close()
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "agent")
    page = await client.get("/agent")
    text = await page.text()
    assert page.status == 200 and 'data-agent="1001"' in text and "坐席工作台" in text
    assert "<script>" not in text and "onclick" not in text          # the CSP allows no inline script
    assert (await client.get("/wallboard")).status == 403


async def test_the_wallboard_counts_the_last_24_hours_not_since_midnight(aiohttp_client, hotline, sessionmaker) -> None:
    now = datetime.now(UTC)
    await _add_call(sessionmaker, "in-23h", now - timedelta(hours=23), 5, "answered")          # yesterday, maybe
    await _add_call(sessionmaker, "in-1h", now - timedelta(hours=1), 40, "answered")           # past three rings
    await _add_call(sessionmaker, "gone", now - timedelta(minutes=30), None, "abandoned_in_queue", agent_id=None)
    await _add_call(sessionmaker, "out-25h", now - timedelta(hours=25), 5, "answered")         # outside the window
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    text = await (await client.get("/wallboard/figures")).text()
    # queue, calls, answered, within three rings, abandoned, average speed of answer
    assert _row(text, "general") == ["general", "3", "2", "50.0%", "1", "22.5 s"]
    assert "最近 24 小时" in text
    await _add_call(sessionmaker, "just-now", now - timedelta(minutes=1), 2, "answered")
    began = floor.shift_start(now, hotline.app[SETTINGS].hotline.timezone, [8, 20])
    arrived = [now - timedelta(hours=23), now - timedelta(hours=1), now - timedelta(minutes=30),
               now - timedelta(minutes=1)]
    shift = await (await client.get("/wallboard/figures?view=shift")).text()
    assert "本班次" in shift
    assert int(_row(shift, "general")[1]) == sum(a >= began for a in arrived) >= 1


async def test_bad_input_to_the_figures_is_a_400_naming_the_field(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    response = await client.get("/wallboard/figures?view=week")
    assert response.status == 400 and (await response.json())["fields"][0]["field"] == "view"


async def test_the_wallboard_page_renders_the_live_snapshot(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    text = await (await client.get("/wallboard")).text()
    assert 'id="queue-leak"' in text and re.search(r'id="queue-leak".*?<b class="waiting">3</b>', text, re.S)
    assert 'id="agent-1002"' in text and "通话中" in text


async def test_the_agents_own_figures_today_and_the_follow_up_worklist(aiohttp_client, hotline, sessionmaker) -> None:
    now = datetime.now(UTC)
    # Earlier today on the hotline's clock, even just after its midnight.
    midnight = now.astimezone(ZoneInfo(hotline.app[SETTINGS].hotline.timezone)).replace(hour=0, minute=0, second=0,
                                                                                     microsecond=0)
    earlier = now - min(timedelta(minutes=10), (now - midnight) / 2)
    await _add_call(sessionmaker, "mine", earlier, 3, "answered", agent_id="1001", talk_s=125)
    await _add_call(sessionmaker, "theirs", earlier, 3, "answered", agent_id="1002")
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "agent")
    text = await (await client.get("/agent/today")).text()
    assert re.search(r'id="fig-answered">1<', text) and "00:02:05" in text
    assert "外呼时段 09:00–11:00, 14:30–16:00" in text


async def test_the_handover_page_drafts_is_accepted_by_another_and_closed(aiohttp_client, hotline, sessionmaker) -> None:
    from callcenter.workorders.models import Handover

    outgoing = await aiohttp_client(hotline.app)
    out_csrf = {"X-CSRF-Token": await sign_in(outgoing, "sup")}
    part = await (await outgoing.post("/supervisor/handovers", json={}, headers=out_csrf)).text()
    assert "草稿，等待接班" in part and "已保存" in part
    async with sessionmaker() as session:
        [handover] = (await session.execute(select(Handover))).scalars().all()
    base = f"/supervisor/handovers/{handover.id}"
    assert "交班说明" in await (await outgoing.post(f"{base}/notes", json={"notes": "3 号泵站检修中"},
                                                  headers=out_csrf)).text()
    too_long = await outgoing.post(f"{base}/notes", json={"notes": "长" * 4001}, headers=out_csrf)
    assert too_long.status == 400 and (await too_long.json())["fields"][0]["field"] == "notes"
    refused = await (await outgoing.post(f"{base}/accept", json={}, headers=out_csrf)).text()
    assert "未完成" in refused                                      # who drafted it cannot accept it
    early = await (await outgoing.post(f"{base}/close", json={}, headers=out_csrf)).text()
    assert "未完成" in early and "not accepted" in early            # nor close it before it is accepted

    incoming = await aiohttp_client(hotline.app)
    in_csrf = {"X-CSRF-Token": await sign_in(incoming, "admin")}
    assert "已接班，等待交班人确认" in await (await incoming.post(f"{base}/accept", json={}, headers=in_csrf)).text()
    assert "已交班" in await (await outgoing.post(f"{base}/close", json={}, headers=out_csrf)).text()
    async with sessionmaker() as session:
        done = await session.get(Handover, handover.id)
    assert done.accepted_by == "admin" and done.closed_at is not None and done.notes == "3 号泵站检修中"
    assert (await outgoing.post("/supervisor/handovers/99999999999/accept", json={}, headers=out_csrf)).status == 404


async def test_the_wallboard_and_the_duty_page_say_when_an_agents_phone_is_offline(aiohttp_client, hotline) -> None:
    from callcenter.web.keys import LIVE

    live = hotline.app[LIVE]
    before = await live.snapshot()

    async def offline() -> dict:
        return {**before, "agents": {**before["agents"], "1001": {"state": "available", "phone_reachable": False}}}

    live.snapshot = offline     # type: ignore[method-assign]
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    for page in ("/wallboard", "/supervisor"):
        text = await (await client.get(page)).text()
        row = re.search(r'<tr id="agent-1001".*?</tr>', text, re.S)
        assert row and '<span class="tag phone-offline">话机离线</span>' in row.group(0), page
        words = re.search(r"data-words='([^']*)'", text)
        assert words and json.loads(html.unescape(words.group(1)))["phone"] == {"offline": "话机离线"}, page
        other = re.search(r'<tr id="agent-1002".*?</tr>', text, re.S)
        assert other and "话机离线" not in other.group(0)
