"""The work-order background duties of a running hotline: the deadline watcher's scan, placing
the follow-up calls that are due, and drawing Monday's weekly follow-up sample. Each loop logs
its failures and carries on at the next turn: nothing here may stop the hotline. When several
engines share the hotline, only the one holding the duties' lease (`lead`) does them."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from callcenter.config import Settings
from callcenter.workorders import watcher
from callcenter.workorders.followups import FollowUpDialer, FollowUpService
from callcenter.workorders.render import render
from callcenter.workorders.reports import build_for, due_reports, last_week
from callcenter.workorders.service import WorkOrderService

log = logging.getLogger(__name__)
FOLLOW_UP_POLL_S = 30.0


def policy(settings: Settings) -> watcher.Policy:
    w = settings.workorders
    return watcher.Policy(w.warn_at_fraction, timedelta(minutes=w.escalate_every_min), w.max_escalation_level)


Lead = Callable[[], Awaitable[bool]]


async def _every(interval_s: float, stop: asyncio.Event, what: str, duty: Callable[[], Awaitable[object]],
                 lead: Lead | None = None) -> None:
    while not stop.is_set():
        try:
            if lead is None or await lead():
                await duty()
        except Exception:
            log.exception("work orders: %s failed; trying again in %.0f s", what, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def run(settings: Settings, orders: WorkOrderService, followups: FollowUpService, dialer: FollowUpDialer,
              stop: asyncio.Event, lead: Lead | None = None) -> None:
    rules, w = policy(settings), settings.workorders
    zone = zoneinfo.ZoneInfo(settings.hotline.timezone)
    drawn: set[str] = set()

    async def weekly_sample() -> None:
        local = datetime.now(UTC).astimezone(zone)
        week = last_week(local.date())
        if local.weekday() == 0 and local.hour >= 8 and week not in drawn:
            await followups.draw_weekly_sample(week, w.follow_up_sample_pct, w.follow_up_sample_seed)
            drawn.add(week)

    async def reports_out() -> None:
        """The day's reports, written once each under <spool>/reports/ (CSV, XLSX, HTML)."""
        local = datetime.now(UTC).astimezone(zone)
        if local.hour < 1:
            return   # the day's figures settle after midnight
        await write_due_reports(settings, orders, local.date())

    await asyncio.gather(
        _every(600, stop, "reports", reports_out, lead),
        _every(w.watch_interval_s, stop, "deadline scan", lambda: watcher.scan(orders, rules), lead),
        _every(FOLLOW_UP_POLL_S, stop, "follow-up calls", lambda: followups.call_due(dialer), lead),
        _every(600, stop, "weekly follow-up sample", weekly_sample, lead),
    )


async def write_due_reports(settings: Settings, orders: WorkOrderService, today: date) -> list[Path]:
    """Write the reports due `today` that are not written yet; returns the files written."""
    folder = settings.paths.spool_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, when in due_reports(today):
        if (folder / f"{kind}-{when}.html").exists():
            continue
        report = await build_for(settings, orders.sessionmaker, orders.categories, kind, when)
        for fmt in ("csv", "xlsx", "html"):   # the HTML last: its presence says the set is complete
            target = folder / f"{kind}-{when}.{fmt}"
            partial = target.with_suffix(target.suffix + ".tmp")
            partial.write_bytes(render(report, fmt))
            partial.replace(target)
            written.append(target)
        log.info("%s report %s written to %s", kind, when, folder)
    return written
