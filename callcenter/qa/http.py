"""QA review over HTTP: search calls, run the weekly assignment, score assigned calls, read a
call's checks and reviews, the scorecard, and which queues each reviewer covers.

Who sees what is one rule, callcenter/calls/visibility.py, shared with recording/http.py: an
agent their own calls (any other call is "not found"); QA the queues they cover (all queues
when they cover none) and every call assigned to them; supervisors and admin every call. No
audio is served here (recording/http.py does): a supervisor gets the checks and scores but no
words, no pointer to the audio, and may not search by words said (403 naming `words`: which
calls contain a word is itself what was said).

    GET  /api/qa/search?words=&channel=&agent_id=&category=&from=&to=&min_score=&max_score=&check=&limit=&offset=
    POST /api/qa/assignments/run       {week, per_agent}: the weekly sample + flagged calls (supervisor, admin)
    GET  /api/qa/assignments?week=&reviewer=   QA: their own
    POST /api/qa/reviews               {call_id, items: {item: score}, comment} (QA, calls assigned to them)
    GET  /api/qa/calls/{call_id}       words, checks, assignment, reviews
    GET  /api/qa/scorecard
    GET  /api/qa/reviewers             QA users and the queues they cover (supervisor, admin)
    PUT  /api/qa/reviewers/{username}/queues   {queues: [...]}; [] covers every queue
"""
from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.calls import visibility
from callcenter.qa import review
from callcenter.web import access
from callcenter.web.auth import json_body, json_error, json_exception
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.web.models import User
from callcenter.workdays import FIRST_YEAR, LAST_YEAR, check_day

SCORECARDS = web.AppKey("qa_scorecards", review.Scorecards)

AGENT, QA, SUP, ADMIN = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN
CHANNELS = ("caller", "agent")
MAX_LIMIT = 200


def _bad(message: str) -> web.HTTPException:
    return json_exception(web.HTTPBadRequest, message)


def _not_found(what: str) -> web.HTTPException:
    return json_exception(web.HTTPNotFound, what)


async def scope_for(request: web.Request, user: access.User) -> visibility.Scope:
    return await visibility.scope_for(request.app[SESSIONMAKER], user)


def _number(query: Any, key: str, low: float, high: float) -> float | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise _bad(f"{key}: a number from {low:g} to {high:g}")
    return value


def _day(query: Any, key: str, tz: str) -> datetime | None:
    raw = query.get(key)
    if not raw:
        return None
    try:
        day = check_day(date.fromisoformat(raw), key)
    except ValueError:
        raise _bad(f"{key}: a day from {FIRST_YEAR} to {LAST_YEAR}, e.g. 2026-11-23") from None
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def _text(query: Any, key: str) -> str | None:
    """A short text filter (an id, a name, a week); NUL and long values are refused."""
    raw = query.get(key)
    if not raw:
        return None
    if len(raw) > 64 or "\x00" in raw:
        raise _bad(f"{key}: up to 64 characters, without NUL")
    return str(raw)


def _call_id(request: web.Request) -> str:
    raw = request.match_info["call_id"]
    if len(raw) > 36 or "\x00" in raw:
        raise _not_found("no such call")
    return raw


@access.allow(*visibility.READERS)
async def search(request: web.Request) -> web.Response:
    """`from`/`to` are days in the hotline's time zone, both included."""
    user = access.current_user(request)
    q = request.query
    words = tuple(dict.fromkeys(w for w in re.split(r"[\s,，]+", q.get("words", "")) if w))
    if len(words) > 20 or any(len(w) > 64 or "\x00" in w for w in words):
        raise _bad("words: at most 20 words of up to 64 characters, without NUL")
    channel = q.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise _bad(f"channel: one of {', '.join(CHANNELS)}")
    scope = await scope_for(request, user)
    if not scope.words:
        for key in ("words", "channel"):
            if q.get(key):
                raise json_exception(web.HTTPForbidden, f"{key}: you may not search by words said "
                                                        "(your role reads no transcripts)")
    tz = request.app[SETTINGS].hotline.timezone
    until = _day(q, "to", tz)
    found = await review.search(request.app[SESSIONMAKER], review.Search(
        words=words, channel=channel,
        agent_id=scope.agent_id if user.role == AGENT else _text(q, "agent_id"),
        category=_text(q, "category"), since=_day(q, "from", tz),
        until=until + timedelta(days=1) if until else None,
        min_score=_number(q, "min_score", 0, 100), max_score=_number(q, "max_score", 0, 100),
        failed_check=_text(q, "check"),
        limit=int(_number(q, "limit", 1, MAX_LIMIT) or 50), offset=int(_number(q, "offset", 0, 1e9) or 0),
        scope=scope))
    return web.json_response(found)


@access.allow(SUP, ADMIN)
async def run_assignments(request: web.Request) -> web.Response:
    body = await json_body(request)
    per_agent = body.get("per_agent", review.DEFAULT_PER_AGENT)
    if isinstance(per_agent, bool) or not isinstance(per_agent, int) or not 0 <= per_agent <= 100:
        raise _bad("per_agent: calls sampled per agent, 0 to 100")
    settings = request.app[SETTINGS]
    secret = settings.web.secret_key.get_secret_value() if settings.web.secret_key else ""
    # Seeded by the secret: reproducible, but no agent can work out which calls will be drawn.
    seed = hashlib.sha256(f"qa-sample\x1f{secret}".encode()).hexdigest()
    try:
        result = await review.assign(request.app[SESSIONMAKER], str(body.get("week", "")),
                                     tz=settings.hotline.timezone, seed=seed, now=datetime.now(UTC),
                                     per_agent=per_agent)
    except review.ReviewError as exc:
        return json_error(400, str(exc))
    return web.json_response({"week": result.week, "assigned": [review.assignment_json(a) for a in result.assigned],
                              "unassigned": result.unassigned})


@access.allow(QA, SUP, ADMIN)
async def list_assignments(request: web.Request) -> web.Response:
    user = access.current_user(request)
    reviewer = user.username if user.role == QA else _text(request.query, "reviewer")
    rows = await review.assignments(request.app[SESSIONMAKER], reviewer=reviewer,
                                    week=_text(request.query, "week"))
    return web.json_response({"assignments": [
        {**review.assignment_json(a), "reviewed": r is not None, "total": r.total if r else None} for a, r in rows]})


@access.allow(QA)
async def submit_review(request: web.Request) -> web.Response:
    user = access.current_user(request)
    body = await json_body(request)
    call_id, comment = body.get("call_id"), body.get("comment", "")
    if not isinstance(call_id, str) or not call_id or len(call_id) > 36 or "\x00" in call_id:
        raise _bad("call_id: the call reviewed")
    if not isinstance(comment, str) or len(comment) > 2000 or "\x00" in comment:
        raise _bad("comment: text of up to 2000 characters, without NUL")
    sessionmaker = request.app[SESSIONMAKER]
    assignment = await review.assignment_of(sessionmaker, call_id, user.username)
    if assignment is None:
        raise _not_found("no such call assigned to you")
    try:
        saved, replaced = await review.score(sessionmaker, request.app[SCORECARDS], assignment, body.get("items"),
                                             user.username, now=datetime.now(UTC), comment=comment.strip())
    except review.ScoreError as exc:
        return json_error(400, str(exc))
    return web.json_response({**review.review_json(saved), "replaced": replaced}, status=200 if replaced else 201)


@access.allow(*visibility.READERS)
async def call(request: web.Request) -> web.Response:
    user = access.current_user(request)
    call_id = _call_id(request)
    scope = await scope_for(request, user)
    found = await review.call_detail(request.app[SESSIONMAKER], call_id, scope)
    if found is None:
        raise _not_found("no such call")
    # Where a listener asks for a signed audio link; supervisors get none.
    found["audio_link"] = f"/api/recordings/{call_id}/link" if scope.audio else None
    return web.json_response(found)


@access.allow(AGENT, QA, SUP, ADMIN)
async def scorecard(request: web.Request) -> web.Response:
    cards = request.app[SCORECARDS]
    return web.json_response({"name": cards.default, **cards.card.model_dump()})


@access.allow(SUP, ADMIN)
async def list_reviewers(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        team = await review.reviewers(session)
    return web.json_response({"reviewers": [{"username": name, "queues": sorted(queues) if queues else []}
                                            for name, queues in team]})


@access.allow(SUP, ADMIN)
async def set_reviewer_queues(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    if len(username) > 64 or "\x00" in username:
        raise _not_found("no such QA user")
    body = await json_body(request)
    queues = body.get("queues")
    known = [q.name for q in request.app[SETTINGS].queues]
    if not isinstance(queues, list) or any(q not in known for q in queues):
        raise _bad(f"queues: a list of queue names ({', '.join(known)}); [] covers every queue")
    sessionmaker = request.app[SESSIONMAKER]
    async with sessionmaker() as session:
        qa_user = (await session.scalars(select(User).where(User.username == username, User.role == QA))).first()
    if qa_user is None:
        raise _not_found("no such QA user")
    await review.set_covered_queues(sessionmaker, username, queues)
    return web.json_response({"username": username, "queues": sorted(set(queues))})


def setup_routes(app: web.Application) -> None:
    if SCORECARDS not in app:
        app[SCORECARDS] = review.load_scorecards()
    app.router.add_get("/api/qa/search", search)
    app.router.add_post("/api/qa/assignments/run", run_assignments)
    app.router.add_get("/api/qa/assignments", list_assignments)
    app.router.add_post("/api/qa/reviews", submit_review)
    app.router.add_get("/api/qa/calls/{call_id}", call)
    app.router.add_get("/api/qa/scorecard", scorecard)
    app.router.add_get("/api/qa/reviewers", list_reviewers)
    app.router.add_put("/api/qa/reviewers/{username}/queues", set_reviewer_queues)
