"""Reports benchmark: a year of a busy hotline — 1,000,000 calls, 300,000 work orders (100,000
of them open), their dispatch/arrival events and follow-ups — on SQLite and on PostgreSQL.

Times (median of --runs): the monthly report (calendar month and the 26th–25th cycle), the
drill-down of two of its figures as the reports page lists them (the month's calls, and the
field orders dispatched within 3 minutes: the count and the first page of 100 rows) and one
deadline-watcher scan over the 100,000 open orders (read, decide; no deadline is due at the
scan's moment, so it measures the pass itself, not the escalations it would write).

    .venv/bin/python bench/reports.py [--runs 5] [--calls 1000000] [--orders 300000]

Writes bench/results/reports.json and prints it. Needs PostgreSQL on 127.0.0.1:5432 (a
database is made for the run and dropped after); --no-postgres runs SQLite alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from benchinfo import machine
from sqlalchemy import func, select

from callcenter.calls.models import Call
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.workorders import watcher
from callcenter.workorders.categories import load_categories
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.reports import BY_NAME, Sets, build, period
from callcenter.workorders.service import WorkOrderService

RESULTS = Path(__file__).with_name("results") / "reports.json"
GOALS = {"monthly_postgres_s": 2.0, "monthly_sqlite_s": 5.0, "watcher_scan_s": 1.0}
TZ = "Asia/Shanghai"
YEAR_START = datetime(2025, 11, 1, tzinfo=UTC)
YEAR_S = 365 * 86400
MONTH = "2026-10"
OPEN_ORDERS = 100_000
PG_ADMIN = os.environ.get("CALLCENTER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

CALL_COLUMNS = ("id", "uniqueid", "linkedid", "channel", "engine_id", "caller_number", "caller_name",
                "dialled_number", "arrived_at", "ivr_path", "category", "queue", "priority", "queued_at", "agent_id",
                "agent_answered_at", "ended_at", "disposition", "survey_score", "closed")
ORDER_COLUMNS = ("id", "caller_number", "category", "subcategory", "description", "urgency", "unit", "state",
                 "returns", "escalation_level", "needs_review", "repeat_of", "created_at", "dispatch_by", "arrive_by",
                 "result_by", "reply_by")
EVENT_COLUMNS = ("order_id", "at", "actor", "event", "from_state", "to_state", "reason")
FOLLOWUP_COLUMNS = ("id", "order_id", "number", "due_at", "state", "needs_agent", "created_at", "answered_at")


def calls(n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        arrived = YEAR_START + timedelta(seconds=YEAR_S * i / n)
        queued = rng.random() < 0.85
        fate = rng.random()
        answered = queued and fate < 0.9
        disposition = "answered" if answered else ("abandoned_in_queue" if queued else "message_only")
        wait = rng.uniform(3, 40)
        agent_at = arrived + timedelta(seconds=wait) if answered else None
        ended = (agent_at or arrived) + timedelta(seconds=rng.uniform(30, 400))
        cid = f"call-{i:07d}"
        yield (cid, cid, cid, "PJSIP/trunk-1", "bench", f"138{rng.randrange(10**8):08d}", "", "96666", arrived,
               "[]", "leak", "leak", 0, arrived + timedelta(seconds=2) if queued else None,
               f"{1000 + rng.randrange(80)}" if answered else None, agent_at, ended, disposition,
               rng.choice((None, 3, 4, 5, 5)) if answered else None, True)


def orders(n: int, rng: random.Random) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    cats = load_categories().categories
    ids = list(cats)
    rows, events, followups = [], [], []
    for i in range(1, n + 1):
        created = YEAR_START + timedelta(seconds=YEAR_S * i / n)
        category_id = rng.choice(ids)
        cat = cats[category_id]
        is_open = i > n - OPEN_ORDERS
        field = cat.needs_field_work
        dispatch_by = created + timedelta(minutes=3) if field else None
        arrive_by = dispatch_by + timedelta(minutes=cat.arrive_min) if field and cat.arrive_min else None
        state = rng.choice(("accepted", "dispatched", "acknowledged", "on_site")) if is_open else rng.choice(
            ("resolved", "followed_up", "archived", "archived"))
        far = datetime(2030, 1, 1, tzinfo=UTC) if is_open else None   # open orders' deadlines lie ahead
        sub = rng.choice(list(cat.subcategories)) if cat.subcategories else None
        rows.append((i, f"139{rng.randrange(10**8):08d}", category_id, sub, "", cat.urgency, cat.unit, state, 0,
                     rng.choice((0, 0, 0, 1)), False, None, created, far or dispatch_by, far or arrive_by,
                     far or created + timedelta(hours=10), far or created + timedelta(days=3)))
        if field and state != "accepted":
            events.append((i, created + timedelta(seconds=rng.uniform(30, 300)), "1001", "dispatch", "accepted",
                           "dispatched", ""))
            if state not in ("dispatched", "acknowledged"):
                events.append((i, created + timedelta(minutes=rng.uniform(10, 200)), "unit", "arrive",
                               "acknowledged", "on_site", ""))
        if not is_open and rng.random() < 0.1:
            due = created + timedelta(days=1)
            followups.append((str(uuid.UUID(int=i)), i, "1", due, rng.choice(("satisfied", "satisfied", "unsatisfied")),
                              False, created, due + timedelta(minutes=20)))
    return rows, events, followups


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def load_sqlite(path: Path, tables: dict[str, tuple[tuple[str, ...], Any]]) -> None:
    db = sqlite3.connect(path)
    for table, (columns, rows) in tables.items():
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                       ([_sqlite_value(v) for v in row] for row in rows))
    db.commit()
    db.execute("ANALYZE")
    db.close()


def load_postgres(url: str, tables: dict[str, tuple[tuple[str, ...], Any]]) -> None:
    with psycopg.connect(url) as conn:
        for table, (columns, rows) in tables.items():
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute("SELECT setval('work_orders_id_seq', (SELECT max(id) FROM work_orders))")
        conn.commit()
        conn.execute("ANALYZE")


async def drill_down(sessionmaker: Any, categories: Any) -> dict[str, int]:
    """Two figures' drill-downs of the month, as pages/reports.py runs them: the count of the rows
    a figure counted and their first page."""
    listed = {}
    async with sessionmaker() as session:
        sets = Sets(session.get_bind().dialect.name, period("monthly", MONTH, TZ), 15, categories)
        for name, model, order in (("calls", Call, Call.arrived_at), ("dispatch_within_3_min_pct", WorkOrder,
                                                                       WorkOrder.created_at)):
            counted = sets.rows(BY_NAME[name]).subquery()
            total = (await session.execute(select(func.count()).select_from(counted))).scalar_one()
            rows = (await session.scalars(sets.rows(BY_NAME[name], "counted", None, model)
                                          .order_by(order, model.id).limit(100))).all()
            listed[name] = total
            assert len(rows) == min(total, 100)
    return listed


async def measure(url: str, runs: int) -> dict[str, Any]:
    db = create_engine(url)
    sessionmaker = make_sessionmaker(db)
    categories = load_categories()
    service = WorkOrderService(sessionmaker, categories, TZ)
    policy = watcher.Policy()
    timings: dict[str, list[float]] = {"monthly_s": [], "cycle_s": [], "drill_down_s": [], "watcher_scan_s": []}
    figures: dict[str, Any] = {}
    try:
        for _ in range(runs):
            for kind, key in (("monthly", "monthly_s"), ("cycle", "cycle_s")):
                t0 = time.perf_counter()
                report = await build(sessionmaker, kind, MONTH, tz=TZ, categories=categories, answer_within_s=15)
                timings[key].append(time.perf_counter() - t0)
                figures[kind] = {"calls": report.indicators["calls"], "orders": report.indicators["orders_taken"]}
            t0 = time.perf_counter()
            figures["drill_down"] = await drill_down(sessionmaker, categories)
            timings["drill_down_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            actions = await watcher.scan(service, policy, now=datetime(2026, 11, 1, tzinfo=UTC))
            timings["watcher_scan_s"].append(time.perf_counter() - t0)
            assert actions == [], "the bench's open orders have no deadline due"
    finally:
        await db.dispose()
    return {**{k: round(statistics.median(v), 3) for k, v in timings.items()},
            "runs": {k: [round(x, 3) for x in v] for k, v in timings.items()}, "report_covers": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    rng = random.Random(20261127)
    call_rows = list(calls(args.calls, rng))
    order_rows, event_rows, followup_rows = orders(args.orders, rng)
    tables = {"calls": (CALL_COLUMNS, call_rows), "work_orders": (ORDER_COLUMNS, order_rows),
              "work_order_events": (EVENT_COLUMNS, event_rows), "follow_ups": (FOLLOWUP_COLUMNS, followup_rows)}
    generated_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "machine": machine(),
        "data": {"calls": len(call_rows), "work_orders": len(order_rows), "open_orders": OPEN_ORDERS,
                 "events": len(event_rows), "follow_ups": len(followup_rows), "month": MONTH,
                 "generated_s": round(generated_s, 1)},
        "goals": GOALS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(migrate(url))
        t0 = time.perf_counter()
        load_sqlite(path, tables)
        result["sqlite"] = {"load_s": round(time.perf_counter() - t0, 1), **asyncio.run(measure(url, args.runs))}
    if not args.no_postgres:
        name = f"callcenter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0]
        try:
            asyncio.run(migrate(f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"))
            t0 = time.perf_counter()
            load_postgres(f"{base}/{name}", tables)
            result["postgres"] = {"load_s": round(time.perf_counter() - t0, 1),
                                  **asyncio.run(measure(f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}",
                                                        args.runs))}
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result["met"] = {
        "monthly_sqlite": result["sqlite"]["monthly_s"] <= GOALS["monthly_sqlite_s"],
        "watcher_scan": result["sqlite"]["watcher_scan_s"] <= GOALS["watcher_scan_s"],
        **({"monthly_postgres": result["postgres"]["monthly_s"] <= GOALS["monthly_postgres_s"],
            "watcher_scan_postgres": result["postgres"]["watcher_scan_s"] <= GOALS["watcher_scan_s"]}
           if "postgres" in result else {}),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
