"""Agent state over HTTP: log in, log out, pause with a reason, ready, extend wrap-up.
An agent acts only for themself; supervisors and admins for anyone.

No dial string comes from a request: an agent rings at their own endpoint, or at one of
their configured `endpoints` named by its id; a supervisor's listen/whisper/barge rings the
supervisor's own `phone`."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callcenter.ami.errors import AmiError, UnsafeField
from callcenter.calls.engine import EndpointRefused
from callcenter.web import access
from callcenter.web.auth import json_body, json_error
from callcenter.web.keys import AGENT_CONTROL, AgentControl

PAUSE_REASONS = ("break", "training", "follow_up", "meeting", "after_call_work", "other")


def _agent_id(request: web.Request) -> str:
    agent_id = request.match_info["agent_id"]
    user = access.current_user(request)
    if user.role == access.AGENT and user.agent_id != agent_id:
        raise web.HTTPForbidden(text='{"error": "agents act only for themselves"}', content_type="application/json")
    return agent_id


async def _act(request: web.Request, action: str) -> web.Response:
    agent_id = _agent_id(request)
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    body = await json_body(request)
    try:
        if action == "login":
            endpoint = body.get("endpoint")
            if endpoint is not None and not isinstance(endpoint, str):
                return json_error(400, "endpoint: the id of one of your phones, as text (or none: your own)")
            await control.login(agent_id, endpoint)
        elif action == "logout":
            await control.logout(agent_id)
        elif action == "pause":
            reason = str(body.get("reason", "break"))
            if reason not in PAUSE_REASONS:
                return json_error(400, f"unknown pause reason {reason!r} (reasons: {', '.join(PAUSE_REASONS)})")
            await control.pause(agent_id, reason)
        elif action == "ready":
            await control.ready(agent_id)
        elif action == "wrapup/extend":
            seconds = body.get("seconds", 30)
            if not isinstance(seconds, int | float) or not 0 < seconds <= 600:
                return json_error(400, "seconds: a number from 1 to 600")
            await control.extend_wrapup(agent_id, float(seconds))
    except EndpointRefused as exc:
        return json_error(400, str(exc))
    except LookupError as exc:
        return json_error(404, str(exc).strip("'\""))
    except ValueError as exc:
        return json_error(409, str(exc))
    return web.json_response({"agent_id": agent_id, "done": action})


def _action(action: str) -> Any:
    @access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
    async def handler(request: web.Request) -> web.Response:
        return await _act(request, action)

    handler.__name__ = f"agent_{action.replace('/', '_')}"
    return handler


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
async def list_agents(request: web.Request) -> web.Response:
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    return web.json_response(await control.agents())


@access.allow(access.SUPERVISOR)
async def spy(request: web.Request) -> web.Response:
    """Listen, whisper or barge on an agent's call from the supervisor's own phone (the user's
    `phone`), supervisors only: {"mode": "listen"}."""
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    body = await json_body(request)
    if "endpoint" in body:
        return json_error(400, "endpoint: not taken; the supervisor's own phone (users' phone setting) rings")
    mode = body.get("mode", "listen")
    if not isinstance(mode, str) or mode not in SPY_MODES:
        return json_error(400, f"mode {str(mode)[:20]!r}: one of {', '.join(SPY_MODES)}")
    user = access.current_user(request)
    if not user.phone:
        return json_error(409, f"user {user.username} has no phone to ring: an admin sets the user's phone "
                               "(the id of an [[agents]] endpoint)")
    try:
        done = await control.spy(request.match_info["agent_id"], user.phone, mode, user.username)
    except LookupError as exc:
        return json_error(404, str(exc).strip("'\""))
    except UnsafeField as exc:
        return json_error(400, str(exc))
    except ValueError as exc:   # not on a call
        return json_error(409, str(exc))
    except AmiError as exc:
        return json_error(503, f"Asterisk did not take it: {exc}")
    return web.json_response(done)


SPY_MODES = ("listen", "whisper", "barge")


async def _on_a_call(request: web.Request, work: Callable[[AgentControl], Awaitable[dict[str, Any]]]) -> web.Response:
    """Something the engine does to an agent's call, and its refusals as the errors they mean."""
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    try:
        return web.json_response(await work(control))
    except LookupError as exc:
        return json_error(404, str(exc).strip("'\""))
    except ValueError as exc:
        return json_error(409, str(exc))
    except AmiError as exc:
        return json_error(503, f"Asterisk did not take it: {exc}")


@access.allow(access.AGENT, access.SUPERVISOR)
async def transfer(request: web.Request) -> web.Response:
    """Blind transfer of the agent's caller: {"queue": "billing"} or {"agent": "1002"}."""
    agent_id = _agent_id(request)
    body = await json_body(request)
    queue, to_agent = body.get("queue"), body.get("agent")
    if not all(v is None or isinstance(v, str) for v in (queue, to_agent)):
        return json_error(400, "queue, agent: text")
    return await _on_a_call(request, lambda control: control.transfer(agent_id, queue=queue, to_agent=to_agent))


@access.allow(access.AGENT, access.SUPERVISOR)
async def consult(request: web.Request) -> web.Response:
    """Attended (consult) transfer: {"agent": "1002"}. The caller waits on hold while the agent
    talks to the colleague; the agent hangs up to hand the caller over."""
    agent_id = _agent_id(request)
    to_agent = (await json_body(request)).get("agent")
    if not isinstance(to_agent, str) or not to_agent:
        return json_error(400, "agent: the colleague's id, as text")
    return await _on_a_call(request, lambda control: control.consult(agent_id, to_agent))


def _recording(paused: bool) -> Any:
    @access.allow(access.AGENT, access.SUPERVISOR)
    async def handler(request: web.Request) -> web.Response:
        """Pause (sensitive data: an ID or bank card number) or resume the call's recording."""
        agent_id = _agent_id(request)
        return await _on_a_call(request, lambda control: control.pause_recording(agent_id, paused))

    handler.__name__ = "recording_pause" if paused else "recording_resume"
    return handler


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/agents/{agent_id}/spy", spy)
    app.router.add_post("/api/agents/{agent_id}/transfer", transfer)
    app.router.add_post("/api/agents/{agent_id}/consult", consult)
    app.router.add_post("/api/agents/{agent_id}/recording/pause", _recording(True))
    app.router.add_post("/api/agents/{agent_id}/recording/resume", _recording(False))
    app.router.add_get("/api/agents", list_agents)
    for action in ("login", "logout", "pause", "ready", "wrapup/extend"):
        app.router.add_post(f"/api/agents/{{agent_id}}/{action}", _action(action))
