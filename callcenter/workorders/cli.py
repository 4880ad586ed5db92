"""`callcenter report daily|weekly|cycle|monthly` — a report to a file (or standard output).

    callcenter report weekly --week 2026-W47 --format xlsx --out week47.xlsx
    callcenter report weekly                     # last week, as Monday's report is
    callcenter report cycle --month 2026-11      # 26 Oct – 25 Nov
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from callcenter.config import Settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.workorders.categories import load_categories
from callcenter.workorders.render import FORMATS, render
from callcenter.workorders.reports import KINDS, ReportError, build_for, default_when


async def make_report(settings: Settings, kind: str, when: str, fmt: str) -> bytes:
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    try:
        report = await build_for(settings, make_sessionmaker(db),
                                 load_categories(settings.workorders.categories_file or None), kind, when)
        return render(report, fmt)
    finally:
        await db.dispose()


def main(name: str, argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="callcenter report", description="daily, weekly and monthly reports")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--date", help="daily: the day, e.g. 2026-11-23 (default yesterday)")
    parser.add_argument("--week", help="weekly: the ISO week, e.g. 2026-W47 (default last week)")
    parser.add_argument("--month", help="cycle/monthly: e.g. 2026-11 (default this month)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    when = args.date or args.week or args.month or default_when(args.kind, settings.hotline.timezone)
    try:
        data = asyncio.run(make_report(settings, args.kind, when, args.format))
    except ReportError as exc:
        print(f"callcenter report: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_bytes(data)
        print(f"{args.kind} report {when} written to {args.out}")
    else:
        sys.stdout.buffer.write(data)
    return 0
