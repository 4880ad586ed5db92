"""The live pages in real Chromium over a real Engine on the fake AMI line: a caller entering
the queue is an AMI event the engine handles, the engine publishes to the live state on Redis,
and the page hears it over /ws/live, as in production.

- the agent's desk: log in, the phone rings and the screen pop is a card with the caller's
  customer and open orders (oldest first), the call is answered, the web server restarts under
  the page (its socket is cut) and the page says so, reconnects by itself and shows the state;
- the wallboard: the waiting count goes up within a second of a caller entering the queue, and
  down when an agent answers.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from callcenter.acd.live import LiveState
from callcenter.calls.engine import Engine
from callcenter.ivr.model import load_menu
from callcenter.pages import http as pages_http
from callcenter.web import access, users
from callcenter.web.app import init_app
from callcenter.workorders import http as orders_http
from tests.ami.fake_ami import FakeAmi
from tests.calls.fake_line import SHORT_MENU, FakeLine, agent, line_settings
from tests.conftest import fresh_sqlite
from tests.pages import test_pages_browser as browser_tests
from tests.pages.conftest import PASSWORDS
from tests.pages.test_pages_browser import WIDTHS, no_sideways_scroll, open_as

CALLER_NUMBER = "13800000001"
AGENT_CHANNEL = "PJSIP/1001-00000002"


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    return fresh_sqlite(migrated_sqlite, tmp_path / "test.db")


class CustomerPop:
    """What the customer look-up adds to the screen pop (its fields as the engine will publish them)."""

    async def screen_pop(self, caller_number: str) -> dict[str, Any]:
        """In the shape callcenter/calls/screen_pop.py builds (its docstring)."""
        now = datetime.now(UTC)
        return {"caller": caller_number, "customer_name": "张三", "account": "YH-0012345",
                "address": "幸福路 12 号 3 单元 501", "area": "幸福小区",
                "open_orders": [{"order_id": 7, "category": "leak", "state": "dispatched",
                                 "created_at": (now - timedelta(hours=2)).isoformat(), "owner": "1002"},
                                {"order_id": 3, "category": "leak", "state": "accepted",
                                 "created_at": (now - timedelta(days=2)).isoformat(), "owner": "1003"}],
                "open_orders_total": 2,
                "outage": {"outage_id": 4, "kind": "temporary", "text": "幸福小区管道抢修停水",
                           "starts_at": (now - timedelta(hours=1)).isoformat(),
                           "ends_at": (now + timedelta(hours=3)).isoformat(), "announced_late": False}}

    async def call_closed(self, call_id: str) -> None:
        return None

    async def recording_finalised(self, call_id: str, wav_path: Path) -> None:
        return None


@dataclass
class LiveHotline:
    line: FakeLine
    live: LiveState
    make_app: Any
    server: TestServer
    base_url: str
    sessionmaker: Any


@asynccontextmanager
async def _live_hotline(settings, sessionmaker, redis, prefix) -> AsyncIterator[LiveHotline]:
    fake = FakeAmi()
    await fake.start()
    live = LiveState(redis, prefix, "fake-line")
    engine = Engine(line_settings(settings, fake.port, [agent("1001"), agent("1002")]), sessionmaker,
                    load_menu(SHORT_MENU), engine_id="fake-line", live=live, hooks=[CustomerPop()])
    line = FakeLine(fake, engine)

    async def make_app() -> web.Application:
        app = init_app(engine.settings, sessionmaker=sessionmaker, redis=redis, live=live, agent_control=engine,
                       route_setups=[orders_http.setup_routes, pages_http.setup_routes])
        await orders_http._services(app)
        return app

    await engine.start(wait_s=5)
    server = TestServer(await make_app(), host="127.0.0.1")
    await server.start_server()
    hotline = LiveHotline(line, live, make_app, server, str(server.make_url("")).rstrip("/"), sessionmaker)
    try:
        yield hotline
    finally:
        await hotline.server.close()     # the one running now (a test may have restarted it)
        await engine.stop()
        await fake.close()


@pytest.fixture
async def live_hotline(settings, sessionmaker, redis_client) -> AsyncIterator[LiveHotline]:
    redis, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "agent", PASSWORDS["agent"], access.AGENT, agent_id="1001")
        await users.create_user(session, "sup", PASSWORDS["sup"], access.SUPERVISOR, phone="1002")
    async with _live_hotline(settings, sessionmaker, redis, prefix) as hotline:
        yield hotline


async def _pop_kept(live: LiveState, agent_id: str) -> None:
    """A bounded wait for the engine's screen-pop task to have written the agent's pop."""
    async with asyncio.timeout(10):
        while not await live.redis.hexists(f"{live.prefix}live:pops", agent_id):  # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)


async def _orders(hotline: LiveHotline) -> list[Any]:
    from sqlalchemy import select

    from callcenter.workorders.models import WorkOrder

    async with hotline.sessionmaker() as session:
        return list((await session.execute(select(WorkOrder))).scalars())


def _state(line: FakeLine, agent_id: str = "1001") -> str:
    return line.engine.acd.agent(agent_id).state.value


async def test_the_desk_logs_in_shows_the_callers_card_and_recovers_after_a_restart(chromium_browser, live_hotline,
                                                                                    shots) -> None:
    line = live_hotline.line
    watched = await open_as(chromium_browser, live_hotline.base_url, "agent", "desktop")
    page = watched.page
    state = page.locator("#state")
    await expect(state).to_have_text("未签入")
    await page.get_by_role("button", name="签入队列").click()
    await expect(state).to_have_text("就绪")
    await expect(page.locator("#in-state")).not_to_have_text("—")

    await page.get_by_label("置忙原因").select_option("training")
    await page.keyboard.press("Alt+2")                         # pause, by its shortcut
    await expect(state).to_have_text("置忙")
    await expect(page.locator("#reason")).to_have_text("培训")
    await page.get_by_role("button", name="就绪").click()
    await expect(state).to_have_text("就绪")

    line.call_in(CALLER_NUMBER)
    pop = page.locator("#pop")
    await expect(pop.locator(".caller")).to_have_text(CALLER_NUMBER)
    await expect(state).to_have_text("振铃")
    await expect(pop).to_contain_text("张三")
    await expect(pop).to_contain_text("幸福路 12 号 3 单元 501")
    await expect(pop).to_contain_text("幸福小区管道抢修停水")
    orders = pop.locator("ul.pop-orders li")
    await expect(orders).to_have_count(2)
    await expect(orders.first).to_contain_text("#3")          # the oldest open order first, with its owner
    await expect(orders.first).to_contain_text("1003")
    await line.dial_sent()
    line.agent_answers(AGENT_CHANNEL)
    await expect(state).to_have_text("通话中")
    # The order form, filled from the call: the menu's category (a leak, urgent, the repair team),
    # the customer's address; one click would attach the call to an open order or the outage's.
    form = page.locator("#order")
    await expect(form.get_by_label("类别")).to_have_value("leak")
    await expect(form.get_by_label("地址")).to_have_value("幸福路 12 号 3 单元 501")
    await expect(page.locator("#order-urgency")).to_have_text("紧急")
    await expect(page.locator("#order-unit")).to_have_text("repair_team")
    await expect(form.get_by_role("button", name="来电并入工单 #3 漏水")).to_be_visible()
    await expect(form.get_by_role("button", name="来电并入停水工单 #4")).to_be_visible()
    await form.get_by_label("诉求内容").fill("厨房水管破裂")
    await form.get_by_role("button", name="生成工单").click()
    await expect(page.locator("#order-said")).to_contain_text("工单已保存")
    await expect(page.locator("#dispatch-unit")).to_have_text("repair_team")
    await page.screenshot(path=shots / "agent-on-call-desktop.png", full_page=True)
    await form.get_by_role("button", name="派单到责任单位").click()
    await expect(page.locator("#order-said")).to_contain_text("已派往 repair_team")
    [order] = await _orders(live_hotline)
    assert (order.category, order.state, order.description, order.agent_id) == ("leak", "dispatched", "厨房水管破裂",
                                                                                "1001")
    await page.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
    await no_sideways_scroll(page)                              # the desk on a phone's width too
    await page.screenshot(path=shots / "agent-on-call-phone.png", full_page=True)
    await page.set_viewport_size({"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]})

    # The web server restarts under the page: its socket is cut, the page says so and comes back.
    port = live_hotline.server.port
    await live_hotline.server.close()
    await expect(page.locator("#link")).to_be_visible()
    await page.screenshot(path=shots / "agent-disconnected-desktop.png", full_page=True)
    again = TestServer(await live_hotline.make_app(), host="127.0.0.1", port=port)
    await again.start_server()
    live_hotline.server = again
    await expect(page.locator("#link")).to_be_hidden(timeout=15000)
    await expect(state).to_have_text("通话中")
    await expect(pop.locator(".caller")).to_have_text(CALLER_NUMBER)
    assert _state(line) == "on_call"

    line.hang_up()
    await expect(state).to_have_text("话后处理")
    await expect(page.locator("#wrapup")).to_be_visible()
    await page.get_by_role("button", name="延长 30 秒").click()
    await expect(page.locator("#said")).to_contain_text("已完成")
    assert watched.errors == []


async def test_a_pop_sent_while_the_page_was_away_is_shown_when_it_comes_back(chromium_browser, live_hotline) -> None:
    line = live_hotline.line
    await line.engine.login("1001")
    watched = await open_as(chromium_browser, live_hotline.base_url, "agent", "desktop")
    page = watched.page
    await expect(page.locator("#state")).to_have_text("就绪")
    port = live_hotline.server.port
    await live_hotline.server.close()
    await expect(page.locator("#link")).to_be_visible()
    line.call_in(CALLER_NUMBER)                                  # rings while the page has no socket
    await line.dial_sent()
    await _pop_kept(live_hotline.live, "1001")
    again = TestServer(await live_hotline.make_app(), host="127.0.0.1", port=port)
    await again.start_server()
    live_hotline.server = again
    await expect(page.locator("#link")).to_be_hidden(timeout=15000)
    await expect(page.locator("#state")).to_have_text("振铃")
    await expect(page.locator("#pop .caller")).to_have_text(CALLER_NUMBER)
    await expect(page.locator("#pop")).to_contain_text("张三")
    assert watched.errors == []


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_wallboard_counts_a_caller_within_a_second_and_drops_them_when_answered(
        chromium_browser, live_hotline, shots, width) -> None:
    line = live_hotline.line
    await line.engine.login("1001")
    await line.engine.pause("1001", "meeting")
    watched = await open_as(chromium_browser, live_hotline.base_url, "sup", width)
    page = watched.page
    waiting = page.locator("#queue-leak .waiting")
    await expect(waiting).to_have_text("0")
    agent_row = page.locator("#agent-1001")
    await expect(agent_row).to_contain_text("置忙")
    await expect(agent_row).to_contain_text("开会")

    line.call_in(CALLER_NUMBER)
    await expect(waiting).to_have_text("1", timeout=1000)
    await expect(page.locator("#waiting-callers tbody tr")).to_have_count(1)
    await page.screenshot(path=shots / f"wallboard-waiting-{width}.png", full_page=True)

    await line.engine.ready("1001")
    await line.dial_sent()
    line.agent_answers(AGENT_CHANNEL)
    await expect(waiting).to_have_text("0")
    await expect(agent_row).to_contain_text("通话中")
    await expect(page.locator("#waiting-callers tbody tr")).to_have_count(0)
    if width == "phone":
        await no_sideways_scroll(page)
    await page.screenshot(path=shots / f"wallboard-{width}.png", full_page=True)
    assert watched.errors == []


async def test_the_snapshot_carries_the_agents_own_last_pop_only(live_hotline) -> None:
    """What the page reads when it comes back: its own pop in the snapshot, no one else's."""
    import aiohttp

    line = live_hotline.line
    await line.engine.login("1001")
    line.call_in(CALLER_NUMBER)
    await line.dial_sent()
    await _pop_kept(live_hotline.live, "1001")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:   # cookies of 127.0.0.1
        for username, has_pop in (("agent", True), ("sup", False)):
            async with http.post(f"{live_hotline.base_url}/api/login",
                                 json={"username": username, "password": PASSWORDS[username]}) as r:
                assert r.status == 200
            async with http.ws_connect(f"{live_hotline.base_url}/ws/live") as ws:
                snapshot = json.loads((await ws.receive()).data)["data"]
            assert "screen_pops" not in snapshot   # nobody gets everyone's pops
            assert ("screen_pop" in snapshot) is has_pop, username
            if has_pop:
                assert snapshot["screen_pop"]["caller"] == CALLER_NUMBER
            http.cookie_jar.clear()


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_supervisor_listens_from_the_grid_and_their_own_phone_is_rung(chromium_browser, live_hotline, shots,
                                                                              width) -> None:
    line = live_hotline.line
    await line.engine.login("1001")
    watched = await open_as(chromium_browser, live_hotline.base_url, "sup", width)
    page = watched.page
    await page.goto("/supervisor")
    row = page.locator("#agent-1001")
    await expect(row).to_contain_text("就绪")
    await expect(row.get_by_role("button", name="监听")).to_be_disabled()     # nobody to listen to yet
    line.call_in(CALLER_NUMBER)
    await line.dial_sent()
    line.agent_answers(AGENT_CHANNEL)
    await expect(row).to_contain_text("通话中")
    assert line.sent("Originate") == []
    await row.get_by_role("button", name="监听").click()
    await expect(page.locator("#said")).to_contain_text("已完成")
    [spy] = line.sent("Originate")
    assert (spy["Channel"], spy["Application"]) == ("PJSIP/1002", "ChanSpy")   # the supervisor's phone
    assert spy["Data"].startswith(AGENT_CHANNEL)                              # into the agent's call
    await expect(page.locator("#handovers")).to_contain_text("交接班")
    await page.get_by_role("button", name="生成本班次交接单").click()
    await expect(page.locator("#handovers article.handover")).to_have_count(1)
    await expect(page.locator("#handovers")).to_contain_text("草稿，等待接班")
    if width == "phone":
        await no_sideways_scroll(page)
    await page.screenshot(path=shots / f"supervisor-{width}.png", full_page=True)
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)
    assert watched.errors == []


async def test_a_wallboard_screen_signs_in_with_its_token_stays_in_and_is_revoked(chromium_browser, live_hotline,
                                                                                 shots) -> None:
    line = live_hotline.line
    duty = await open_as(chromium_browser, live_hotline.base_url, "sup", "desktop")
    await duty.page.goto("/supervisor")
    kiosks = duty.page.locator("#kiosks")
    await kiosks.get_by_label("屏幕名称").fill("floor-1")
    await kiosks.get_by_role("button", name="发放屏幕令牌").click()
    token = await duty.page.locator("#kiosk-token").inner_text()
    assert len(token) > 30

    context = await chromium_browser.new_context(viewport={"width": 1280, "height": 800},
                                                 base_url=live_hotline.base_url, locale="zh-CN")
    tv = browser_tests.Watched(await context.new_page())
    await tv.page.goto("/kiosk")
    await tv.page.get_by_label("屏幕令牌").fill(token)
    await tv.page.get_by_role("button", name="显示大屏").click()
    await tv.page.wait_for_url("**/wallboard")
    [cookie] = [c for c in await context.cookies() if c["name"] == "cc_kiosk"]
    assert cookie["httpOnly"] and cookie["expires"] > datetime.now(UTC).timestamp() + 365 * 86400
    waiting = tv.page.locator("#queue-leak .waiting")
    await expect(waiting).to_have_text("0")
    line.call_in(CALLER_NUMBER)
    await expect(waiting).to_have_text("1", timeout=1000)
    assert CALLER_NUMBER not in await tv.page.content()
    await tv.page.screenshot(path=shots / "wallboard-screen-desktop.png", full_page=True)
    assert (await tv.page.goto("/orders")).status == 403                 # a screen sees the wallboard only
    await tv.page.goto("/wallboard")

    await kiosks.get_by_role("button", name="吊销").click()
    await tv.page.wait_for_url("**/login?next=%2Fwallboard")            # its socket closed as signed out
    assert [e for e in tv.errors if "403" not in e] == []
    assert duty.errors == []
    line.hang_up()
    await line.until(lambda: line.engine.calls_closed == 1)
    await context.close()
