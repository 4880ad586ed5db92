"""The SMS routes inside the hotline's web app: Kannel's calls are public but only from the
gateway's address and with a token; the listing is for supervisors."""
from __future__ import annotations

from callcenter.sms import http as sms_http
from callcenter.sms.service import Outgoing
from callcenter.web.app import init_app
from tests.qa.test_http import NoLive


def _app(settings, sessionmaker, redis_client, addresses: list[str]):
    client, prefix = redis_client
    settings = settings.model_copy(update={
        "redis": settings.redis.model_copy(update={"prefix": prefix}),
        "sms": settings.sms.model_copy(update={"kannel_addresses": addresses, "mo_token": None})})
    return init_app(settings, sessionmaker=sessionmaker, redis=client, live=NoLive(),
                    route_setups=[sms_http.setup_routes])


async def test_kannel_reaches_its_routes_without_signing_in_and_nobody_else_does(
        aiohttp_client, settings, sessionmaker, redis_client) -> None:
    client = await aiohttp_client(_app(settings, sessionmaker, redis_client, ["127.0.0.1"]))
    message = await client.app[sms_http.SMS].enqueue(Outgoing("13800000009", "派单", "dispatch", key="h1"))
    query = {"id": message.id, "a": "3", "token": message.dlr_token, "type": "8"}
    response = await client.get("/api/sms/dlr", params=query)
    assert response.status == 200 and (await response.json())["state"] == "queued"   # another attempt: counted only
    response = await client.get("/api/sms/mo", params={"from": "13800000009", "text": "1", "token": "x"})
    assert response.status == 403                                                     # no MO token configured
    assert (await client.get("/api/sms")).status == 401                               # supervisors only


async def test_a_report_from_another_address_is_refused(aiohttp_client, settings, sessionmaker, redis_client) -> None:
    client = await aiohttp_client(_app(settings, sessionmaker, redis_client, ["10.1.2.3"]))
    message = await client.app[sms_http.SMS].enqueue(Outgoing("13800000009", "派单", "dispatch", key="h2"))
    response = await client.get("/api/sms/dlr", params={"id": message.id, "a": "0", "token": message.dlr_token,
                                                        "type": "1"})
    assert response.status == 403 and "gateway" in (await response.json())["error"]
    assert (await client.app[sms_http.SMS].get(message.id)).reports == 0


async def test_a_supervisor_acknowledges_a_warning_on_the_wallboard(
        aiohttp_client, settings, sessionmaker, redis_client) -> None:
    from callcenter.web import access, users
    from tests.qa.test_http import PASSWORD, sign_in

    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "sup", PASSWORD, access.SUPERVISOR)
        await users.create_user(session, "a1", PASSWORD, access.AGENT, agent_id="1001")
    client = await aiohttp_client(_app(settings, sessionmaker, redis_client, ["127.0.0.1"]))
    service = client.app[sms_http.SMS]
    await service.enqueue(Outgoing("13900009999", "预警", "warning", key="w:1", ref="warning:surge:outage:3",
                                   expects_reply=True))
    agent = await sign_in(client, "a1")
    assert (await client.post("/api/sms/warnings/warning:surge:outage:3/acknowledge", headers=agent)).status == 403
    client.session.cookie_jar.clear()
    headers = await sign_in(client, "sup")
    listed = await (await client.get("/api/sms/warnings")).json()
    assert [w["ref"] for w in listed["warnings"]] == ["warning:surge:outage:3"]
    response = await client.post("/api/sms/warnings/order:1/acknowledge", headers=headers)
    assert response.status == 400 and "ref" in (await response.json())["error"]
    response = await client.post("/api/sms/warnings/warning:surge:outage:3/acknowledge", headers=headers)
    assert response.status == 200 and (await response.json())["acknowledged"] == 1
    assert (await client.post("/api/sms/warnings/warning:surge:outage:3/acknowledge", headers=headers)).status == 404
    assert (await (await client.get("/api/sms/warnings")).json())["warnings"] == []
