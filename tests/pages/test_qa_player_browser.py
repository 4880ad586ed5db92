"""The reviewer's player in real Chromium: a recorded call with known words at known times.

The reviewer opens it from the inbox and plays it: the highlighted word follows the audio;
clicking a check's mark on the waveform (or in the list) moves the audio to that moment
(±0.3 s); the scorecard is saved with its total. The agent disputes an item and the dispute
reaches the other reviewer. Searching a word said opens the call at that word. No console
errors anywhere; screenshots at 1280 and 390 px go to var/test-results/pages/.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from callcenter.qa.models import Assignment, Dispute, Review
from callcenter.web import access, users
from tests.conftest import fresh_sqlite
from tests.pages.qa_call import add_recorded_call, with_qa_routes
from tests.pages.test_pages_browser import Watched, no_sideways_scroll, open_as

QA2_PASSWORD = "qa2-password-1"
LANDS = {"qa": "/qa", "qa2": "/qa", "agent": "/agent"}
TOLERANCE_S = 0.3


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    return fresh_sqlite(migrated_sqlite, tmp_path / "test.db")


@pytest.fixture
def hotline(hotline):
    with_qa_routes(hotline.app)
    return hotline


@pytest.fixture
async def recorded(hotline, settings, sessionmaker, tmp_path: Path) -> str:
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "qa2", QA2_PASSWORD, access.QA)
    call_id = await add_recorded_call(sessionmaker, settings.paths.recordings_dir, tmp_path / "voice")
    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id=call_id, reviewer="qa", week="2026-W49", reason="flagged", agent_id="1001",
                               assigned_at=datetime.now(UTC)))
    return call_id


@pytest.fixture
async def base_url(aiohttp_server, hotline, recorded) -> str:
    server = await aiohttp_server(hotline.app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def sign_in(browser: Browser, base_url: str, username: str, width: str = "desktop") -> Watched:
    return await open_as(browser, base_url, username, width, password=QA2_PASSWORD if username == "qa2" else None,
                         lands=LANDS[username])


async def audio_at(page: Page) -> float:
    return float(await page.evaluate("document.getElementById('call-audio').currentTime"))


async def expect_audio_at(page: Page, seconds: float) -> None:
    """A bounded wait until the audio stands within TOLERANCE_S of `seconds` (a seek settles)."""
    await page.wait_for_function(
        "([t, tol]) => Math.abs(document.getElementById('call-audio').currentTime - t) <= tol",
        arg=[seconds, TOLERANCE_S], timeout=5000)
    assert abs(await audio_at(page) - seconds) <= TOLERANCE_S


async def waveform_drawn(page: Page) -> None:
    # the marks are drawn on the waveform (inside wavesurfer's shadow root, which locators pierce)
    await expect(page.locator('#waveform [data-check="forbidden_phrases"]')).to_have_count(1, timeout=10000)


async def test_the_reviewer_plays_the_call_the_word_follows_and_the_marks_move_the_audio(
        chromium_browser, base_url, recorded, shots, sessionmaker) -> None:
    watched = await sign_in(chromium_browser, base_url, "qa")
    page = watched.page
    audio_requests: list[dict[str, str]] = []
    page.on("request", lambda r: audio_requests.append(r.headers) if "/audio?" in r.url else None)
    await page.locator(f"#assigned-{recorded} a").click()
    await page.wait_for_url(f"**/qa/calls/{recorded}")
    await waveform_drawn(page)
    await expect(page.locator('#waveform [data-check="paused"]')).to_have_count(1)

    now = page.locator(".transcript .w.now")
    await page.locator("#play").click()
    await expect(now).to_have_text("您好", timeout=10000)           # 0.4-1.0 s, the agent's greeting
    await expect(now).to_have_text("漏水", timeout=10000)           # 3.0-3.8 s, the caller
    assert await audio_at(page) >= 3.0
    await page.locator("#play").click()      # 暂停

    # the failed check's mark on the waveform, then the greeting in the list of checks
    await page.locator('#waveform [data-check="forbidden_phrases"]').click()
    await expect_audio_at(page, 9.0)
    await expect(now).to_have_text("不知道")
    await page.locator('#checks [data-mark="greeting"]').click()
    await expect_audio_at(page, 0.4)
    await page.locator(".transcript .w", has_text="厨房").click()    # a word seeks to itself
    await expect_audio_at(page, 4.0)
    await expect(now).to_have_text("厨房")
    await page.screenshot(path=shots / "qa-player-desktop.png", full_page=True)

    # the scorecard, with a comment tied to the moment being played
    form = page.locator("#scorecard form")
    for key, score in (("greeting", 5), ("no_interrupting", 5), ("accurate_answer", 5), ("polite_language", 1),
                       ("guide_to_rate", 5), ("caller_hangs_up_first", 5)):
        await form.locator(f"#item-{key}").fill(str(score))
    await form.get_by_label("评语", exact=True).fill("4 秒处复述地址清楚；9 秒处使用禁语")
    await form.get_by_role("button", name="取当前播放时刻").click()
    await expect(form.locator("#comment-at")).to_have_value("4.0")
    await form.get_by_role("button", name="保存评分").click()
    await expect(page.locator("#score-total")).to_have_text("84.0")
    await expect(page.locator("#scorecard")).to_contain_text("已保存")
    await page.screenshot(path=shots / "qa-player-scored-desktop.png", full_page=True)
    async with sessionmaker() as session:
        review = (await session.scalars(select(Review).where(Review.call_id == recorded))).one()
    assert (review.total, review.comment_at_s, review.items["polite_language"]) == (84.0, 4.0, 1.0)
    assert watched.errors == []
    # the audio is streamed by the <audio> element (range requests), never fetched whole to be decoded
    assert audio_requests and all(h.get("range", "").startswith("bytes=") for h in audio_requests), audio_requests


async def test_the_player_reads_on_a_phone(chromium_browser, base_url, recorded, shots) -> None:
    watched = await sign_in(chromium_browser, base_url, "qa", "phone")
    page = watched.page
    await page.goto(f"/qa/calls/{recorded}")
    await waveform_drawn(page)
    await no_sideways_scroll(page)
    await page.screenshot(path=shots / "qa-player-phone.png", full_page=True)
    assert watched.errors == []


async def test_the_agent_disputes_an_item_and_the_other_reviewer_gets_it(chromium_browser, base_url, recorded,
                                                                        shots, sessionmaker) -> None:
    from callcenter.qa import review as qa_review

    assignment = await qa_review.assignment_of(sessionmaker, recorded, "qa")
    await qa_review.score(sessionmaker, qa_review.load_scorecards(), assignment,
                          {"greeting": 5, "no_interrupting": 5, "accurate_answer": 5, "polite_language": 1,
                           "guide_to_rate": 5, "caller_hangs_up_first": 5}, "qa", now=datetime.now(UTC))

    agent = await sign_in(chromium_browser, base_url, "agent")
    page = agent.page
    await page.goto("/qa/scores")
    await expect(page.locator(f"#scored-{recorded}")).to_contain_text("待我确认")
    await page.locator(f"#scored-{recorded} a").click()
    await waveform_drawn(page)
    panel = page.locator("#agent-review")
    await expect(panel).to_contain_text("84.0")
    await panel.locator("summary", has_text="对某一项申诉").click()
    await panel.get_by_label("评分项").select_option("polite_language")
    await panel.get_by_label("原因").fill("说完“不知道”后我马上转了专席，并非推诿")
    await panel.get_by_role("button", name="提交申诉").click()
    await expect(panel).to_contain_text("申诉已提交")
    await expect(panel).to_contain_text("申诉中")
    await page.screenshot(path=shots / "qa-agent-disputed-desktop.png", full_page=True)
    assert agent.errors == []
    async with sessionmaker() as session:
        dispute = (await session.scalars(select(Dispute))).one()
    assert (dispute.handler, dispute.item, dispute.state) == ("qa2", "polite_language", "open")

    other = await sign_in(chromium_browser, base_url, "qa2")
    page = other.page
    await expect(page.locator(f"#dispute-{dispute.id}")).to_contain_text("并非推诿")
    await page.locator(f"#dispute-{dispute.id} a").click()
    box = page.locator(f"#disputes #dispute-{dispute.id}")
    await expect(box).to_contain_text("并非推诿")
    await box.get_by_label("处理结果").select_option("amended")
    await box.get_by_label("新分数").fill("4")
    await box.get_by_label("答复").fill("属实，改为 4 分")
    await box.get_by_role("button", name="答复申诉").click()
    await expect(page.locator(f"#dispute-{dispute.id}")).to_contain_text("96.0")
    await page.screenshot(path=shots / "qa-dispute-answered-desktop.png", full_page=True)
    assert other.errors == []


async def test_a_word_found_opens_the_call_at_that_word(chromium_browser, base_url, recorded, shots) -> None:
    watched = await sign_in(chromium_browser, base_url, "qa")
    page = watched.page
    await page.goto("/qa/search")
    await page.get_by_label("通话内容关键词").fill("漏水")
    await page.get_by_role("button", name="查询").click()
    hit = page.locator(f"#result-{recorded} a.hit")
    await expect(hit).to_have_count(1)
    await page.screenshot(path=shots / "qa-search-desktop.png", full_page=True)
    await hit.click()
    await page.wait_for_url(f"**/qa/calls/{recorded}?t=3.0")
    await expect(page.locator(".transcript .w.now")).to_have_text("漏水")
    await expect_audio_at(page, 3.0)
    await waveform_drawn(page)
    await expect_audio_at(page, 3.0)          # still there once the waveform has the audio
    assert watched.errors == []
