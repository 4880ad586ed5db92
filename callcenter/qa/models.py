"""QA review (质检): calls assigned to reviewers, the reviewers' scores, and which queues a
reviewer covers. Reviewers are web users with the role qa, named by user name."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime

SAMPLE = "sample"     # drawn in the weekly random sample of the agent's calls
FLAGGED = "flagged"   # an automatic check failed (Transcript.flagged)


class Assignment(Base):
    """One call to be reviewed by one reviewer. A call is assigned once, ever."""

    __tablename__ = "qa_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    week: Mapped[str] = mapped_column(String(8), index=True)        # the ISO week of the run, 2026-W47
    reason: Mapped[str] = mapped_column(String(8))                  # sample | flagged
    agent_id: Mapped[str | None] = mapped_column(String(64))        # the call's agent (the sample's quota)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Review(Base):
    """A reviewer's scores of a call. One per call and reviewer: scoring again replaces it."""

    __tablename__ = "qa_reviews"
    __table_args__ = (UniqueConstraint("call_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    scorecard: Mapped[str] = mapped_column(String(64))
    items: Mapped[dict[str, float]] = mapped_column(JSON)         # item -> score on the card's scale
    total: Mapped[float] = mapped_column(Float, index=True)       # weighted, 0-100
    comment: Mapped[str] = mapped_column(Text, default="")
    comment_at_s: Mapped[float | None] = mapped_column(Float, nullable=True)   # the moment the comment is about
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())   # of the latest scoring
    # The agent's sign-off (确认) of this scoring; scoring again clears it.
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    signed_off_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ReviewerQueue(Base):
    """A queue a reviewer covers. A reviewer with no rows covers every queue."""

    __tablename__ = "qa_reviewer_queues"

    reviewer: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)


OPEN, UPHELD, AMENDED = "open", "upheld", "amended"


class Dispute(Base):
    """An agent's objection (申诉) to one item of a review, handled by someone other than the
    reviewer: another QA reviewer, or a supervisor when there is none."""

    __tablename__ = "qa_disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("qa_reviews.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    item: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[str] = mapped_column(String(64))             # the agent's user name
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handler: Mapped[str | None] = mapped_column(String(64), index=True)   # a QA user; None: any supervisor
    handler_role: Mapped[str] = mapped_column(String(16))           # qa | supervisor
    state: Mapped[str] = mapped_column(String(8), default=OPEN, index=True)   # open | upheld | amended
    new_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
