"""/admin in Debian's Chromium without Asterisk: every section at 1280 and 390 px with no console
error, the supervisor looks but has no forms, an agent gets the 403 page; a refused form shows the
field it names."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect
from pydantic import SecretStr

from callcenter.admin import http as admin_http
from callcenter.admin.service import AdminService
from callcenter.config import AgentSettings
from callcenter.notices import http as notices_http
from callcenter.pages.admin import SECTIONS
from tests.pages.test_pages_browser import WIDTHS, no_sideways_scroll, open_as


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def base_url(aiohttp_server, hotline, settings, sessionmaker) -> str:
    app = hotline.app
    app[admin_http.ADMIN] = service = AdminService(sessionmaker, settings.acd, categories={"leak", "general", "other",
                                                                                          "billing", "complaint"})
    await service.seed(settings.model_copy(update={"agents": [
        AgentSettings(id=i, name=name, sip_password=SecretStr(f"sip-password-{i}"), queues=queues, skills=skills)
        for i, name, queues, skills in (("1001", "张伟", ["general", "leak"], {"leak": 6}),
                                        ("1002", "李娜", ["general", "billing", "complaint"], {"billing": 4}))]}))
    await service.change_queue("admin", "billing", {"open_hours": ["08:30-12:00", "13:30-17:30"],
                                                    "open_days": "working_days", "when_closed": "general"})
    await service.create_agent("admin", "1006", "王芳", "sip-password-1006", ["leak"], {"leak": 5})
    await notices_http._service(app)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_admin_section_opens_without_console_errors(chromium_browser, base_url, shots, width) -> None:
    watched = await open_as(chromium_browser, base_url, "admin", width)
    page = watched.page
    for section, _ in SECTIONS:
        await page.goto(f"/admin/{section}")
        await expect(page.locator(".subnav a[aria-current=page]")).to_have_count(1)
        await no_sideways_scroll(page)
        await page.screenshot(path=str(shots / f"admin-{section}-{width}.png"), full_page=True)
    assert not watched.errors, watched.errors


async def test_a_refused_agent_names_the_field_and_the_supervisor_only_looks(chromium_browser, base_url) -> None:
    watched = await open_as(chromium_browser, base_url, "admin", "desktop")
    page = watched.page
    await page.goto("/admin/agents")
    await page.get_by_label("座席工号（SIP 用户名，3 至 8 位数字）").fill("1007")
    await page.get_by_label("姓名").fill("王芳")
    await page.get_by_label("SIP 密码（10 至 64 个字符，不含空格）").fill("sip-password-1006")
    await page.locator('input[name="queue"][value="leak"]').check()
    await page.get_by_label("技能等级 leak").evaluate("e => { e.removeAttribute('max'); e.value = '11'; }")
    await page.get_by_role("button", name="添加座席").click()
    await expect(page.get_by_role("alert")).to_contain_text("skills.leak")
    assert await page.get_by_label("姓名").input_value() == "王芳"          # the form is kept
    assert not watched.errors or all("400" in e for e in watched.errors), watched.errors

    sup = await open_as(chromium_browser, base_url, "sup", "desktop")
    await sup.page.goto("/admin/agents")
    await expect(sup.page.get_by_text("您可以查看；只有管理员可以修改。")).to_be_visible()
    assert await sup.page.locator("form[action^='/admin']").count() == 0
    agent = await open_as(chromium_browser, base_url, "agent", "desktop")
    response = await agent.page.goto("/admin/agents")
    assert response is not None and response.status == 403
