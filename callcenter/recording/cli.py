"""`callcenter worker` (a transcription worker), `callcenter transcribe` (backfill),
`callcenter purge` (the retention job: run it daily) and `callcenter erase --number N --reason R`
(a caller's erasure request). Also: python -m callcenter.recording.cli purge|erase ..."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import select
from tqdm import tqdm

from callcenter.calls.models import Call
from callcenter.config import Settings, load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.models import Transcript
from callcenter.recording.retention import RetentionPolicy, erase_caller, purge
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


async def run_purge(settings: Settings, now: datetime | None = None) -> int:
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    try:
        return await purge(make_sessionmaker(db), settings.paths.recordings_dir, now or datetime.now(UTC),
                           RetentionPolicy.from_settings(settings.recording))
    finally:
        await db.dispose()


async def run_erase(settings: Settings, number: str, reason: str, actor: str) -> int:
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    try:
        return await erase_caller(make_sessionmaker(db), settings.paths.recordings_dir, number, actor, reason,
                                  datetime.now(UTC))
    finally:
        await db.dispose()


def main(name: str, argv: list[str], settings: Settings) -> int:
    if name == "purge":
        parser = argparse.ArgumentParser(prog="callcenter purge",
                                         description="remove recordings and transcripts past their retention")
        parser.parse_args(argv)
        purged = asyncio.run(run_purge(settings))
        print(f"recordings of {purged} calls purged")
        return 0
    if name == "erase":
        parser = argparse.ArgumentParser(prog="callcenter erase",
                                         description="erase one caller's recordings, transcripts and words")
        parser.add_argument("--number", required=True, help="the caller's number, as the call records have it")
        parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        parser.add_argument("--actor", default="cli", help="who asked (kept in the audit trail)")
        args = parser.parse_args(argv)
        if not args.number.strip() or not args.reason.strip():
            parser.error("--number and --reason must not be empty")
        erased = asyncio.run(run_erase(settings, args.number.strip(), args.reason.strip(), args.actor))
        print(f"recordings of {erased} calls erased")
        return 0
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


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if len(sys.argv) < 2 or sys.argv[1] not in ("purge", "erase", "transcribe", "worker"):
        sys.exit("usage: python -m callcenter.recording.cli purge|erase|transcribe|worker [options]")
    sys.exit(main(sys.argv[1], sys.argv[2:], load_settings()))
