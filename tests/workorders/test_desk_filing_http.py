"""/api/calls/{call_id}/order and /attach: the desk files the call it is on, and only that one."""
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.models import AgentAttempt, Call
from callcenter.web.keys import SESSIONMAKER
from tests.workorders.test_http import auth
from tests.workorders.test_http import client as client  # the fixture, re-used


@pytest.fixture
async def ringing(client):
    """Agent 1001 on call-2 (answered, still up); call-3 ringing 1001's phone, not answered yet."""
    async with client.app_[SESSIONMAKER]() as session, session.begin():
        for call_id, agent_id in (("call-2", "1001"), ("call-3", None)):
            session.add(Call(id=call_id, uniqueid=call_id, linkedid=call_id, channel="PJSIP/trunk-2",
                             caller_number="13800000001", arrived_at=datetime.now(UTC) - timedelta(seconds=20),
                             category="leak", agent_id=agent_id))
            session.add(AgentAttempt(call_id=call_id, agent_id="1001", started_at=datetime.now(UTC)))
    return client


async def test_the_agent_rung_opens_the_calls_order_and_dispatches_it(ringing) -> None:
    r = await ringing.get("/api/calls/call-2/order", headers=auth("agent"))
    assert r.status == 200 and await r.json() == {"order": None, "attached": False}
    r = await ringing.post("/api/calls/call-2/order", json={"category": "leak", "description": "管道破裂",
                                                            "address": "幸福路 1 号"}, headers=auth("agent"))
    assert r.status == 200, await r.text()
    body = await r.json()
    order = body["order"]
    assert not body["attached"] and (order["unit"], order["urgency"], order["address"]) == (
        "repair_team", "urgent", "幸福路 1 号")
    assert order["dispatch_by"] and order["arrive_by"]
    r = await ringing.post(f"/api/orders/{order['id']}/events", json={"event": "dispatch"}, headers=auth("agent"))
    assert (await r.json())["order"]["state"] == "dispatched"
    again = await (await ringing.get("/api/calls/call-2/order", headers=auth("agent"))).json()
    assert again["order"]["id"] == order["id"] and again["order"]["state"] == "dispatched"


async def test_attach_to_the_callers_open_order(ringing) -> None:
    r = await ringing.post("/api/calls/call-2/attach", json={"order_id": ringing.order_id}, headers=auth("agent"))
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["attached"] and body["order"]["id"] == ringing.order_id
    r = await ringing.post("/api/calls/call-2/order", json={}, headers=auth("agent"))
    assert r.status == 409 and f"attached to order {ringing.order_id}" in (await r.json())["error"]


async def test_another_agents_call_and_bad_input_are_refused_naming_the_field(ringing) -> None:
    r = await ringing.post("/api/calls/call-2/order", json={}, headers=auth("agent2"))
    assert r.status == 403 and "not yours" in (await r.json())["error"]
    assert (await ringing.post("/api/calls/call-2/attach", json={"order_id": 1}, headers=auth("agent2"))).status == 403
    assert (await ringing.get("/api/calls/nope/order", headers=auth("agent"))).status == 404
    r = await ringing.post("/api/calls/call-2/attach", json={}, headers=auth("agent"))
    assert r.status == 400 and "order_id" in (await r.json())["error"]
    r = await ringing.post("/api/calls/call-2/attach", json={"order_id": 1, "outage_id": 1}, headers=auth("agent"))
    assert r.status == 400 and "order_id" in (await r.json())["error"]
    r = await ringing.post("/api/calls/call-2/attach", json={"order_id": 0}, headers=auth("agent"))
    assert r.status == 400 and "order_id" in (await r.json())["error"]
    r = await ringing.post("/api/calls/call-2/attach", json={"outage_id": 12345}, headers=auth("agent"))
    assert r.status == 404 and "no outage 12345" in (await r.json())["error"]
    r = await ringing.post("/api/calls/call-2/order", json={"category": "volcano"}, headers=auth("agent"))
    assert r.status == 400 and "volcano" in (await r.json())["error"]
    r = await ringing.post("/api/calls/" + "x" * 40 + "/order", json={}, headers=auth("agent"))
    assert r.status == 404 and "call_id" in (await r.json())["error"]   # a path that names nothing
    # rung, not answered yet: seen, not filed (whoever answers owns the case)
    assert (await ringing.get("/api/calls/call-3/order", headers=auth("agent"))).status == 200
    r = await ringing.post("/api/calls/call-3/order", json={}, headers=auth("agent"))
    assert r.status == 409 and "answer it first" in (await r.json())["error"]
    # a supervisor may file any call
    r = await ringing.post("/api/calls/call-2/order", json={}, headers=auth("sup1"))
    assert r.status == 200
