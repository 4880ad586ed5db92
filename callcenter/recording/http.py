"""Recordings over HTTP: a signed link to hear a call, the audio itself, the transcript, erasure.

Who may hear what is the one rule of callcenter/calls/visibility.py, the same as for QA calls:
an agent their own calls, QA the queues they cover and the calls assigned to them, admin every
call; supervisors and operations hear no audio and read no transcript (the allow-list refuses
them). A call a user may not hear is "not found" to them, exactly like a call that does not exist.

    POST /api/recordings/{call_id}/link        {url, expires_at}: a signed link to the audio
    GET  /api/recordings/{call_id}/audio?exp=&sig=   the OGG (else the WAV); Range requests work
         (RFC 9110: one byte range is served 206; an unsatisfiable one, such as bytes=-0 or a start
         past the end, and an invalid one, such as bytes=5-2, are 416 with Content-Range bytes */size;
         another unit or several ranges are ignored: the whole file, 200)
    GET  /api/recordings/{call_id}/transcript  words and checks
    GET  /api/recordings/{call_id}/peaks       the waveform of both channels (computed once, kept beside the WAV)
    POST /api/recordings/erase                 {number, reason}: a caller's erasure request (admin)
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from callcenter.calls import visibility
from callcenter.calls.models import Call
from callcenter.recording.peaks import cached_peaks
from callcenter.recording.playback import CONTENT_TYPES, playback_path
from callcenter.recording.retention import erase_caller
from callcenter.recording.signing import ExpiredLink, TamperedLink, audio_url, link_key, verify
from callcenter.recording.store import TranscriptStore
from callcenter.web import access, api
from callcenter.web.auth import json_error
from callcenter.web.keys import SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

LISTENERS = visibility.LISTENERS


class CallPath(api.Path):
    call_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class AudioLinkQuery(api.Query):
    exp: Annotated[str, api.text(64)] = Field("", description="unix seconds")
    sig: Annotated[str, api.text(128)] = Field("", description="the link's signature")


class Erasure(api.Body):
    number: Annotated[str, api.text(32, min_length=1)]
    reason: Annotated[str, api.text(500, min_length=1)]


class AudioLink(api.Answer):
    url: str
    expires_at: str


class Word(api.Answer):
    channel: str
    word: str
    start_s: float
    end_s: float


class Transcript(api.Answer):
    call_id: str
    model: str
    audio_s: float
    checks: Any
    words: list[Word]


class Waveform(api.Answer):
    duration_s: float
    bucket_s: float
    channels: list[str]
    peaks: list[list[float]]


class Erased(api.Answer):
    number: str
    calls_erased: int


NOT_FOUND = {404: api.Problem}


def _not_found(what: str = "no such recording") -> web.HTTPNotFound:
    return web.HTTPNotFound(text=f'{{"error": "{what}"}}', content_type="application/json")


def _call_id(request: web.Request) -> str:
    """The call id from the path: a plain lower-case uuid, or 404 (nothing else reaches a file)."""
    raw = request.match_info["call_id"]
    try:
        if str(uuid.UUID(raw)) == raw:
            return raw
    except ValueError:
        pass
    raise _not_found()


async def _call_heard_by(request: web.Request, user: access.User, *, needs: str) -> Call:
    """The call, if this user may see it and `needs` ("audio" or "words") of it."""
    call_id, sessionmaker = _call_id(request), request.app[SESSIONMAKER]
    scope = await visibility.scope_for(sessionmaker, user)
    call = await visibility.visible_call(sessionmaker, call_id, scope) if getattr(scope, needs) else None
    if call is None:
        raise _not_found()
    return call


def _key(app: web.Application) -> bytes:
    secret = app[SETTINGS].web.secret_key
    if secret is None:   # init_app refuses to start without it
        raise web.HTTPInternalServerError()
    return link_key(secret.get_secret_value())


def _playable(recording_path: str | None, recordings_dir: Path) -> Path | None:
    """The playback copy, else the WAV; only files inside the recordings folder."""
    if not recording_path:
        return None
    wav = Path(recording_path)
    root = recordings_dir.resolve()
    for path in (playback_path(wav), wav):
        if path.is_file() and path.resolve().is_relative_to(root):
            return path
    return None


WHOLE, PART, REFUSE = "whole", "part", "refuse"
_BYTE_RANGE = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)


def range_answer(header: str | None, size: int) -> str:
    """How to answer a Range header on a file of `size` bytes (RFC 9110 section 14): WHOLE (200,
    no header, another unit, or several ranges, which we do not serve as multipart), PART (206,
    one satisfiable range) or REFUSE (416: unsatisfiable, or an invalid bytes range)."""
    if header is None:
        return WHOLE
    unit, equals, ranges = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return WHOLE                      # a range unit we do not know is ignored (14.2)
    specs = [spec.strip() for spec in ranges.split(",")]
    if len(specs) != 1:
        return WHOLE                      # a server may ignore Range (14.2): no multipart answers
    found = _BYTE_RANGE.fullmatch(specs[0])
    if found is None or found.groups() == ("", ""):
        return REFUSE
    first, last = (min(int(d[:20]), 10**19) if d else None for d in found.groups())   # no 5000-digit ints
    if first is None:                     # a suffix: the last N bytes; N = 0 asks for nothing
        return PART if last and size > 0 else REFUSE
    if last is not None and last < first:
        return REFUSE                     # invalid (14.1.1): rejected, as 14.2 allows
    return PART if first < size else REFUSE


@access.allow(*LISTENERS)
@api.route(summary="A signed, expiring link to a call's audio", path=CallPath, body=api.Empty,
           responses={200: AudioLink, **NOT_FOUND})
async def audio_link(request: web.Request) -> web.Response:
    user = access.current_user(request)
    call = await _call_heard_by(request, user, needs="audio")
    if _playable(call.recording_path, request.app[SETTINGS].paths.recordings_dir) is None:
        raise _not_found("this call has no recording")
    exp = int(time.time()) + request.app[SETTINGS].recording.link_ttl_s
    log.info("audio link for call %s given to %s (%s)", call.id, user.username, user.role)
    return web.json_response({"url": audio_url(call.id, exp, _key(request.app)),
                              "expires_at": datetime.fromtimestamp(exp, UTC).isoformat()})


@access.public   # the signature is the permission: it was given only to someone who may hear the call
@api.route(summary="A call's audio (the signed link; Range requests work)", path=CallPath, query=AudioLinkQuery,
           responses={200: tuple(CONTENT_TYPES.values()), 206: tuple(CONTENT_TYPES.values()), 403: api.Problem,
                      410: api.Problem, 416: None})
async def audio(request: web.Request, query: AudioLinkQuery) -> web.StreamResponse:
    call_id = _call_id(request)
    try:
        verify(call_id, query.exp, query.sig, _key(request.app), time.time())
    except TamperedLink:
        return json_error(403, "this audio link is not valid")
    except ExpiredLink:
        return json_error(410, "this audio link has expired; ask for a new one")
    async with request.app[SESSIONMAKER]() as session:
        call = await session.get(Call, call_id)
    path = _playable(call.recording_path if call else None, request.app[SETTINGS].paths.recordings_dir)
    if path is None:
        raise _not_found()
    headers = {"Content-Type": CONTENT_TYPES[path.suffix], "Cache-Control": "private, no-store"}
    size = path.stat().st_size
    answer = range_answer(request.headers.get("Range"), size)
    if answer == REFUSE:
        return json_error(416, f"Range: not satisfiable for {size} bytes", **{"Content-Range": f"bytes */{size}",
                                                                              "Accept-Ranges": "bytes"})
    return (_WholeFile if answer == WHOLE else web.FileResponse)(path, headers=headers)


class _WholeFile(web.FileResponse):
    """The whole file, 200, whatever Range the request carries (a unit we do not know, or several
    ranges): aiohttp's own range handling would answer those 416."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        headers = request.headers.copy()
        headers.popall("Range", None)
        return await super().prepare(request.clone(headers=headers))


@access.allow(*LISTENERS)
@api.route(summary="A call's transcript: words with times, and the checks", path=CallPath,
           responses={200: Transcript, **NOT_FOUND})
async def transcript(request: web.Request) -> web.Response:
    call = await _call_heard_by(request, access.current_user(request), needs="words")
    store = TranscriptStore(request.app[SESSIONMAKER])
    found = await store.transcript(call.id)
    if found is None:
        raise _not_found("this call has no transcript")
    words = await store.words(call.id)
    return web.json_response({
        "call_id": call.id, "model": found.model, "audio_s": found.audio_s, "flagged": found.flagged,
        "created_at": found.created_at.isoformat(), "checks": found.checks,
        "words": [{"channel": w.channel, "word": w.word, "start_s": w.start_s, "end_s": w.end_s,
                   "confidence": w.confidence} for w in words],
    })


def _recorded_wav(call: Call, recordings_dir: Path) -> Path | None:
    """The call's WAV, only inside the recordings folder."""
    if not call.recording_path:
        return None
    wav = Path(call.recording_path)
    return wav if wav.is_file() and wav.resolve().is_relative_to(recordings_dir.resolve()) else None


@access.allow(*LISTENERS)
@api.route(summary="A call's waveform: the peaks of both channels (caller, agent)", path=CallPath,
           responses={200: Waveform, **NOT_FOUND})
async def peaks(request: web.Request) -> web.Response:
    call = await _call_heard_by(request, access.current_user(request), needs="audio")
    wav = _recorded_wav(call, request.app[SETTINGS].paths.recordings_dir)
    if wav is None:
        raise _not_found("this call has no recording")
    try:
        found = await asyncio.to_thread(cached_peaks, wav)
    except (ValueError, EOFError, wave.Error) as exc:
        log.error("call %s: no waveform of %s (%s)", call.id, wav, exc)
        raise _not_found("this call's recording cannot be drawn") from None
    return web.json_response(found, headers={"Cache-Control": "private, max-age=3600"})


@access.allow(access.ADMIN)
@api.route(body=Erasure, responses={200: Erased})
async def erase(request: web.Request, body: Erasure) -> web.Response:
    """A caller's request: erase the recordings, transcripts and words of every call from a number."""
    user = access.current_user(request)
    number, reason = body.number.strip(), body.reason.strip()
    if not number or len(number) > 32:
        return json_error(400, "number: the caller's number, as the call records have it")
    if not reason or len(reason) > 500 or "\x00" in reason:
        return json_error(400, "reason: why the recordings are erased (kept in the audit trail)")
    settings = request.app[SETTINGS]
    erased = await erase_caller(request.app[SESSIONMAKER], settings.paths.recordings_dir, number, user.username,
                                reason, datetime.now(UTC))
    return web.json_response({"number": number, "calls_erased": erased})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/recordings/erase", erase)
    app.router.add_post("/api/recordings/{call_id}/link", audio_link)
    app.router.add_get("/api/recordings/{call_id}/audio", audio)
    app.router.add_get("/api/recordings/{call_id}/transcript", transcript)
    app.router.add_get("/api/recordings/{call_id}/peaks", peaks)
