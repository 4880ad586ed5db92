"""Outage notices over HTTP: supervisors enter and cancel them; the wallboard reads the load.

Bad input is a 400 naming the field; a speech engine that cannot speak the notice is a 503
(nothing is stored then)."""
from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from callcenter.notices.models import Outage
from callcenter.notices.service import NoticeAudioError, NoticeError, NoticeService
from callcenter.web import access, api
from callcenter.web.auth import json_error
from callcenter.web.keys import SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)
NOTICES = web.AppKey("notices", NoticeService)


class NewNotice(api.Body):
    kind: Literal["planned", "temporary"]
    areas: list[api.Name] = Field(min_length=1, max_length=200)
    starts_at: api.Moment
    ends_at: api.Moment
    text: Annotated[str, api.text(500, min_length=1)] = Field(description="what callers hear (spoken by espeak-ng)")
    cause: api.Line = ""


class NoticeChange(api.Body):
    """What changes; what is left out stays. Areas may be added, never taken away."""

    starts_at: api.Moment | None = None
    ends_at: api.Moment | None = None
    text: Annotated[str, api.text(500, min_length=1)] | None = None
    areas: list[api.Name] | None = Field(default=None, min_length=1, max_length=200)


class OutagePath(api.Path):
    outage_id: api.Id


class OutageOut(api.Answer):
    id: int
    kind: str
    areas: list[str]
    starts_at: str
    ends_at: str
    text: str
    cancelled: bool
    revision: int


class OneOutage(api.Answer):
    outage: OutageOut


class ExpectedLoad(api.Answer):
    outages: int
    areas: int
    customers_affected: int


class Outages(api.Answer):
    outages: list[OutageOut]
    expected_load: ExpectedLoad


def outage_json(o: Outage) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "areas": o.areas, "starts_at": o.starts_at.isoformat(),
            "ends_at": o.ends_at.isoformat(), "text": o.text, "cause": o.cause, "created_by": o.created_by,
            "announced_late": o.announced_late, "cancelled": o.cancelled,
            "revision": o.revision}


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Enter an outage notice: spoken to the callers of the affected areas", body=NewNotice,
           responses={201: OneOutage})
async def create(request: web.Request, body: NewNotice) -> web.Response:
    starts_at, ends_at = body.starts_at, body.ends_at
    areas = body.areas
    try:
        outage = await request.app[NOTICES].create(
            kind=body.kind, areas=areas, starts_at=starts_at, ends_at=ends_at,
            text=body.text, cause=body.cause,
            by=access.current_user(request).username)
    except NoticeError as exc:
        return json_error(400, str(exc))
    except NoticeAudioError as exc:
        log.error("notice not stored: %s", exc)
        return json_error(503, str(exc))
    return web.json_response({"outage": outage_json(outage)}, status=201)


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
@api.route(summary="Current outages and the calls to expect", responses={200: Outages})
async def listing(request: web.Request) -> web.Response:
    service = request.app[NOTICES]
    return web.json_response({"outages": [outage_json(o) for o in await service.current()],
                              "expected_load": await service.expected_load()})


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Cancel an outage notice", path=OutagePath, responses={200: OneOutage, 404: api.Problem})
async def cancel(request: web.Request, path: OutagePath) -> web.Response:
    try:
        outage = await request.app[NOTICES].cancel(path.outage_id)
    except LookupError as exc:
        return json_error(404, str(exc))
    return web.json_response({"outage": outage_json(outage)})


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Change an outage notice (times, text, more areas): told again to the customers",
           path=OutagePath, body=NoticeChange,
           responses={200: OneOutage, 400: api.Problem, 404: api.Problem, 503: api.Problem})
async def change(request: web.Request, path: OutagePath, body: NoticeChange) -> web.Response:
    try:
        outage = await request.app[NOTICES].change(
            path.outage_id, by=access.current_user(request).username, starts_at=body.starts_at,
            ends_at=body.ends_at, text=body.text, areas=list(body.areas) if body.areas is not None else None)
    except NoticeError as exc:
        return json_error(400, str(exc))
    except LookupError as exc:
        return json_error(404, str(exc))
    except NoticeAudioError as exc:
        log.error("notice change not stored: %s", exc)
        return json_error(503, str(exc))
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
    app.router.add_patch(r"/api/notices/{outage_id:\d+}", change)
