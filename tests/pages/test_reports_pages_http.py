"""The reports pages through aiohttp's client, on SQLite and PostgreSQL: a week with known calls
and orders; the page's figures are the XLSX's, each drill-down lists exactly the rows its figure
counted, the written reports are listed and served by their names only, bad input is a 400 page
naming the field, and only supervisors and admins get in."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook

from callcenter.workorders import http as orders_http
from callcenter.workorders.reports import INDICATORS
from callcenter.workorders.runner import write_due_reports
from tests.pages.report_period import WEEK, seed_week
from tests.pages.test_pages_http import sign_in


@pytest.fixture
async def week(hotline, sessionmaker):
    return await seed_week(sessionmaker)


def figures_of(page: str) -> dict[str, str]:
    """Each figure's value as the page shows it ("—" for none)."""
    found = re.findall(r'<li data-figure="([a-z_0-9]+)">.*?<span class="value">([^<]*)</span>', page, re.S)
    return dict(found)


def xlsx_figures(body: bytes) -> dict[str, object]:
    sheet = load_workbook(io.BytesIO(body))["indicators"]
    return {r[0]: r[2] for r in sheet.iter_rows(values_only=True) if r and len(r) > 2 and r[0] != "indicator"}


def as_number(shown: str) -> float | None:
    return None if shown == "—" else float(shown)


def drilled(page: str, what: str) -> list[str]:
    return re.findall(rf'<tr data-{what}="([^"]+)">', page)


async def test_the_report_page_shows_the_figures_of_the_xlsx(aiohttp_client, hotline, week) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    page = await client.get(f"/reports/weekly?week={WEEK}")
    assert page.status == 200
    text = await page.text()
    shown = figures_of(text)
    assert set(shown) == {i.name for i in INDICATORS}
    book = xlsx_figures(await (await client.get(f"/api/reports/weekly?week={WEEK}&format=xlsx")).read())
    assert {name: as_number(v) for name, v in shown.items()} == {i.name: book[i.name] for i in INDICATORS}
    assert shown["calls"] == "4" and shown["answered_within_three_rings_pct"] == "33.33" and shown["asa_s"] == "15.0"
    assert shown["on_time_arrival_pct"] == "50.0" and shown["repeat_complaints"] == "1"
    assert f'href="/api/reports/weekly?week={WEEK}&amp;format=csv"' in text
    assert f'href="/reports/weekly/calls?week={WEEK}"' in text


async def test_a_drill_down_lists_exactly_the_calls_the_figure_counted(aiohttp_client, hotline, week) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    c = week.calls

    async def rows(figure: str, query: str = "", what: str = "call") -> list[str]:
        response = await client.get(f"/reports/weekly/{figure}?week={WEEK}{query}")
        assert response.status == 200, await response.text()
        return drilled(await response.text(), what)

    assert sorted(await rows("calls")) == sorted([c["quick"], c["slow"], c["abandoned"], c["in_menu"]])
    assert await rows("answered_within_three_rings_pct") == [c["quick"]]
    assert await rows("answered_within_three_rings_pct", "&part=of") == [c["quick"], c["slow"], c["abandoned"]]
    assert await rows("abandon_rate_pct") == [c["abandoned"]]
    assert await rows("asa_s") == [c["quick"], c["slow"]]
    o = week.orders
    assert await rows("orders_taken", what="order") == [str(o[k]) for k in ("leak", "meter", "complaint", "repeat")]
    assert await rows("repeat_complaints", what="order") == [str(o["repeat"])]
    assert await rows("orders_taken", "&category=ic_meter&subcategory=low_flow", "order") == [str(o["meter"])]
    assert await rows("orders_taken", "&category=leak&subcategory=-", "order") == [str(o["leak"])]
    assert await rows("orders_unfinished", "&unit=customer_service", "order") == [str(o["complaint"]), str(o["repeat"])]
    assert await rows("calls", "&day=2026-11-24") == [c["abandoned"], c["in_menu"]]
    assert len(await rows("satisfaction_pct", "&part=of", "follow-up")) == 2
    page = await (await client.get(f"/reports/weekly/calls?week={WEEK}")).text()
    assert f'href="/calls/{c["quick"]}"' in page and 'data-total="4"' in page
    orders_page = await (await client.get(f"/reports/weekly/orders_taken?week={WEEK}")).text()
    assert f'href="/orders/{o["leak"]}"' in orders_page


async def test_the_call_page_shows_the_record_and_its_orders(aiohttp_client, hotline, week) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    page = await client.get(f"/calls/{week.calls['quick']}")
    text = await page.text()
    assert page.status == 200 and "13800000000" in text and f'href="/orders/{week.orders["leak"]}"' in text
    assert "/qa/calls/" not in text          # a supervisor hears no recording
    assert (await client.get("/calls/not-a-call")).status == 404
    agent = await aiohttp_client(hotline.app)
    await sign_in(agent, "agent")            # agent 1001: their own call, not 1002's
    assert (await agent.get(f"/calls/{week.calls['quick']}")).status == 200
    assert (await agent.get(f"/calls/{week.calls['slow']}")).status == 404


BAD_INPUT = [
    ("/reports/weekly?week=2026-W99", "week"),
    ("/reports/weekly?week=last", "week"),
    ("/reports/daily?date=2100-01-01", "date"),
    ("/reports/cycle?month=2026-13", "month"),
    (f"/reports/weekly/calls?week={WEEK}&part=all", "part"),
    (f"/reports/weekly/calls?week={WEEK}&part=of", "part"),
    (f"/reports/weekly/calls?week={WEEK}&day=2026-12-01", "day"),
    (f"/reports/weekly/orders_taken?week={WEEK}&subcategory=low_flow", "subcategory"),
    (f"/reports/weekly/calls?week={WEEK}&offset=-1", "offset"),
    (f"/reports/weekly/calls?week={WEEK}&unit=" + "x" * 65, "unit"),
]


# What does not depend on the database runs on SQLite alone.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_bad_input_is_a_400_page_naming_the_field_and_what_names_nothing_a_404(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    for url, field in BAD_INPUT:
        response = await client.get(url)
        assert response.status == 400 and response.content_type == "text/html", url
        assert re.search(rf'role="alert">[^<]*\b{field}: ', await response.text()), url
    for url in ("/reports/yearly", f"/reports/weekly/drop_table?week={WEEK}", "/reports/written/..%2F..%2Fetc%2Fpasswd",
                "/reports/written/weekly-2026-W48.csv", "/reports/written/callcenter.toml"):
        assert (await client.get(url)).status == 404, url


@SQLITE_ONLY
async def test_the_reports_the_hotline_wrote_are_listed_and_served(aiohttp_client, hotline, week, settings,
                                                                  sessionmaker) -> None:
    written = await write_due_reports(settings, hotline.app[orders_http.ORDERS], date(2026, 11, 30))
    assert len(written) == 6
    (written[0].parent / "notes.txt").write_text("not a report")
    (written[0].parent / "weekly-2026-W49.csv.tmp").write_text("half written")
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    page = await (await client.get("/reports")).text()
    assert 'data-written="weekly-2026-W48"' in page and 'data-written="daily-2026-11-29"' in page
    assert 'href="/reports/written/weekly-2026-W48.xlsx"' in page and "notes.txt" not in page and ".tmp" not in page
    xlsx = await client.get("/reports/written/weekly-2026-W48.xlsx")
    assert xlsx.status == 200 and "attachment" in xlsx.headers["Content-Disposition"]
    assert xlsx_figures(await xlsx.read())["orders_taken"] == 4
    assert (await client.get("/reports/written/notes.txt")).status == 404
    assert (await client.get("/reports/written/weekly-2026-W49.csv.tmp")).status == 404


@SQLITE_ONLY
async def test_only_supervisors_and_admins_open_the_reports(aiohttp_client, hotline) -> None:
    for username, status in (("sup", 200), ("admin", 200), ("agent", 403), ("qa", 403), ("repair", 403)):
        client = await aiohttp_client(hotline.app)
        await sign_in(client, username)
        for url in ("/reports", f"/reports/weekly?week={WEEK}", f"/reports/weekly/calls?week={WEEK}"):
            response = await client.get(url)
            assert response.status == status, (username, url)
            if status == 403:
                assert "您的角色无权打开此页面" in await response.text()
        await client.close()
    anonymous = await aiohttp_client(hotline.app)
    assert (await anonymous.get("/reports", allow_redirects=False)).status in (302, 401)


@SQLITE_ONLY
async def test_a_long_drill_down_comes_a_hundred_rows_a_page_and_english_on_asking(aiohttp_client, hotline,
                                                                                 sessionmaker) -> None:
    from datetime import timedelta

    from callcenter.calls.models import Call
    from tests.pages.report_period import at

    async with sessionmaker() as session, session.begin():
        session.add_all(Call(id=f"00000000-0000-4000-8000-{n:012d}", uniqueid=f"long-{n}", linkedid=f"long-{n}",
                             channel="PJSIP/trunk-1", caller_number="13800000009",
                             arrived_at=at(2, 8) + timedelta(minutes=n), disposition="abandoned_in_ivr", closed=True)
                        for n in range(105))
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")
    first = await (await client.get(f"/reports/weekly/calls?week={WEEK}&day=2026-11-25")).text()
    assert len(drilled(first, "call")) == 100 and 'data-total="105"' in first
    next_page = re.search(r'href="\?([^"]+)" rel="next"', first)
    assert next_page is not None
    rest = await (await client.get(f"/reports/weekly/calls?{next_page.group(1).replace('&amp;', '&')}")).text()
    assert drilled(rest, "call") == [f"00000000-0000-4000-8000-{n:012d}" for n in range(100, 105)]
    assert set(drilled(first, "call")).isdisjoint(drilled(rest, "call"))
    english = await (await client.get(f"/reports/weekly?week={WEEK}&lang=en")).text()
    assert "Incoming calls" in english and "Answered within three rings" in english and "来电" not in english
