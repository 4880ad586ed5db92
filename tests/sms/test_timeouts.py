"""Never sent twice: a send that times out after Kannel accepted it is not sent again (its
delivery report proves the acceptance); one that never reached Kannel is sent again after
`uncertain_wait_s`."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from callcenter.sms.kannel import KannelClient
from callcenter.sms.service import Outgoing
from tests.sms.conftest import free_ports, wait_until


async def _gateway_that_answers_late(kannel_url: str, forward: bool, release: asyncio.Event):
    """Between the hotline and smsbox: passes the request on (or not), then keeps the answer
    until `release` is set, long after the hotline's timeout."""
    async def sendsms(request: web.Request) -> web.Response:
        if forward:
            async with aiohttp.ClientSession() as http, http.get(kannel_url, params=request.query) as r:
                await r.read()
        await release.wait()
        return web.Response(status=202, text="0: Accepted for delivery")

    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", sendsms)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    [port] = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _use_gateway(hotline, sms_settings, port: int) -> None:
    settings = sms_settings.sms.model_copy(update={"sendsms_port": port, "send_timeout_s": 0.5})
    old = hotline.sender.client
    await old.close()
    hotline.sender.client = KannelClient(settings, old.callback_base)


async def test_a_timeout_after_kannel_accepted_the_message_sends_nothing_more(gateway, hotline, sms_settings) -> None:
    release = asyncio.Event()
    runner, port = await _gateway_that_answers_late(sms_settings.sms.sendsms_url, True, release)
    try:
        await _use_gateway(hotline, sms_settings, port)
        since = gateway.carrier.offset()
        message = await hotline.service.enqueue(Outgoing("13800000011", "停水通知（超时）", "outage", key="to1",
                                                         urgent=True))
        assert await wait_until(lambda: _state(hotline, message.id, "delivered"))
        # Past the wait for a report: still one attempt, one message at the carrier.
        assert not await wait_until(lambda: _attempts_above(hotline, message.id, 1),
                                    timeout_s=sms_settings.sms.uncertain_wait_s + 2)
        assert [g[1] for g in gateway.carrier.received(since)] == ["13800000011"]
    finally:
        release.set()
        await runner.cleanup()


async def test_a_timeout_before_kannel_took_the_message_sends_it_again_later(gateway, hotline, sms_settings) -> None:
    release = asyncio.Event()
    runner, port = await _gateway_that_answers_late(sms_settings.sms.sendsms_url, False, release)
    try:
        await _use_gateway(hotline, sms_settings, port)
        message = await hotline.service.enqueue(Outgoing("13800000012", "停水通知（未达）", "outage", key="to2",
                                                         urgent=True))
        assert await wait_until(lambda: _attempts_above(hotline, message.id, 1),
                                timeout_s=sms_settings.sms.uncertain_wait_s + 5)
        assert (await hotline.service.get(message.id)).state == "queued"
    finally:
        release.set()
        await runner.cleanup()


async def _state(hotline, message_id: str, state: str) -> bool:
    return (await hotline.service.get(message_id)).state == state


async def _attempts_above(hotline, message_id: str, n: int) -> bool:
    return (await hotline.service.get(message_id)).attempts > n
