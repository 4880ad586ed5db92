"""What happens to a recording once its call ends: a transcription job (the engine never waits)."""
from __future__ import annotations

import logging
from pathlib import Path

import redis.asyncio as aioredis

from callcenter.recording.jobs import TranscriptionQueue

log = logging.getLogger(__name__)


class RecordingService:
    """An engine hook: `recording_finalised` queues the transcription job."""

    def __init__(self, redis: aioredis.Redis, prefix: str, stream: str, group: str) -> None:
        self.queue = TranscriptionQueue(redis, prefix, stream, group)
        self._ready = False

    async def recording_finalised(self, call_id: str, wav_path: Path) -> None:
        try:
            if not self._ready:
                await self.queue.ensure_group()
                self._ready = True
            await self.queue.enqueue(call_id, str(wav_path))
        except Exception as exc:  # Redis down: the backfill picks it up later
            log.error("call %s: transcription job not queued (%s); `callcenter transcribe` will find it", call_id, exc)

    async def call_closed(self, call_id: str) -> None:
        return None
