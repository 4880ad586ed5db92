"""The API keeps its published contract: schemathesis, fed /api/openapi.json, throws generated
input at every operation of the running app (every domain's routes, a real SQLite database,
a real Redis) as an admin and as each other role, and no answer may be a 5xx or break the
document's schema. A fixed seed and a bounded number of examples keep it reproducible and
within `make test`'s time.
"""
from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from callcenter.app import domain_routes
from callcenter.calls.models import Call
from callcenter.notices import service as notices_service
from callcenter.web import access, api, users
from callcenter.web.app import init_app
from callcenter.workorders import http as orders_http
from tests.calls.fake_line import agent, running_line
from tests.conftest import fresh_sqlite
from tests.web.test_app import FakeLive

SEED = 20261201
# (role, what to generate, examples per operation): admin reaches the most routes, in input that
# fits the document and in input that does not; each other role its own routes.
# The runs marked "on seeded" aim every id at things that exist (an order, a call, a handover)
# so that handlers get past their look-ups.
# (The counts keep the whole run near a minute on CI's machine as the routes grow.)
RUNS = [(access.ADMIN, GenerationMode.POSITIVE, 10, False), (access.ADMIN, GenerationMode.NEGATIVE, 6, False),
        (access.ADMIN, GenerationMode.POSITIVE, 6, True), (access.SUPERVISOR, GenerationMode.POSITIVE, 5, False),
        (access.AGENT, GenerationMode.POSITIVE, 6, True), (access.QA, GenerationMode.POSITIVE, 5, False),
        (access.UNIT, GenerationMode.POSITIVE, 6, True)]
CALL_ID = str(uuid.uuid4())
GATEWAY_ONLY = {("get", "/api/sms/mo")}
BUDGET_S = 300.0             # the whole run; past it the test fails rather than hang `make test`
TOKENS = {access.ADMIN: "admin-token", access.SUPERVISOR: "sup-token", access.AGENT: "agent-token",
          access.QA: "qa-token", access.UNIT: "unit-token"}


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """SQLite only: the contract is the web layer's; the database tests run on both."""
    return fresh_sqlite(migrated_sqlite, tmp_path / "test.db")


def _silent(text: str, target: Path, *args: Any) -> Path:
    target.write_bytes(b"")
    return target


@pytest.fixture
async def hotline(settings, sessionmaker, redis_client, monkeypatch) -> AsyncIterator[web.Application]:
    """The web app over a real engine (on the fake AMI server), as every domain serves it."""
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "redis": settings.redis.model_copy(update={"prefix": prefix}),
    })
    # Notices are spoken by espeak-ng; what it makes of hostile text is the notices' own test.
    monkeypatch.setattr(notices_service, "speak", _silent)
    async with sessionmaker() as session, session.begin():
        for role, extra in ((access.ADMIN, {}), (access.SUPERVISOR, {"phone": "1009"}),
                            (access.AGENT, {"agent_id": "1001"}), (access.QA, {}),
                            (access.UNIT, {"unit": "repair_team"})):
            user = await users.create_user(session, role, f"{role}-password-1", role, **extra)
            await users.issue_token(session, user, token=TOKENS[role])
        session.add(Call(id=CALL_ID, uniqueid="u1", linkedid="u1", channel="PJSIP/trunk-1",
                         caller_number="13800000001", arrived_at=datetime.now(UTC), category="leak", agent_id="1001",
                         disposition="answered", closed=True))
    async with running_line(settings, sessionmaker, [agent("1001"), agent("1002"), agent("1009")]) as line:
        yield init_app(line.engine.settings, sessionmaker=sessionmaker, redis=client, live=FakeLive(),
                       agent_control=line.engine, route_setups=domain_routes())


def routes_of(app: web.Application) -> Iterator[tuple[str, str, Any]]:
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path")
        for route in resource:
            if route.method not in ("HEAD", "*"):
                yield route.method.lower(), template, route.handler


async def test_the_document_lists_every_route_with_its_roles(aiohttp_client, hotline) -> None:
    client = await aiohttp_client(hotline)
    assert (await client.get(api.OPENAPI_PATH)).status == 401
    response = await client.get(api.OPENAPI_PATH, headers={"Authorization": f"Bearer {TOKENS[access.UNIT]}"})
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    listed = {(method, path): op for path, ops in document["paths"].items() for method, op in ops.items()}
    expected = list(routes_of(hotline))
    assert len(expected) > 40
    assert set(listed) == {(method, path) for method, path, _ in expected}
    for method, path, handler in expected:
        roles = ["public"] if access.is_public(handler) else sorted(access.allowed_roles(handler))
        assert roles, f"{method} {path} is open to no role"
        assert listed[method, path]["x-roles"] == roles, (method, path)
    assert listed["post", "/api/agents/{agent_id}/spy"]["x-roles"] == [access.SUPERVISOR]
    spy = listed["post", "/api/agents/{agent_id}/spy"]["requestBody"]["content"]["application/json"]["schema"]
    body = document["components"]["schemas"][spy["$ref"].rsplit("/", 1)[1]]
    assert set(body["properties"]) == {"mode"} and body["additionalProperties"] is False
    orders = {p["name"]: p for p in listed["get", "/api/orders"]["parameters"]}
    assert orders["limit"]["schema"]["maximum"] == 500 and orders["limit"]["schema"]["minimum"] == 1
    assert set(document["components"]["securitySchemes"]) == {"bearer", "session", "csrf"}


async def test_bad_input_is_a_4xx_that_names_the_field(aiohttp_client, hotline) -> None:
    """The inputs that gave 500s before: each is now refused and says which field."""
    client = await aiohttp_client(hotline)
    admin = {"Authorization": f"Bearer {TOKENS[access.ADMIN]}"}
    unit = {"Authorization": f"Bearer {TOKENS[access.UNIT]}"}
    for raw in (b"{bad", b"[1,2]", b'"x"'):
        r = await client.post("/api/login", data=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400 and (await r.json())["fields"][0]["field"] == "body", raw
    for limit in ("abc", "1e3", "-1", "0", "501"):
        r = await client.get(f"/api/orders?limit={limit}", headers=admin)
        assert r.status == 400 and (await r.json())["error"].startswith("limit: "), limit
    r = await client.get("/api/orders/99999999999999999999", headers=admin)
    assert r.status == 404 and (await r.json())["fields"][0]["field"] == "order_id"
    r = await client.get("/api/handovers/99999999999999999999", headers=admin)
    assert r.status == 404
    r = await client.delete("/api/notices/99999999999999999999", headers=admin)
    assert r.status == 404
    for query, field in (("week=9999-W52", "week"), ("week=2025-W53", "week"), ("month=0001-01", "month"),
                         ("date=9999-12-31", "date"), ("date=0001-01-01", "date")):
        kind = field.replace("week", "weekly").replace("month", "monthly").replace("date", "daily")
        r = await client.get(f"/api/reports/{kind}?{query}", headers=admin)
        assert r.status == 400 and (await r.json())["fields"][0]["field"] == field, query
    for query in ("from=9999-12-31", "to=0001-01-01", "min_score=nan", "limit=1e3", "offset=-1"):
        r = await client.get(f"/api/qa/search?{query}", headers=admin)
        assert r.status == 400, query
    r = await client.get("/api/qa/assignments?week=9999-W52", headers=admin)
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "week"
    r = await client.post("/api/qa/assignments/run", json={"week": "9999-W52"}, headers=admin)
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "week"
    for shift in ({"shift_start": "9999-12-31T23:00:00+00:00", "shift_end": "9999-12-31T23:59:00+00:00"},
                  {"shift_start": "2026-11-23T08:00:00-14:30", "shift_end": "2026-11-23T20:00:00+08:00"}):
        r = await client.post("/api/handovers", json=shift, headers=admin)
        assert r.status == 400 and (await r.json())["fields"][0]["field"] == "shift_start", shift
    r = await client.post("/api/notices", headers=admin, json={
        "kind": "planned", "areas": ["幸福小区"], "starts_at": "0001-01-01T00:00:00-14:00",
        "ends_at": "9999-12-31T00:00:00+14:00", "text": "停水"})
    assert r.status == 400 and {f["field"] for f in (await r.json())["fields"]} == {"starts_at", "ends_at"}
    r = await client.post("/api/notices", headers=admin, json={
        "kind": "planned", "areas": ["幸福小区"], "starts_at": "2026-12-20T08:00:00+08:00",
        "ends_at": "2026-12-20T18:00:00+08:00", "text": "停" * 501})
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "text"
    r = await client.post("/api/unit/orders/1/extend", headers=unit,
                          json={"reason": "管材", "new_deadline": "9999-12-31T00:00:00+08:00"})
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "new_deadline"
    r = await client.patch("/api/orders/1", headers=admin, json={"description": "a\x00b"})
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "description"
    big = b'{"description": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = await client.patch("/api/orders/1", headers={**admin, "Content-Type": "application/json"}, data=io.BytesIO(big))
    assert r.status == 413 and (await r.json())["fields"][0]["field"] == "body"


def _operations(schema: Any, role: str, last_run: bool) -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        roles = operation.definition.raw.get("x-roles", [])
        if operation.path == "/api/logout" and not last_run:
            continue
        if role in roles or (role == access.ADMIN and "public" in roles):
            found.append(operation)
    # Signing out last, in the role's last run: whatever it ends must not end the others' log-in.
    return sorted(found, key=lambda op: (op.path == "/api/logout", op.path, op.method))


def _fuzz(base_url: str, run: tuple[str, GenerationMode, int, bool], seeded: dict[str, Any], deadline: float,
          answers: dict[tuple[str, str], set[int]]) -> list[str]:
    role, mode, examples, on_seeded = run
    headers = {"Authorization": f"Bearer {TOKENS[role]}"}
    # An agent acts only for themself: aim at their own id, or every agent route is a 403.
    fixed = {**(seeded if on_seeded else {}), **({"agent_id": "1001"} if role == access.AGENT else {})}
    schema = schemathesis.openapi.from_url(f"{base_url}{api.OPENAPI_PATH}", headers=headers, timeout=10)
    failures: list[str] = []
    session = requests.Session()
    last_run = run == [r for r in RUNS if r[0] == role][-1]
    for operation in _operations(schema, role, last_run):
        raw = operation.definition.raw
        if mode == GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
            continue   # nothing to get wrong
        if time.monotonic() > deadline:
            failures.append(f"out of time before {operation.method.upper()} {operation.path}")
            break

        @seed(SEED)
        @settings(max_examples=examples, deadline=None, database=None, derandomize=False, print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(mode, path_parameters={k: v for k, v in fixed.items()
                                                                if f"{{{k}}}" in operation.path}))
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=10,
                                 allow_redirects=False)
            answers.setdefault((case.operation.method.lower(), case.operation.path), set()).add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:   # the failure, with the smallest example hypothesis found
            failures.append(f"{role} {mode}{' on seeded' if on_seeded else ''} {operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    return failures


@pytest.mark.timeout(BUDGET_S + 60)
async def test_schemathesis_finds_no_5xx_and_no_answer_off_the_schema(hotline) -> None:
    server = TestServer(hotline, host="127.0.0.1")
    await server.start_server()
    try:
        base_url = str(server.make_url("")).rstrip("/")
        deadline = time.monotonic() + BUDGET_S
        failures: list[str] = []
        answers: dict[tuple[str, str], set[int]] = {}
        order = await hotline[orders_http.ORDERS].draft_from_call(CALL_ID)
        start = datetime.now(UTC).replace(microsecond=0)
        handover = await hotline[orders_http.HANDOVERS].draft(start - timedelta(hours=8), start, access.SUPERVISOR)
        seeded = {"order_id": order.id, "call_id": CALL_ID, "handover_id": handover.id}
        for run in RUNS:
            failures += await asyncio.to_thread(_fuzz, base_url, run, seeded, deadline, answers)
    finally:
        await server.close()
    assert not failures, "\n\n".join(failures)
    # Every operation was reached past the log-in by some role (the document itself is not fuzzed).
    expected = {(method, path) for method, path, _ in routes_of(hotline) if path != api.OPENAPI_PATH}
    assert set(answers) == expected
    # Kannel's reply route takes only the gateway's own token (tests/sms drive it as Kannel does).
    assert not [op for op, statuses in answers.items() if statuses <= {401, 403} and op not in GATEWAY_ONLY]
