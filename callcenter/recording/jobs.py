"""Transcription jobs on a Redis Stream with a consumer group.

Any number of workers on any number of machines read the same group; a job is acknowledged
only after its transcript is stored; a job a dead worker held longer than `reclaim_after_s`
is claimed by another (XAUTOCLAIM). Storing is idempotent on the call id, so a job done twice
(a worker that died after storing but before acknowledging) still leaves one transcript.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    message_id: str
    call_id: str
    wav_path: str


class TranscriptionQueue:
    def __init__(self, redis: aioredis.Redis, prefix: str, stream: str = "transcription", group: str = "workers") -> None:
        self.redis = redis
        self.stream = f"{prefix}{stream}"
        self.group = group

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, call_id: str, wav_path: str) -> str:
        message_id = await self.redis.xadd(self.stream, {"call_id": call_id, "wav": wav_path})
        return message_id.decode() if isinstance(message_id, bytes) else str(message_id)

    @staticmethod
    def _job(message_id: object, fields: dict) -> Job:
        def text(value: object) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        decoded = {text(k): text(v) for k, v in fields.items()}
        return Job(text(message_id), decoded.get("call_id", ""), decoded.get("wav", ""))

    async def next_jobs(self, consumer: str, block_ms: int = 2000, count: int = 1,
                        reclaim_after_s: float = 60.0) -> list[Job]:
        """Jobs abandoned by dead workers first, then new ones."""
        claimed = await self.redis.xautoclaim(self.stream, self.group, consumer,
                                              min_idle_time=int(reclaim_after_s * 1000), start_id="0-0", count=count)
        messages = claimed[1] if claimed else []
        jobs = [self._job(mid, fields) for mid, fields in messages if fields]
        if jobs:
            log.info("worker %s reclaimed %d job(s) from a dead worker", consumer, len(jobs))
            return jobs
        answer = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        return [self._job(mid, fields) for _, entries in (answer or []) for mid, fields in entries]

    async def still_working(self, job: Job, consumer: str) -> None:
        """Tell the group this live worker still holds `job` (resets its idle time), so a
        long decode is not taken for a dead worker's and done twice."""
        await self.redis.xclaim(self.stream, self.group, consumer, min_idle_time=0,
                                message_ids=[job.message_id], justid=True)

    async def done(self, job: Job) -> None:
        await self.redis.xack(self.stream, self.group, job.message_id)

    async def pending(self) -> int:
        info = await self.redis.xpending(self.stream, self.group)
        return int(info["pending"]) if info else 0

    async def backlog(self) -> int:
        """Recordings still waiting for their transcript: not yet taken by a worker (the group's
        lag) plus taken and not yet acknowledged (pending). 0 before the first job."""
        try:
            groups = await self.redis.xinfo_groups(self.stream)
        except ResponseError:
            return 0   # no stream yet
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != self.group:
                continue
            lag = group.get("lag")
            if lag is None:   # Redis cannot tell (entries were deleted): count what follows the last delivered
                last = group.get("last-delivered-id")
                last = last.decode() if isinstance(last, bytes) else str(last)
                lag = len(await self.redis.xrange(self.stream, f"({last}", "+") or [])
            return int(lag) + int(group.get("pending") or 0)
        return await self.redis.xlen(self.stream)   # no worker has made the group yet: every job waits
