"""Transcripts: every word said on a call, per channel (caller / agent), with its times."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
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
