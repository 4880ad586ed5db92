"""The call record (one row per call) and every attempt to reach an agent."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

# Dispositions: how a call ended.
ANSWERED = "answered"                     # a human agent answered
ABANDONED_IN_IVR = "abandoned_in_ivr"     # the caller hung up in the menu
ABANDONED_IN_QUEUE = "abandoned_in_queue" # the caller hung up while waiting
MESSAGE_ONLY = "message_only"             # the menu ended in a message (notice, closed)
CALLBACK = "callback"                     # the caller left a number to be called back (keeps the place)
FAILED = "failed"                         # the engine lost the call (system error)
CUT_BY_PBX = "cut_by_pbx"                 # Asterisk shut down or restarted under the call
DISPOSITIONS = (ANSWERED, ABANDONED_IN_IVR, ABANDONED_IN_QUEUE, MESSAGE_ONLY, CALLBACK, FAILED, CUT_BY_PBX)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)           # our id (uuid4)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # Asterisk Uniqueid
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    engine_id: Mapped[str] = mapped_column(String(64), default="")
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    caller_name: Mapped[str] = mapped_column(String(64), default="")
    dialled_number: Mapped[str] = mapped_column(String(32), default="")
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    engine_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer_latency_ms: Mapped[float | None] = mapped_column()
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    ivr_choice: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hangup_first: Mapped[str | None] = mapped_column(String(16))   # caller | agent | system
    disposition: Mapped[str | None] = mapped_column(String(32), index=True)
    recording_path: Mapped[str | None] = mapped_column(Text)
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_duration_s: Mapped[float | None] = mapped_column()
    survey_score: Mapped[int | None] = mapped_column(Integer)
    # Stretches where recording was paused for sensitive data: [start_s, end_s] from the
    # recording's start. The audio there is silence and is never transcribed.
    muted_spans: Mapped[list[list[float]] | None] = mapped_column(JSON, default=list)
    closed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    attempts: Mapped[list[AgentAttempt]] = relationship(
        back_populates="call", order_by="AgentAttempt.id", cascade="all, delete-orphan"
    )

    @property
    def wait_s(self) -> float | None:
        """Arrival to a human agent's answer (the service-level measure)."""
        if self.agent_answered_at is None:
            return None
        return (self.agent_answered_at - self.arrived_at).total_seconds()


class AgentAttempt(Base):
    """One try to reach an agent for a call: ringing, then answered or not."""

    __tablename__ = "call_agent_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # answered | no_answer | busy | unavailable | unreachable (the phone was not there, or vanished
    # while it rang) | cancelled; a callback's: callback_answered |
    # callback_not_reached | callback_refused (the dial policy refused the number)
    result: Mapped[str | None] = mapped_column(String(32))

    call: Mapped[Call] = relationship(back_populates="attempts")


class Supervision(Base):
    """A supervisor listening, whispering or barging on an agent's call: every use is kept."""

    __tablename__ = "supervisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    supervisor: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str | None] = mapped_column(String(36))
    mode: Mapped[str] = mapped_column(String(8))           # listen | whisper | barge
    endpoint: Mapped[str] = mapped_column(String(128))     # the supervisor's phone
