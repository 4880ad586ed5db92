"""Outage notices over HTTP: supervisors enter and cancel them; the wallboard reads the load.

Bad input is a 400 naming the field; a speech engine that cannot speak the notice is a 503
(nothing is stored then)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from callcenter.notices.models import Outage
from callcenter.notices.service import NoticeAudioError, NoticeError, NoticeService
from callcenter.web import access
from callcenter.web.auth import json_body, json_error, json_exception
from callcenter.web.keys import SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)
NOTICES = web.AppKey("notices", NoticeService)


def outage_json(o: Outage) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "areas": o.areas, "starts_at": o.starts_at.isoformat(),
            "ends_at": o.ends_at.isoformat(), "text": o.text, "cause": o.cause, "created_by": o.created_by,
            "announced_late": o.announced_late, "cancelled": o.cancelled}


def _time(body: dict[str, Any], field: str) -> datetime:
    value = body.get(field)
    try:
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromisoformat(value)
    except ValueError:
        raise json_exception(web.HTTPBadRequest,
                             f"{field}: an ISO time such as 2026-11-28T08:00:00+08:00") from None


def _words(body: dict[str, Any], field: str) -> str:
    value = body.get(field, "")
    if not isinstance(value, str):
        raise json_exception(web.HTTPBadRequest, f"{field}: text")
    return value


@access.allow(access.SUPERVISOR, access.ADMIN)
async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    starts_at, ends_at = _time(body, "starts_at"), _time(body, "ends_at")
    areas = body.get("areas")
    if not isinstance(areas, list):
        return json_error(400, "areas: a list of area names")
    try:
        outage = await request.app[NOTICES].create(
            kind=_words(body, "kind"), areas=areas, starts_at=starts_at, ends_at=ends_at,
            text=_words(body, "text"), cause=_words(body, "cause"), by=access.current_user(request).username)
    except NoticeError as exc:
        return json_error(400, str(exc))
    except NoticeAudioError as exc:
        log.error("notice not stored: %s", exc)
        return json_error(503, str(exc))
    return web.json_response({"outage": outage_json(outage)}, status=201)


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
async def listing(request: web.Request) -> web.Response:
    service = request.app[NOTICES]
    return web.json_response({"outages": [outage_json(o) for o in await service.current()],
                              "expected_load": await service.expected_load()})


@access.allow(access.SUPERVISOR, access.ADMIN)
async def cancel(request: web.Request) -> web.Response:
    digits = request.match_info["outage_id"]
    try:
        if len(digits) > 12:   # no such id, and int() of thousands of digits is refused
            raise LookupError(f"no outage {digits[:12]}…")
        outage = await request.app[NOTICES].cancel(int(digits))
    except LookupError as exc:
        return json_error(404, str(exc))
    return web.json_response({"outage": outage_json(outage)})


async def _service(app: web.Application) -> None:
    if NOTICES not in app:
        s = app[SETTINGS]
        app[NOTICES] = NoticeService(app[SESSIONMAKER], s.paths.prompts_dir, s.hotline.timezone, s.ivr.voice,
                                     s.ivr.speed_wpm)


def setup_routes(app: web.Application) -> None:
    app.on_startup.append(_service)
    app.router.add_post("/api/notices", create)
    app.router.add_get("/api/notices", listing)
    app.router.add_delete(r"/api/notices/{outage_id:\d+}", cancel)
