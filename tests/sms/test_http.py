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
