"""The SMS channel over HTTP: the routes Kannel calls (replies in, delivery reports), and a
view of the messages for supervisors.

Kannel's calls are public routes (Kannel signs in as nobody) but are accepted only from the
configured Kannel addresses and with a token: the MO token of the settings (rendered into
Kannel's get-url), or the delivery report's own per-message token. Bad input is a 400 that
names the field; a wrong token or address a 403.
"""
from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from callcenter.config import Settings
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import SmsService
from callcenter.web import access
from callcenter.web.auth import json_error
from callcenter.web.keys import SESSIONMAKER, SETTINGS

SMS = web.AppKey("sms", SmsService)


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
async def delivery_report(request: web.Request) -> web.Response:
    if (refused := _from_kannel(request)) is not None:
        return refused
    q = request.query
    for field in ("id", "a", "token", "type"):
        if not q.get(field):
            return json_error(400, f"{field}: missing")
    try:
        attempt, dlr_type = int(q["a"]), int(q["type"])
    except ValueError:
        return json_error(400, "a, type: whole numbers")
    try:
        message = await request.app[SMS].report(q["id"], attempt, q["token"], dlr_type)
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
async def message_in(request: web.Request) -> web.Response:
    if (refused := _from_kannel(request)) is not None:
        return refused
    expected = request.app[SETTINGS].sms.mo_token
    sent = request.query.get("token", "")
    if expected is None or not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
        return json_error(403, "token: wrong or missing")
    number = request.query.get("from", "").strip()
    if not number:
        return json_error(400, "from: missing")
    try:
        text = _mo_text(request)
    except UnicodeDecodeError:
        return json_error(400, "text: not valid UTF-16")
    reply = await request.app[SMS].receive(number, request.query.get("to", ""), text)
    # Kannel's sms-service has max-messages = 0: this body is never sent back as an SMS.
    return web.Response(text=reply.taken_as)


@access.allow(access.SUPERVISOR, access.ADMIN)
async def listing(request: web.Request) -> web.Response:
    service = request.app[SMS]
    ref = request.query.get("ref")
    messages = await service.by_ref(ref) if ref else []
    return web.json_response({"counts": await service.counts(), "messages": [message_json(m) for m in messages]})


@access.allow(access.SUPERVISOR, access.ADMIN)
async def warnings(request: web.Request) -> web.Response:
    """Warnings nobody has acknowledged, for the wallboard."""
    return web.json_response({"warnings": [message_json(m) for m in await request.app[SMS].open_warnings()]})


@access.allow(access.SUPERVISOR, access.ADMIN)
async def acknowledge(request: web.Request) -> web.Response:
    ref = request.match_info["ref"]
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
