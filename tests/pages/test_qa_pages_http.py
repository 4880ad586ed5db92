"""The QA pages through aiohttp's client: the inbox opens the player, the waveform's peaks, the
scorecard saved with its total, the agent's sign-off and dispute reaching another reviewer,
search hits that open the call at the word; and who may not."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.qa.models import Assignment, Dispute, Review
from callcenter.recording.peaks import peaks_path
from callcenter.web import access, users
from tests.pages.conftest import PASSWORDS
from tests.pages.qa_call import DURATION_S, add_recorded_call, with_qa_routes
from tests.pages.test_pages_http import sign_in

PASSWORDS.setdefault("qa2", "qa2-password-1")


@pytest.fixture
def hotline(hotline):
    with_qa_routes(hotline.app)
    return hotline


@pytest.fixture
async def recorded(hotline, settings, sessionmaker, tmp_path: Path) -> str:
    """The agent 1001's recorded call, assigned to `qa`; a second reviewer `qa2` exists."""
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "qa2", PASSWORDS["qa2"], access.QA)
    call_id = await add_recorded_call(sessionmaker, settings.paths.recordings_dir, tmp_path / "voice")
    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id=call_id, reviewer="qa", week="2026-W49", reason="flagged", agent_id="1001",
                               assigned_at=datetime.now(UTC)))
    return call_id


def full_marks(**changes: int) -> dict[str, str]:
    scores = {"greeting": 5, "no_interrupting": 5, "accurate_answer": 5, "polite_language": 5, "guide_to_rate": 5,
              "caller_hangs_up_first": 5, **changes}
    return {f"item.{k}": str(v) for k, v in scores.items()}


async def test_the_inbox_opens_the_player_with_words_marks_and_talk_times(aiohttp_client, hotline, recorded) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "qa")
    inbox = await (await client.get("/qa")).text()
    assert f'href="/qa/calls/{recorded}"' in inbox and "检查未通过" in inbox
    page = await client.get(f"/qa/calls/{recorded}")
    text = await page.text()
    assert page.status == 200, text
    audio = re.search(r'<audio id="call-audio" preload="metadata" src="([^"]+)"', text)
    assert audio, text
    assert re.search(r'data-s="3.0" data-e="3.8">漏水</span>', text)
    assert 'data-mark="forbidden_phrases" data-passed="0" data-s="9.0"' in text       # the failed check's mark
    assert 'class="turn paused" data-s="6.0" data-e="8.0"' in text                     # the paused stretch
    assert "评分表" in text or "质检评分表" in text
    # talk time per party from the words: the caller 2.6+..., the agent 0.4-2.0, 9.0-9.8, 12.0-12.8
    assert "<th>受理员</th><td>0:03</td><td>0.0 s</td>" in text
    # the audio link streams with ranges
    part = await client.get(audio.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-99"})
    assert part.status == 206 and part.headers["Content-Type"] == "audio/ogg" and len(await part.read()) == 100


async def test_the_peaks_are_computed_once_and_kept_beside_the_recording(aiohttp_client, hotline, recorded,
                                                                        sessionmaker) -> None:
    from callcenter.calls.models import Call

    client = await aiohttp_client(hotline.app)
    await sign_in(client, "qa")
    async with sessionmaker() as session:
        wav = Path((await session.get(Call, recorded)).recording_path)
    assert not peaks_path(wav).exists()
    response = await client.get(f"/api/recordings/{recorded}/peaks")
    body = await response.json()
    assert response.status == 200 and body["channels"] == ["caller", "agent"]
    assert body["duration_s"] == DURATION_S and len(body["peaks"]) == 2
    caller, agent = body["peaks"]
    per_s = 1 / body["bucket_s"]
    # the caller is silent while the agent greets (0.4-2.0 s) and speaks at 3.0 s; the agent the other way round
    assert max(caller[int(0.5 * per_s):int(1.8 * per_s)]) < 0.01 < max(agent[int(0.5 * per_s):int(1.8 * per_s)])
    assert max(caller[int(3.0 * per_s):int(3.6 * per_s)]) > 0.05
    assert max(caller[int(6.2 * per_s):int(7.8 * per_s)] + agent[int(6.2 * per_s):int(7.8 * per_s)]) < 0.01  # paused
    cached = peaks_path(wav)
    assert json.loads(cached.read_text()) == body
    cached.write_text(json.dumps({**body, "duration_s": 1.0}))   # the cache is what is served while it is newer
    assert (await (await client.get(f"/api/recordings/{recorded}/peaks")).json())["duration_s"] == 1.0
    # a supervisor hears no audio, so gets no waveform; a made-up call is not found
    await sign_in(client, "sup")
    assert (await client.get(f"/api/recordings/{recorded}/peaks")).status == 403
    await sign_in(client, "qa")
    assert (await client.get("/api/recordings/00000000-0000-4000-8000-000000000000/peaks")).status == 404


async def test_the_scorecard_is_saved_with_its_total_and_a_bad_score_names_its_item(aiohttp_client, hotline, recorded,
                                                                                   sessionmaker) -> None:
    client = await aiohttp_client(hotline.app)
    csrf = {"X-CSRF-Token": await sign_in(client, "qa")}
    bad = await client.post(f"/qa/calls/{recorded}/score", data=full_marks(polite_language=9), headers=csrf)
    assert "item.polite_language: a score from 0 to 5" in await bad.text()
    unknown = await client.post(f"/qa/calls/{recorded}/score", data={**full_marks(), "item.nope": "1"}, headers=csrf)
    assert "item.nope: not an item of the scorecard" in await unknown.text()
    saved = await client.post(f"/qa/calls/{recorded}/score", headers=csrf,
                              data={**full_marks(polite_language=1), "comment": "9 秒处使用禁语", "comment_at_s": "9.0"})
    text = await saved.text()
    assert saved.status == 200 and 'id="score-total">84.0<' in text   # 100 - 20 * 4/5
    async with sessionmaker() as session:
        review = (await session.scalars(select(Review).where(Review.call_id == recorded))).one()
    assert (review.total, review.comment_at_s, review.items["polite_language"]) == (84.0, 9.0, 1.0)
    # another reviewer's call: not found; an agent may not score
    await sign_in(client, "qa2")
    assert (await client.post(f"/qa/calls/{recorded}/score", data=full_marks(), headers=csrf)).status in (403, 404)


async def test_the_agent_disputes_an_item_and_it_reaches_another_reviewer(aiohttp_client, hotline, recorded,
                                                                         sessionmaker) -> None:
    client = await aiohttp_client(hotline.app)
    csrf = {"X-CSRF-Token": await sign_in(client, "qa")}
    await client.post(f"/qa/calls/{recorded}/score", data=full_marks(polite_language=1), headers=csrf)
    async with sessionmaker() as session:
        review_id = (await session.scalars(select(Review.id).where(Review.call_id == recorded))).one()

    csrf = {"X-CSRF-Token": await sign_in(client, "agent")}
    scores = await (await client.get("/qa/scores")).text()
    assert f'href="/qa/calls/{recorded}"' in scores and "84.0" in scores and "待我确认" in scores
    no_reason = await client.post(f"/qa/reviews/{review_id}/disputes", data={"item": "polite_language", "reason": ""},
                                  headers=csrf)
    assert no_reason.status == 400 and "reason" in (await no_reason.json())["error"]
    sent = await client.post(f"/qa/reviews/{review_id}/disputes", headers=csrf,
                             data={"item": "polite_language", "reason": "“不知道”后我马上转了专席，并非推诿"})
    assert sent.status == 200 and "申诉已提交" in await sent.text()
    async with sessionmaker() as session:
        dispute = (await session.scalars(select(Dispute))).one()
    assert (dispute.handler, dispute.handler_role, dispute.state) == ("qa2", "qa", "open")
    refused = await client.post(f"/qa/reviews/{review_id}/sign-off", headers=csrf)
    assert "open dispute" in await refused.text()

    # the reviewer who scored cannot answer it; the other one sees it and amends the item
    csrf = {"X-CSRF-Token": await sign_in(client, "qa")}
    assert (await client.post(f"/qa/disputes/{dispute.id}/answer", data={"decision": "upheld"}, headers=csrf)).status == 404
    csrf = {"X-CSRF-Token": await sign_in(client, "qa2")}
    assert f"/qa/calls/{recorded}#disputes" in await (await client.get("/qa")).text()
    answered = await client.post(f"/qa/disputes/{dispute.id}/answer", headers=csrf,
                                 data={"decision": "amended", "new_score": "4", "answer": "属实，改为 4 分"})
    assert answered.status == 200 and "96.0" in await answered.text()   # 100 - 20 * 1/5
    async with sessionmaker() as session:
        review = await session.get(Review, review_id)
        assert (review.total, review.items["polite_language"]) == (96.0, 4.0)

    csrf = {"X-CSRF-Token": await sign_in(client, "agent")}
    signed = await client.post(f"/qa/reviews/{review_id}/sign-off", headers=csrf)
    assert "已确认" in await signed.text()
    async with sessionmaker() as session:
        assert (await session.get(Review, review_id)).signed_off_by == "agent"


async def test_a_dispute_goes_to_the_supervisors_when_no_other_reviewer_covers_the_call(
        aiohttp_client, hotline, recorded, sessionmaker) -> None:
    from callcenter.qa import review as qa_review

    await qa_review.set_covered_queues(sessionmaker, "qa2", ["billing"])   # qa2 does not cover the leak queue
    client = await aiohttp_client(hotline.app)
    csrf = {"X-CSRF-Token": await sign_in(client, "qa")}
    await client.post(f"/qa/calls/{recorded}/score", data=full_marks(greeting=2), headers=csrf)
    async with sessionmaker() as session:
        review_id = (await session.scalars(select(Review.id).where(Review.call_id == recorded))).one()
    csrf = {"X-CSRF-Token": await sign_in(client, "agent")}
    await client.post(f"/qa/reviews/{review_id}/disputes", data={"item": "greeting", "reason": "0.4 秒就问候了"},
                      headers=csrf)
    csrf = {"X-CSRF-Token": await sign_in(client, "sup")}
    page = await (await client.get("/qa/disputes")).text()
    assert "0.4 秒就问候了" in page
    async with sessionmaker() as session:
        dispute = (await session.scalars(select(Dispute))).one()
    assert (dispute.handler, dispute.handler_role) == (None, "supervisor")
    upheld = await client.post(f"/qa/disputes/{dispute.id}/answer", data={"decision": "upheld", "answer": "维持"},
                               headers=csrf)
    assert "维持原评分" in await upheld.text()


async def test_search_by_a_word_links_to_the_call_at_that_word(aiohttp_client, hotline, recorded) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "qa")
    text = await (await client.get("/qa/search?words=漏水")).text()
    assert f'href="/qa/calls/{recorded}?t=3.0"' in text
    assert "找到 1 个通话" in text
    failed = await (await client.get("/qa/search?check=forbidden_phrases")).text()
    assert f'id="result-{recorded}"' in failed
    bad = await client.get("/qa/search?min_score=500")
    assert bad.status == 400 and "min_score" in await bad.text()
    opened = await (await client.get(f"/qa/calls/{recorded}?t=3.0")).text()
    assert 'data-start="3.0"' in opened
    assert (await client.get(f"/qa/calls/{recorded}?t=-1")).status == 400
    assert (await client.get("/qa/calls/not-a-call")).status == 404


async def test_who_may_not_open_the_player(aiohttp_client, hotline, recorded) -> None:
    client = await aiohttp_client(hotline.app)
    await sign_in(client, "sup")          # supervisors hear no audio: the Chinese 403 page
    page = await client.get(f"/qa/calls/{recorded}")
    assert page.status == 403 and "您的角色无权打开此页面" in await page.text()
    await sign_in(client, "repair")
    assert (await client.get(f"/qa/calls/{recorded}")).status == 403
    await sign_in(client, "agent")        # the call's own agent hears it, with their score panel
    own = await client.get(f"/qa/calls/{recorded}")
    assert own.status == 200 and 'id="agent-review"' in await own.text()
