"""QA review (质检): scorecards, the weekly assignment of calls to reviewers, scores, search.

Pure parts first (scorecards, weighted totals, ISO weeks, the weekly sample, spreading calls
over reviewers), then the parts that read and write the database.

Decisions:
- The weekly sample is a "bottom-k" sample: every call ranks by sha256(seed, week, call id) and
  an agent's sample is their `per_agent` lowest-ranked calls. It is reproducible, does not depend
  on the order the calls come in, and a rerun only tops up an agent whose sample is short.
- A call is assigned once, ever (qa_assignments.call_id is unique), so running the assignment
  twice assigns nothing new. Every flagged call (Transcript.flagged) that arrived before the end
  of the week and is not assigned yet is assigned as well; flagged calls are not in the sample.
- Calls go round-robin over the active QA users, least open work first; a reviewer who covers
  some queues (qa_reviewer_queues) only gets calls of those queues, one who covers none gets any.
- Scoring a call again (same reviewer) replaces the earlier review: it is the reviewer's
  correction, and there is one review per call and reviewer.
- Search matches whole words: a transcript word equals one of the query words (the transcriber
  splits speech into words, and the equality uses the index).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import ANSWERED, Call
from callcenter.calls.visibility import Scope, checks_for, in_scope
from callcenter.qa.models import FLAGGED, SAMPLE, Assignment, Review, ReviewerQueue
from callcenter.recording.models import Transcript, TranscriptWord
from callcenter.web import access
from callcenter.web.models import User
from callcenter.workdays import iso_week

DEFAULT_SCORECARDS = Path(__file__).with_name("scorecards.yaml")
DEFAULT_PER_AGENT = 5
MAX_HITS_PER_CALL = 50


class ScorecardError(Exception):
    """The scorecards file is wrong; the message names the key."""


class ScoreError(ValueError):
    """A score submission does not fit the scorecard."""


class ReviewError(ValueError):
    """A request the review cannot carry out (a bad week, a call not assigned to the reviewer)."""


# --- scorecards ---------------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Model):
    label: str = Field(min_length=1)
    weight: float = Field(gt=0, le=100)


class Scorecard(_Model):
    title: str = Field(min_length=1)
    scale: int = Field(default=5, gt=0)          # each item is scored 0..scale
    items: dict[str, Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_sum_to_100(self) -> Scorecard:
        total = sum(item.weight for item in self.items.values())
        if abs(total - 100) > 1e-6:
            raise ValueError(f"the weights of the items sum to {total:g}, not 100")
        return self


class Scorecards(_Model):
    default: str
    scorecards: dict[str, Scorecard] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_is_a_card(self) -> Scorecards:
        if self.default not in self.scorecards:
            raise ValueError(f"default: {self.default!r} is not one of the scorecards ({', '.join(self.scorecards)})")
        return self

    @property
    def card(self) -> Scorecard:
        return self.scorecards[self.default]


def load_scorecards(path: str | Path | None = None) -> Scorecards:
    path = Path(path) if path else DEFAULT_SCORECARDS
    try:
        return Scorecards.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ScorecardError(f"{path}: scorecards file not found") from None
    except yaml.YAMLError as exc:
        raise ScorecardError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ScorecardError(f"{path}: {problems}") from None


def weighted_total(card: Scorecard, item_scores: Any) -> tuple[dict[str, float], float]:
    """The item scores checked against the card, and the weighted total 0-100:
    sum(weight * score / scale). Every item of the card must be scored, and only those."""
    if not isinstance(item_scores, Mapping):
        raise ScoreError("items: an object of item: score")
    unknown = sorted(str(k) for k in item_scores if k not in card.items)
    if unknown:
        raise ScoreError(f"items: unknown item(s) {', '.join(unknown)}; the scorecard's items are "
                         f"{', '.join(card.items)}")
    missing = [key for key in card.items if key not in item_scores]
    if missing:
        raise ScoreError(f"items: not scored: {', '.join(missing)}")
    scores: dict[str, float] = {}
    for key in card.items:
        value = item_scores[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= card.scale:
            raise ScoreError(f"items.{key}: a score from 0 to {card.scale}")
        scores[key] = float(value)
    total = sum(card.items[key].weight * value / card.scale for key, value in scores.items())
    return scores, round(total, 2)


# --- weeks, the sample, spreading ---------------------------------------------------------

def week_bounds(week: str, tz: str) -> tuple[str, datetime, datetime]:
    """The ISO week ("2026-W47") as (its normal spelling, local Monday 00:00, the next Monday)."""
    try:
        start, end = iso_week(week, tz)
    except ValueError:
        raise ReviewError(f"week: {week!r} is not an ISO week; expected e.g. 2026-W47") from None
    year, number, _ = start.date().isocalendar()
    return f"{year:04d}-W{number:02d}", start, end


def _rank(seed: str, week: str, call_id: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{week}\x1f{call_id}".encode()).hexdigest()


def weekly_sample(calls_by_agent: Mapping[str, Iterable[str]], week: str, per_agent: int,
                  seed: str) -> dict[str, list[str]]:
    """Each agent's random sample of `per_agent` calls (all of them when fewer), best-ranked first.
    The same calls, week and seed give the same sample, in whatever order the calls come."""
    return {agent: sorted(set(calls), key=lambda c: (_rank(seed, week, c), c))[:max(per_agent, 0)]
            for agent, calls in calls_by_agent.items()}


def spread(calls: Sequence[tuple[str, str | None]],
           reviewers: Sequence[tuple[str, frozenset[str] | None]]) -> dict[str, str]:
    """Round-robin: (call id, queue) to the next reviewer in turn who covers the queue (a reviewer
    covering None covers every queue). Calls nobody covers are left out."""
    out: dict[str, str] = {}
    turn = 0
    for call_id, queue in calls:
        for step in range(len(reviewers)):
            name, queues = reviewers[(turn + step) % len(reviewers)]
            if queues is None or queue in queues:
                out[call_id] = name
                turn = (turn + step + 1) % len(reviewers)
                break
    return out


# --- the database ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AssignResult:
    week: str
    assigned: list[Assignment]
    unassigned: list[str]          # calls no reviewer covers (their queue is nobody's)


async def reviewers(session: AsyncSession) -> list[tuple[str, frozenset[str] | None]]:
    """The active QA users and the queues each covers (None: every queue), by name."""
    names = (await session.scalars(select(User.username).where(User.role == access.QA, User.active.is_(True))
                                   .order_by(User.username))).all()
    covered: dict[str, set[str]] = defaultdict(set)
    for name, queue in (await session.execute(select(ReviewerQueue.reviewer, ReviewerQueue.queue))).all():
        covered[name].add(queue)
    return [(name, frozenset(covered[name]) if name in covered else None) for name in names]


async def set_covered_queues(sessionmaker: async_sessionmaker[AsyncSession], reviewer: str,
                             queues: Iterable[str]) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(ReviewerQueue).where(ReviewerQueue.reviewer == reviewer))
        session.add_all(ReviewerQueue(reviewer=reviewer, queue=q) for q in sorted(set(queues)))


async def assign(sessionmaker: async_sessionmaker[AsyncSession], week: str, *, tz: str, seed: str, now: datetime,
                 per_agent: int = DEFAULT_PER_AGENT) -> AssignResult:
    """Assign the week's sample of answered calls per agent, and every flagged call not assigned yet."""
    try:
        return await _assign(sessionmaker, week, tz=tz, seed=seed, now=now, per_agent=per_agent)
    except IntegrityError:   # another run assigned some of the same calls at the same moment
        return await _assign(sessionmaker, week, tz=tz, seed=seed, now=now, per_agent=per_agent)


async def _assign(sessionmaker: async_sessionmaker[AsyncSession], week: str, *, tz: str, seed: str, now: datetime,
                  per_agent: int) -> AssignResult:
    week, start, end = week_bounds(week, tz)
    assigned = select(Assignment.call_id)
    async with sessionmaker() as session, session.begin():
        flagged = (await session.execute(
            select(Call.id, Call.queue, Call.agent_id).join(Transcript, Transcript.call_id == Call.id)
            .where(Transcript.flagged.is_(True), Call.arrived_at < end, Call.id.not_in(assigned))
            .order_by(Call.arrived_at, Call.id))).all()
        answered = (await session.execute(
            select(Call.id, Call.queue, Call.agent_id)
            .where(Call.agent_id.is_not(None), Call.disposition == ANSWERED, Call.arrived_at >= start,
                   Call.arrived_at < end, Call.id.not_in(assigned)))).all()
        sampled_before = dict((await session.execute(
            select(Assignment.agent_id, func.count()).where(Assignment.week == week, Assignment.reason == SAMPLE)
            .group_by(Assignment.agent_id))).all())
        flagged_ids = {row.id for row in flagged}
        by_agent: dict[str, list[str]] = defaultdict(list)
        facts = {row.id: row for row in (*flagged, *answered)}
        for row in answered:
            if row.id not in flagged_ids:
                by_agent[row.agent_id].append(row.id)
        sample = weekly_sample(by_agent, week, per_agent, seed)
        picked = [call_id for agent in sorted(sample)
                  for call_id in sample[agent][:max(per_agent - sampled_before.get(agent, 0), 0)]]

        # The least loaded reviewer (open assignments) takes the first call.
        open_work = dict((await session.execute(
            select(Assignment.reviewer, func.count()).outerjoin(
                Review, and_(Review.call_id == Assignment.call_id, Review.reviewer == Assignment.reviewer))
            .where(Review.id.is_(None)).group_by(Assignment.reviewer))).all())
        team = sorted(await reviewers(session), key=lambda r: (open_work.get(r[0], 0), r[0]))
        order = [(row.id, row.queue) for row in flagged] + [(c, facts[c].queue) for c in picked]
        to = spread(order, team)
        rows = [Assignment(call_id=call_id, reviewer=to[call_id], week=week,
                           reason=FLAGGED if call_id in flagged_ids else SAMPLE,
                           agent_id=facts[call_id].agent_id, assigned_at=now)
                for call_id, _ in order if call_id in to]
        session.add_all(rows)
    return AssignResult(week, rows, [call_id for call_id, _ in order if call_id not in to])


async def assignments(sessionmaker: async_sessionmaker[AsyncSession], *, reviewer: str | None = None,
                      week: str | None = None) -> list[tuple[Assignment, Review | None]]:
    """Assignments, oldest first, each with the reviewer's review of the call when there is one."""
    stmt = (select(Assignment, Review).outerjoin(
        Review, and_(Review.call_id == Assignment.call_id, Review.reviewer == Assignment.reviewer))
        .order_by(Assignment.id))
    if reviewer is not None:
        stmt = stmt.where(Assignment.reviewer == reviewer)
    if week is not None:
        stmt = stmt.where(Assignment.week == week)
    async with sessionmaker() as session:
        return [(a, r) for a, r in (await session.execute(stmt)).all()]


async def assignment_of(sessionmaker: async_sessionmaker[AsyncSession], call_id: str,
                        reviewer: str) -> Assignment | None:
    async with sessionmaker() as session:
        return (await session.scalars(select(Assignment).where(Assignment.call_id == call_id,
                                                               Assignment.reviewer == reviewer))).one_or_none()


async def score(sessionmaker: async_sessionmaker[AsyncSession], cards: Scorecards, assignment: Assignment,
                item_scores: Any, reviewer: str, *, now: datetime, comment: str = "",
                comment_at_s: float | None = None) -> tuple[Review, bool]:
    """Store the reviewer's scores of the assigned call on the default scorecard: (the review,
    whether it replaced an earlier one by the same reviewer). The comment may be tied to a moment
    of the recording (`comment_at_s`). Scoring again clears the agent's sign-off: they sign the new one."""
    if assignment.reviewer != reviewer:
        raise ReviewError(f"call {assignment.call_id} is assigned to another reviewer")
    items, total = weighted_total(cards.card, item_scores)
    for attempt in (1, 2):
        try:
            async with sessionmaker() as session, session.begin():
                review = (await session.scalars(select(Review).where(
                    Review.call_id == assignment.call_id, Review.reviewer == reviewer))).one_or_none()
                replaced = review is not None
                if review is None:
                    review = Review(call_id=assignment.call_id, reviewer=reviewer)
                    session.add(review)
                review.scorecard, review.items, review.total = cards.default, items, total
                review.comment, review.comment_at_s, review.created_at = comment, comment_at_s, now
                review.signed_off_at = review.signed_off_by = None
            return review, replaced
        except IntegrityError:   # the same reviewer's first score twice at once: the second replaces
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# --- search -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    words: tuple[str, ...] = ()       # any of these words was said
    channel: str | None = None        # ... by the caller or the agent
    agent_id: str | None = None
    category: str | None = None
    since: datetime | None = None     # arrived at or after
    until: datetime | None = None     # arrived before
    min_score: float | None = None    # the mean of the call's review totals
    max_score: float | None = None
    failed_check: str | None = None   # an automatic check (qa/checks.py) that did not pass
    limit: int = 50
    offset: int = 0
    scope: Scope = field(default_factory=Scope)


def failed_checks(checks: list[dict] | None) -> list[str]:
    return [c.get("check", "") for c in checks or [] if isinstance(c, dict) and not c.get("passed", True)]


async def search(sessionmaker: async_sessionmaker[AsyncSession], q: Search) -> dict[str, Any]:
    """{"count": all matches, "results": this page}, newest call first. The JSON of the checks is
    filtered here, after the SQL has narrowed the calls to flagged ones (same on every database).
    A scope that may not read words gets calls only: searching by words said is refused (which
    calls contain a word is itself what was said), and no hits or evidence text come back."""
    if q.words and not q.scope.words:
        raise ReviewError("words: searching by words said needs the right to read transcripts")
    scores = (select(Review.call_id, func.avg(Review.total).label("score"), func.count().label("reviews"))
              .group_by(Review.call_id).subquery())
    stmt = (select(Call.id, Call.agent_id, Call.category, Call.queue, Call.arrived_at, scores.c.score,
                   scores.c.reviews, Transcript.checks)
            .outerjoin(scores, scores.c.call_id == Call.id).outerjoin(Transcript, Transcript.call_id == Call.id)
            .where(*in_scope(q.scope)))
    said = select(TranscriptWord.call_id, TranscriptWord.word, TranscriptWord.channel, TranscriptWord.start_s,
                  TranscriptWord.end_s).where(TranscriptWord.word.in_(q.words))
    if q.channel is not None:
        said = said.where(TranscriptWord.channel == q.channel)
    if q.words:
        stmt = stmt.where(Call.id.in_(said.with_only_columns(TranscriptWord.call_id)))
    for column, value in ((Call.agent_id, q.agent_id), (Call.category, q.category)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.since is not None:
        stmt = stmt.where(Call.arrived_at >= q.since)
    if q.until is not None:
        stmt = stmt.where(Call.arrived_at < q.until)
    if q.min_score is not None:
        stmt = stmt.where(scores.c.score >= q.min_score)
    if q.max_score is not None:
        stmt = stmt.where(scores.c.score <= q.max_score)
    if q.failed_check is not None:
        stmt = stmt.where(Transcript.flagged.is_(True))
    stmt = stmt.order_by(Call.arrived_at.desc(), Call.id)

    async with sessionmaker() as session:
        if q.failed_check is not None:
            rows = [r for r in (await session.execute(stmt)).all() if q.failed_check in failed_checks(r.checks)]
            count, rows = len(rows), rows[q.offset:q.offset + q.limit]
        else:
            count = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
            rows = list((await session.execute(stmt.limit(q.limit).offset(q.offset))).all())
        hits: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if q.words and rows:
            for w in (await session.execute(said.where(TranscriptWord.call_id.in_([r.id for r in rows]))
                                            .order_by(TranscriptWord.start_s, TranscriptWord.id))).all():
                if len(hits[w.call_id]) < MAX_HITS_PER_CALL:
                    hits[w.call_id].append({"word": w.word, "channel": w.channel, "start_s": w.start_s,
                                            "end_s": w.end_s})
    return {"count": count, "results": [
        {"call_id": r.id, "agent_id": r.agent_id, "category": r.category, "queue": r.queue,
         "arrived_at": r.arrived_at.isoformat(), "score": round(r.score, 2) if r.score is not None else None,
         "reviews": r.reviews or 0, "failed_checks": failed_checks(r.checks),
         "hits": hits.get(r.id, []) if q.scope.words else None}
        for r in rows]}


async def call_detail(sessionmaker: async_sessionmaker[AsyncSession], call_id: str,
                      scope: Scope) -> dict[str, Any] | None:
    """A call's checks, reviews and assignment (and its words when the scope may read them), or
    None when the call is not there or not in the scope."""
    async with sessionmaker() as session:
        call = (await session.scalars(select(Call).where(Call.id == call_id, *in_scope(scope)))).one_or_none()
        if call is None:
            return None
        transcript = await session.get(Transcript, call_id)
        assignment = (await session.scalars(select(Assignment).where(Assignment.call_id == call_id))).one_or_none()
        reviews = (await session.scalars(select(Review).where(Review.call_id == call_id).order_by(Review.id))).all()
        words = None
        if scope.words:
            words = [{"channel": w.channel, "word": w.word, "start_s": w.start_s, "end_s": w.end_s}
                     for w in (await session.scalars(select(TranscriptWord).where(TranscriptWord.call_id == call_id)
                                                     .order_by(TranscriptWord.start_s, TranscriptWord.id))).all()]
    return {
        "call_id": call.id, "agent_id": call.agent_id, "category": call.category, "queue": call.queue,
        "arrived_at": call.arrived_at.isoformat(), "transcribed": transcript is not None,
        "flagged": bool(transcript and transcript.flagged), "checks": checks_for(scope, transcript.checks if transcript else []),
        "words": words,
        "assignment": assignment_json(assignment) if assignment else None,
        "reviews": [review_json(r) for r in reviews],
    }


def assignment_json(a: Assignment) -> dict[str, Any]:
    return {"call_id": a.call_id, "reviewer": a.reviewer, "week": a.week, "reason": a.reason,
            "agent_id": a.agent_id, "assigned_at": a.assigned_at.isoformat()}


def review_json(r: Review) -> dict[str, Any]:
    return {"call_id": r.call_id, "reviewer": r.reviewer, "scorecard": r.scorecard, "items": r.items,
            "total": r.total, "comment": r.comment, "comment_at_s": r.comment_at_s, "created_at": r.created_at.isoformat(),
            "signed_off_at": r.signed_off_at.isoformat() if r.signed_off_at else None}
