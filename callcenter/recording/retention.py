"""Retention and erasure: when a call's recording goes, every copy of it goes.

A call's recording lives on as the stereo WAV, its playback copy (OGG), leftovers of writing
them (MixMonitor's raw file, temporary files), the transcript with its checks, and the
transcript's words. Removing a call's recording removes all of those, clears the WAV's path
and SHA-256 on the call (the call row stays: it is the hotline's record of the call), and
writes an audit row saying who removed it, when and why.

- `purge`: the retention job; a call's recording is kept `retention_days` after the call
  ended (per call category where `retention_days_by_category` says so; one year by default).
- `erase_caller`: a caller's request; every call from that number, whatever its age.

Files go first, then the rows, in one transaction per call: a crash in between leaves the
call looking recorded, so the next run finds it and finishes the job.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import Call
from callcenter.config import RecordingSettings
from callcenter.recording.finalize import recording_path as wav_location
from callcenter.recording.models import ERASE, PURGE, RecordingAudit, Transcript, TranscriptWord
from callcenter.recording.peaks import peaks_path
from callcenter.recording.playback import playback_path, temp_name

log = logging.getLogger(__name__)

RETENTION_ACTOR = "retention"


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int = 365
    days_by_category: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, recording: RecordingSettings) -> RetentionPolicy:
        return cls(recording.retention_days, dict(recording.retention_days_by_category))

    def days(self, category: str | None) -> int:
        return self.days_by_category.get(category or "", self.default_days)

    @property
    def shortest_days(self) -> int:
        return min([self.default_days, *self.days_by_category.values()])


def expired(call_ended_at: datetime, category: str | None, now: datetime, policy: RetentionPolicy) -> bool:
    """Whether a call's recording has been kept as long as its category's retention says."""
    return now - call_ended_at >= timedelta(days=policy.days(category))


@dataclass(frozen=True)
class _Recorded:
    """What a removal needs to know of a call."""

    call_id: str
    caller_number: str
    category: str | None
    recording_path: str | None
    arrived_at: datetime
    ended_at: datetime | None


_COLUMNS = (Call.id, Call.caller_number, Call.category, Call.recording_path, Call.arrived_at, Call.ended_at)


def recording_files(recordings_dir: Path, call: _Recorded) -> set[Path]:
    """Every place a copy of the call's audio may be: the stored WAV, the WAV where finalising
    puts it (the arrival day in any time zone), their playback copies and waveform peaks, temporary
    files and the raw file."""
    wavs = {wav_location(recordings_dir, call.call_id, (call.arrived_at + timedelta(days=d)).strftime("%Y-%m-%d"))
            for d in (-1, 0, 1)}
    if call.recording_path:
        wavs.add(Path(call.recording_path))
    files = {recordings_dir / "incoming" / f"{call.call_id}.raw"}
    for wav in wavs:
        for path in (wav, playback_path(wav), peaks_path(wav)):
            files |= {path, temp_name(path)}
    return files


def _remove_files(paths: set[Path]) -> list[Path]:
    removed = []
    for path in sorted(paths):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


async def _remove(sessionmaker: async_sessionmaker[AsyncSession], recordings_dir: Path, call: _Recorded, *,
                  action: str, actor: str, detail: str, now: datetime) -> bool:
    """Remove every copy of one call's recording; False when there was nothing to remove."""
    removed = await asyncio.to_thread(_remove_files, recording_files(recordings_dir, call))
    async with sessionmaker() as session, session.begin():
        words = cast(CursorResult[Any], await session.execute(
            delete(TranscriptWord).where(TranscriptWord.call_id == call.call_id)))
        transcripts = cast(CursorResult[Any], await session.execute(
            delete(Transcript).where(Transcript.call_id == call.call_id)))
        row = await session.get(Call, call.call_id)
        held = bool(removed or transcripts.rowcount or (row is not None and row.recording_path))
        if not held:
            return False
        if row is not None:
            row.recording_path = None
            row.recording_sha256 = None
        session.add(RecordingAudit(at=now, actor=actor, action=action, call_id=call.call_id,
                                   caller_number=call.caller_number,
                                   detail=f"{detail}; {len(removed)} file(s), {words.rowcount} word(s) removed"))
    log.info("call %s: recording %s by %s (%d files, %d words)", call.call_id,
             "purged" if action == PURGE else "erased", actor, len(removed), words.rowcount)
    return True


async def purge(sessionmaker: async_sessionmaker[AsyncSession], recordings_dir: Path, now: datetime,
                policy: RetentionPolicy) -> int:
    """Remove the recordings whose retention ran out; returns the number of calls purged."""
    ended = func.coalesce(Call.ended_at, Call.arrived_at)
    has_transcript = exists().where(Transcript.call_id == Call.id)
    query = (select(*_COLUMNS)
             .where(ended <= now - timedelta(days=policy.shortest_days),
                    or_(Call.recording_path.is_not(None), has_transcript))
             .order_by(Call.arrived_at))
    async with sessionmaker() as session:
        calls = [_Recorded(*row) for row in (await session.execute(query)).all()]
    purged = 0
    for call in calls:
        if not expired(call.ended_at or call.arrived_at, call.category, now, policy):
            continue
        days = policy.days(call.category)
        purged += await _remove(sessionmaker, recordings_dir, call, action=PURGE, actor=RETENTION_ACTOR,
                                detail=f"retention of {days} days ({call.category or 'no category'}) ran out",
                                now=now)
    return purged


async def erase_caller(sessionmaker: async_sessionmaker[AsyncSession], recordings_dir: Path, caller_number: str,
                       actor: str, reason: str, now: datetime) -> int:
    """Erase every recording, transcript and word of one caller's calls; returns how many calls had any.

    The request itself is always audited, also when nothing was held."""
    async with sessionmaker() as session:
        rows = await session.execute(select(*_COLUMNS).where(Call.caller_number == caller_number)
                                     .order_by(Call.arrived_at))
        calls = [_Recorded(*row) for row in rows.all()]
    erased = 0
    for call in calls:
        erased += await _remove(sessionmaker, recordings_dir, call, action=ERASE, actor=actor,
                                detail=f"erasure requested: {reason}", now=now)
    if not erased:
        async with sessionmaker() as session, session.begin():
            session.add(RecordingAudit(at=now, actor=actor, action=ERASE, call_id=None, caller_number=caller_number,
                                       detail=f"erasure requested: {reason}; nothing held"))
    log.info("erasure requested by %s: recordings of %d call(s) erased", actor, erased)
    return erased
