"""The QA pages: the reviewer's inbox and player, the agent's scored calls, search, disputes.

    GET  /qa                          QA: the calls assigned to me, the disputes I answer
    GET  /qa/calls/{call_id}?t=       the player: waveform of both channels (peaks from the server),
                                      the transcript per party following the audio, the checks as
                                      marks, talk time per party, the scorecard (QA) or the agent's
                                      sign-off and disputes (the call's own agent)
    POST /qa/calls/{call_id}/score    QA: the scorecard, saved; answers the scorecard with its total
    POST /qa/reviews/{review_id}/sign-off      the agent signs a scored call off
    POST /qa/reviews/{review_id}/disputes      the agent disputes an item, with a reason
    POST /qa/disputes/{dispute_id}/answer      the other reviewer (or a supervisor) upholds or amends
    GET  /qa/scores                   an agent's own scored calls
    GET  /qa/search?words=&...        calls by words said, agent, category, days, score, failed check;
                                      a hit opens the player at the moment the word was said
    GET  /qa/disputes                 supervisors: the disputes no other reviewer could take

Who sees which call is calls/visibility.py's rule, as everywhere: the player needs the right to
hear the audio (agents their own calls, QA their queues and assignments, admin all). The audio
comes through the signed link with ranges (recording/signing.py), the peaks from
/api/recordings/{id}/peaks; nothing a request carries reaches a file path.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import select

from callcenter.calls import visibility
from callcenter.calls.models import Call
from callcenter.pages import http as pages
from callcenter.pages.views import N_
from callcenter.qa import disputes, player, review
from callcenter.qa import http as qa_http
from callcenter.qa.models import Assignment, Dispute, Review
from callcenter.recording import http as recording_http
from callcenter.recording.models import TranscriptWord
from callcenter.recording.signing import audio_url
from callcenter.recording.store import TranscriptStore
from callcenter.web import access, api
from callcenter.web.keys import SESSIONMAKER, SETTINGS

AGENT, QA, SUP, ADMIN = access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN
MAX_MOMENT_S = 86400.0

CHECK_LABELS = {
    "greeting": N_("Greeting"), "closing": N_("Closing"), "forbidden_phrases": N_("Forbidden phrase"),
    "talk_over": N_("Talk-over"), "long_silence": N_("Long silence"),
    "caller_hung_up_first": N_("Caller hung up first"), "survey": N_("Survey"),
}
PARTY_LABELS = {"caller": N_("Caller"), "agent": N_("Agent"), "paused": N_("Recording paused")}
REASON_LABELS = {"sample": N_("Weekly sample"), "flagged": N_("Flagged by a check")}
DISPUTE_LABELS = {"open": N_("Open"), "upheld": N_("Score upheld"), "amended": N_("Score amended")}


class CallPath(api.Path):
    call_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class ReviewPath(api.Path):
    review_id: api.Id


class DisputePath(api.Path):
    dispute_id: api.Id


class PlayerQuery(api.Query):
    t: float | None = Field(None, ge=0, le=MAX_MOMENT_S, description="open the player at this second")


class ScoreForm(BaseModel):
    """The scorecard form: `item.<key>` for each item of the card (0 to its scale), a comment and
    the moment it is about. The items are the card's (scorecards.yaml), so they are checked
    against it in the handler, each refusal naming its field."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    comment: Annotated[str, api.text(2000, multiline=True)] = ""
    comment_at_s: Annotated[str, api.text(12)] = ""


class DisputeForm(api.Body):
    item: api.Name
    reason: Annotated[str, api.text(1000, min_length=1, multiline=True)]


class AnswerForm(api.Body):
    decision: Annotated[str, StringConstraints(pattern=r"^(upheld|amended)$")]
    new_score: Annotated[str, api.text(8)] = ""
    answer: Annotated[str, api.text(1000, multiline=True)] = ""


# ------------------------------------------------------------------ reading


async def _heard_call(request: web.Request, call_id: str) -> tuple[Call, visibility.Scope]:
    """The call, when this user may hear it; else 404 (exactly like a call that does not exist)."""
    sessionmaker = request.app[SESSIONMAKER]
    scope = await visibility.scope_for(sessionmaker, access.current_user(request))
    call = await visibility.visible_call(sessionmaker, call_id, scope) if scope.audio else None
    if call is None:
        raise web.HTTPNotFound()
    return call, scope


def _signed_audio(request: web.Request, call: Call) -> str | None:
    settings = request.app[SETTINGS]
    if recording_http._playable(call.recording_path, settings.paths.recordings_dir) is None:
        return None
    exp = int(time.time()) + settings.recording.link_ttl_s
    return audio_url(call.id, exp, recording_http._key(request.app))


async def _player_context(request: web.Request, call: Call, scope: visibility.Scope) -> dict[str, Any]:
    sessionmaker, user = request.app[SESSIONMAKER], access.current_user(request)
    store = TranscriptStore(sessionmaker)
    transcript = await store.transcript(call.id)
    words = await _words(sessionmaker, call.id) if transcript else []
    duration = (call.recording_duration_s or (transcript.audio_s if transcript else 0.0)) or 0.0
    checks = visibility.checks_for(scope, transcript.checks if transcript else [])
    async with sessionmaker() as session:
        assignment = (await session.scalars(select(Assignment).where(Assignment.call_id == call.id))).one_or_none()
        reviews = list((await session.scalars(select(Review).where(Review.call_id == call.id)
                                              .order_by(Review.id))).all())
    call_disputes = await disputes.disputes_of_call(sessionmaker, call.id)
    mine = next((r for r in reviews if r.reviewer == user.username), None)
    return {
        "call": call, "transcript": transcript, "duration": duration, "audio_url": _signed_audio(request, call),
        "turns": player.turns(words, call.muted_spans or []), "stats": player.talk_stats(words, duration),
        "checks": checks, "marks": player.marks(checks), "assignment": assignment, "reviews": reviews,
        "my_review": mine, "disputes": call_disputes, "card": request.app[qa_http.SCORECARDS].card,
        "may_score": user.role == QA and assignment is not None and assignment.reviewer == user.username,
        "own_call": user.role == AGENT and call.agent_id == user.agent_id,
        "answerable": [d for d in call_disputes if disputes.may_answer(d, user)],
    }


async def _words(sessionmaker: Any, call_id: str) -> list[Any]:
    """The call's words as plain rows (an hour-long call has thousands: no ORM objects for them)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(TranscriptWord.channel, TranscriptWord.word, TranscriptWord.start_s, TranscriptWord.end_s)
            .where(TranscriptWord.call_id == call_id).order_by(TranscriptWord.start_s, TranscriptWord.id))
        return list(rows.all())


def turn_words(turn: player.Turn) -> Markup:
    """A turn's words as the player's spans (each with its times, to highlight and to seek), built
    here rather than by a template loop: an hour-long call has thousands of them."""
    return Markup(" ").join(Markup('<span class="w" data-s="{}" data-e="{}">{}</span>').format(w.start_s, w.end_s, w.word)
                            for w in turn.words)


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return pages.render(request, template, status=status, clock=player.clock, turn_words=turn_words,
                        check_labels=CHECK_LABELS,
                        party_labels=PARTY_LABELS, reason_labels=REASON_LABELS, dispute_labels=DISPUTE_LABELS,
                        **context)


# ------------------------------------------------------------------ pages

@access.allow(QA)
@api.route(summary="QA: the calls assigned to me and the disputes I answer", responses={200: "text/html"})
async def inbox(request: web.Request) -> web.Response:
    user, sessionmaker = access.current_user(request), request.app[SESSIONMAKER]
    rows = await review.assignments(sessionmaker, reviewer=user.username)
    return _page(request, "qa.html", rows=rows, open_disputes=await disputes.open_disputes_for(sessionmaker, user))


@access.allow(AGENT, QA, ADMIN)
@api.route(summary="The player: a call's waveform, transcript, checks and scorecard", path=CallPath,
           query=PlayerQuery, responses={200: "text/html", 404: "text/html"})
async def call_page(request: web.Request, path: CallPath, query: PlayerQuery) -> web.Response:
    call, scope = await _heard_call(request, path.call_id)
    return _page(request, "qa_call.html", start_at=query.t, **await _player_context(request, call, scope))


def _score_items(form: ScoreForm, card: review.Scorecard) -> dict[str, float]:
    extra = form.model_extra or {}
    unknown = [key for key in extra if not key.startswith("item.") or key[5:] not in card.items]
    if unknown:
        raise review.ScoreError(f"{unknown[0]}: not an item of the scorecard")
    items: dict[str, float] = {}
    for key in card.items:
        raw = extra.get(f"item.{key}")
        if not isinstance(raw, str) or not raw.strip().isdigit() or not 0 <= int(raw) <= card.scale:
            raise review.ScoreError(f"item.{key}: a score from 0 to {card.scale}")
        items[key] = float(int(raw))
    return items


def _moment(raw: str, field: str) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_MOMENT_S:
        raise review.ScoreError(f"{field}: a second of the recording (0 to {MAX_MOMENT_S:g})")
    return round(value, 2)


@access.allow(QA)
@api.route(summary="QA: save the scorecard of a call assigned to me", path=CallPath, body=ScoreForm, form=True,
           responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def score(request: web.Request, path: CallPath, body: ScoreForm) -> web.Response:
    call, scope = await _heard_call(request, path.call_id)
    user, sessionmaker = access.current_user(request), request.app[SESSIONMAKER]
    assignment = await review.assignment_of(sessionmaker, call.id, user.username)
    if assignment is None:
        raise web.HTTPNotFound()
    cards = request.app[qa_http.SCORECARDS]
    error = None
    try:
        items = _score_items(body, cards.card)
        await review.score(sessionmaker, cards, assignment, items, user.username, now=datetime.now(UTC),
                           comment=body.comment.strip(), comment_at_s=_moment(body.comment_at_s, "comment_at_s"))
    except review.ScoreError as exc:
        error = str(exc)
    context = await _player_context(request, call, scope)
    # An error is shown in the form it belongs to (htmx swaps only 2xx answers), as the unit's steps do.
    return _page(request, "qa_scorecard.html", error=error, saved=error is None,
                 **context)


async def _agent_panel(request: web.Request, review_id: int, error: str | None, done: str | None) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        found = await session.get(Review, review_id)
    if found is None:
        raise web.HTTPNotFound()
    call, scope = await _heard_call(request, found.call_id)
    context = await _player_context(request, call, scope)
    return _page(request, "qa_agent_panel.html", error=error, done=done, **context)


@access.allow(AGENT)
@api.route(summary="The agent signs a scored call off", path=ReviewPath, body=api.Empty,
           responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def sign_off(request: web.Request, path: ReviewPath) -> web.Response:
    try:
        await disputes.sign_off(request.app[SESSIONMAKER], path.review_id, access.current_user(request),
                                now=datetime.now(UTC))
    except LookupError:
        raise web.HTTPNotFound() from None
    except review.ReviewError as exc:
        return await _agent_panel(request, path.review_id, str(exc), None)
    return await _agent_panel(request, path.review_id, None, "signed")


@access.allow(AGENT)
@api.route(summary="The agent disputes an item of a scored call", path=ReviewPath, body=DisputeForm, form=True,
           responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def dispute(request: web.Request, path: ReviewPath, body: DisputeForm) -> web.Response:
    try:
        await disputes.raise_dispute(request.app[SESSIONMAKER], request.app[qa_http.SCORECARDS], path.review_id,
                                     body.item, body.reason, access.current_user(request), now=datetime.now(UTC))
    except LookupError:
        raise web.HTTPNotFound() from None
    except review.ReviewError as exc:
        return await _agent_panel(request, path.review_id, str(exc), None)
    return await _agent_panel(request, path.review_id, None, "disputed")


@access.allow(QA, SUP, ADMIN)
@api.route(summary="Answer a dispute: uphold the score or amend the item", path=DisputePath, body=AnswerForm,
           form=True, responses={200: "text/html", 400: "text/html", 404: "text/html"})
async def answer(request: web.Request, path: DisputePath, body: AnswerForm) -> web.Response:
    user, sessionmaker = access.current_user(request), request.app[SESSIONMAKER]
    error = None
    try:
        new_score = None
        if body.decision == "amended":
            raw = body.new_score.strip()
            if not raw.isdigit():
                raise review.ReviewError("new_score: the item's new score, a whole number")
            new_score = float(int(raw))
        await disputes.answer(sessionmaker, request.app[qa_http.SCORECARDS], path.dispute_id, user, body.decision,
                              new_score, body.answer, now=datetime.now(UTC))
    except LookupError:
        raise web.HTTPNotFound() from None
    except (review.ReviewError, review.ScoreError) as exc:
        error = str(exc)
    async with sessionmaker() as session:
        found = await session.get(Dispute, path.dispute_id)
        scored = await session.get(Review, found.review_id) if found else None
    if found is None:
        raise web.HTTPNotFound()
    return _page(request, "qa_dispute.html", d=found, r=scored, error=error, answerable=disputes.may_answer(found, user),
                 card=request.app[qa_http.SCORECARDS].card)


@access.allow(AGENT)
@api.route(summary="An agent's own scored calls", responses={200: "text/html"})
async def my_scores(request: web.Request) -> web.Response:
    user, sessionmaker = access.current_user(request), request.app[SESSIONMAKER]
    rows = await disputes.reviews_of_agent(sessionmaker, user.agent_id) if user.agent_id else []
    async with sessionmaker() as session:
        ids = [r.id for r, _ in rows]
        disputed = {d.review_id for d in (await session.scalars(
            select(Dispute).where(Dispute.review_id.in_(ids), Dispute.state == "open"))).all()} if ids else set()
    return _page(request, "qa_scores.html", rows=rows, disputed=disputed)


@access.allow(QA, ADMIN)
@api.route(summary="Search calls by words said, agent, category, days, score and failed check",
           responses={200: "text/html", 400: "text/html"})
async def search(request: web.Request) -> web.Response:
    """The form and its results; each word found opens the player at the moment it was said."""
    q, error, found = dict(request.query), None, None
    if any(v for k, v in q.items() if k != "lang"):
        try:
            query = qa_http.SearchQuery.model_validate({k: v for k, v in q.items() if v != ""})
        except ValidationError as exc:
            error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        else:
            try:
                found = await qa_http.find(request, access.current_user(request), query)
            except web.HTTPException as exc:
                error = pages._error_text(exc.text, exc.reason)
            else:
                for result in found["results"]:
                    result["arrived"] = datetime.fromisoformat(result["arrived_at"])
    return _page(request, "qa_search.html", status=400 if error else 200, q=q, error=error, found=found,
                 checks=CHECK_LABELS)


@access.allow(SUP, ADMIN)
@api.route(summary="Supervisors: the QA disputes no other reviewer could take", responses={200: "text/html"})
async def supervisor_disputes(request: web.Request) -> web.Response:
    user, sessionmaker = access.current_user(request), request.app[SESSIONMAKER]
    open_ones = await disputes.open_disputes_for(sessionmaker, user)
    async with sessionmaker() as session:
        scored = {d.id: await session.get(Review, d.review_id) for d in open_ones}
    return _page(request, "qa_disputes.html", rows=[(d, scored[d.id]) for d in open_ones], answerable=True,
                 card=request.app[qa_http.SCORECARDS].card)


def setup_routes(app: web.Application) -> None:
    if qa_http.SCORECARDS not in app:
        app[qa_http.SCORECARDS] = review.load_scorecards()
    r = app.router
    r.add_get("/qa", inbox)
    r.add_get("/qa/scores", my_scores)
    r.add_get("/qa/search", search)
    r.add_get("/qa/disputes", supervisor_disputes)
    r.add_get("/qa/calls/{call_id}", call_page)
    r.add_post("/qa/calls/{call_id}/score", score)
    r.add_post("/qa/reviews/{review_id}/sign-off", sign_off)
    r.add_post("/qa/reviews/{review_id}/disputes", dispute)
    r.add_post("/qa/disputes/{dispute_id}/answer", answer)
