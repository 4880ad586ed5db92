"""Agent state over HTTP: log in, log out, pause with a reason, ready, extend wrap-up.
An agent acts only for themself; supervisors and admins for anyone.

No dial string comes from a request: an agent rings at their own endpoint, or at one of
their configured `endpoints` named by its id; a supervisor's listen/whisper/barge rings the
supervisor's own `phone`."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

from aiohttp import web
from pydantic import Field, RootModel

from callcenter.ami.errors import AmiError, UnsafeField
from callcenter.calls.engine import EndpointRefused
from callcenter.web import access, api
from callcenter.web.auth import json_error
from callcenter.web.keys import AGENT_CONTROL, AgentControl

PauseReason = Literal["break", "training", "follow_up", "meeting", "after_call_work", "other"]
SpyMode = Literal["listen", "whisper", "barge"]
PAUSE_REASONS, SPY_MODES = get_args(PauseReason), get_args(SpyMode)


class AgentPath(api.Path):
    agent_id: api.Name


class LogInBody(api.Body):
    endpoint: api.Name | None = Field(None, description="one of the agent's configured endpoints; none: the first")


class PauseBody(api.Body):
    reason: PauseReason = "break"


class WrapUpBody(api.Body):
    seconds: float = Field(30, gt=0, le=600)


class SpyBody(api.Body):
    mode: SpyMode = "listen"


class TransferBody(api.Body):
    queue: api.Name | None = None
    agent: api.Name | None = None


class ConsultBody(api.Body):
    agent: api.Name


class AgentDone(api.Answer):
    agent_id: str
    done: str


class AgentList(RootModel[list[dict[str, Any]]]):
    pass


class CallDone(api.Answer):
    """What the engine did to the call (its id and the action's details)."""


ON_A_CALL = {200: CallDone, 404: api.Problem, 409: api.Problem, 503: api.Problem}
BODIES: dict[str, type[api.Body]] = {"login": LogInBody, "logout": api.Empty, "pause": PauseBody,
                                     "ready": api.Empty, "wrapup/extend": WrapUpBody}


def _agent_id(request: web.Request) -> str:
    agent_id = request.match_info["agent_id"]
    user = access.current_user(request)
    if user.role == access.AGENT and user.agent_id != agent_id:
        raise web.HTTPForbidden(text='{"error": "agents act only for themselves"}', content_type="application/json")
    return agent_id


async def _act(request: web.Request, action: str, body: Any) -> web.Response:
    agent_id = _agent_id(request)
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    try:
        if action == "login":
            await control.login(agent_id, body.endpoint)
        elif action == "logout":
            await control.logout(agent_id)
        elif action == "pause":
            reason = body.reason
            await control.pause(agent_id, reason)
        elif action == "ready":
            await control.ready(agent_id)
        elif action == "wrapup/extend":
            seconds = body.seconds
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
    @api.route(summary=f"Agent {action} (an agent only for themself)", path=AgentPath, body=BODIES[action],
               responses={200: AgentDone, 404: api.Problem, 409: api.Problem})
    async def handler(request: web.Request, path: AgentPath, body: Any) -> web.Response:
        return await _act(request, action, body)

    handler.__name__ = f"agent_{action.replace('/', '_')}"
    return handler


@access.allow(access.AGENT, access.SUPERVISOR, access.ADMIN)
@api.route(summary="Every agent and their state", responses={200: AgentList, 409: api.Problem})
async def list_agents(request: web.Request) -> web.Response:
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    return web.json_response(await control.agents())


@access.allow(access.SUPERVISOR)
@api.route(path=AgentPath, body=SpyBody, responses=ON_A_CALL)
async def spy(request: web.Request, path: AgentPath, body: SpyBody) -> web.Response:
    """Listen, whisper or barge on an agent's call from the supervisor's own phone (the user's
    `phone`), supervisors only: {"mode": "listen"}."""
    control = request.app.get(AGENT_CONTROL)
    if control is None:
        return json_error(409, "no engine runs in this process")
    user = access.current_user(request)
    if not user.phone:
        return json_error(409, f"phone: user {user.username} has no phone to ring: an admin sets the user's phone "
                               "(the id of an [[agents]] endpoint)")
    try:
        done = await control.spy(path.agent_id, user.phone, body.mode, user.username)
    except LookupError as exc:
        return json_error(404, str(exc).strip("'\""))
    except UnsafeField as exc:
        return json_error(400, str(exc))
    except ValueError as exc:   # not on a call
        return json_error(409, str(exc))
    except AmiError as exc:
        return json_error(503, f"Asterisk did not take it: {exc}")
    return web.json_response(done)


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
@api.route(path=AgentPath, body=TransferBody, responses=ON_A_CALL)
async def transfer(request: web.Request, path: AgentPath, body: TransferBody) -> web.Response:
    """Blind transfer of the agent's caller: {"queue": "billing"} or {"agent": "1002"}."""
    agent_id = _agent_id(request)
    queue, to_agent = body.queue, body.agent
    return await _on_a_call(request, lambda control: control.transfer(agent_id, queue=queue, to_agent=to_agent))


@access.allow(access.AGENT, access.SUPERVISOR)
@api.route(path=AgentPath, body=ConsultBody, responses=ON_A_CALL)
async def consult(request: web.Request, path: AgentPath, body: ConsultBody) -> web.Response:
    """Attended (consult) transfer: {"agent": "1002"}. The caller waits on hold while the agent
    talks to the colleague; the agent hangs up to hand the caller over."""
    agent_id = _agent_id(request)
    to_agent = body.agent
    return await _on_a_call(request, lambda control: control.consult(agent_id, to_agent))


def _recording(paused: bool) -> Any:
    @access.allow(access.AGENT, access.SUPERVISOR)
    @api.route(path=AgentPath, body=api.Empty, responses=ON_A_CALL)
    async def handler(request: web.Request, path: AgentPath, body: api.Empty) -> web.Response:
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
