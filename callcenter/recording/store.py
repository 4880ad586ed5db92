"""Transcripts in the database: stored once per call (a second store of the same call is a no-op)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.recording.models import Transcript, TranscriptWord
from callcenter.recording.transcribe import Word


@dataclass(frozen=True)
class CallFacts:
    muted_spans: list[tuple[float, float]] = field(default_factory=list)
    hangup_first: str | None = None
    survey_score: int | None = None


class TranscriptStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def save(self, call_id: str, words: list[Word], *, model: str, worker: str, audio_s: float,
                   took_s: float, now: datetime, checks: list[dict] | None = None) -> bool:
        """True when stored now; False when the call already had its transcript."""
        try:
            async with self.sessionmaker() as session, session.begin():
                if await session.get(Transcript, call_id) is not None:
                    return False
                checks = checks or []
                session.add(Transcript(call_id=call_id, model=model, worker=worker, audio_s=audio_s, took_s=took_s,
                                       created_at=now, checks=checks, flagged=any(not c["passed"] for c in checks)))
                await session.flush()
                session.add_all(TranscriptWord(call_id=call_id, channel=w.channel, word=w.word, start_s=w.start_s,
                                               end_s=w.end_s, confidence=w.confidence) for w in words)
        except IntegrityError:
            return False   # another worker stored it at the same moment
        return True

    async def words(self, call_id: str) -> list[TranscriptWord]:
        async with self.sessionmaker() as session:
            rows = await session.execute(select(TranscriptWord).where(TranscriptWord.call_id == call_id)
                                         .order_by(TranscriptWord.start_s, TranscriptWord.id))
            return list(rows.scalars())

    async def call_facts(self, call_id: str) -> CallFacts:
        """What the worker needs of the call: where recording was paused (never transcribed),
        and for the checks who hung up first and the survey score."""
        from callcenter.calls.models import Call

        async with self.sessionmaker() as session:
            call = await session.get(Call, call_id)
        if call is None:
            return CallFacts()
        return CallFacts([(float(a), float(b)) for a, b in (call.muted_spans or [])], call.hangup_first,
                         call.survey_score)

    async def transcript(self, call_id: str) -> Transcript | None:
        async with self.sessionmaker() as session:
            return await session.get(Transcript, call_id)

    async def has(self, call_id: str) -> bool:
        async with self.sessionmaker() as session:
            return await session.get(Transcript, call_id) is not None

    async def erase(self, call_id: str) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(TranscriptWord).where(TranscriptWord.call_id == call_id))
            await session.execute(delete(Transcript).where(Transcript.call_id == call_id))
