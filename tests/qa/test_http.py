"""QA review over HTTP: who may search, assign, score and read what (SQLite and PostgreSQL)."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.qa import http as qa_http
from callcenter.qa.models import Assignment
from callcenter.recording.transcribe import Word
from callcenter.web import access, users
from callcenter.web.app import init_app
from tests.qa.test_review import (
    FAILED_GREETING,
    FULL_MARKS,
    NOW,
    WEEK,
    add_call,
    add_reviewers,
    add_transcript,
)

PASSWORD = "a-password-123"


class NoLive:
    async def snapshot(self) -> dict[str, Any]:
        return {}

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        if False:
            yield {}


@pytest.fixture
async def app(settings, sessionmaker, redis_client) -> web.Application:
    client, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "a1001", PASSWORD, access.AGENT, agent_id="1001")
        await users.create_user(session, "a1002", PASSWORD, access.AGENT, agent_id="1002")
        await users.create_user(session, "qa1", PASSWORD, access.QA)
        await users.create_user(session, "sup", PASSWORD, access.SUPERVISOR)
        await users.create_user(session, "admin", PASSWORD, access.ADMIN)
        await users.create_user(session, "north", PASSWORD, access.UNIT, unit="north")
    return init_app(settings, sessionmaker=sessionmaker, redis=client, live=NoLive(),
                    route_setups=[qa_http.setup_routes])


async def sign_in(client, username: str) -> dict[str, str]:
    response = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return {"X-CSRF-Token": (await response.json())["csrf_token"]}


@pytest.fixture
async def calls(sessionmaker) -> dict[str, str]:
    """1001's leak call (words, a failed greeting) and 1002's billing call (no transcript)."""
    leak = await add_call(sessionmaker, "1001", category="leak", queue="leak")
    await add_transcript(sessionmaker, leak, [Word("agent", "您好", 1.0, 1.5, 0.9), Word("caller", "漏水", 4.0, 4.4, 0.9)],
                         checks=FAILED_GREETING)
    bill = await add_call(sessionmaker, "1002", category="billing", queue="billing")
    return {"leak": leak, "bill": bill}


async def test_the_scorecard_and_who_may_not_ask(aiohttp_client, app) -> None:
    client = await aiohttp_client(app)
    assert (await client.get("/api/qa/scorecard")).status == 401
    await sign_in(client, "north")
    for url in ("/api/qa/scorecard", "/api/qa/search", f"/api/qa/calls/{uuid.uuid4()}", "/api/qa/assignments"):
        assert (await client.get(url)).status == 403, url
    await sign_in(client, "a1001")
    body = await (await client.get("/api/qa/scorecard")).json()
    assert body["name"] == "hotline" and body["scale"] == 5
    assert body["items"]["greeting"] == {"label": "规范问候", "weight": 15.0}


async def test_assign_then_review(aiohttp_client, app, calls) -> None:
    client = await aiohttp_client(app)
    csrf = await sign_in(client, "qa1")
    assert (await client.post("/api/qa/assignments/run", json={"week": WEEK}, headers=csrf)).status == 403
    csrf = await sign_in(client, "sup")
    bad = await client.post("/api/qa/assignments/run", json={"week": "W47"}, headers=csrf)
    assert bad.status == 400 and "ISO week" in (await bad.json())["error"]
    response = await client.post("/api/qa/assignments/run", json={"week": WEEK}, headers=csrf)
    assert response.status == 200
    body = await response.json()
    assert {(a["call_id"], a["reason"], a["reviewer"]) for a in body["assigned"]} == {
        (calls["leak"], "flagged", "qa1"), (calls["bill"], "sample", "qa1")}
    again = await client.post("/api/qa/assignments/run", json={"week": WEEK}, headers=csrf)
    assert (await again.json())["assigned"] == []
    assert (await client.post("/api/qa/reviews", json={"call_id": calls["leak"], "items": FULL_MARKS},
                              headers=csrf)).status == 403

    csrf = await sign_in(client, "qa1")
    mine = (await (await client.get("/api/qa/assignments")).json())["assignments"]
    assert len(mine) == 2 and not any(a["reviewed"] for a in mine)
    url = "/api/qa/reviews"
    unknown = await client.post(url, json={"call_id": calls["leak"], "items": {**FULL_MARKS, "smiling": 5}},
                                headers=csrf)
    assert unknown.status == 400 and "smiling" in (await unknown.json())["error"]
    missing = await client.post(url, json={"call_id": calls["leak"]}, headers=csrf)
    assert missing.status == 400
    other = await client.post(url, json={"call_id": str(uuid.uuid4()), "items": FULL_MARKS}, headers=csrf)
    assert other.status == 404
    scores = {**FULL_MARKS, "greeting": 0, "accurate_answer": 4}           # 100 - 15 - 30/5 = 79
    first = await client.post(url, json={"call_id": calls["leak"], "items": scores, "comment": "未规范问候"},
                              headers=csrf)
    assert first.status == 201
    assert (await first.json())["total"] == 79.0 and (await first.json())["replaced"] is False
    second = await client.post(url, json={"call_id": calls["leak"], "items": FULL_MARKS}, headers=csrf)
    assert second.status == 200 and (await second.json())["replaced"] is True
    mine = (await (await client.get("/api/qa/assignments")).json())["assignments"]
    assert [(a["call_id"], a["total"]) for a in mine if a["reviewed"]] == [(calls["leak"], 100.0)]

    csrf = await sign_in(client, "sup")
    everyone = (await (await client.get("/api/qa/assignments?reviewer=qa1")).json())["assignments"]
    assert len(everyone) == 2


async def test_search_by_word_and_check_and_agents_see_their_own(aiohttp_client, app, calls) -> None:
    client = await aiohttp_client(app)
    await sign_in(client, "qa1")
    body = await (await client.get("/api/qa/search", params={"words": "漏水 停水"})).json()
    assert body["count"] == 1
    (hit,) = body["results"]
    assert hit["call_id"] == calls["leak"] and hit["hits"] == [
        {"word": "漏水", "channel": "caller", "start_s": 4.0, "end_s": 4.4}]
    by_check = await (await client.get("/api/qa/search", params={"check": "greeting"})).json()
    assert [r["call_id"] for r in by_check["results"]] == [calls["leak"]]
    assert by_check["results"][0]["failed_checks"] == ["greeting"]
    assert (await client.get("/api/qa/search", params={"channel": "both"})).status == 400
    assert (await client.get("/api/qa/search", params={"min_score": "lots"})).status == 400
    assert (await client.get("/api/qa/search", params={"from": "yesterday"})).status == 400

    await sign_in(client, "a1002")
    for params in ({}, {"agent_id": "1001"}, {"words": "漏水"}):
        found = await (await client.get("/api/qa/search", params=params)).json()
        assert {r["agent_id"] for r in found["results"]} <= {"1002"}, params
    assert [r["call_id"] for r in (await (await client.get("/api/qa/search")).json())["results"]] == [calls["bill"]]


async def test_who_reads_a_call(aiohttp_client, app, sessionmaker, calls) -> None:
    client = await aiohttp_client(app)
    leak = f"/api/qa/calls/{calls['leak']}"
    await sign_in(client, "a1001")
    own = await (await client.get(leak)).json()
    assert [w["word"] for w in own["words"]] == ["您好", "漏水"] and own["checks"] == FAILED_GREETING
    assert own["audio_link"] == f"/api/recordings/{calls['leak']}/link"
    for url in (f"/api/qa/calls/{calls['bill']}", f"/api/qa/calls/{uuid.uuid4()}", "/api/qa/calls/nonsense"):
        response = await client.get(url)
        assert response.status == 404 and (await response.json())["error"] == "no such call", url

    await sign_in(client, "sup")
    seen = await (await client.get(leak)).json()
    assert seen["checks"] == FAILED_GREETING and seen["flagged"] is True
    assert seen["words"] is None and seen["audio_link"] is None

    # QA covering billing only: a leak call is not theirs until it is assigned to them.
    csrf = await sign_in(client, "admin")
    response = await client.put("/api/qa/reviewers/qa1/queues", json={"queues": ["billing"]}, headers=csrf)
    assert response.status == 200
    assert (await client.put("/api/qa/reviewers/qa1/queues", json={"queues": ["nowhere"]},
                             headers=csrf)).status == 400
    assert (await client.put("/api/qa/reviewers/sup/queues", json={"queues": []}, headers=csrf)).status == 404
    team = await (await client.get("/api/qa/reviewers")).json()
    assert team == {"reviewers": [{"username": "qa1", "queues": ["billing"]}]}
    await sign_in(client, "qa1")
    assert (await client.get(leak)).status == 404
    assert (await client.get(f"/api/qa/calls/{calls['bill']}")).status == 200
    assert (await (await client.get("/api/qa/search")).json())["count"] == 1
    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id=calls["leak"], reviewer="qa1", week=WEEK, reason="flagged", agent_id="1001",
                               assigned_at=NOW))
    detail = await (await client.get(leak)).json()
    assert detail["assignment"]["reviewer"] == "qa1" and detail["words"] is not None


async def test_supervisors_get_calls_not_words(aiohttp_client, app, sessionmaker) -> None:
    """No search by words (403 naming the field), no hits, no word in a check's evidence."""
    forbidden = [{"check": "forbidden_phrases", "passed": False,
                  "evidence": [{"start_s": 2.0, "end_s": 2.4, "channel": "agent", "text": "滚"}]}]
    call_id = await add_call(sessionmaker, "1001", category="leak", queue="leak")
    await add_transcript(sessionmaker, call_id, [Word("agent", "滚", 2.0, 2.4, 0.9)], checks=forbidden)
    client = await aiohttp_client(app)
    await sign_in(client, "sup")
    for params in ({"words": "滚"}, {"words": "滚", "agent_id": "1001"}, {"channel": "agent"}):
        response = await client.get("/api/qa/search", params=params)
        assert response.status == 403, params
        assert (await response.json())["error"].startswith(next(iter(params))), params
    found = await (await client.get("/api/qa/search", params={"check": "forbidden_phrases"})).json()
    assert [(r["call_id"], r["failed_checks"], r["hits"]) for r in found["results"]] == [
        (call_id, ["forbidden_phrases"], None)]
    detail = await (await client.get(f"/api/qa/calls/{call_id}")).json()
    assert detail["words"] is None and detail["audio_link"] is None
    assert detail["checks"] == [{"check": "forbidden_phrases", "passed": False,
                                 "evidence": [{"start_s": 2.0, "end_s": 2.4, "channel": "agent"}]}]
    await sign_in(client, "qa1")   # a reviewer reads the evidence and searches by words
    detail = await (await client.get(f"/api/qa/calls/{call_id}")).json()
    assert detail["checks"] == forbidden
    hits = await (await client.get("/api/qa/search", params={"words": "滚"})).json()
    assert hits["results"][0]["hits"] == [{"word": "滚", "channel": "agent", "start_s": 2.0, "end_s": 2.4}]


async def test_bad_dates_weeks_and_ids_are_refused_naming_the_field(aiohttp_client, app, calls) -> None:
    client = await aiohttp_client(app)
    csrf = await sign_in(client, "sup")
    for params, field in (({"to": "9999-12-31"}, "to"), ({"from": "0001-01-01"}, "from"),
                          ({"to": "0001-01-01"}, "to"), ({"category": "a\x00b"}, "category"),
                          ({"agent_id": "x" * 65}, "agent_id"), ({"check": "\x00"}, "check")):
        response = await client.get("/api/qa/search", params=params)
        assert response.status == 400 and (await response.json())["error"].startswith(field), params
    ok = await client.get("/api/qa/search", params={"from": "2000-01-01", "to": "2099-12-31"})
    assert ok.status == 200 and (await ok.json())["count"] == 2
    for week in ("9999-W52", "0001-W01"):
        response = await client.post("/api/qa/assignments/run", json={"week": week}, headers=csrf)
        assert response.status == 400 and (await response.json())["error"].startswith("week"), week
    response = await client.get("/api/qa/assignments", params={"week": "\x00"})
    assert response.status == 400 and (await response.json())["error"].startswith("week")
    for call_id in ("%00", "9" * 40):
        assert (await client.get(f"/api/qa/calls/{call_id}")).status == 404, call_id
    csrf = await sign_in(client, "qa1")
    response = await client.post("/api/qa/reviews", json={"call_id": "\x00", "items": FULL_MARKS}, headers=csrf)
    assert response.status == 400 and (await response.json())["error"].startswith("call_id")


async def test_the_agent_signs_off_or_disputes_over_the_api_and_another_reviewer_answers(aiohttp_client, app, calls,
                                                                                         sessionmaker) -> None:
    from callcenter.qa.models import Review

    await add_reviewers(sessionmaker, "qa2")
    client = await aiohttp_client(app)
    csrf = await sign_in(client, "sup")
    await client.post("/api/qa/assignments/run", json={"week": WEEK}, headers=csrf)
    async with sessionmaker() as session:
        leak = (await session.scalars(select(Assignment).where(Assignment.call_id == calls["leak"]))).one()
    csrf = await sign_in(client, leak.reviewer)
    assert (await client.post("/api/qa/reviews", json={"call_id": calls["leak"], "items": FULL_MARKS, "comment": "好",
                                                         "comment_at_s": 1.0}, headers=csrf)).status == 201
    async with sessionmaker() as session:
        review_id = (await session.scalars(select(Review.id).where(Review.call_id == calls["leak"]))).one()
    other = "qa2" if leak.reviewer == "qa1" else "qa1"

    csrf = await sign_in(client, "a1002")              # not their call: not found
    assert (await client.post(f"/api/qa/reviews/{review_id}/sign-off", headers=csrf)).status == 404
    csrf = await sign_in(client, "a1001")
    bad = await client.post(f"/api/qa/reviews/{review_id}/disputes", json={"item": "nope", "reason": "x"}, headers=csrf)
    assert bad.status == 400 and (await bad.json())["error"].startswith("item:")
    raised = await client.post(f"/api/qa/reviews/{review_id}/disputes", headers=csrf,
                               json={"item": "greeting", "reason": "1 秒就问候了"})
    body = await raised.json()
    assert raised.status == 201 and (body["handler"], body["state"]) == (other, "open")
    again = await client.post(f"/api/qa/reviews/{review_id}/disputes", headers=csrf,
                              json={"item": "greeting", "reason": "再次"})
    assert again.status == 400 and "already disputed" in (await again.json())["error"]

    csrf = await sign_in(client, leak.reviewer)         # the one who scored does not answer it
    assert (await (await client.get("/api/qa/disputes")).json())["disputes"] == []
    assert (await client.post(f"/api/qa/disputes/{body['id']}/answer", json={"decision": "upheld"},
                              headers=csrf)).status == 404
    csrf = await sign_in(client, other)
    assert [d["id"] for d in (await (await client.get("/api/qa/disputes")).json())["disputes"]] == [body["id"]]
    no_score = await client.post(f"/api/qa/disputes/{body['id']}/answer", json={"decision": "amended"}, headers=csrf)
    assert no_score.status == 400 and (await no_score.json())["error"].startswith("new_score:")
    done = await client.post(f"/api/qa/disputes/{body['id']}/answer", headers=csrf,
                             json={"decision": "amended", "new_score": 0, "answer": "确未问候"})
    assert done.status == 200 and (await done.json())["state"] == "amended"
    async with sessionmaker() as session:
        assert (await session.get(Review, review_id)).total == 85.0       # 100 - 15

    csrf = await sign_in(client, "a1001")
    signed = await client.post(f"/api/qa/reviews/{review_id}/sign-off", headers=csrf)
    assert signed.status == 200 and (await signed.json())["signed_off_at"] is not None
