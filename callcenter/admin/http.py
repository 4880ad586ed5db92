"""The administration API: agents, queues, users and the audit trail (admin changes, the
supervisor may look). Every body is a pydantic model (so it is in the OpenAPI document); a
refusal is a 400 naming the field, 404 for what does not exist, 409 for what exists already.

A change to an agent or a queue reaches the running engines without a restart (service.py)."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from callcenter.acd.settings import MAX_SKILL_LEVEL, Strategy
from callcenter.admin.service import AdminError, AdminService, Conflict
from callcenter.ivr.prompts import PromptError, speak
from callcenter.web import access, api
from callcenter.web.keys import SESSIONMAKER, SETTINGS

ADMIN = web.AppKey("admin", AdminService)
ADMIN_ONLY = (access.ADMIN,)
VIEWERS = (access.ADMIN, access.SUPERVISOR)

AgentId = Annotated[str, Field(pattern=r"^[0-9]{3,8}$", description="digits: the SIP user name")]
QueueName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Level = Annotated[int, Field(ge=1, le=MAX_SKILL_LEVEL)]
AgentName = Annotated[str, api.text(64, min_length=1)]
SipPassword = Annotated[str, Field(pattern=r"^[\x21-\x7e]{10,64}$", description="10-64 printable, no spaces")]
Span = Annotated[str, Field(pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$", examples=["08:30-17:30"])]
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
UserPassword = Annotated[str, api.text(256, min_length=10)]


class NewAgent(api.Body):
    id: AgentId
    name: AgentName
    sip_password: SipPassword
    queues: list[QueueName] = Field(min_length=1, max_length=50)
    skills: dict[QueueName, Level] = Field(default_factory=dict, max_length=50)


class AgentChange(api.Body):
    name: AgentName | None = None
    sip_password: SipPassword | None = None
    queues: list[QueueName] | None = Field(default=None, min_length=1, max_length=50)
    skills: dict[QueueName, Level] | None = Field(default=None, max_length=50)
    active: bool | None = None


class AgentPath(api.Path):
    agent_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


class AgentOut(api.Answer):
    id: str
    name: str
    queues: list[str]
    skills: dict[str, int]
    active: bool


class Agents(api.Answer):
    agents: list[AgentOut]


class OneAgent(api.Answer):
    agent: AgentOut


class QueueFields(api.Body):
    title: Annotated[str, api.text(64)] | None = None
    category: Annotated[str, api.text(32)] | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    open_hours: list[Span] | None = Field(default=None, max_length=8)
    open_days: Literal["every_day", "working_days"] | None = None
    when_closed: QueueName | None = None
    overflow_to: QueueName | None = None
    max_wait_s: Annotated[float, Field(gt=0, le=86400)] | None = None
    wrapup_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    strategy: Strategy | None = None


class NewQueue(QueueFields):
    name: QueueName


class QueuePath(api.Path):
    name: QueueName


class QueueOut(api.Answer):
    name: str
    title: str
    category: str
    priority: int
    open_hours: list[str]
    open_days: str
    when_closed: str | None


class Queues(api.Answer):
    queues: list[QueueOut]


class OneQueue(api.Answer):
    queue: QueueOut


class NewUser(api.Body):
    username: Username
    password: UserPassword
    role: Literal["agent", "qa", "supervisor", "admin", "unit"]
    agent_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] | None = None
    unit: Annotated[str, api.text(64, min_length=1)] | None = None
    phone: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] | None = None


class UserAction(api.Body):
    action: Literal["deactivate", "activate", "reset_password", "revoke_tokens", "role"]
    password: UserPassword | None = None
    role: Literal["agent", "qa", "supervisor", "admin", "unit"] | None = None
    agent_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] | None = None
    unit: Annotated[str, api.text(64, min_length=1)] | None = None


class UserPath(api.Path):
    username: Username


class UserOut(api.Answer):
    username: str
    role: str
    active: bool


class Users(api.Answer):
    users: list[UserOut]


class OneUser(api.Answer):
    user: UserOut


class AuditQuery(api.Query):
    limit: api.Limit = 200
    kind: Literal["agent", "queue", "user", "notice", "hotline"] | None = None


class AuditOut(api.Answer):
    id: int
    at: str
    actor: str
    kind: str
    key: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Audit(api.Answer):
    entries: list[AuditOut]


class NoticePreview(api.Query):
    text: Annotated[str, api.text(500, min_length=1)] = Field(description="the notice as callers would hear it")


def _refused(exc: AdminError) -> web.HTTPException:
    return api.refuse(exc.field, exc.message, web.HTTPConflict if isinstance(exc, Conflict) else web.HTTPBadRequest)


def _missing(exc: LookupError) -> web.HTTPException:
    field, _, message = str(exc.args[0] if exc.args else exc).partition(": ")
    return api.refuse(field, message or "not found", web.HTTPNotFound)


def audit_json(e: Any) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "key": e.key, "action": e.action,
            "before": e.before, "after": e.after, "version": e.version}


def actor(request: web.Request) -> str:
    return access.current_user(request).username


@access.allow(*VIEWERS)
@api.route(summary="The hotline's agents (from the database)", responses={200: Agents})
async def list_agents(request: web.Request) -> web.Response:
    return web.json_response({"agents": await request.app[ADMIN].agents()})


@access.allow(*ADMIN_ONLY)
@api.route(summary="Add an agent: their phone can register at once, no restart", body=NewAgent,
           responses={201: OneAgent, 400: api.Problem, 409: api.Problem})
async def create_agent(request: web.Request, body: NewAgent) -> web.Response:
    try:
        agent = await request.app[ADMIN].create_agent(actor(request), body.id, body.name, body.sip_password,
                                                      list(body.queues), dict(body.skills))
    except AdminError as exc:
        raise _refused(exc) from None
    return web.json_response({"agent": agent}, status=201)


@access.allow(*ADMIN_ONLY)
@api.route(summary="Change an agent (name, SIP password, queues, skills, active)", path=AgentPath, body=AgentChange,
           responses={200: OneAgent, 400: api.Problem, 404: api.Problem})
async def change_agent(request: web.Request, path: AgentPath, body: AgentChange) -> web.Response:
    try:
        agent = await request.app[ADMIN].change_agent(
            actor(request), path.agent_id, name=body.name, sip_password=body.sip_password,
            queues=list(body.queues) if body.queues is not None else None,
            skills=dict(body.skills) if body.skills is not None else None, active=body.active)
    except AdminError as exc:
        raise _refused(exc) from None
    except LookupError as exc:
        raise _missing(exc) from None
    return web.json_response({"agent": agent})


@access.allow(*VIEWERS)
@api.route(summary="The hotline's queues (from the database)", responses={200: Queues})
async def list_queues(request: web.Request) -> web.Response:
    return web.json_response({"queues": await request.app[ADMIN].queues()})


@access.allow(*ADMIN_ONLY)
@api.route(summary="Add a queue", body=NewQueue, responses={201: OneQueue, 400: api.Problem, 409: api.Problem})
async def create_queue(request: web.Request, body: NewQueue) -> web.Response:
    fields = body.model_dump(exclude_none=True, exclude={"name"}, mode="json")
    try:
        queue = await request.app[ADMIN].create_queue(actor(request), body.name, fields)
    except AdminError as exc:
        raise _refused(exc) from None
    return web.json_response({"queue": queue}, status=201)


@access.allow(*ADMIN_ONLY)
@api.route(summary="Change a queue (title, category, priority, office hours, when closed, overflow)",
           path=QueuePath, body=QueueFields, responses={200: OneQueue, 400: api.Problem, 404: api.Problem})
async def change_queue(request: web.Request, path: QueuePath, body: QueueFields) -> web.Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    try:
        queue = await request.app[ADMIN].change_queue(actor(request), path.name, changes)
    except AdminError as exc:
        raise _refused(exc) from None
    except LookupError as exc:
        raise _missing(exc) from None
    return web.json_response({"queue": queue})


@access.allow(*VIEWERS)
@api.route(summary="The web log-ins and their roles", responses={200: Users})
async def list_users(request: web.Request) -> web.Response:
    return web.json_response({"users": await request.app[ADMIN].users()})


@access.allow(*ADMIN_ONLY)
@api.route(summary="Add a web log-in with a role", body=NewUser,
           responses={201: OneUser, 400: api.Problem, 409: api.Problem})
async def create_user(request: web.Request, body: NewUser) -> web.Response:
    try:
        user = await request.app[ADMIN].create_user(actor(request), body.username, body.password, body.role,
                                                    body.agent_id, body.unit, body.phone)
    except AdminError as exc:
        raise _refused(exc) from None
    return web.json_response({"user": user}, status=201)


@access.allow(*ADMIN_ONLY)
@api.route(summary="Deactivate, activate, reset the password, revoke the tokens or change the role of a log-in",
           path=UserPath, body=UserAction, responses={200: OneUser, 400: api.Problem, 404: api.Problem})
async def user_action(request: web.Request, path: UserPath, body: UserAction) -> web.Response:
    try:
        user = await request.app[ADMIN].change_user(actor(request), path.username, body.action, role=body.role,
                                                    password=body.password, agent_id=body.agent_id, unit=body.unit)
    except AdminError as exc:
        raise _refused(exc) from None
    except LookupError as exc:
        raise _missing(exc) from None
    return web.json_response({"user": user})


@access.allow(*VIEWERS)
@api.route(summary="The audit trail of the administrator's changes, newest first", query=AuditQuery,
           responses={200: Audit})
async def audit(request: web.Request, query: AuditQuery) -> web.Response:
    entries = await request.app[ADMIN].audit(query.limit, query.kind)
    return web.json_response({"entries": [audit_json(e) for e in entries]})


async def spoken(request: web.Request, text: str) -> bytes:
    """The notice as callers would hear it (espeak-ng, the IVR's voice), kept nowhere."""
    settings = request.app[SETTINGS]
    with tempfile.TemporaryDirectory() as tmp:
        target = FilePath(tmp) / "preview.wav"
        await asyncio.to_thread(speak, text, target, settings.ivr.voice, settings.ivr.speed_wpm)
        return target.read_bytes()


@access.allow(access.SUPERVISOR, access.ADMIN)
@api.route(summary="Hear an outage notice before it is published (WAV, nothing stored)", query=NoticePreview,
           responses={200: "audio/wav", 400: api.Problem, 503: api.Problem})
async def preview_notice(request: web.Request, query: NoticePreview) -> web.Response:
    try:
        audio = await spoken(request, query.text.strip() or query.text)
    except PromptError as exc:
        raise api.refuse("text", f"the spoken notice could not be made: {exc}", web.HTTPServiceUnavailable) from None
    return web.Response(body=audio, content_type="audio/wav", headers={"Cache-Control": "no-store"})


async def _service(app: web.Application) -> None:
    if ADMIN not in app:
        from callcenter.workorders.categories import load_categories

        s = app[SETTINGS]
        categories = load_categories(s.workorders.categories_file or None)
        app[ADMIN] = AdminService(app[SESSIONMAKER], s.acd, categories=categories.categories,
                                  units={c.unit for c in categories.categories.values()})
        await app[ADMIN].seed(s)     # a web app on its own (no build_hotline): the first start is now


def setup_routes(app: web.Application) -> None:
    app.on_startup.append(_service)
    r = app.router
    r.add_get("/api/admin/agents", list_agents)
    r.add_post("/api/admin/agents", create_agent)
    r.add_patch("/api/admin/agents/{agent_id}", change_agent)
    r.add_get("/api/admin/queues", list_queues)
    r.add_post("/api/admin/queues", create_queue)
    r.add_patch("/api/admin/queues/{name}", change_queue)
    r.add_get("/api/admin/users", list_users)
    r.add_post("/api/admin/users", create_user)
    r.add_post("/api/admin/users/{username}", user_action)
    r.add_get("/api/admin/audit", audit)
    r.add_get("/api/admin/notices/preview", preview_notice)
