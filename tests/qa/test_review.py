"""QA review: scorecards, the weekly sample and assignment, scores, search (SQLite and PostgreSQL)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.calls import visibility
from callcenter.calls.models import ABANDONED_IN_QUEUE, ANSWERED, Call
from callcenter.qa import review
from callcenter.qa.models import FLAGGED, SAMPLE, Assignment
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import Word
from callcenter.web import access, users

TZ = "Asia/Shanghai"
WEEK = "2026-W47"                                          # Monday 16 November 2026
IN_WEEK = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)         # Tuesday, 10:00 in Shanghai
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
CARDS = review.load_scorecards()
FULL_MARKS = {item: 5 for item in CARDS.card.items}
FAILED_GREETING = [{"check": "greeting", "passed": False, "evidence": []},
                   {"check": "closing", "passed": True, "evidence": []}]


async def add_call(sessionmaker, agent_id: str | None, *, at: datetime = IN_WEEK, category: str = "leak",
                   queue: str = "leak", disposition: str = ANSWERED) -> str:
    call_id = str(uuid.uuid4())
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number="13800000000", arrived_at=at, ended_at=at + timedelta(minutes=3),
                         agent_id=agent_id, category=category, queue=queue, disposition=disposition, closed=True))
    return call_id


async def add_transcript(sessionmaker, call_id: str, words: list[Word] | None = None,
                         checks: list[dict] | None = None) -> None:
    await TranscriptStore(sessionmaker).save(call_id, words or [], model="m", worker="w", audio_s=60.0, took_s=1.0,
                                             now=NOW, checks=checks)


async def add_reviewers(sessionmaker, *names: str) -> None:
    async with sessionmaker() as session, session.begin():
        for name in names:
            await users.create_user(session, name, "a-password-123", access.QA)


# --- pure ---------------------------------------------------------------------------------

def test_the_default_scorecard() -> None:
    card = CARDS.card
    assert CARDS.default == "hotline" and sum(i.weight for i in card.items.values()) == 100
    assert {"greeting", "no_interrupting", "accurate_answer", "polite_language", "guide_to_rate",
            "caller_hangs_up_first"} == set(card.items)
    assert card.items["greeting"].label == "规范问候"


@pytest.mark.parametrize(("text", "key"), [
    ("default: x\nscorecards: {x: {title: t, items: {a: {label: A, weight: 90}}}}", "scorecards.x"),
    ("default: x\nscorecards: {x: {title: t, items: {a: {label: A, weight: -1}}}}", "scorecards.x.items.a.weight"),
    ("default: y\nscorecards: {x: {title: t, items: {a: {label: A, weight: 100}}}}", "default"),
    ("default: x\nscorecards: {x: {title: t, colour: red, items: {a: {label: A, weight: 100}}}}",
     "scorecards.x.colour"),
])
def test_a_broken_scorecard_file_names_the_key(tmp_path, text, key) -> None:
    path = tmp_path / "cards.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(review.ScorecardError, match=key.replace(".", r"\.")):
        review.load_scorecards(path)


def test_the_weighted_total_by_hand() -> None:
    items, total = review.weighted_total(CARDS.card, {
        "greeting": 5, "no_interrupting": 4, "accurate_answer": 3, "polite_language": 5, "guide_to_rate": 0,
        "caller_hangs_up_first": 5})
    # 15*5/5 + 15*4/5 + 30*3/5 + 20*5/5 + 10*0/5 + 10*5/5 = 15 + 12 + 18 + 20 + 0 + 10
    assert total == 75.0 and items["no_interrupting"] == 4.0
    assert review.weighted_total(CARDS.card, FULL_MARKS)[1] == 100.0
    assert review.weighted_total(CARDS.card, dict.fromkeys(FULL_MARKS, 2.5))[1] == 50.0


@pytest.mark.parametrize(("scores", "message"), [
    ({**FULL_MARKS, "smiling": 5}, "unknown item.*smiling"),
    ({k: v for k, v in FULL_MARKS.items() if k != "greeting"}, "not scored: greeting"),
    ({**FULL_MARKS, "greeting": 6}, "items.greeting: a score from 0 to 5"),
    ({**FULL_MARKS, "greeting": True}, "items.greeting"),
    ({**FULL_MARKS, "greeting": "5"}, "items.greeting"),
    ([5, 5], "an object"),
])
def test_scores_that_do_not_fit_the_card(scores, message) -> None:
    with pytest.raises(review.ScoreError, match=message):
        review.weighted_total(CARDS.card, scores)


def test_the_weekly_sample_is_reproducible_and_per_agent() -> None:
    calls = {"1001": [f"a-{n}" for n in range(20)], "1002": [f"b-{n}" for n in range(20)], "1003": ["c-1", "c-2"]}
    sample = review.weekly_sample(calls, WEEK, 3, "seed")
    assert {agent: len(ids) for agent, ids in sample.items()} == {"1001": 3, "1002": 3, "1003": 2}
    assert all(set(ids) <= set(calls[agent]) for agent, ids in sample.items())
    shuffled = {agent: list(reversed(ids)) for agent, ids in reversed(calls.items())}
    assert review.weekly_sample(shuffled, WEEK, 3, "seed") == sample
    assert review.weekly_sample(calls, WEEK, 3, "another seed") != sample
    assert review.weekly_sample(calls, "2026-W48", 3, "seed") != sample
    # A bigger sample of the same week keeps the smaller one (a rerun only tops up).
    assert review.weekly_sample(calls, WEEK, 5, "seed")["1001"][:3] == sample["1001"]


def test_calls_are_spread_round_robin_over_the_reviewers_who_cover_the_queue() -> None:
    calls = [("c1", "leak"), ("c2", "leak"), ("c3", "billing"), ("c4", "leak"), ("c5", "complaint")]
    team = [("qa1", None), ("qa2", frozenset({"leak"}))]
    assert review.spread(calls, team) == {"c1": "qa1", "c2": "qa2", "c3": "qa1", "c4": "qa2", "c5": "qa1"}
    assert review.spread(calls, [("qa2", frozenset({"leak"}))]) == {"c1": "qa2", "c2": "qa2", "c4": "qa2"}
    assert review.spread(calls, []) == {}


def test_weeks() -> None:
    week, start, end = review.week_bounds("2026-W7", TZ)
    assert week == "2026-W07" and start.isoformat() == "2026-02-09T00:00:00+08:00" and end - start == timedelta(days=7)
    for bad in ("2026-47", "2026-W54", "last week", ""):
        with pytest.raises(review.ReviewError, match="not an ISO week"):
            review.week_bounds(bad, TZ)


# --- the database -----------------------------------------------------------------------------

async def test_assignment_samples_each_agent_takes_every_flagged_call_and_is_idempotent(sessionmaker) -> None:
    await add_reviewers(sessionmaker, "qa1", "qa2")
    mine = {agent: [await add_call(sessionmaker, agent, at=IN_WEEK + timedelta(hours=n)) for n in range(6)]
            for agent in ("1001", "1002")}
    flagged_now = mine["1001"][0]
    await add_transcript(sessionmaker, flagged_now, checks=FAILED_GREETING)
    flagged_before = await add_call(sessionmaker, "1003", at=IN_WEEK - timedelta(days=10))   # an earlier week
    await add_transcript(sessionmaker, flagged_before, checks=FAILED_GREETING)
    passed = await add_call(sessionmaker, "1003", at=IN_WEEK - timedelta(days=10))
    await add_transcript(sessionmaker, passed, checks=[{"check": "greeting", "passed": True, "evidence": []}])
    later = await add_call(sessionmaker, "1001", at=IN_WEEK + timedelta(days=7))          # the next week
    abandoned = await add_call(sessionmaker, None, disposition=ABANDONED_IN_QUEUE)

    result = await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW, per_agent=2)
    got = {a.call_id: a for a in result.assigned}
    assert {c for c, a in got.items() if a.reason == FLAGGED} == {flagged_now, flagged_before}
    sampled = {c for c, a in got.items() if a.reason == SAMPLE}
    expected = review.weekly_sample({"1001": mine["1001"][1:], "1002": mine["1002"]}, WEEK, 2, "s")
    assert sampled == set(expected["1001"]) | set(expected["1002"])
    assert not {passed, later, abandoned} & set(got) and result.unassigned == []
    assert all(a.week == WEEK for a in result.assigned)
    per_reviewer = [a.reviewer for a in result.assigned]
    assert per_reviewer.count("qa1") == per_reviewer.count("qa2") == 3

    again = await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW, per_agent=2)
    assert again.assigned == [] and again.unassigned == []
    # A bigger sample tops up each agent; a call flagged since is assigned on the next run.
    await add_transcript(sessionmaker, later, checks=FAILED_GREETING)
    more = await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW, per_agent=3)
    assert sorted(a.agent_id for a in more.assigned if a.reason == SAMPLE) == ["1001", "1002"]
    next_week = await review.assign(sessionmaker, "2026-W48", tz=TZ, seed="s", now=NOW, per_agent=0)
    assert [(a.call_id, a.reason) for a in next_week.assigned] == [(later, FLAGGED)]
    async with sessionmaker() as session:
        assert len((await session.scalars(select(Assignment))).all()) == 6 + 2 + 1


async def test_a_reviewer_gets_only_calls_of_the_queues_they_cover(sessionmaker) -> None:
    await add_reviewers(sessionmaker, "qa1", "qa2")
    await review.set_covered_queues(sessionmaker, "qa1", ["leak"])
    await review.set_covered_queues(sessionmaker, "qa2", ["leak"])
    leak = await add_call(sessionmaker, "1001", queue="leak")
    billing = await add_call(sessionmaker, "1002", queue="billing")
    result = await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW)
    assert [a.call_id for a in result.assigned] == [leak] and result.unassigned == [billing]
    await review.set_covered_queues(sessionmaker, "qa2", [])      # covers every queue again
    result = await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW)
    assert [(a.call_id, a.reviewer) for a in result.assigned] == [(billing, "qa2")]


async def test_scoring_stores_the_weighted_total_and_a_second_score_replaces_it(sessionmaker) -> None:
    await add_reviewers(sessionmaker, "qa1")
    call_id = await add_call(sessionmaker, "1001")
    (assignment,) = (await review.assign(sessionmaker, WEEK, tz=TZ, seed="s", now=NOW)).assigned
    saved, replaced = await review.score(sessionmaker, CARDS, assignment, {**FULL_MARKS, "guide_to_rate": 0},
                                         "qa1", now=NOW, comment="没有引导评价")
    assert not replaced and saved.total == 90.0 and saved.scorecard == "hotline"
    saved, replaced = await review.score(sessionmaker, CARDS, assignment, FULL_MARKS, "qa1", now=NOW)
    assert replaced and saved.total == 100.0
    ((a, r),) = await review.assignments(sessionmaker, reviewer="qa1")
    assert a.call_id == call_id and r is not None and r.total == 100.0 and r.comment == ""
    with pytest.raises(review.ReviewError, match="another reviewer"):
        await review.score(sessionmaker, CARDS, assignment, FULL_MARKS, "qa2", now=NOW)
    with pytest.raises(review.ScoreError):
        await review.score(sessionmaker, CARDS, assignment, {"greeting": 5}, "qa1", now=NOW)


async def test_search_by_words_checks_scores_agent_category_and_days(sessionmaker) -> None:
    await add_reviewers(sessionmaker, "qa1")
    leak = await add_call(sessionmaker, "1001", category="leak")
    await add_transcript(sessionmaker, leak, [Word("agent", "您好", 1.0, 1.5, 0.9), Word("caller", "漏水", 3.0, 3.5, 0.9),
                                              Word("agent", "漏水", 9.5, 10.0, 0.9)])
    bill = await add_call(sessionmaker, "1002", category="billing", queue="billing", at=IN_WEEK + timedelta(days=1))
    await add_transcript(sessionmaker, bill, [Word("caller", "水费", 2.0, 2.4, 0.9)], checks=FAILED_GREETING)
    bare = await add_call(sessionmaker, "1002", category="billing", queue="billing", at=IN_WEEK + timedelta(days=2))

    async def ids(**kw) -> list[str]:
        return [r["call_id"] for r in (await review.search(sessionmaker, review.Search(**kw)))["results"]]

    found = await review.search(sessionmaker, review.Search(words=("漏水", "停水")))
    assert found["count"] == 1
    (hit,) = found["results"]
    assert hit["call_id"] == leak and hit["agent_id"] == "1001" and hit["category"] == "leak"
    assert [(h["channel"], h["start_s"]) for h in hit["hits"]] == [("caller", 3.0), ("agent", 9.5)]
    only_agent = await review.search(sessionmaker, review.Search(words=("漏水",), channel="agent"))
    assert [h["start_s"] for h in only_agent["results"][0]["hits"]] == [9.5]
    assert await ids(words=("停水",)) == []
    assert await ids() == [bare, bill, leak]                                    # newest first
    assert await ids(agent_id="1002") == [bare, bill]
    assert await ids(category="leak") == [leak]
    assert await ids(since=IN_WEEK + timedelta(hours=1), until=IN_WEEK + timedelta(days=2)) == [bill]
    assert await ids(failed_check="greeting") == [bill]
    assert await ids(failed_check="closing") == []
    checked = (await review.search(sessionmaker, review.Search(failed_check="greeting")))["results"][0]
    assert checked["failed_checks"] == ["greeting"]
    page = await review.search(sessionmaker, review.Search(limit=2, offset=2))
    assert page["count"] == 3 and [r["call_id"] for r in page["results"]] == [leak]
    assert await ids(scope=review.Scope(agent_id="1001")) == [leak]

    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id=leak, reviewer="qa1", week=WEEK, reason=SAMPLE, agent_id="1001",
                               assigned_at=NOW))
    assignment = await review.assignment_of(sessionmaker, leak, "qa1")
    await review.score(sessionmaker, CARDS, assignment, {**FULL_MARKS, "accurate_answer": 0}, "qa1", now=NOW)
    assert await ids(max_score=80) == [leak] and await ids(min_score=80) == []
    assert (await review.search(sessionmaker, review.Search(category="leak")))["results"][0]["score"] == 70.0
    # A reviewer covering only billing sees billing calls and the calls assigned to them.
    assert await ids(scope=review.Scope(queues=frozenset({"billing"}), reviewer="qa1")) == [bare, bill, leak]
    assert await ids(scope=review.Scope(queues=frozenset({"billing"}), reviewer="qa2")) == [bare, bill]
    # The one rule (calls/visibility.py): units and agent log-ins without an agent id see no call;
    # supervisors see every call but may not search by words and get no hits.
    for user in (access.User("north", access.UNIT, unit="north"), access.User("a", access.AGENT)):
        assert await ids(scope=visibility.scope_of(user)) == [], user
    supervisor = visibility.scope_of(access.User("sup", access.SUPERVISOR))
    assert not supervisor.words and not supervisor.audio and await ids(scope=supervisor) == [bare, bill, leak]
    with pytest.raises(review.ReviewError, match=r"^words"):
        await review.search(sessionmaker, review.Search(words=("漏水",), scope=supervisor))
