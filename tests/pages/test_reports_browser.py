"""The reports page in real Chromium: a week with known calls and orders.

The supervisor opens 报表 from the menu, picks the weekly report and the week; every figure on
the page equals the XLSX downloaded from it (read with openpyxl); the calls figure drills down
to exactly the calls it counted and a call opens its record; the CSV download and the printable
page carry the same figures; at 1280 and 390 px nothing is cut off and no console error shows.
Screenshots go to var/test-results/pages/.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.async_api import expect

from callcenter.workorders import http as orders_http
from callcenter.workorders.reports import INDICATORS
from callcenter.workorders.runner import write_due_reports
from tests.conftest import fresh_sqlite
from tests.pages.report_period import WEEK, seed_week
from tests.pages.test_pages_browser import no_sideways_scroll, open_as


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    return fresh_sqlite(migrated_sqlite, tmp_path / "test.db")


@pytest.fixture
async def week(hotline, sessionmaker, settings):
    seeded = await seed_week(sessionmaker)
    # what the running hotline writes on the Monday after the week (workorders/runner.py)
    await write_due_reports(settings, hotline.app[orders_http.ORDERS], date(2026, 11, 30))
    return seeded


@pytest.fixture
async def base_url(aiohttp_server, hotline, week) -> str:
    server = await aiohttp_server(hotline.app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def number(text: str) -> float | None:
    return None if text.strip() == "—" else float(text)


async def test_the_weekly_report_page_equals_its_xlsx_and_drills_down_to_its_calls(chromium_browser, base_url, week,
                                                                                   shots) -> None:
    watched = await open_as(chromium_browser, base_url, "sup", "desktop")
    page = watched.page
    await page.get_by_role("navigation", name="页面").get_by_role("link", name="报表").click()
    await expect(page.locator("h1")).to_contain_text("报表")
    await page.get_by_role("link", name="周报").click()
    await page.get_by_label("周次").fill(WEEK)
    await page.get_by_role("button", name="查看").click()
    await page.wait_for_url(f"**/reports/weekly?week={WEEK}")
    figures = page.locator("ul.report-figures li")
    await expect(figures).to_have_count(len(INDICATORS))
    shown = {await li.get_attribute("data-figure"): number(await li.locator(".value").inner_text())
             for li in await figures.all()}

    async with page.expect_download() as xlsx_download:
        await page.locator(".report-tools").get_by_role("link", name="XLSX").click()
    xlsx = Path(await (await xlsx_download.value).path()).read_bytes()
    sheet = load_workbook(io.BytesIO(xlsx))["indicators"]
    book = {r[0]: r[2] for r in sheet.iter_rows(values_only=True) if r and len(r) > 2}
    assert shown == {i.name: book[i.name] for i in INDICATORS}
    assert shown["calls"] == 4 and shown["abandon_rate_pct"] == 33.33

    async with page.expect_download() as csv_download:
        await page.locator(".report-tools").get_by_role("link", name="CSV").click()
    rows = list(csv.reader(io.StringIO(Path(await (await csv_download.value).path()).read_text("utf-8-sig"))))
    from_csv = {r[0]: r[1] for r in rows if len(r) == 2 and r[0] in shown}
    assert {k: number(v or "—") for k, v in from_csv.items()} == shown

    async with page.context.expect_page() as printable_opened:
        await page.locator(".report-tools").get_by_role("link", name="打印版").click()
    printable = await printable_opened.value
    await printable.wait_for_load_state()
    await expect(printable.locator("h1")).to_contain_text(WEEK)
    await expect(printable.locator("body")).to_contain_text("3分钟派单率")
    await printable.close()
    written = page.locator('tr[data-written="weekly-2026-W48"]')
    await expect(written).to_contain_text("周报")
    async with page.expect_download() as written_download:
        await written.get_by_role("link", name="XLSX").click()
    sheet = load_workbook(io.BytesIO(Path(await (await written_download.value).path()).read_bytes()))["indicators"]
    assert {r[0]: r[2] for r in sheet.iter_rows(values_only=True) if r and len(r) > 2}["orders_taken"] == 4
    await no_sideways_scroll(page)
    await page.screenshot(path=shots / "reports-desktop.png", full_page=True)

    await page.locator('li[data-figure="calls"] a').click()
    await expect(page.get_by_role("heading", name="来电")).to_be_visible()
    listed = [await row.get_attribute("data-call") for row in await page.locator("tr[data-call]").all()]
    c = week.calls
    assert sorted(listed) == sorted([c["quick"], c["slow"], c["abandoned"], c["in_menu"]])
    assert c["sunday_before"] not in listed
    await expect(page.locator(".drill-total")).to_have_text("4")
    await page.screenshot(path=shots / "reports-drill-desktop.png", full_page=True)
    await page.locator(f'tr[data-call="{c["quick"]}"] a').click()
    await expect(page.locator("dl.facts")).to_contain_text("13800000000")
    await expect(page.locator("main")).to_contain_text("漏水")
    assert watched.errors == [], watched.errors
    await page.context.close()


async def test_a_rate_drills_down_to_its_counted_and_its_whole_on_a_phone(chromium_browser, base_url, week,
                                                                          shots) -> None:
    watched = await open_as(chromium_browser, base_url, "sup", "phone")
    page = watched.page
    await page.goto(f"/reports/weekly?week={WEEK}")
    await no_sideways_scroll(page)
    await page.screenshot(path=shots / "reports-phone.png", full_page=True)
    await page.locator('li[data-figure="answered_within_three_rings_pct"] a').click()
    assert [await r.get_attribute("data-call") for r in await page.locator("tr[data-call]").all()] == [week.calls["quick"]]
    await page.locator("nav.parts a").nth(1).click()
    c = week.calls
    await expect(page.locator("tr[data-call]")).to_have_count(3)
    assert [await r.get_attribute("data-call") for r in await page.locator("tr[data-call]").all()] == [
        c["quick"], c["slow"], c["abandoned"]]
    await no_sideways_scroll(page)
    await page.screenshot(path=shots / "reports-drill-phone.png", full_page=True)
    await page.goto(f"/reports/weekly?week={WEEK}")
    await page.locator('tr[data-unit="customer_service"] td.n a').nth(2).click()     # not finished
    assert [await r.get_attribute("data-order") for r in await page.locator("tr[data-order]").all()] == [
        str(week.orders["complaint"]), str(week.orders["repeat"])]
    assert watched.errors == [], watched.errors
    await page.context.close()


