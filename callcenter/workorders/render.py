"""A report as CSV (one file, a section per block), XLSX (a sheet per block, openpyxl) or a
printable HTML page with bar charts (Jinja2, inline SVG: nothing to fetch when printing).

Every CSV and XLSX row goes through callcenter.exports: text that a spreadsheet would run as a
formula (an order description `=HYPERLINK(...)`) is written as text."""
from __future__ import annotations

import csv
import io
from typing import Any

import jinja2
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from callcenter.exports import csv_row, xlsx_row
from callcenter.workorders.reports import Report

FORMATS = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "html": "text/html; charset=utf-8"}

# What each indicator is called in the printed report.
LABELS = {
    "calls": "来电 calls", "answered": "接通 answered", "offered_to_agents": "转人工 offered to agents",
    "abandoned_in_queue": "排队放弃 abandoned in queue", "cut_by_pbx": "交换机中断 cut by the PBX",
    "answered_within_three_rings_pct": "三声接听率 answered within three rings %",
    "abandon_rate_pct": "放弃率 abandon rate %", "asa_s": "平均应答 ASA (s)", "aht_s": "平均通话 AHT (s)",
    "survey_mean": "满意度评价 survey mean (1-5)", "survey_answers": "评价数 survey answers",
    "orders_taken": "受理 orders taken", "orders_finished": "办结 finished", "orders_unfinished": "未办结 unfinished",
    "orders_unacknowledged": "未签收 unacknowledged", "orders_escalated": "督办 escalated",
    "field_orders": "派单 field orders",
    "dispatch_within_3_min_pct": "3分钟派单率 dispatch within 3 min %", "on_time_arrival_pct": "到场及时率 on-time arrival %",
    "follow_up_rate_pct": "回访率 follow-up rate %", "follow_ups_answered": "回访数 follow-ups answered",
    "satisfaction_pct": "满意率 satisfaction %", "follow_up_same_day_pct": "日结日清 follow-ups same day %",
    "complaints": "投诉 complaints", "complaint_rate_pct": "投诉率 complaint rate %",
    "repeat_complaints": "二次投诉 repeat complaints", "repeat_complaint_rate_pct": "重复投诉率 repeat-complaint rate %",
}
TITLES = {"daily": "日报", "weekly": "周报", "cycle": "月报（26日—25日）", "monthly": "月报（自然月）"}
BLOCKS = (("categories", ("category", "subcategory", "name", "taken", "finished")),
          ("units", ("unit", "taken", "finished", "unfinished", "unacknowledged", "escalated")),
          ("days", ("day", "calls", "answered", "orders")),
          ("notable", ("order_id", "category", "unit", "state", "escalation_level", "returns", "repeat_of",
                       "description")))


def render(report: Report, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(report)
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "html":
        return to_html(report).encode()
    raise ValueError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")


def _header(report: Report) -> list[list[Any]]:
    p = report.period
    return [["report", p.kind], ["period", p.label], ["from", p.start.isoformat()], ["to", p.end.isoformat()],
            ["generated_at", report.generated_at.isoformat()]]


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)

    def write(row: list[Any]) -> None:
        writer.writerow(csv_row(row))

    write(["# " + (report.hotline or "hotline") + " " + TITLES[report.period.kind]])
    for row in _header(report):
        write(row)
    write([])
    write(["indicator", "value"])
    for key, value in report.indicators.items():
        write([key, "" if value is None else value])
    for name, columns in BLOCKS:
        write([])
        write([f"# {name}"])
        write(list(columns))
        for block_row in getattr(report, name):
            write([block_row.get(c, "") for c in columns])
    return ("\ufeff" + out.getvalue()).encode()   # a BOM so spreadsheet programs read the Chinese right


def to_xlsx(report: Report) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "indicators"
    sheet.append(xlsx_row(sheet, [f"{report.hotline} {TITLES[report.period.kind]} {report.period.label}"]))
    sheet["A1"].font = Font(bold=True, size=14)
    for row in _header(report):
        sheet.append(xlsx_row(sheet, row))
    sheet.append([])
    sheet.append(["indicator", "label", "value"])
    for key, value in report.indicators.items():
        sheet.append(xlsx_row(sheet, [key, LABELS.get(key, key), value]))
    sheet.column_dimensions["B"].width = 44
    for name, columns in BLOCKS:
        block = book.create_sheet(name)
        block.append(xlsx_row(block, columns))
        for cell in block[1]:
            cell.font = Font(bold=True)
        for row in getattr(report, name):
            block.append(xlsx_row(block, [row.get(c) for c in columns]))
        if name in ("categories", "units") and block.max_row > 1:
            chart = BarChart()
            chart.title = "taken / finished"
            first = columns.index("taken") + 1
            chart.add_data(Reference(block, min_col=first, max_col=first + 1, min_row=1, max_row=block.max_row),
                           titles_from_data=True)
            label_col = columns.index("name") + 1 if "name" in columns else 1
            chart.set_categories(Reference(block, min_col=label_col, min_row=2, max_row=block.max_row))
            block.add_chart(chart, "I2")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_env = jinja2.Environment(loader=jinja2.PackageLoader("callcenter.workorders", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]))


def _bars(rows: list[dict[str, Any]], label: str, value: str) -> list[dict[str, Any]]:
    top = max((row[value] or 0 for row in rows), default=0) or 1
    return [{"label": row[label], "value": row[value] or 0, "width": round(300 * (row[value] or 0) / top)}
            for row in rows]


def to_html(report: Report) -> str:
    return _env.get_template("report.html").render(
        report=report, title=TITLES[report.period.kind], labels=LABELS,
        category_bars=_bars(report.categories, "name", "taken"), unit_bars=_bars(report.units, "unit", "taken"),
        day_bars=_bars(report.days, "day", "calls"))
