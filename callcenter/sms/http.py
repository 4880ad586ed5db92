"""The SMS channel over HTTP: the routes Kannel calls (replies in, delivery reports), and a
view of the messages for supervisors.

Kannel's calls are public routes (Kannel signs in as nobody) but are accepted only from the
configured Kannel addresses and with a token: the MO token of the settings (rendered into
Kannel's get-url), or the delivery report's own per-message token. Bad input is a 400 that
names the field; a wrong token or address a 403.
"""
from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import parse_qs

from aiohttp import web
from pydantic import Field

from callcenter.config import Settings
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import SmsService
from callcenter.web import access, api
from callcenter.web.auth import json_error
from callcenter.web.keys import SESSIONMAKER, SETTINGS

SMS = web.AppKey("sms", SmsService)
Token = Annotated[str, api.text(128)]


class DeliveryReportQuery(api.Query):
    """What Kannel's dlr-url carries back (sms/kannel.py renders it): the message, the attempt
    the report is for, the message's own report token and Kannel's report type (1 delivered,
    2 failed, 4 buffered, 8 accepted by the carrier, 16 rejected by it)."""

    id: Annotated[str, api.text(36, min_length=1)]
    a: api.Count
    token: Token = ""
    type: Annotated[int, Field(ge=0, le=31)]


class MessageInQuery(api.Query):
    """A reply (MO) as smsbox's get-url sends it; the text is read from the raw query as well,
    for the UTF-16 a carrier may send unrecoded."""

    from_: Annotated[str, api.text(32)] = Field(default="", alias="from")
    to: Annotated[str, api.text(32)] = ""
    text: Annotated[str, Field(max_length=3200)] = ""     # raw UTF-16 may be in it: read by _mo_text
    token: Token = ""
    coding: Annotated[str, api.text(2)] = ""
    charset: Annotated[str, api.text(32)] = ""


class MessagesQuery(api.Query):
    ref: Annotated[str, api.text(160)] = ""


class WarningPath(api.Path):
    ref: Annotated[str, api.text(160, min_length=1)]


class ReportAnswer(api.Answer):
    id: str
    state: str


class MessageOut(api.Answer):
    id: str
    number: str
    kind: str
    state: str
    text: str
    parts: int
    attempts: int
    ref: str | None
    created_at: str


class Messages(api.Answer):
    counts: dict[str, int]
    messages: list[MessageOut]


class Warnings(api.Answer):
    warnings: list[MessageOut]


class Acknowledged(api.Answer):
    ref: str
    acknowledged: int


def callback_base(settings: Settings) -> str:
    return settings.sms.callback_url or f"http://{settings.web.host}:{settings.web.port}"


def message_json(m: SmsMessage) -> dict[str, Any]:
    return {"id": m.id, "number": m.number, "kind": m.kind, "state": m.state, "text": m.text, "coding": m.coding,
            "parts": m.parts, "attempts": m.attempts, "ref": m.ref, "reply_code": m.reply_code,
            "reply_text": m.reply_text, "last_error": m.last_error, "created_at": m.created_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None}


def _from_kannel(request: web.Request) -> web.Response | None:
    if request.remote not in request.app[SETTINGS].sms.kannel_addresses:
        return json_error(403, "only the SMS gateway may call this")
    return None


@access.public
@api.route(summary="A delivery report from the SMS gateway (its own address only)", query=DeliveryReportQuery,
           responses={200: ReportAnswer, 400: api.Problem, 403: api.Problem, 404: api.Problem})
async def delivery_report(request: web.Request, query: DeliveryReportQuery) -> web.Response:
    if (refused := _from_kannel(request)) is not None:
        return refused
    if not query.token:
        return json_error(400, "token: missing")
    try:
        message = await request.app[SMS].report(query.id, query.a, query.token, query.type)
    except LookupError as exc:
        return json_error(404, str(exc))
    except PermissionError as exc:
        return json_error(403, str(exc))
    except ValueError as exc:
        return json_error(400, str(exc))
    return web.json_response({"id": message.id, "state": message.state})


def _mo_text(request: web.Request) -> str:
    """The reply's text: UTF-8 (smsbox recodes with mo-recode), or raw UTF-16BE when not recoded."""
    charset = request.query.get("charset", "").upper()
    if request.query.get("coding") == "2" and charset.startswith(("UTF-16", "UCS-2", "UCS2")):
        raw = parse_qs(request.query_string, encoding="latin-1").get("text", [""])[0]
        return raw.encode("latin-1").decode("utf-16-be", errors="replace")
    return request.query.get("text", "")


@access.public
@api.route(summary="A reply (MO) from a phone, through the SMS gateway (its own address and token only)",
           query=MessageInQuery, responses={200: None, 400: api.Problem, 403: api.Problem})
async def message_in(request: web.Request, query: MessageInQuery) -> web.Response:
    if (refused := _from_kannel(request)) is not None:
        return refused
    expected = request.app[SETTINGS].sms.mo_token
    if expected is None or not hmac.compare_digest(query.token.encode(), expected.get_secret_value().encode()):
        return json_error(403, "token: wrong or missing")
    number = query.from_.strip()
    if not number:
        return json_error(400, "from: missing")
    try:
        text = _mo_text(request)
    except UnicodeDecodeError:
        return json_error(400, "text: not valid UTF-16")
    reply = await request.app[SMS].receive(number, query.to, text)
    # Kannel's sms-service has max-messages = 0: this body is never sent back as an SMS.
    return web.Response(text=reply.taken_as)


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Messages by state, and one ref's messages", query=MessagesQuery, responses={200: Messages})
async def listing(request: web.Request, query: MessagesQuery) -> web.Response:
    service = request.app[SMS]
    messages = await service.by_ref(query.ref) if query.ref else []
    return web.json_response({"counts": await service.counts(), "messages": [message_json(m) for m in messages]})


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Warnings nobody has acknowledged", responses={200: Warnings})
async def warnings(request: web.Request) -> web.Response:
    """Warnings nobody has acknowledged, for the wallboard."""
    return web.json_response({"warnings": [message_json(m) for m in await request.app[SMS].open_warnings()]})


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Acknowledge a warning for every duty phone", path=WarningPath,
           responses={200: Acknowledged, 400: api.Problem, 404: api.Problem})
async def acknowledge(request: web.Request, path: WarningPath) -> web.Response:
    ref = path.ref
    if not ref.startswith("warning:"):
        return json_error(400, "ref: a warning's ref, such as warning:surge:outage:7")
    count = await request.app[SMS].acknowledge(ref, access.current_user(request).username)
    if not count:
        return json_error(404, f"ref: no open warning {ref!r}")
    return web.json_response({"ref": ref, "acknowledged": count})


async def _service(app: web.Application) -> None:
    if SMS not in app:
        s = app[SETTINGS]
        app[SMS] = SmsService(app[SESSIONMAKER], s.sms, s.hotline.timezone)


def setup_routes(app: web.Application) -> None:
    app.on_startup.append(_service)
    app.router.add_get("/api/sms/dlr", delivery_report)
    app.router.add_get("/api/sms/mo", message_in)
    app.router.add_get("/api/sms", listing)
    app.router.add_get("/api/sms/warnings", warnings)
    app.router.add_post("/api/sms/warnings/{ref}/acknowledge", acknowledge)
