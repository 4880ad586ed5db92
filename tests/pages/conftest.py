"""The real web app with the pages, on a real database and a real Redis: a user of each role
and work orders in several states for a field unit."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from callcenter.calls.models import Call
from callcenter.pages import http as pages_http
from callcenter.web import access, users
from callcenter.web.app import init_app
from callcenter.workorders import http as orders_http
from callcenter.workorders import lifecycle
from tests.web.test_app import FakeAgents, FakeLive

PASSWORDS = {"agent": "agent-password-1", "sup": "sup-password-1", "admin": "admin-password-1",
             "qa": "qa-password-1", "repair": "repair-password-1", "meter": "meter-password-1"}
LANDING = {"agent": "/agent", "sup": "/wallboard", "admin": "/wallboard", "qa": "/qa", "repair": "/unit"}


@dataclass
class Hotline:
    app: web.Application
    orders: dict[str, int]   # what each seeded order is for -> its id


async def _seed_order(app: web.Application, sessionmaker, call_id: str, number: str, category: str,
                      address: str, steps: list[lifecycle.Event]) -> int:
    async with sessionmaker() as session, session.begin():
        session.add(Call(id=call_id, uniqueid=f"u-{call_id}", linkedid=f"u-{call_id}", channel="PJSIP/trunk-1",
                         caller_number=number, arrived_at=datetime.now(UTC) - timedelta(minutes=2), category=category,
                         agent_id="1001", queue="leak", disposition="answered", closed=True))
    service = app[orders_http.ORDERS]
    order = await service.draft_from_call(call_id)
    await service.correct(order.id, "1001", address=address, description="楼道水管破裂，水流不止")
    for step in steps:
        await service.apply(order.id, step, "1001", "")
    return order.id


@pytest.fixture
async def hotline(settings, sessionmaker, redis_client) -> Hotline:
    redis, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "agent", PASSWORDS["agent"], access.AGENT, agent_id="1001")
        await users.create_user(session, "sup", PASSWORDS["sup"], access.SUPERVISOR)
        await users.create_user(session, "admin", PASSWORDS["admin"], access.ADMIN)
        await users.create_user(session, "qa", PASSWORDS["qa"], access.QA)
        await users.create_user(session, "repair", PASSWORDS["repair"], access.UNIT, unit="repair_team")
        await users.create_user(session, "meter", PASSWORDS["meter"], access.UNIT, unit="meter_service")
    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=FakeLive(), agent_control=FakeAgents(),
                   route_setups=[orders_http.setup_routes, pages_http.setup_routes])
    await orders_http._services(app)
    d = lifecycle.Event.DISPATCH
    orders = {
        "leak": await _seed_order(app, sessionmaker, "call-leak", "13800000001", "leak", "幸福路 12 号 3 单元", [d]),
        "cover": await _seed_order(app, sessionmaker, "call-cover", "13800000002", "manhole_cover",
                                   "人民路与解放路路口", [d]),
        "meter": await _seed_order(app, sessionmaker, "call-meter", "13800000003", "ic_meter", "东湖小区 5 栋", [d]),
    }
    return Hotline(app, orders)
