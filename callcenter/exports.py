"""Cells for every CSV and XLSX the hotline writes, safe to open in a spreadsheet program.

What citizens and agents type ends up in reports (an order's description, a category or unit
name): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a
formula by the supervisor's spreadsheet (`=HYPERLINK(...)`, DDE). Following the OWASP rule on
CSV injection, such text is written as text: in CSV with a leading single quote (`'=1+1`), in
XLSX as a plain string cell (never a formula) marked with Excel's quote prefix, so it shows
exactly as typed and stays text when edited. The full-width forms (＝ ＋ － ＠), which Chinese
input methods produce, are treated the same. Numbers (a count of -2 included) stay numbers.

Every report and export writes its rows through `csv_row` or `xlsx_row`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def is_formula_like(value: object) -> bool:
    """Text a spreadsheet program would read as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def csv_cell(value: Any) -> Any:
    """A value for csv.writer: formula-like text gets a leading `'`; anything else as it is."""
    return "'" + value if is_formula_like(value) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def xlsx_row(sheet: Worksheet, values: Iterable[Any]) -> list[Any]:
    """Cells for `sheet.append`: formula-like text as a string cell with the quote prefix."""
    row: list[Any] = []
    for value in values:
        if is_formula_like(value):
            cell = Cell(sheet, value=value)
            cell.data_type = "s"       # openpyxl made it a formula ('f') from the leading `=`
            cell.quotePrefix = True
            row.append(cell)
        else:
            row.append(value)
    return row
