"""/admin on the real Asterisk, in Debian's Chromium: what the administrator changes on the
page holds in the running hotline at once — no restart.

- agent 1006 added with a password and the queue `leak`: a SIPp phone registers as 1006 (its
  endpoint was rendered and res_pjsip reloaded), the agent logs in and takes a leak call, and
  the change is in the audit trail;
- the queue `leak` given office hours that exclude now: the next leak caller is routed by them,
  to the queue that covers it while closed;
- an outage notice entered (and heard first) on the page: a caller from the area hears it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from callcenter.sipp import Key, agent_scenario, caller_scenario, expect_ok, register_scenario
from callcenter.workorders.models import Customer
from tests.e2e.conftest import WEB_USERS, Hotline
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller

pytestmark = pytest.mark.asterisk
ADMIN = {"username": "root", "password": "admin-password-1", "role": "admin"}
WITH_ADMIN = [{"users": [*WEB_USERS, ADMIN]}]
SIP_PASSWORD = "sip-password-1006"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-results" / "pages"


async def admin_page(browser: Browser, line: Hotline, width: int = 1280) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": width, "height": 900}, base_url=line.built.url,
                                        locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto("/login")
    await page.get_by_label("用户名").fill(ADMIN["username"])
    await page.get_by_label("密码").fill(ADMIN["password"])
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url("**/wallboard")
    return page, errors


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("hotline", WITH_ADMIN, indirect=True)
async def test_an_agent_added_on_the_page_registers_logs_in_and_takes_a_leak_call(hotline: Hotline,
                                                                                 chromium_browser: Browser) -> None:
    line = hotline
    page, errors = await admin_page(chromium_browser, line)
    await page.goto("/admin/agents")
    await page.get_by_label("座席工号（SIP 用户名，3 至 8 位数字）").fill("1006")
    await page.get_by_label("姓名").fill("王芳")
    await page.get_by_label("SIP 密码（10 至 64 个字符，不含空格）").fill(SIP_PASSWORD)
    await page.locator('input[name="queue"][value="leak"]').check()
    await page.get_by_label("技能等级 leak").fill("5")
    await page.get_by_role("button", name="添加座席").click()
    await expect(page.get_by_role("status")).to_contain_text("已保存")
    await expect(page.locator('tr[data-agent="1006"]')).to_contain_text("leak 5")
    await shot(page, "admin-agents-desktop")
    assert line.engine.directory.agent("1006").skills == {"leak": 5}      # this engine has it, no restart

    register = await line.sipp.start("phone1006_register", register_scenario("1006", SIP_PASSWORD), sip_port=5076,
                                     media_port=25200, timeout_s=10)
    await expect_ok(register, 15)
    phone = await line.sipp.start("phone1006", agent_scenario(hangup_after_ms=2000), sip_port=5076,
                                  media_port=25200, target=None, calls=1, timeout_s=60)
    await line.engine.login("1006")
    assert line.engine.acd.agent("1006").skills == {"leak": 5}
    caller = await start_caller(line, "caller_leak_1006", caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                                          hangup_after_ms=12_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert (call.agent_id, call.queue, call.disposition) == ("1006", "leak", "answered")
    await expect_ok(caller, 30)
    await expect_ok(phone)
    line.rig.rx("pjsip send unregister 1006")

    await page.goto("/admin/audit")
    row = page.locator('tr[data-audit="agent:1006"]')
    await expect(row).to_contain_text("root")
    await expect(row).to_contain_text("create")
    await shot(page, "admin-audit-desktop")
    assert not errors, errors
    await line.no_channels_left()


@pytest.mark.parametrize("hotline", WITH_ADMIN, indirect=True)
async def test_office_hours_changed_on_the_page_route_the_next_caller(hotline: Hotline, chromium_browser: Browser) -> None:
    line = hotline
    now = datetime.now(ZoneInfo(line.settings.hotline.timezone))
    later = (now.hour + 2) % 24
    hours = f"{later:02d}:00-{later:02d}:30"             # leak is closed now
    page, errors = await admin_page(chromium_browser, line, width=390)
    await page.goto("/admin/queues")
    editor = page.locator('details[data-edit-queue="leak"]')
    await editor.locator("summary").click()
    await editor.get_by_label("服务时间（如 08:30-12:00, 13:30-17:30；留空为全天开放）").fill(hours)
    await editor.get_by_label("非服务时间来电转至").select_option("general")
    await editor.get_by_role("button", name="保存队列").click()
    await expect(page.get_by_role("status")).to_contain_text("已保存")
    await expect(page.locator('tr[data-queue="leak"]')).to_contain_text(hours)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await shot(page, "admin-queues-phone")
    assert line.engine.policy.queue("leak").open_hours == [hours]

    await line.engine.login("1001", queues=["general"])
    agent = await start_agent(line, "1001", hangup_after_ms=2000)
    caller = await start_caller(line, "caller_closed_leak", caller_scenario(keys=(Key("2", MENU_KEY_AFTER_MS),),
                                                                            hangup_after_ms=12_000))
    [call] = await line.closed_calls(1, timeout=45)
    assert (call.queue, call.agent_id, call.disposition) == ("general", "1001", "answered")
    await expect_ok(caller, 30)
    await expect_ok(agent)
    assert not errors, errors
    await line.no_channels_left()


@pytest.mark.parametrize("hotline", WITH_ADMIN, indirect=True)
async def test_an_outage_entered_on_the_page_is_heard_by_a_caller_from_the_area(hotline: Hotline,
                                                                              chromium_browser: Browser) -> None:
    line = hotline
    async with line.sessionmaker() as session, session.begin():
        session.add(Customer(number="13922220001", account="A-1", address="东区幸福路 1 号", area="east"))
    tz = ZoneInfo(line.settings.hotline.timezone)
    now = datetime.now(tz).replace(second=0, microsecond=0)
    page, errors = await admin_page(chromium_browser, line)
    await page.goto("/admin/notices")
    await page.get_by_label("影响区域（用逗号分隔）").fill("east")
    await page.get_by_label("开始时间").fill((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("结束时间").fill((now + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("来电播报内容（最多 500 字）").fill("东区今日抢修停水。")
    publish = page.get_by_role("button", name="发布通知")
    await expect(publish).to_be_disabled()          # not before it was heard
    await page.get_by_role("button", name="试听语音通知").click()
    await expect(publish).to_be_enabled(timeout=15_000)
    await shot(page, "admin-notices-desktop")
    await publish.click()
    await expect(page.get_by_role("status")).to_contain_text("已保存")
    await expect(page.locator("tr[data-outage]")).to_contain_text("东区今日抢修停水。")
    caller = await start_caller(line, "caller_east_admin", caller_scenario(number="13922220001",
                                                                           keys=(Key("1", 2000),), hangup_after_ms=8000))
    await expect_ok(caller)
    [call] = await line.closed_calls(1)
    assert call.ivr_path[:2] == ["notice", "notice:left"]
    await page.goto("/admin/audit")
    await expect(page.locator("tr[data-audit^='notice:']")).to_contain_text("create")
    assert not errors, errors
    await line.no_channels_left()

