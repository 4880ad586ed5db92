"""Hearing recordings over HTTP: signed links, range requests, who may hear what, erasure."""
from __future__ import annotations

import asyncio
import time
import uuid
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from callcenter.calls.models import Call
from callcenter.qa import review
from callcenter.qa.models import Assignment
from callcenter.recording import http as recording_http
from callcenter.recording.finalize import recording_path
from callcenter.recording.signing import audio_url, link_key, sign
from callcenter.recording.store import TranscriptStore
from callcenter.recording.transcribe import Word
from callcenter.web import access, users
from callcenter.web.app import init_app

PASSWORD = "a-password-123"


class NoLive:
    async def snapshot(self) -> dict[str, Any]:
        return {}

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        if False:
            yield {}


def write_wav(path: Path, seconds: float = 1.0) -> bytes:
    """A stereo 8 kHz WAV with bytes that differ everywhere (so a wrong slice shows)."""
    frames = bytes((i * 7 + i // 256) % 256 for i in range(int(seconds * 8000) * 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)
    return path.read_bytes()


async def add_call(sessionmaker, recordings_dir: Path, agent_id: str, number: str = "13800000000",
                   path: str | None = None, queue: str = "general") -> tuple[str, bytes]:
    call_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    wav = recording_path(recordings_dir, call_id, now.strftime("%Y-%m-%d"))
    data = write_wav(wav)
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-1",
                         caller_number=number, arrived_at=now, ended_at=now, agent_id=agent_id, queue=queue,
                         recording_path=path or str(wav), closed=True))
    return call_id, data


@pytest.fixture
async def app(settings, sessionmaker, redis_client) -> web.Application:
    client, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "a1001", PASSWORD, access.AGENT, agent_id="1001")
        await users.create_user(session, "a1002", PASSWORD, access.AGENT, agent_id="1002")
        await users.create_user(session, "qa", PASSWORD, access.QA)
        await users.create_user(session, "sup", PASSWORD, access.SUPERVISOR)
        await users.create_user(session, "admin", PASSWORD, access.ADMIN)
    return init_app(settings, sessionmaker=sessionmaker, redis=client, live=NoLive(),
                    route_setups=[recording_http.setup_routes])


async def sign_in(client, username: str) -> dict[str, str]:
    """Signs the client in; returns the CSRF header its changes need."""
    response = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return {"X-CSRF-Token": (await response.json())["csrf_token"]}


async def link(client, call_id: str, csrf: dict[str, str]) -> Any:
    return await client.post(f"/api/recordings/{call_id}/link", headers=csrf)


def key(settings) -> bytes:
    return link_key(settings.web.secret_key.get_secret_value())


async def test_an_agent_hears_their_own_call_with_ranges(aiohttp_client, app, sessionmaker, settings) -> None:
    call_id, data = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    client = await aiohttp_client(app)
    csrf = await sign_in(client, "a1001")
    response = await link(client, call_id, csrf)
    assert response.status == 200
    body = await response.json()
    assert body["url"].startswith(f"/api/recordings/{call_id}/audio?exp=")
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert expires == pytest.approx(time.time() + settings.recording.link_ttl_s, abs=5)

    client.session.cookie_jar.clear()   # the link alone is enough, no log-in
    whole = await client.get(body["url"])
    assert whole.status == 200 and await whole.read() == data
    assert whole.headers["Content-Type"] == "audio/wav" and whole.headers["Accept-Ranges"] == "bytes"
    part = await client.get(body["url"], headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and await part.read() == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = await client.get(body["url"], headers={"Range": "bytes=-100"})
    assert tail.status == 206 and await tail.read() == data[-100:]


async def test_ranges_that_cannot_be_served_are_416_and_others_the_whole_file(aiohttp_client, app, sessionmaker,
                                                                              settings) -> None:
    """RFC 9110: bytes=-0 asks for nothing (416, not the whole file as 206); a start past the end
    and an invalid range are 416 with the size; another unit or several ranges: the whole, 200."""
    call_id, data = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    client = await aiohttp_client(app)
    url = audio_url(call_id, int(time.time()) + 60, key(settings))
    for header in ("bytes=-0", f"bytes={len(data)}-", "bytes=999999999-", "bytes=5-2", "bytes=abc", "bytes=-",
                   "bytes=1-2-3", "bytes=" + "9" * 5000 + "-"):
        response = await client.get(url, headers={"Range": header})
        assert response.status == 416, header[:40]
        assert response.headers["Content-Range"] == f"bytes */{len(data)}", header[:40]
    for header in ("items=0-10", "bytes=0-1,5-6", "garbage"):
        response = await client.get(url, headers={"Range": header})
        assert response.status == 200 and await response.read() == data, header
        assert "Content-Range" not in response.headers and response.headers["X-Content-Type-Options"] == "nosniff"
    for header, part in (("bytes=0-0", data[:1]), (f"bytes={len(data) - 1}-", data[-1:]),
                         ("bytes=10-99999999999999999999", data[10:]), (f"bytes=-{len(data) + 5}", data),
                         ("Bytes=2-5", data[2:6])):
        response = await client.get(url, headers={"Range": header})
        assert response.status == 206 and await response.read() == part, header


async def test_the_playback_copy_is_served_when_there_is_one(aiohttp_client, app, sessionmaker, settings) -> None:
    call_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    async with sessionmaker() as session:
        wav = Path((await session.get(Call, call_id)).recording_path)
    wav.with_suffix(".ogg").write_bytes(b"OggS" + bytes(500))
    client = await aiohttp_client(app)
    response = await client.get(audio_url(call_id, int(time.time()) + 60, key(settings)))
    assert response.status == 200 and response.headers["Content-Type"] == "audio/ogg"
    assert await response.read() == b"OggS" + bytes(500)


async def test_tampered_links_are_refused_and_expired_ones_are_gone(aiohttp_client, app, sessionmaker,
                                                                    settings) -> None:
    call_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    other_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1002")
    client = await aiohttp_client(app)
    exp = int(time.time()) + 60
    sig = sign(call_id, exp, key(settings))
    base = f"/api/recordings/{call_id}/audio"
    assert (await client.get(f"{base}?exp={exp}&sig={sig}")).status == 200
    flipped = ("0" if sig[-1] != "0" else "1")
    for url in (f"{base}?exp={exp}&sig={sig[:-1]}{flipped}",          # signature changed
                f"{base}?exp={exp + 3600}&sig={sig}",                  # expiry pushed back
                f"/api/recordings/{other_id}/audio?exp={exp}&sig={sig}",  # another call's audio
                f"{base}?exp={exp}",                                   # no signature
                f"{base}?exp=soon&sig={sig}",
                f"{base}?exp={exp}&sig={sign(call_id, exp, link_key('another secret'))}"):
        response = await client.get(url)
        assert response.status == 403, url
        assert "not valid" in (await response.json())["error"]
    expired = int(time.time()) - 1
    response = await client.get(f"{base}?exp={expired}&sig={sign(call_id, expired, key(settings))}")
    assert response.status == 410 and "expired" in (await response.json())["error"]


async def test_paths_and_unknown_calls_are_not_found(aiohttp_client, app, sessionmaker, settings) -> None:
    client = await aiohttp_client(app)
    secret = key(settings)
    exp = int(time.time()) + 60
    unknown = str(uuid.uuid4())
    assert (await client.get(audio_url(unknown, exp, secret))).status == 404
    for name in ("..%2F..%2F..%2Fetc%2Fpasswd", "..", "%2E%2E", "not-a-uuid"):
        url = f"/api/recordings/{name}/audio?exp={exp}&sig={sign(name, exp, secret)}"
        assert (await client.get(url)).status == 404, name
    call_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    assert (await client.get(audio_url(call_id.upper(), exp, secret))).status == 404
    # A recording path outside the recordings folder is never served, even with a good link.
    stray, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001", path="/etc/passwd")
    assert (await client.get(audio_url(stray, exp, secret))).status == 404
    # A call whose file is gone.
    async with sessionmaker() as session:
        gone = Path((await session.get(Call, call_id)).recording_path)
    await asyncio.to_thread(gone.unlink)
    assert (await client.get(audio_url(call_id, exp, secret))).status == 404


async def test_who_may_hear_what(aiohttp_client, app, sessionmaker, settings) -> None:
    mine, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    theirs, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1002")
    client = await aiohttp_client(app)
    assert (await link(client, mine, {})).status == 401
    csrf = await sign_in(client, "a1001")
    assert (await link(client, mine, csrf)).status == 200
    for call_id in (theirs, str(uuid.uuid4())):       # another agent's call looks like no call
        response = await link(client, call_id, csrf)
        assert response.status == 404 and (await response.json())["error"] == "no such recording"
    assert (await client.get(f"/api/recordings/{theirs}/transcript")).status == 404
    for role_user in ("qa", "admin"):
        csrf = await sign_in(client, role_user)
        assert (await link(client, theirs, csrf)).status == 200, role_user
    csrf = await sign_in(client, "sup")
    assert (await link(client, mine, csrf)).status == 403
    assert (await client.get(f"/api/recordings/{mine}/transcript")).status == 403


async def test_a_reviewer_hears_and_reads_only_the_queues_they_cover(aiohttp_client, app, sessionmaker,
                                                                    settings) -> None:
    """The same rule as /api/qa/calls: QA covering billing get "not found" for a general call's
    transcript and audio link, until the call is assigned to them."""
    general, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001", queue="general")
    billing, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1002", queue="billing")
    for call_id in (general, billing):
        await TranscriptStore(sessionmaker).save(call_id, [Word("caller", "漏水", 0.5, 0.9, 0.9)], model="m",
                                                 worker="w", audio_s=1.0, took_s=0.1, now=datetime.now(UTC))
    await review.set_covered_queues(sessionmaker, "qa", ["billing"])
    client = await aiohttp_client(app)
    csrf = await sign_in(client, "qa")
    for url in (f"/api/recordings/{general}/transcript", f"/api/recordings/{general}/link"):
        response = await (client.get(url) if url.endswith("transcript") else client.post(url, headers=csrf))
        assert response.status == 404, url
    assert (await client.get(f"/api/recordings/{billing}/transcript")).status == 200
    assert (await link(client, billing, csrf)).status == 200
    async with sessionmaker() as session, session.begin():
        session.add(Assignment(call_id=general, reviewer="qa", week="2026-W47", reason="flagged", agent_id="1001",
                               assigned_at=datetime.now(UTC)))
    assert (await client.get(f"/api/recordings/{general}/transcript")).status == 200
    assert (await link(client, general, csrf)).status == 200


async def test_the_transcript_with_its_words_and_checks(aiohttp_client, app, sessionmaker, settings) -> None:
    call_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001")
    await TranscriptStore(sessionmaker).save(
        call_id, [Word("caller", "漏水", 0.5, 0.9, 0.9), Word("agent", "地址", 1.0, 1.4, 0.8)], model="m",
        worker="w", audio_s=1.0, took_s=0.1, now=datetime.now(UTC),
        checks=[{"check": "greeting", "passed": False, "evidence": []}])
    client = await aiohttp_client(app)
    await sign_in(client, "qa")
    response = await client.get(f"/api/recordings/{call_id}/transcript")
    assert response.status == 200
    body = await response.json()
    assert [w["word"] for w in body["words"]] == ["漏水", "地址"] and body["flagged"] is True
    assert body["checks"][0]["check"] == "greeting"


async def test_an_admin_erases_a_callers_recordings(aiohttp_client, app, sessionmaker, settings) -> None:
    call_id, _ = await add_call(sessionmaker, settings.paths.recordings_dir, "1001", number="13911112222")
    client = await aiohttp_client(app)
    url = audio_url(call_id, int(time.time()) + 60, key(settings))
    assert (await client.get(url)).status == 200
    csrf = await sign_in(client, "qa")
    assert (await client.post("/api/recordings/erase", json={"number": "13911112222", "reason": "asked"},
                              headers=csrf)).status == 403
    csrf = await sign_in(client, "admin")
    assert (await client.post("/api/recordings/erase", json={"number": "13911112222"}, headers=csrf)).status == 400
    response = await client.post("/api/recordings/erase", json={"number": "13911112222", "reason": "asked by phone"},
                                 headers=csrf)
    assert response.status == 200 and (await response.json()) == {"number": "13911112222", "calls_erased": 1}
    assert (await client.get(url)).status == 404, "a link given before the erasure hears nothing after it"
    assert (await link(client, call_id, csrf)).status == 404
