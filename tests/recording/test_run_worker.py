"""`callcenter run` transcribes by itself: the hotline it serves runs a transcription worker in
its own process (`[transcription] workers_in_run`, 1 on the embedded defaults), so a first
call gets its transcript, its checks and its playback copy without a second command.
`callcenter serve` (a deployment's engine) leaves transcripts to `callcenter worker` processes."""
from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenter import app as hotline_app
from callcenter import cli
from callcenter.calls.models import Call
from callcenter.config import load_settings
from callcenter.db import create_engine, make_sessionmaker
from callcenter.recording.jobs import TranscriptionQueue
from callcenter.recording.playback import playback_path
from callcenter.recording.store import TranscriptStore
from tests.ami.conftest import fast_settings
from tests.ami.fake_ami import FakeAmi


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """What `serve` was asked to run, instead of running it."""
    calls: list[dict[str, Any]] = []

    async def serve(settings, stop=None, **options: Any) -> None:
        calls.append(options)

    monkeypatch.setattr(hotline_app, "serve", serve)
    monkeypatch.setattr(cli, "build_prompts", lambda settings: pytest.fail("no Asterisk, no prompts"))
    monkeypatch.setattr(cli, "cmd_asterisk", lambda args: pytest.fail("no Asterisk started"))
    monkeypatch.setattr(cli, "_settings", lambda args: load_settings())
    return calls


def test_run_starts_one_transcription_worker_on_the_embedded_defaults(served) -> None:
    assert load_settings().transcription.workers_in_run == 1
    assert cli.main(["run", "--no-asterisk"]) == 0
    assert served == [{"transcription_workers": 1}]


def test_the_worker_in_run_can_be_turned_off_and_serve_runs_none(served, monkeypatch) -> None:
    monkeypatch.setenv("CALLCENTER_TRANSCRIPTION__WORKERS_IN_RUN", "0")
    assert cli.main(["run", "--no-asterisk"]) == 0
    monkeypatch.delenv("CALLCENTER_TRANSCRIPTION__WORKERS_IN_RUN")
    assert cli.main(["serve"]) == 0
    assert served == [{"transcription_workers": 0}, {}]


async def test_the_hotline_of_run_transcribes_a_finished_recording(settings, tmp_path: Path, redis_client,
                                                                  call_wav: Path) -> None:
    client, prefix = redis_client
    fake = FakeAmi()
    await fake.start()
    port = free_port()
    settings = settings.model_copy(update={
        "ami": fast_settings(fake.port),
        "redis": settings.redis.model_copy(update={"prefix": prefix}),
        "web": settings.web.model_copy(update={"port": port, "host": "127.0.0.1"}),
        "sms": settings.sms.model_copy(update={"enabled": False}),
    })
    stop = asyncio.Event()
    hotline = asyncio.create_task(hotline_app.serve(settings, stop,
                                                    transcription_workers=settings.transcription.workers_in_run))
    db = None
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:   # bounded by the timeout
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200 and (await response.json())["ami"]["ok"]:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        db = create_engine(settings.database.url)
        sessionmaker = make_sessionmaker(db)
        call_id = str(uuid.uuid4())
        async with sessionmaker() as session, session.begin():
            session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                             caller_number="13800000000", arrived_at=datetime.now(UTC), hangup_first="caller",
                             survey_score=5, closed=True))
        wav = tmp_path / f"{call_id}.wav"
        shutil.copy(call_wav, wav)
        queue = TranscriptionQueue(client, prefix, settings.transcription.stream, settings.transcription.group)
        await queue.enqueue(call_id, str(wav))   # as the engine's recording hook does when a call ends
        store = TranscriptStore(sessionmaker)
        async with asyncio.timeout(120):   # the worker loads the Vosk model first
            while await store.transcript(call_id) is None:  # noqa: ASYNC110 (bounded by the timeout)
                await asyncio.sleep(0.1)
            while await queue.backlog():  # noqa: ASYNC110 (acknowledged after the playback copy)
                await asyncio.sleep(0.05)
        transcript = await store.transcript(call_id)
        assert transcript is not None and transcript.checks
        assert {w.channel for w in await store.words(call_id)} == {"caller", "agent"}
        assert playback_path(wav).stat().st_size > 0
        assert not hotline.done()
    finally:
        stop.set()
        await asyncio.wait_for(hotline, 60)
        if db is not None:
            await db.dispose()
        await fake.close()
