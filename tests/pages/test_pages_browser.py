"""The pages in real Chromium (Debian's, driven by Playwright), against the real app served on a
loopback port in the test's own event loop, on SQLite and Redis.

Every page is opened at 1280 px and at a phone's 390 px; a console error or an uncaught page
error on any of them fails the test; screenshots go to var/test-results/pages/ (not committed).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from callcenter.workorders.models import WorkOrder
from tests.conftest import fresh_sqlite
from tests.pages.conftest import LANDING, PASSWORDS
from tests.pages.test_pages_http import PNG

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """SQLite only: the pages' rules are the API's, which the HTTP tests run on PostgreSQL too."""
    return fresh_sqlite(migrated_sqlite, tmp_path / "test.db")


@pytest.fixture
async def base_url(aiohttp_server, hotline) -> str:
    server = await aiohttp_server(hotline.app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


class Watched:
    """A page whose console errors and uncaught errors are kept, to assert there are none."""

    def __init__(self, page: Page) -> None:
        self.page, self.errors = page, []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text} ({message.location.get('url')})")


async def open_as(browser: Browser, base_url: str, username: str, width: str = "desktop", *,
                  password: str | None = None, lands: str | None = None) -> Watched:
    """Log in on the page as a person does (the tests' own users by default) and wait for the
    role's landing page."""
    w, h = WIDTHS[width]
    context = await browser.new_context(viewport={"width": w, "height": h}, base_url=base_url, locale="zh-CN")
    watched = Watched(await context.new_page())
    page = watched.page
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password or PASSWORDS[username])
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(f"**{lands or LANDING.get(username, '/unit')}")
    return watched


async def no_sideways_scroll(page: Page) -> None:
    """Nothing cut off: the page is no wider than the screen."""
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_role_lands_on_its_own_page_without_console_errors(chromium_browser, base_url, shots, width) -> None:
    for username, target in LANDING.items():
        watched = await open_as(chromium_browser, base_url, username, width)
        page = watched.page
        assert page.url.endswith(target)
        body = await page.locator("body").inner_text()
        assert "not allowed" not in body and '{"error"' not in body, (username, body[:200])
        # Every landing page is one of the new stack's (/agent and /wallboard too).
        await expect(page.locator("header.top")).to_contain_text(username)
        await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        await no_sideways_scroll(page)
        await page.screenshot(path=shots / f"landing-{username}-{width}.png", full_page=True)
        assert watched.errors == [], (username, watched.errors)
        await page.context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_desk_pages_render_in_chinese_at_both_widths(chromium_browser, base_url, hotline, shots, width) -> None:
    watched = await open_as(chromium_browser, base_url, "sup", width)
    page = watched.page
    await page.goto("/orders")
    await expect(page.get_by_role("heading", name="工单")).to_be_visible()
    await expect(page.locator(f"#row-{hotline.orders['leak']}")).to_contain_text("已派单")
    await page.screenshot(path=shots / f"orders-{width}.png", full_page=True)
    await page.goto(f"/orders/{hotline.orders['leak']}")
    await expect(page.get_by_role("heading", name="处理记录")).to_be_visible()
    await page.screenshot(path=shots / f"order-{width}.png", full_page=True)
    if width == "phone":
        await no_sideways_scroll(page)
    await page.goto("/orders?lang=en")
    await expect(page.get_by_role("heading", name="Work orders")).to_be_visible()
    await page.goto("/orders")          # remembered
    await expect(page.get_by_role("heading", name="Work orders")).to_be_visible()
    await page.screenshot(path=shots / f"orders-english-{width}.png", full_page=True)
    assert watched.errors == []


async def test_the_unit_acknowledges_and_resolves_on_a_phone_and_the_desk_sees_it(chromium_browser, base_url, hotline, shots,
                                                                                sessionmaker) -> None:
    watched = await open_as(chromium_browser, base_url, "repair", "phone")
    page = watched.page
    order_id = hotline.orders["leak"]
    card = page.locator(f"#order-{order_id}")
    await expect(card).to_contain_text("已派单")
    countdown = card.locator(".deadline .countdown").first
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first, timeout=3000)     # it counts down by itself
    await no_sideways_scroll(page)
    await page.screenshot(path=shots / "unit-phone.png", full_page=True)

    await card.get_by_role("button", name="签收").click()
    await expect(card.locator("header .state")).to_have_text("已签收")
    await expect(card).to_contain_text("已保存")
    await card.locator("summary", has_text="现场照片").click()
    await card.get_by_label("JPEG 或 PNG，不超过 5 MB").set_input_files(
        {"name": "现场.png", "mimeType": "image/png", "buffer": PNG})
    await card.get_by_role("button", name="上传照片").click()
    await expect(card.locator("summary .tag")).to_have_text("1 张照片")
    await card.locator("summary", has_text="办结").click()   # the note is asked for before it is sent
    await card.get_by_label("处理结果").fill("已更换破裂管段，恢复供水")
    await card.get_by_role("button", name="提交办结").click()
    await expect(card.locator("header .state")).to_have_text("已办结")
    await expect(card.get_by_role("button")).to_have_count(0)     # nothing left for the unit to do
    await page.screenshot(path=shots / "unit-phone-resolved.png", full_page=True)
    assert watched.errors == []
    async with sessionmaker() as session:
        assert (await session.get(WorkOrder, order_id)).state == "resolved"

    desk = await open_as(chromium_browser, base_url, "sup", "desktop")
    await desk.page.goto(f"/orders/{order_id}")
    detail = desk.page.locator("#order")
    await expect(detail.locator("h1 .state")).to_have_text("已办结")
    await expect(detail).to_contain_text("没有进行中的时限")   # no deadline runs once resolved
    await expect(detail.locator("table.audit")).to_contain_text("已更换破裂管段，恢复供水")
    await expect(detail.locator("ul.photos a")).to_have_count(1)
    await desk.page.goto("/orders?state=resolved")
    await expect(desk.page.locator(f"#row-{order_id} .state")).to_have_text("已办结")
    assert desk.errors == []


async def test_a_forbidden_page_is_the_chinese_403_page_with_a_way_home(chromium_browser, base_url, shots) -> None:
    watched = await open_as(chromium_browser, base_url, "repair", "phone")
    page = watched.page
    response = await page.goto("/orders")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="您的角色无权打开此页面")).to_be_visible()
    await page.screenshot(path=shots / "forbidden-phone.png", full_page=True)
    await page.get_by_role("link", name="返回我的首页").click()
    await page.wait_for_url("**/unit")
    # The browser reports the 403 document itself; nothing else may be an error.
    assert [e for e in watched.errors if "403" not in e] == []


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_wallboard_and_the_duty_page_show_a_phone_going_offline_and_back_live(
        chromium_browser, base_url, hotline, shots, width) -> None:
    from callcenter.web.keys import LIVE

    live = hotline.app[LIVE]
    for path, name in (("/wallboard", "wallboard"), ("/supervisor", "supervisor")):
        watched = await open_as(chromium_browser, base_url, "sup", width)
        page = watched.page
        await page.goto(path)
        row = page.locator("#agent-1001")
        await expect(row).to_contain_text("就绪")
        await page.wait_for_timeout(300)          # the socket is open and has its snapshot
        await live.changes.put({"kind": "agent", "id": "1001", "data": {
            "state": "available", "since": "2026-12-01T03:00:00+00:00", "queues": ["leak"], "phone_reachable": False}})
        await expect(row.locator(".phone-offline")).to_have_text("话机离线")
        await no_sideways_scroll(page)
        await page.screenshot(path=shots / f"{name}-phone-offline-{width}.png", full_page=True)
        await live.changes.put({"kind": "agent", "id": "1001", "data": {
            "state": "available", "since": "2026-12-01T03:00:00+00:00", "queues": ["leak"], "phone_reachable": True}})
        await expect(row.locator(".phone-offline")).to_have_count(0)
        assert watched.errors == [], watched.errors
        await page.context.close()
