"""Text messages (短信): every message out with its state, every reply in, and opt-outs."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class SmsMessage(Base):
    __tablename__ = "sms_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One message per key (e.g. "outage:7:published:13800000000"): enqueuing again adds nothing.
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), index=True)      # follow_up outage reminder warning dispatch
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    ref: Mapped[str | None] = mapped_column(String(64), index=True)   # what it is about: "order:12", "followup:<id>"
    coding: Mapped[str] = mapped_column(String(8))                  # gsm7 | ucs2
    parts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)      # queued sent delivered failed replied
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claim: Mapped[str | None] = mapped_column(String(36), index=True)   # the sender batch holding it
    # The secret on this message's delivery-report URL (a forged report without it is refused).
    dlr_token: Mapped[str] = mapped_column(String(64))
    # A reply is expected (follow-up digits, a unit's 签收): its short code and until when.
    reply_code: Mapped[str | None] = mapped_column(String(8))
    reply_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    reply_text: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reports: Mapped[int] = mapped_column(Integer, default=0)        # delivery reports received


class SmsReply(Base):
    """A message in (MO), as Kannel passed it on, and what it was taken for."""

    __tablename__ = "sms_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    to: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)   # the message it answers
    taken_as: Mapped[str] = mapped_column(String(16))   # answer opt_out unmatched


class SmsOptOut(Base):
    __tablename__ = "sms_opt_outs"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)
