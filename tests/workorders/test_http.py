"""The work-order API: agents correct and move orders, units act on their own orders only,
supervisors read reports and run the shift handover."""
from datetime import UTC, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from callcenter.calls.models import Call
from callcenter.web import access, users
from callcenter.web.app import init_app
from callcenter.workorders import http as orders_http
from tests.web.test_app import FakeLive

TOKENS = {"agent": "agent-token", "repair": "repair-token", "meter": "meter-token", "sup1": "sup1-token",
          "sup2": "sup2-token", "agent2": "agent2-token", "admin": "admin-token"}


@pytest.fixture
async def client(aiohttp_client, settings, sessionmaker, redis_client):
    redis, _ = redis_client
    async with sessionmaker() as session, session.begin():
        for name, role, extra in (("agent", access.AGENT, {"agent_id": "1001"}),
                                  ("repair", access.UNIT, {"unit": "repair_team"}),
                                  ("meter", access.UNIT, {"unit": "meter_service"}),
                                  ("sup1", access.SUPERVISOR, {}), ("sup2", access.SUPERVISOR, {}),
                                  ("agent2", access.AGENT, {"agent_id": "1002"}), ("admin", access.ADMIN, {})):
            user = await users.create_user(session, name, f"{name}-password-1", role, **extra)
            await users.issue_token(session, user, token=TOKENS[name])
        session.add(Call(id="call-1", uniqueid="u1", linkedid="u1", channel="PJSIP/trunk-1", caller_number="13800000001",
                         arrived_at=datetime.now(UTC) - timedelta(minutes=1), category="leak", agent_id="1001",
                         disposition="answered", closed=True))
    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=FakeLive(),
                   route_setups=[orders_http.setup_routes])
    http = await aiohttp_client(app)
    order = await app[orders_http.ORDERS].draft_from_call("call-1")
    http.order_id = order.id
    http.app_ = app
    return http


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


async def test_agent_completes_dispatches_and_the_unit_reports_back(client) -> None:
    oid = client.order_id
    r = await client.patch(f"/api/orders/{oid}", json={"address": "幸福路 1 号", "description": "路面冒水"},
                           headers=auth("agent"))
    assert r.status == 200 and (await r.json())["order"]["needs_review"] is False
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "dispatch"}, headers=auth("agent"))
    assert (await r.json())["order"]["state"] == "dispatched"
    listed = await (await client.get("/api/unit/orders", headers=auth("repair"))).json()
    assert [o["id"] for o in listed["orders"]] == [oid]
    assert (await (await client.get("/api/unit/orders", headers=auth("meter"))).json())["orders"] == []
    for action in ("acknowledge", "arrive", "resolve"):
        r = await client.post(f"/api/unit/orders/{oid}/{action}", json={"result": "阀门已关"}, headers=auth("repair"))
        assert r.status == 200, await r.text()
    body = await (await client.get(f"/api/orders/{oid}", headers=auth("agent"))).json()
    assert body["order"]["state"] == "resolved"
    assert [(e["event"], e["actor"]) for e in body["history"]][-3:] == [
        ("acknowledge", "unit:repair_team"), ("arrive", "unit:repair_team"), ("resolve", "unit:repair_team")]
    # leak is followed up always: the resolution scheduled one
    follow_ups = await (await client.get("/api/followups", headers=auth("agent"))).json()
    assert follow_ups["follow_ups"] == []   # scheduled for a call first; not on anyone's list yet


async def test_a_unit_cannot_touch_another_units_order_and_nothing_changes(client) -> None:
    oid = client.order_id
    r = await client.post(f"/api/unit/orders/{oid}/acknowledge", headers=auth("meter"))
    assert r.status == 403 and "another unit" in (await r.json())["error"]
    assert (await client.get(f"/api/orders/{oid}", headers=auth("meter"))).status == 403
    body = await (await client.get(f"/api/orders/{oid}", headers=auth("agent"))).json()
    assert body["order"]["state"] == "accepted" and len(body["history"]) == 1
    assert (await client.get("/api/unit/orders", headers=auth("agent"))).status == 403   # units only


async def test_bad_input_is_refused_with_the_reason(client) -> None:
    oid = client.order_id
    r = await client.patch(f"/api/orders/{oid}", json={"category": "volcano"}, headers=auth("agent"))
    assert r.status == 400 and "unknown category 'volcano'" in (await r.json())["error"]
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "archive"}, headers=auth("agent"))
    assert r.status == 400   # agents do not archive
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "adjudicate"}, headers=auth("sup1"))
    assert r.status == 409 and "does not fit" in (await r.json())["error"]
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "extend", "reason": "管线复杂",
                                                             "new_deadline": past}, headers=auth("agent"))
    assert r.status == 400 and "in the past" in (await r.json())["error"]
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "extend", "new_deadline": "soon"},
                          headers=auth("agent"))
    assert r.status == 400
    assert (await client.get("/api/orders/999999", headers=auth("agent"))).status == 404
    assert (await client.get("/api/orders/abc", headers=auth("agent"))).status == 404


async def test_an_extension_moves_the_running_deadline_with_its_reason(client) -> None:
    oid = client.order_id
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    r = await client.post(f"/api/orders/{oid}/events",
                          json={"event": "extend", "reason": "等待材料", "new_deadline": later.isoformat()},
                          headers=auth("agent"))
    body = await r.json()
    assert r.status == 200 and datetime.fromisoformat(body["order"]["dispatch_by"]) == later
    history = (await (await client.get(f"/api/orders/{oid}", headers=auth("agent"))).json())["history"]
    assert history[-1]["event"] == "extend" and "等待材料" in history[-1]["reason"]


async def test_reports_over_http_for_supervisors_only(client) -> None:
    week = datetime.now(UTC).isocalendar()
    name = f"{week.year}-W{week.week:02d}"
    r = await client.get(f"/api/reports/weekly?week={name}&format=xlsx", headers=auth("sup1"))
    assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
    import io
    values = {row[0]: row[2] for row in load_workbook(io.BytesIO(await r.read()))["indicators"].iter_rows(
        values_only=True) if row and len(row) > 2}
    assert values["orders_taken"] == 1 and values["calls"] == 1
    assert (await client.get(f"/api/reports/weekly?week={name}", headers=auth("agent"))).status == 403
    assert (await client.get("/api/reports/weekly?week=soon", headers=auth("sup1"))).status == 400


async def test_the_handover_is_accepted_by_the_incoming_shift_before_the_outgoing_closes(client) -> None:
    now = datetime.now(UTC)
    r = await client.post("/api/handovers", json={"shift_start": (now - timedelta(hours=8)).isoformat(),
                                                  "shift_end": now.isoformat()}, headers=auth("sup1"))
    assert r.status == 200, await r.text()
    handover = (await r.json())["handover"]
    assert handover["content"]["calls"]["total"] == 1
    assert handover["content"]["unacknowledged_orders"] == []
    hid = handover["id"]
    r = await client.post(f"/api/handovers/{hid}/close", headers=auth("sup1"))
    assert r.status == 409 and "not accepted yet" in (await r.json())["error"]
    r = await client.post(f"/api/handovers/{hid}/accept", headers=auth("sup1"))
    assert r.status == 409   # the one who drafted it does not accept it
    assert (await client.patch(f"/api/handovers/{hid}", json={"notes": "3号泵站检修"}, headers=auth("sup1"))).status == 200
    assert (await client.post(f"/api/handovers/{hid}/accept", headers=auth("sup2"))).status == 200
    closed = await client.post(f"/api/handovers/{hid}/close", headers=auth("sup1"))
    body = (await closed.json())["handover"]
    assert closed.status == 200 and body["accepted_by"] == "sup2" and body["notes"] == "3号泵站检修"
    assert (await client.get("/api/handovers/999", headers=auth("sup1"))).status == 404


async def test_the_flood_season_handover_carries_flood_control_notes(sessionmaker) -> None:
    from callcenter.workorders.handover import HandoverError, HandoverService

    service = HandoverService(sessionmaker, "Asia/Shanghai")
    july = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    summer = await service.draft(july, july + timedelta(hours=8), "sup1")
    assert summer.content["flood_control"] == {"orders": [], "notes": ""}
    summer = await service.add_notes(summer.id, "sup1", flood_notes="河道水位正常")
    assert summer.content["flood_control"]["notes"] == "河道水位正常"
    winter = await service.draft(july.replace(month=12), july.replace(month=12) + timedelta(hours=8), "sup1")
    assert "flood_control" not in winter.content
    with pytest.raises(HandoverError, match="outside the flood season"):
        await service.add_notes(winter.id, "sup1", flood_notes="x")


async def history(client, oid: int) -> list[tuple[str, str]]:
    body = await (await client.get(f"/api/orders/{oid}", headers=auth("agent"))).json()
    return [(e["event"], e["actor"]) for e in body["history"]]


async def test_only_the_owning_agent_a_supervisor_or_an_admin_change_an_order(client) -> None:
    """首问负责制: agent 1002 may read agent 1001's order but not change it."""
    oid = client.order_id
    assert (await client.get(f"/api/orders/{oid}", headers=auth("agent2"))).status == 200
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    attempts = [("patch", f"/api/orders/{oid}", {"description": "不是我的"})] + [
        ("post", f"/api/orders/{oid}/events", body) for body in (
            {"event": "dispatch"}, {"event": "resolve"}, {"event": "escalate", "reason": "x"},
            {"event": "extend", "reason": "x", "new_deadline": later})]
    for method, url, body in attempts:
        r = await getattr(client, method)(url, json=body, headers=auth("agent2"))
        assert r.status == 403, body
        assert "首问负责制" in (await r.json())["error"], body
    assert await history(client, oid) == [("draft", "1001")]
    for who, body in (("sup1", {"event": "escalate", "reason": "催办"}), ("admin", {"event": "escalate"}),
                      ("agent", {"event": "escalate"})):
        r = await client.post(f"/api/orders/{oid}/events", json=body, headers=auth(who))
        assert r.status == 200, who
    r = await client.patch(f"/api/orders/{oid}", json={"description": "路面冒水"}, headers=auth("sup1"))
    assert r.status == 200


async def test_a_field_order_the_unit_took_on_is_resolved_by_the_unit_or_a_supervisor(client) -> None:
    oid = client.order_id
    assert (await client.post(f"/api/orders/{oid}/events", json={"event": "dispatch"}, headers=auth("agent"))).status == 200
    for step in ("acknowledge", "arrive"):
        assert (await client.post(f"/api/unit/orders/{oid}/{step}", headers=auth("repair"))).status == 200
        r = await client.post(f"/api/orders/{oid}/events", json={"event": "resolve"}, headers=auth("agent"))
        assert r.status == 403 and "the unit resolves it" in (await r.json())["error"], step
    r = await client.post(f"/api/unit/orders/{oid}/resolve", headers=auth("meter"))
    assert r.status == 403   # another unit
    r = await client.post(f"/api/orders/{oid}/events", json={"event": "resolve", "reason": "现场确认"},
                          headers=auth("sup1"))
    assert r.status == 200 and (await r.json())["order"]["state"] == "resolved"


async def test_an_agent_may_resolve_their_own_desk_order(client) -> None:
    r = await client.post(f"/api/orders/{client.order_id}/events", json={"event": "resolve"}, headers=auth("agent"))
    assert r.status == 200 and (await r.json())["order"]["state"] == "resolved"


async def test_an_automated_follow_up_is_answered_only_by_the_dialer(client) -> None:
    followups = client.app_[orders_http.FOLLOWUPS]
    follow_up = await followups.schedule(client.order_id)
    url = f"/api/followups/{follow_up.id}/answer"
    for who in ("agent", "sup1"):
        r = await client.post(url, json={"digit": "1"}, headers=auth(who))
        assert r.status == 409 and "dialer" in (await r.json())["error"], who
    await followups.record_answer(follow_up.id, None)           # the dialer: nobody answered
    listed = await (await client.get("/api/followups", headers=auth("agent"))).json()
    assert [f["id"] for f in listed["follow_ups"]] == [follow_up.id]
    r = await client.post(url, json={"digit": "1"}, headers=auth("agent2"))   # a person called back
    assert r.status == 200 and (await r.json())["follow_up"]["state"] == "satisfied"
    for bad in ("99999999999999999999", "nonsense", "00000000-0000-0000-0000-000000000000"):
        r = await client.post(f"/api/followups/{bad}/answer", json={"digit": "1"}, headers=auth("agent"))
        assert r.status == 404, bad


async def test_a_unit_may_not_extend_its_own_deadline_to_9999_12_31(client) -> None:
    oid = client.order_id
    assert (await client.post(f"/api/orders/{oid}/events", json={"event": "dispatch"}, headers=auth("agent"))).status == 200
    r = await client.post(f"/api/unit/orders/{oid}/extend", json={"reason": "等待材料",
                                                                 "new_deadline": "9999-12-31T00:00:00+08:00"},
                          headers=auth("repair"))
    assert r.status == 400 and (await r.json())["error"].startswith("new_deadline")
    assert [event for event, _ in await history(client, oid)] == ["draft", "dispatch"]


async def test_extensions_are_bounded_by_the_categorys_policy(client) -> None:
    """A leak (max_extension_hours 24): the unit may not extend its deadline to 9999-12-31, nor
    past 24 h beyond the running one; a supervisor may grant more."""
    oid = client.order_id
    assert (await client.post(f"/api/orders/{oid}/events", json={"event": "dispatch"}, headers=auth("agent"))).status == 200
    order = (await (await client.get(f"/api/orders/{oid}", headers=auth("repair"))).json())["order"]
    arrive_by = datetime.fromisoformat(order["arrive_by"])
    url = f"/api/unit/orders/{oid}/extend"

    def extend(deadline: str, who: str = "repair"):
        body = {"reason": "等待材料", "new_deadline": deadline}   # the unit's route takes no event name
        return client.post(url if who == "repair" else f"/api/orders/{oid}/events",
                           json=body if who == "repair" else {"event": "extend", **body}, headers=auth(who))

    for absurd in ("9999-12-31T00:00:00+08:00", "9999-12-31", "0001-01-01T00:00:00+00:00",
                   (arrive_by + timedelta(hours=1)).replace(tzinfo=None).isoformat(),          # naive
                   (arrive_by + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-14))).isoformat(),
                   (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),                    # past
                   (arrive_by - timedelta(minutes=1)).isoformat(), "soon", ""):               # before the current
        r = await extend(absurd)
        assert r.status == 400, absurd
        assert (await r.json())["error"].startswith("new_deadline"), absurd
    too_far = (arrive_by + timedelta(hours=25)).isoformat()
    for who in ("repair", "agent"):
        r = await extend(too_far, who)
        assert r.status == 403, who
        assert "new_deadline" in (error := (await r.json())["error"]) and "supervisor" in error, who
    r = await extend((arrive_by + timedelta(hours=24)).isoformat())
    assert r.status == 200
    assert datetime.fromisoformat((await r.json())["order"]["arrive_by"]) == arrive_by + timedelta(hours=24)
    r = await extend((arrive_by + timedelta(days=5)).isoformat(), "sup1")   # the running one (result_by now)
    order = (await r.json())["order"]
    assert r.status == 200 and arrive_by + timedelta(days=5) in {
        datetime.fromisoformat(order[k]) for k in ("arrive_by", "result_by", "reply_by") if order[k]}


async def test_bad_ids_and_values_are_refused_naming_the_field(client) -> None:
    huge = "99999999999999999999"
    for value in ("abc", "1e3", "-1", "0", "501"):    # (an empty one counts as not given: api.py)
        r = await client.get(f"/api/orders?limit={value}", headers=auth("agent"))
        assert r.status == 400 and (await r.json())["error"].startswith("limit"), value
    r = await client.get("/api/orders?limit=1", headers=auth("agent"))
    assert r.status == 200 and len((await r.json())["orders"]) == 1
    for query, field in (("state=volcano", "state"), ("caller_number=%00", "caller_number")):
        r = await client.get(f"/api/orders?{query}", headers=auth("agent"))
        assert r.status == 400 and (await r.json())["error"].startswith(field), query
    for method, url in (("get", f"/api/orders/{huge}"), ("patch", f"/api/orders/{huge}"),
                        ("post", f"/api/orders/{huge}/events"), ("post", f"/api/unit/orders/{huge}/acknowledge"),
                        ("get", f"/api/handovers/{huge}"), ("patch", f"/api/handovers/{huge}"),
                        ("post", f"/api/handovers/{huge}/accept"), ("post", f"/api/handovers/{huge}/close")):
        who = "repair" if "/unit/" in url else "sup1"
        r = await getattr(client, method)(url, json={"event": "escalate"}, headers=auth(who))
        assert r.status == 404, (method, url)
    r = await client.patch(f"/api/orders/{client.order_id}", json={"description": "a\x00b"}, headers=auth("agent"))
    assert r.status == 400 and (await r.json())["error"].startswith("description")
    for query, field in (("month=0001-01", "month"), ("week=9999-W52", "week"), ("date=9999-12-31", "date"),
                         ("date=0001-01-01", "date")):
        kind = {"month": "monthly", "week": "weekly", "date": "daily"}[field]
        r = await client.get(f"/api/reports/{kind}?{query}", headers=auth("sup1"))
        assert r.status == 400 and (await r.json())["error"].startswith(field), query
    r = await client.get("/api/reports/cycle?month=0001-01", headers=auth("sup1"))
    assert r.status == 400
    now = datetime.now(UTC)
    for start, end, field in (("9999-12-31T00:00:00+08:00", now.isoformat(), "shift_start"),
                              (now.isoformat(), "9999-12-31T23:00:00-05:00", "shift_end"),
                              ("0001-01-01T00:00:00", now.isoformat(), "shift_start"),
                              ((now - timedelta(hours=8)).isoformat(), "2026-11-23T08:00:00-14:00", "shift_end"),
                              (None, now.isoformat(), "shift_start")):
        r = await client.post("/api/handovers", json={"shift_start": start, "shift_end": end}, headers=auth("sup1"))
        assert r.status == 400 and (await r.json())["error"].startswith(field), (start, end)
