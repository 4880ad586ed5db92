"""The agent's side of QA: signing a scored call off (确认), disputing an item (申诉), and the
answer to a dispute.

Decisions:
- An agent signs off or disputes only reviews of their own calls. Signing off is once per
  scoring (scoring again clears it); a review with an open dispute cannot be signed off.
- A dispute never goes back to the reviewer who scored the call: it goes to another active QA
  user who covers the call's queue, the one with the fewest open disputes (then by name); when
  there is none, to the supervisors (any supervisor answers it).
- The answer upholds the score or amends the item (a new score on the card's scale), and the
  review's total is computed again. One open dispute per review and item.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import Call
from callcenter.qa.models import AMENDED, OPEN, UPHELD, Dispute, Review
from callcenter.qa.review import ReviewError, Scorecards, reviewers, weighted_total
from callcenter.web import access

DECISIONS = (UPHELD, AMENDED)


def choose_handler(team: Sequence[tuple[str, frozenset[str] | None]], open_disputes: Mapping[str, int],
                   scored_by: str, queue: str | None) -> str | None:
    """Pure: the QA user who answers a dispute (not the one who scored; covering the queue; the
    fewest open disputes first), or None for the supervisors."""
    fit = [name for name, queues in team if name != scored_by and (queues is None or queue in queues)]
    return min(fit, key=lambda name: (open_disputes.get(name, 0), name), default=None)


async def _own_review(session: AsyncSession, review_id: int, agent: access.User) -> tuple[Review, Call]:
    review = await session.get(Review, review_id)
    call = await session.get(Call, review.call_id) if review else None
    if review is None or call is None or agent.agent_id is None or call.agent_id != agent.agent_id:
        raise LookupError("no such review of your calls")
    return review, call


async def sign_off(sessionmaker: async_sessionmaker[AsyncSession], review_id: int, agent: access.User, *,
                   now: datetime) -> Review:
    async with sessionmaker() as session, session.begin():
        review, _ = await _own_review(session, review_id, agent)
        if await session.scalar(select(func.count()).where(Dispute.review_id == review_id, Dispute.state == OPEN)):
            raise ReviewError("review: it has an open dispute; it is signed off once that is answered")
        if review.signed_off_at is None:
            review.signed_off_at, review.signed_off_by = now, agent.username
        return review


async def raise_dispute(sessionmaker: async_sessionmaker[AsyncSession], cards: Scorecards, review_id: int,
                        item: str, reason: str, agent: access.User, *, now: datetime) -> Dispute:
    reason = reason.strip()
    if not reason:
        raise ReviewError("reason: say why the item's score is wrong")
    async with sessionmaker() as session, session.begin():
        review, call = await _own_review(session, review_id, agent)
        card = cards.scorecards.get(review.scorecard, cards.card)
        if item not in card.items or item not in review.items:
            raise ReviewError(f"item: one of the scorecard's items ({', '.join(card.items)})")
        if review.signed_off_at is not None:
            raise ReviewError("review: already signed off")
        if await session.scalar(select(func.count()).where(Dispute.review_id == review_id, Dispute.item == item,
                                                           Dispute.state == OPEN)):
            raise ReviewError(f"item: {item} is already disputed")
        open_counts = {name: count for name, count in (await session.execute(
            select(Dispute.handler, func.count()).where(Dispute.state == OPEN, Dispute.handler.is_not(None))
            .group_by(Dispute.handler))).all() if name is not None}
        handler = choose_handler(await reviewers(session), open_counts, review.reviewer, call.queue)
        dispute = Dispute(review_id=review.id, call_id=review.call_id, item=item, reason=reason,
                          raised_by=agent.username, raised_at=now, handler=handler,
                          handler_role=access.QA if handler else access.SUPERVISOR, state=OPEN, answer="")
        session.add(dispute)
    return dispute


def may_answer(dispute: Dispute, user: access.User) -> bool:
    if dispute.state != OPEN:
        return False
    if dispute.handler is not None:
        return user.role == access.QA and user.username == dispute.handler
    return user.role in (access.SUPERVISOR, access.ADMIN)


async def answer(sessionmaker: async_sessionmaker[AsyncSession], cards: Scorecards, dispute_id: int,
                 user: access.User, decision: str, new_score: float | None, text: str, *,
                 now: datetime) -> Dispute:
    """Uphold the score, or amend the item: the review's total is computed again."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision: {' or '.join(DECISIONS)}")
    async with sessionmaker() as session, session.begin():
        dispute = await session.get(Dispute, dispute_id)
        if dispute is None or not may_answer(dispute, user):
            raise LookupError("no such open dispute for you")
        review = await session.get(Review, dispute.review_id)
        if review is None:
            raise LookupError("no such review")
        if decision == AMENDED:
            if new_score is None:
                raise ReviewError("new_score: the item's new score")
            card = cards.scorecards.get(review.scorecard, cards.card)
            items, total = weighted_total(card, {**review.items, dispute.item: new_score})
            review.items, review.total = items, total
            dispute.new_score = items[dispute.item]
        dispute.state, dispute.answer, dispute.resolved_by, dispute.resolved_at = decision, text.strip(), user.username, now
        return dispute


async def disputes_of_call(sessionmaker: async_sessionmaker[AsyncSession], call_id: str) -> list[Dispute]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Dispute).where(Dispute.call_id == call_id)
                                           .order_by(Dispute.id))).all())


async def open_disputes_for(sessionmaker: async_sessionmaker[AsyncSession], user: access.User) -> list[Dispute]:
    """The open disputes this user answers: a QA user's own, the supervisors' shared ones."""
    stmt = select(Dispute).where(Dispute.state == OPEN).order_by(Dispute.raised_at, Dispute.id)
    if user.role == access.QA:
        stmt = stmt.where(Dispute.handler == user.username)
    elif user.role in (access.SUPERVISOR, access.ADMIN):
        stmt = stmt.where(Dispute.handler.is_(None))
    else:
        return []
    async with sessionmaker() as session:
        return list((await session.scalars(stmt)).all())


async def reviews_of_agent(sessionmaker: async_sessionmaker[AsyncSession],
                           agent_id: str) -> list[tuple[Review, Call]]:
    """The scored calls of an agent, newest scoring first."""
    async with sessionmaker() as session:
        rows = await session.execute(select(Review, Call).join(Call, Call.id == Review.call_id)
                                     .where(Call.agent_id == agent_id).order_by(Review.created_at.desc()).limit(200))
        return [(r, c) for r, c in rows.all()]


def dispute_json(d: Dispute) -> dict[str, object]:
    return {"id": d.id, "review_id": d.review_id, "call_id": d.call_id, "item": d.item, "reason": d.reason,
            "raised_by": d.raised_by, "raised_at": d.raised_at.isoformat(), "handler": d.handler,
            "handler_role": d.handler_role, "state": d.state, "new_score": d.new_score, "answer": d.answer,
            "resolved_by": d.resolved_by, "resolved_at": d.resolved_at.isoformat() if d.resolved_at else None}
