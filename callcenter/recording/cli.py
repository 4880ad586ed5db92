"""`callcenter worker` (a transcription worker) and `callcenter transcribe` (backfill)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import redis.asyncio as aioredis
from sqlalchemy import select
from tqdm import tqdm

from callcenter.calls.models import Call
from callcenter.config import Settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.models import Transcript
from callcenter.recording.worker import run_worker

log = logging.getLogger(__name__)


async def backfill(settings: Settings, limit: int | None = None) -> int:
    """Queue a job for every recorded call that has no transcript yet (with a progress bar)."""
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    redis = aioredis.Redis.from_url(settings.redis.url)
    queue = TranscriptionQueue(redis, settings.redis.prefix, settings.transcription.stream, settings.transcription.group)
    await queue.ensure_group()
    try:
        async with make_sessionmaker(db)() as session:
            query = (select(Call.id, Call.recording_path)
                     .outerjoin(Transcript, Transcript.call_id == Call.id)
                     .where(Call.recording_path.is_not(None), Transcript.call_id.is_(None))
                     .order_by(Call.arrived_at))
            rows = list((await session.execute(query.limit(limit) if limit else query)).all())
        for call_id, path in tqdm(rows, desc="queueing recordings", unit="call"):
            await queue.enqueue(call_id, path)
        return len(rows)
    finally:
        await redis.aclose()
        await db.dispose()


def main(name: str, argv: list[str], settings: Settings) -> int:
    if name == "worker":
        parser = argparse.ArgumentParser(prog="callcenter worker", description="a transcription worker")
        parser.add_argument("--consumer", default=None)
        args = parser.parse_args(argv)

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await migrate(settings.database.url)
            await run_worker(settings, stop, consumer=args.consumer)

        asyncio.run(run())
        return 0
    parser = argparse.ArgumentParser(prog="callcenter transcribe", description="transcribe old recordings")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    queued = asyncio.run(backfill(settings, args.limit))
    print(f"{queued} recordings queued; `callcenter worker` processes transcribe them")
    return 0
