"""Transcripts: every word said on a call, per channel (caller / agent), with its times;
and the audit trail of recordings removed (retention purge, a caller's erasure request)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class Transcript(Base):
    __tablename__ = "transcripts"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    worker: Mapped[str] = mapped_column(String(128))
    audio_s: Mapped[float] = mapped_column(Float)
    took_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The automatic checks (qa/checks.py), each with its evidence as time offsets.
    checks: Mapped[list[dict]] = mapped_column(JSON, default=list)
    flagged: Mapped[bool] = mapped_column(default=False, index=True)


class TranscriptWord(Base):
    __tablename__ = "transcript_words"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("transcripts.call_id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))        # caller | agent
    word: Mapped[str] = mapped_column(String(64), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)


PURGE = "purge"   # the retention period ran out
ERASE = "erase"   # the caller asked for their recordings to be erased


class RecordingAudit(Base):
    """One removal of a call's recording, playback copy, transcript and words: who, when, why.

    No foreign key: the audit row outlives whatever it is about."""

    __tablename__ = "recording_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))                  # a user name, or "retention"
    action: Mapped[str] = mapped_column(String(8), index=True)      # purge | erase
    call_id: Mapped[str | None] = mapped_column(String(36), index=True)
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
