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
    POST /api/qa/reviews               {call_id, items: {item: score}, comment, comment_at_s} (QA, calls assigned to them)
    GET  /api/qa/calls/{call_id}       words, checks, assignment, reviews
    GET  /api/qa/scorecard
    GET  /api/qa/reviewers             QA users and the queues they cover (supervisor, admin)
    PUT  /api/qa/reviewers/{username}/queues   {queues: [...]}; [] covers every queue
    POST /api/qa/reviews/{review_id}/sign-off  the call's agent signs the score off
    POST /api/qa/reviews/{review_id}/disputes  {item, reason}: the call's agent disputes an item
    GET  /api/qa/disputes              the open disputes I answer (QA: mine; supervisors: theirs)
    POST /api/qa/disputes/{dispute_id}/answer  {decision: upheld|amended, new_score, answer}
"""
from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, Strict
from sqlalchemy import select

from callcenter.calls import visibility
from callcenter.qa import disputes, review
from callcenter.web import access, api
from callcenter.web.auth import json_error, json_exception
from callcenter.web.keys import SESSIONMAKER, SETTINGS
from callcenter.web.models import User

SCORECARDS = web.AppKey("qa_scorecards", review.Scorecards)

AGENT, QA, SUP, ADMIN = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN
MAX_LIMIT = 200
Score = Annotated[float, Field(ge=0, le=100)]
CallId = Annotated[str, api.text(36, min_length=1)]


class SearchQuery(api.Query):
    words: Annotated[str, api.text(1400)] = Field("", description="words said, separated by spaces or commas")
    channel: Literal["caller", "agent"] | None = None
    agent_id: api.Name | None = None
    category: api.Name | None = None
    since: api.Day | None = Field(None, alias="from", description="the first day, in the hotline's time zone")
    until: api.Day | None = Field(None, alias="to", description="the last day (included)")
    min_score: Score | None = None
    max_score: Score | None = None
    check: api.Name | None = Field(None, description="a check the call failed")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: api.Offset = 0


class AssignmentRun(api.Body):
    week: api.Week
    per_agent: Annotated[int, Strict(), Field(ge=0, le=100)] = review.DEFAULT_PER_AGENT


class AssignmentQuery(api.Query):
    week: api.Week | None = None
    reviewer: api.Name | None = None


class ReviewBody(api.Body):
    call_id: CallId
    items: dict[api.Name, Annotated[float, Field(ge=0, le=1000)]] = Field(max_length=100)
    comment: Annotated[str, api.text(2000, multiline=True)] = ""
    comment_at_s: Annotated[float, Field(ge=0, le=86400)] | None = Field(None, description="the second the comment is about")


class CallPath(api.Path):
    call_id: CallId


class ReviewIdPath(api.Path):
    review_id: api.Id


class DisputeIdPath(api.Path):
    dispute_id: api.Id


class DisputeBody(api.Body):
    item: api.Name
    reason: Annotated[str, api.text(1000, min_length=1, multiline=True)]


class AnswerBody(api.Body):
    decision: Literal["upheld", "amended"]
    new_score: Annotated[float, Field(ge=0, le=1000)] | None = None
    answer: Annotated[str, api.text(1000, multiline=True)] = ""


class ReviewerPath(api.Path):
    username: api.Name


class QueuesBody(api.Body):
    queues: list[api.Name] = Field(max_length=100)


class Found(api.Answer):
    """Calls found (and, for listeners, the words' hits)."""


class AssignmentRunOut(api.Answer):
    week: str
    assigned: list[dict[str, Any]]
    unassigned: list[str]


class AssignmentList(api.Answer):
    assignments: list[dict[str, Any]]


class ReviewOut(api.Answer):
    replaced: bool


class CallDetail(api.Answer):
    audio_link: str | None


class Scorecard(api.Answer):
    name: str


class DisputeOut(api.Answer):
    id: int
    state: str
    handler_role: str


class DisputeList(api.Answer):
    disputes: list[DisputeOut]


class Reviewer(api.Answer):
    username: str
    queues: list[str]


class ReviewerList(api.Answer):
    reviewers: list[Reviewer]


def _bad(message: str) -> web.HTTPException:
    return json_exception(web.HTTPBadRequest, message)


def _not_found(what: str) -> web.HTTPException:
    return json_exception(web.HTTPNotFound, what)


async def scope_for(request: web.Request, user: access.User) -> visibility.Scope:
    return await visibility.scope_for(request.app[SESSIONMAKER], user)


def _day(day: date | None, tz: str) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)) if day else None


@access.allow(*visibility.READERS)
@api.route(summary="Search calls by words said, agent, category, days, score and failed check",
           query=SearchQuery, responses={200: Found})
async def search(request: web.Request, query: SearchQuery) -> web.Response:
    """`from`/`to` are days in the hotline's time zone, both included."""
    return web.json_response(await find(request, access.current_user(request), query))


async def find(request: web.Request, user: access.User, q: SearchQuery) -> dict[str, Any]:
    """The search, for the API and the search page alike (the same scope, the same refusals)."""
    words = tuple(dict.fromkeys(w for w in re.split(r"[\s,，]+", q.words) if w))
    if len(words) > 20 or any(len(w) > 64 for w in words):
        raise _bad("words: at most 20 words of up to 64 characters")
    channel = q.channel
    scope = await scope_for(request, user)
    if not scope.words:
        for key, given in (("words", q.words), ("channel", q.channel)):
            if given:
                raise json_exception(web.HTTPForbidden, f"{key}: you may not search by words said "
                                                        "(your role reads no transcripts)")
    tz = request.app[SETTINGS].hotline.timezone
    until = _day(q.until, tz)
    found = await review.search(request.app[SESSIONMAKER], review.Search(
        words=words, channel=channel,
        agent_id=scope.agent_id if user.role == AGENT else q.agent_id,
        category=q.category, since=_day(q.since, tz),
        until=until + timedelta(days=1) if until else None,
        min_score=q.min_score, max_score=q.max_score,
        failed_check=q.check,
        limit=q.limit, offset=q.offset,
        scope=scope))
    return found


@access.allow(SUP, ADMIN)
@api.route(summary="Run the weekly assignment: the sample per agent and every flagged call", body=AssignmentRun,
           responses={200: AssignmentRunOut})
async def run_assignments(request: web.Request, body: AssignmentRun) -> web.Response:
    per_agent = body.per_agent
    settings = request.app[SETTINGS]
    secret = settings.web.secret_key.get_secret_value() if settings.web.secret_key else ""
    # Seeded by the secret: reproducible, but no agent can work out which calls will be drawn.
    seed = hashlib.sha256(f"qa-sample\x1f{secret}".encode()).hexdigest()
    try:
        result = await review.assign(request.app[SESSIONMAKER], body.week,
                                     tz=settings.hotline.timezone, seed=seed, now=datetime.now(UTC),
                                     per_agent=per_agent)
    except review.ReviewError as exc:
        return json_error(400, str(exc))
    return web.json_response({"week": result.week, "assigned": [review.assignment_json(a) for a in result.assigned],
                              "unassigned": result.unassigned})


@access.allow(QA, SUP, ADMIN)
@api.route(summary="Assignments (QA: their own)", query=AssignmentQuery, responses={200: AssignmentList})
async def list_assignments(request: web.Request, query: AssignmentQuery) -> web.Response:
    user = access.current_user(request)
    reviewer = user.username if user.role == QA else query.reviewer
    rows = await review.assignments(request.app[SESSIONMAKER], reviewer=reviewer,
                                    week=query.week)
    return web.json_response({"assignments": [
        {**review.assignment_json(a), "reviewed": r is not None, "total": r.total if r else None} for a, r in rows]})


@access.allow(QA)
@api.route(summary="Score a call assigned to you", body=ReviewBody,
           responses={200: ReviewOut, 201: ReviewOut, 404: api.Problem})
async def submit_review(request: web.Request, body: ReviewBody) -> web.Response:
    user = access.current_user(request)
    call_id, comment = body.call_id, body.comment
    sessionmaker = request.app[SESSIONMAKER]
    assignment = await review.assignment_of(sessionmaker, call_id, user.username)
    if assignment is None:
        raise _not_found("no such call assigned to you")
    try:
        saved, replaced = await review.score(sessionmaker, request.app[SCORECARDS], assignment, body.items,
                                             user.username, now=datetime.now(UTC), comment=comment.strip(),
                                             comment_at_s=body.comment_at_s)
    except review.ScoreError as exc:
        return json_error(400, str(exc))
    return web.json_response({**review.review_json(saved), "replaced": replaced}, status=200 if replaced else 201)


@access.allow(*visibility.READERS)
@api.route(summary="A call's checks, assignment and reviews (listeners: and its words)", path=CallPath,
           responses={200: CallDetail, 404: api.Problem})
async def call(request: web.Request, path: CallPath) -> web.Response:
    user = access.current_user(request)
    call_id = path.call_id
    scope = await scope_for(request, user)
    found = await review.call_detail(request.app[SESSIONMAKER], call_id, scope)
    if found is None:
        raise _not_found("no such call")
    # Where a listener asks for a signed audio link; supervisors get none.
    found["audio_link"] = f"/api/recordings/{call_id}/link" if scope.audio else None
    return web.json_response(found)


@access.allow(AGENT, QA, SUP, ADMIN)
@api.route(summary="The scorecard reviewers score on", responses={200: Scorecard})
async def scorecard(request: web.Request) -> web.Response:
    cards = request.app[SCORECARDS]
    return web.json_response({"name": cards.default, **cards.card.model_dump()})


@access.allow(SUP, ADMIN)
@api.route(summary="QA users and the queues they cover", responses={200: ReviewerList})
async def list_reviewers(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        team = await review.reviewers(session)
    return web.json_response({"reviewers": [{"username": name, "queues": sorted(queues) if queues else []}
                                            for name, queues in team]})


@access.allow(SUP, ADMIN)
@api.route(summary="The queues a QA user covers ([] covers every queue)", path=ReviewerPath, body=QueuesBody,
           responses={200: Reviewer, 404: api.Problem})
async def set_reviewer_queues(request: web.Request, path: ReviewerPath, body: QueuesBody) -> web.Response:
    username = path.username
    queues = body.queues
    known = [q.name for q in request.app[SETTINGS].queues]
    if any(q not in known for q in queues):
        raise _bad(f"queues: a list of queue names ({', '.join(known)}); [] covers every queue")
    sessionmaker = request.app[SESSIONMAKER]
    async with sessionmaker() as session:
        qa_user = (await session.scalars(select(User).where(User.username == username, User.role == QA))).first()
    if qa_user is None:
        raise _not_found("no such QA user")
    await review.set_covered_queues(sessionmaker, username, queues)
    return web.json_response({"username": username, "queues": sorted(set(queues))})


@access.allow(AGENT)
@api.route(summary="The call's agent signs a score off", path=ReviewIdPath, body=api.Empty,
           responses={200: ReviewOut, 400: api.Problem, 404: api.Problem})
async def sign_off(request: web.Request, path: ReviewIdPath) -> web.Response:
    try:
        signed = await disputes.sign_off(request.app[SESSIONMAKER], path.review_id, access.current_user(request),
                                         now=datetime.now(UTC))
    except LookupError as exc:
        raise _not_found(str(exc)) from None
    except review.ReviewError as exc:
        return json_error(400, str(exc))
    return web.json_response({**review.review_json(signed), "replaced": False})


@access.allow(AGENT)
@api.route(summary="The call's agent disputes an item of a score", path=ReviewIdPath, body=DisputeBody,
           responses={201: DisputeOut, 400: api.Problem, 404: api.Problem})
async def raise_dispute(request: web.Request, path: ReviewIdPath, body: DisputeBody) -> web.Response:
    try:
        found = await disputes.raise_dispute(request.app[SESSIONMAKER], request.app[SCORECARDS], path.review_id,
                                             body.item, body.reason, access.current_user(request),
                                             now=datetime.now(UTC))
    except LookupError as exc:
        raise _not_found(str(exc)) from None
    except review.ReviewError as exc:
        return json_error(400, str(exc))
    return web.json_response(disputes.dispute_json(found), status=201)


@access.allow(QA, SUP, ADMIN)
@api.route(summary="The open disputes I answer", responses={200: DisputeList})
async def list_disputes(request: web.Request) -> web.Response:
    found = await disputes.open_disputes_for(request.app[SESSIONMAKER], access.current_user(request))
    return web.json_response({"disputes": [disputes.dispute_json(d) for d in found]})


@access.allow(QA, SUP, ADMIN)
@api.route(summary="Answer a dispute: uphold the score or amend the item", path=DisputeIdPath, body=AnswerBody,
           responses={200: DisputeOut, 400: api.Problem, 404: api.Problem})
async def answer_dispute(request: web.Request, path: DisputeIdPath, body: AnswerBody) -> web.Response:
    try:
        found = await disputes.answer(request.app[SESSIONMAKER], request.app[SCORECARDS], path.dispute_id,
                                      access.current_user(request), body.decision, body.new_score, body.answer,
                                      now=datetime.now(UTC))
    except LookupError as exc:
        raise _not_found(str(exc)) from None
    except (review.ReviewError, review.ScoreError) as exc:
        return json_error(400, str(exc))
    return web.json_response(disputes.dispute_json(found))


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
    app.router.add_post("/api/qa/reviews/{review_id}/sign-off", sign_off)
    app.router.add_post("/api/qa/reviews/{review_id}/disputes", raise_dispute)
    app.router.add_get("/api/qa/disputes", list_disputes)
    app.router.add_post("/api/qa/disputes/{dispute_id}/answer", answer_dispute)
