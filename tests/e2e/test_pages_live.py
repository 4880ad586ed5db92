"""The pages in Debian's Chromium against the real hotline: Asterisk, SIPp callers and phones,
the hotline `build_hotline` builds (engine, web, shared state on Redis).

- a caller presses 2; agent 1001's desk shows the screen pop with the caller's open order within
  1 s of the ring; the agent fills the order form and dispatches; the order is in the database
  with the call;
- the wallboard's waiting count goes up within 1 s of a caller entering the queue, and down when
  an agent answers;
- the supervisor clicks "listen" and the supervisor's own SIPp phone is rung into the call;
- the hotline is rebuilt on the same port under the agent's page: its socket is cut, the page
  says so, comes back by itself and follows the agent's state again.

The "within 1 s" figures are measured in the page (a MutationObserver notes the moment the
element changed) against the engine's own moment in the call record; each is also written to
the screenshot folder's timings.log.
"""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from callcenter.app import build_hotline
from callcenter.calls.models import AgentAttempt, Call, Supervision
from callcenter.config import load_settings
from callcenter.rig import AsteriskRig
from callcenter.sipp import Key, caller_scenario, expect_ok
from callcenter.workorders.models import Customer, WorkOrder
from tests.conftest import REDIS_URL
from tests.e2e.conftest import WEB_USERS, Hotline, free_port, rig_overrides, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS, start_agent, start_caller
from tests.pages.test_pages_browser import Watched
from tests.pages.test_pages_browser import open_as as pages_open_as

pytestmark = pytest.mark.asterisk

LANDING = {"a1001": "/agent", "sup": "/wallboard"}
# Notes, in the page, the moment (Date.now(), the machine's clock as the engine's) an element's
# text first became the one awaited.
WATCH_TEXT = """([selector, text]) => new Promise((resolve) => {
  const seen = () => { const node = document.querySelector(selector); return node && node.textContent.trim() === text; };
  if (seen()) { resolve(Date.now()); return; }
  const observer = new MutationObserver(() => { if (seen()) { observer.disconnect(); resolve(Date.now()); } });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  window.__watched = window.__watched || {};
  window.__watched[selector] = true;
})"""


async def open_as(browser: Browser, base_url: str, username: str, width: str = "desktop") -> Watched:
    password = next(u["password"] for u in WEB_USERS if u["username"] == username)
    return await pages_open_as(browser, base_url, username, width, password=password, lands=LANDING[username])


def watch_text(page: Page, selector: str, text: str) -> Any:
    """A task that ends with the page's own moment (ms since the epoch) `selector` showed `text`."""
    import asyncio

    return asyncio.ensure_future(page.evaluate(WATCH_TEXT, [selector, text]))


def note(folder: Path, what: str, seconds: float, bound_s: float) -> None:
    line = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "what": what, "seconds": round(seconds, 3),
            "bound_s": bound_s}
    with (folder / "timings.log").open("a", encoding="utf-8") as log:
        log.write(json.dumps(line, ensure_ascii=False) + "\n")


async def seed_caller(line: Hotline, number: str) -> int:
    """The caller is a customer with a leak reported two hours ago and still open (taken by 1002)."""
    earlier = f"earlier-{uuid.uuid4().hex[:8]}"
    async with line.sessionmaker() as session, session.begin():
        session.add(Customer(number=number, account="YH-0012345", name="张三", address="幸福路 12 号 3 单元 501",
                             area="幸福小区"))
        session.add(Call(id=earlier, uniqueid=earlier, linkedid=earlier, channel="PJSIP/trunk-0", caller_number=number,
                         arrived_at=datetime.now(UTC) - timedelta(hours=2), category="leak", agent_id="1002",
                         queue="leak", disposition="answered", closed=True))
    return (await line.built.workorders.draft_from_call(earlier)).id


async def test_the_desk_pops_the_callers_open_order_within_a_second_and_dispatches_the_new_one(
        hotline: Hotline, chromium_browser: Browser, shots: Path) -> None:
    line, number = hotline, "13912340001"
    open_order = await seed_caller(line, number)
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", ring_ms=1500, hangup_after_ms=60_000)
    desk = await open_as(chromium_browser, line.built.url, "a1001")
    page = desk.page
    await expect(page.locator("#state")).to_have_text("就绪")
    popped = watch_text(page, "#pop .caller", number)
    caller = await start_caller(line, "caller_desk", caller_scenario(
        number=number, keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=12_000))
    shown_ms = await popped
    await wait_until(lambda: _attempts(line, "1001"), 5, "agent 1001's ring is on the call's record")
    [attempt] = await _attempts(line, "1001")
    pop_s = shown_ms / 1000 - attempt.started_at.timestamp()
    note(shots, "desk: ring to screen pop shown", pop_s, 1.0)
    assert pop_s <= 1.0, f"the screen pop came {pop_s:.3f} s after the ring"
    pop = page.locator("#pop")
    await expect(pop).to_contain_text("张三")
    await expect(pop.locator("ul.pop-orders li").first).to_contain_text(f"#{open_order}")
    await expect(pop.locator("ul.pop-orders li").first).to_contain_text("1002")   # its owner

    # On the call: the form is filled from the call; the agent writes what the caller says,
    # opens the order, and dispatches it to the unit the category names.
    await expect(page.locator("#state")).to_have_text("通话中", timeout=15_000)
    await wait_until(lambda: _answered_by(line, attempt.call_id, "1001"), 5, "the record says 1001 answered")
    form = page.locator("#order")
    await expect(form.get_by_label("类别")).to_have_value("leak")
    await expect(form.get_by_label("地址")).to_have_value("幸福路 12 号 3 单元 501")
    await expect(form.get_by_role("button", name=f"来电并入工单 #{open_order} 漏水")).to_be_visible()
    await form.get_by_label("诉求内容").fill("楼下路面冒水，水流很大")
    await form.get_by_role("button", name="生成工单").click()
    await expect(page.locator("#dispatch-unit")).to_have_text("repair_team")
    await form.get_by_role("button", name="派单到责任单位").click()
    await expect(page.locator("#order-said")).to_contain_text("已派往 repair_team")
    await page.screenshot(path=shots / "live-agent-dispatched-desktop.png", full_page=True)

    async with line.sessionmaker() as session:
        mine = (await session.execute(select(WorkOrder).where(WorkOrder.call_id == attempt.call_id))).scalar_one()
    assert (mine.category, mine.state, mine.unit, mine.agent_id) == ("leak", "dispatched", "repair_team", "1001")
    assert mine.description == "楼下路面冒水，水流很大" and mine.address == "幸福路 12 号 3 单元 501"
    await expect_ok(caller)     # hangs up as scripted; the agent's phone with it
    await expect_ok(agent)
    await wait_until(lambda: _closed(line, attempt.call_id), 15, "the call's record is closed")
    orders = await line.work_orders()
    assert [o.id for o in orders if o.call_id == attempt.call_id] == [mine.id]   # its end drafted no other
    assert sorted(o.id for o in orders) == sorted([open_order, mine.id])
    assert desk.errors == []
    await line.no_channels_left()


async def test_one_click_attaches_the_call_to_the_running_outages_order(
        hotline: Hotline, chromium_browser: Browser, shots: Path) -> None:
    """An outage in the caller's area has its order already (its first caller's): the desk
    attaches this call to it in one click; the call's end opens no other order."""
    from callcenter.workorders.models import WorkOrderCall

    line, number, now = hotline, "13912340004", datetime.now(UTC)
    await seed_caller(line, number)
    first = f"outage-first-{uuid.uuid4().hex[:8]}"
    # Entered as the duty manager enters it: the callers from the area hear it before the menu.
    outage = await line.built.notices.create(kind="temporary", areas=["幸福小区"], starts_at=now - timedelta(hours=1),
                                             ends_at=now + timedelta(hours=3), text="幸福小区管道抢修停水",
                                             cause="主管道爆裂", by="sup")
    async with line.sessionmaker() as session, session.begin():
        session.add(Call(id=first, uniqueid=first, linkedid=first, channel="PJSIP/trunk-0", caller_number="13900000099",
                         arrived_at=now - timedelta(minutes=30), category="outage", agent_id="1002", queue="leak",
                         disposition="answered", closed=True))
    outage_order = await line.built.workorders.attach_to_outage(first, outage.id, "1002")
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=60_000)
    desk = await open_as(chromium_browser, line.built.url, "a1001")
    page = desk.page
    await expect(page.locator("#state")).to_have_text("就绪")
    caller = await start_caller(line, "caller_outage", caller_scenario(
        # a key during the notice goes on to the menu (1 would leave), then 2 for a leak
        number=number, keys=(Key("3", 1000), Key("2", MENU_KEY_AFTER_MS)), hangup_after_ms=10_000))
    await expect(page.locator("#pop .outage")).to_contain_text("幸福小区管道抢修停水", timeout=20_000)
    await expect(page.locator("#state")).to_have_text("通话中", timeout=15_000)
    [attempt] = await _attempts(line, "1001")
    await wait_until(lambda: _answered_by(line, attempt.call_id, "1001"), 5, "the record says 1001 answered")
    await page.locator("#order").get_by_role("button", name=f"来电并入停水工单 #{outage.id}").click()
    await expect(page.locator("#order-said")).to_contain_text(f"来电已并入工单 #{outage_order.id}")
    await expect(page.locator("#order-form")).to_be_hidden()
    await page.screenshot(path=shots / "live-agent-outage-attached-desktop.png", full_page=True)
    await expect_ok(caller)
    await expect_ok(agent)
    await wait_until(lambda: _closed(line, attempt.call_id), 15, "the call's record is closed")
    async with line.sessionmaker() as session:
        kept = await session.get(WorkOrderCall, attempt.call_id)
    assert kept is not None and (kept.order_id, kept.actor) == (outage_order.id, "1001")
    assert not [o for o in await line.work_orders() if o.call_id == attempt.call_id]   # no order of its own
    assert desk.errors == []
    await line.no_channels_left()


async def _attempts(line: Hotline, agent_id: str) -> list[AgentAttempt]:
    async with line.sessionmaker() as session:
        return list((await session.execute(select(AgentAttempt).where(AgentAttempt.agent_id == agent_id))).scalars())


async def _answered_by(line: Hotline, call_id: str, agent_id: str) -> bool:
    async with line.sessionmaker() as session:
        call = await session.get(Call, call_id)
    return call is not None and call.agent_id == agent_id


async def _closed(line: Hotline, call_id: str) -> bool:
    async with line.sessionmaker() as session:
        call = await session.get(Call, call_id)
    return call is not None and call.closed
async def test_the_wallboard_counts_a_caller_within_a_second_and_drops_them_when_answered(
        hotline: Hotline, chromium_browser: Browser, shots: Path) -> None:
    line = hotline
    await line.engine.login("1001")
    await line.engine.pause("1001", "meeting")
    agent = await start_agent(line, "1001", hangup_after_ms=60_000)
    board = await open_as(chromium_browser, line.built.url, "sup")
    page = board.page
    waiting = page.locator("#queue-leak .waiting")
    await expect(waiting).to_have_text("0")
    counted = watch_text(page, "#queue-leak .waiting", "1")
    caller = await start_caller(line, "caller_board", caller_scenario(
        number="13912340002", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=8_000))
    shown_ms = await counted
    await wait_until(lambda: _queued(line), 5, "the call's record says when it was queued")
    [call] = await line.calls()
    assert call.queued_at is not None and call.queue == "leak"
    count_s = shown_ms / 1000 - call.queued_at.timestamp()
    note(shots, "wallboard: caller queued to waiting count 1", count_s, 1.0)
    assert count_s <= 1.0, f"the wallboard counted the caller {count_s:.3f} s after they entered the queue"
    await expect(page.locator("#waiting-callers tbody tr")).to_have_count(1)
    await page.screenshot(path=shots / "live-wallboard-waiting-desktop.png", full_page=True)

    await line.engine.ready("1001")    # rung, answers: the caller waits no more
    await expect(waiting).to_have_text("0", timeout=15_000)
    await expect(page.locator("#agent-1001")).to_contain_text("通话中")
    await expect(page.locator("#waiting-callers tbody tr")).to_have_count(0)
    await expect_ok(caller)
    await expect_ok(agent)
    assert board.errors == []
    await line.no_channels_left()


async def test_the_supervisor_listens_from_the_grid_and_their_own_phone_is_rung(
        hotline: Hotline, chromium_browser: Browser, shots: Path) -> None:
    line = hotline
    await line.engine.login("1001")
    agent = await start_agent(line, "1001", hangup_after_ms=60_000)
    supervisor_phone = await start_agent(line, "1004", hangup_after_ms=60_000)   # 1004's phone is the supervisor's
    duty = await open_as(chromium_browser, line.built.url, "sup")
    page = duty.page
    await page.goto("/supervisor")
    row = page.locator("#agent-1001")
    await expect(row.get_by_role("button", name="监听")).to_be_disabled()
    caller = await start_caller(line, "caller_listened", caller_scenario(
        number="13912340003", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=12_000))
    await expect(row).to_contain_text("通话中", timeout=20_000)
    await row.get_by_role("button", name="监听").click()
    await expect(page.locator("#said")).to_contain_text("已完成")
    await wait_until(lambda: "ChanSpy" in line.rig.rx("core show channels concise"), 15,
                     "the supervisor's phone runs ChanSpy")
    async with line.sessionmaker() as session:
        [kept] = (await session.execute(select(Supervision))).scalars().all()
    assert (kept.supervisor, kept.agent_id, kept.mode) == ("sup", "1001", "listen")
    await page.screenshot(path=shots / "live-supervisor-listening-desktop.png", full_page=True)
    await expect_ok(caller)
    for phone in (agent, supervisor_phone):
        await expect_ok(phone)   # the agent's call, and the supervisor's ChanSpy call: both end with the caller
    assert duty.errors == []
    await line.no_channels_left()


async def _queued(line: Hotline) -> bool:
    return any(c.queued_at is not None for c in await line.calls())


@contextlib.asynccontextmanager
async def _own_hotline(rig: AsteriskRig, tmp_path: Path) -> AsyncIterator[Any]:
    """The settings of a hotline this test builds and rebuilds itself (as tests/e2e/conftest's
    `hotline` does), so it can stop it and build it again on the same port, database and Redis."""
    assert rig.settings.ami.secret is not None
    overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"}
    overrides["redis"] = {"url": REDIS_URL, "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"}
    overrides["web"] = {**overrides["web"], "host": "127.0.0.1", "port": free_port()}
    overrides["users"] = WEB_USERS
    overrides["sms"] = {"enabled": False}
    overrides["cluster"] = {"engine_id": "e2e"}
    settings = load_settings(overrides=overrides)
    try:
        yield settings
    finally:
        redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        keys = [k async for k in redis.scan_iter(match=settings.redis.prefix + "*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_the_desk_comes_back_by_itself_when_the_hotline_is_rebuilt_under_it(
        rig: AsteriskRig, tmp_path: Path, chromium_browser: Browser, shots: Path) -> None:
    async with _own_hotline(rig, tmp_path) as settings:
        async with build_hotline(settings) as first:
            await first.engine.login("1001")
            desk = await open_as(chromium_browser, first.url, "a1001")
            page = desk.page
            await expect(page.locator("#state")).to_have_text("就绪")
        # The hotline stopped: its web server with it, the page's socket cut.
        await expect(page.locator("#link")).to_be_visible()
        await page.screenshot(path=shots / "live-agent-disconnected-desktop.png", full_page=True)
        async with build_hotline(settings) as second:
            rebuilt = time.monotonic()
            await expect(page.locator("#link")).to_be_hidden(timeout=20_000)
            back_s = time.monotonic() - rebuilt
            note(shots, "desk: hotline rebuilt to the page's socket back", back_s, 20.0)
            # The state again, from the new snapshot, and live: a change reaches the page.
            await expect(page.locator("#state")).to_have_text("就绪")
            await second.engine.pause("1001", "meeting")
            await expect(page.locator("#state")).to_have_text("置忙")
            await expect(page.locator("#reason")).to_have_text("开会")
            await page.screenshot(path=shots / "live-agent-back-desktop.png", full_page=True)
            await second.engine.logout("1001")
        assert desk.errors == [] or all("WebSocket" in e or "ERR_CONNECTION_REFUSED" in e for e in desk.errors), \
            desk.errors
