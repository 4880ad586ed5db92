"""The SMS channel against a real Kannel with fakesmsc as the carrier."""
from __future__ import annotations

import aiohttp

from callcenter.sms.core import State
from callcenter.sms.service import Outgoing
from tests.sms.conftest import wait_until

CUSTOMER = "13800000001"


async def _state(hotline, message_id: str) -> str:
    message = await hotline.service.get(message_id)
    return message.state if message else ""


async def test_a_chinese_message_reaches_the_carrier_and_its_delivery_reports_come_back(gateway, hotline) -> None:
    since = gateway.carrier.offset()
    text = "【96666】您好：东区明日8:00-18:00计划停水，请提前储水。回复TD退订"
    message = await hotline.service.enqueue(Outgoing(CUSTOMER, text, "outage", key="t1:outage"))
    assert message.coding == "ucs2" and message.parts == 1
    got = await gateway.carrier.wait_for(since, 1)
    assert got == [("96666", CUSTOMER, text)]
    assert await wait_until(lambda: _state_is(hotline, message.id, State.DELIVERED))
    # Both reports, 8 (the carrier accepted it) and 1 (delivered), in whichever order: delivered.
    assert await wait_until(lambda: _reports(hotline, message.id, 2))
    stored = await hotline.service.get(message.id)
    assert stored.state == "delivered" and stored.attempts == 1
    # Enqueuing the same key again sends nothing more.
    again = await hotline.service.enqueue(Outgoing(CUSTOMER, text, "outage", key="t1:outage"))
    assert again.id == message.id
    assert gateway.carrier.received(since) == got


async def _reports(hotline, message_id: str, n: int) -> bool:
    message = await hotline.service.get(message_id)
    return message is not None and message.reports >= n


async def _state_is(hotline, message_id: str, state: State) -> bool:
    return await _state(hotline, message_id) == state.value


async def test_a_reply_from_the_phone_reaches_the_hotline_and_is_matched(gateway, hotline) -> None:
    seen = []

    async def on_reply(message, reply, now) -> None:
        seen.append((message.id, reply.digit))

    hotline.service.reply_handlers["follow_up"] = on_reply
    message = await hotline.service.enqueue(Outgoing("13800000002", "回访：回复1满意，2不满意，3未解决", "follow_up",
                                                     key="t2:fu", expects_reply=True))
    assert await wait_until(lambda: _state_is(hotline, message.id, State.DELIVERED))
    gateway.inject_mo("13800000002", "2")
    assert await wait_until(lambda: seen)
    assert seen == [(message.id, "2")]
    stored = await hotline.service.get(message.id)
    assert stored.state == "replied" and stored.reply_text == "2"
    gateway.inject_mo("13800000002", "退订")
    assert await wait_until(lambda: _opted_out(hotline, "13800000002"))
    later = await hotline.service.enqueue(Outgoing("13800000002", "下周计划停水", "outage", key="t2:later"))
    assert later.state == "failed" and "opted out" in later.last_error


async def _opted_out(hotline, number: str) -> bool:
    from callcenter.sms.models import SmsOptOut

    async with hotline.service.sessionmaker() as session:
        return await session.get(SmsOptOut, number) is not None


async def test_kannels_routes_refuse_forged_reports_and_name_the_bad_field(gateway, hotline) -> None:
    message = await hotline.service.enqueue(Outgoing("13800000003", "派单", "dispatch", key="t3:d"))
    assert await wait_until(lambda: _state_is(hotline, message.id, State.DELIVERED))
    base = f"http://127.0.0.1:{gateway.web_port}/api/sms"
    async with aiohttp.ClientSession() as http:
        for query, status, words in (
                ({"id": message.id, "a": "1", "type": "2"}, 400, "token: missing"),
                ({"id": message.id, "a": "1", "type": "2", "token": "forged"}, 403, "token"),
                ({"id": message.id, "a": "x", "type": "2", "token": "t"}, 400, "a: "),
                ({"id": "nope", "a": "1", "type": "2", "token": "t"}, 404, "id"),
                ({"id": message.id, "a": "1", "type": "3", "token": message.dlr_token}, 400, "type")):
            async with http.get(f"{base}/dlr", params=query) as response:
                assert response.status == status and words in (await response.json())["error"], query
        async with http.get(f"{base}/mo", params={"from": "1", "text": "TD", "token": "wrong"}) as response:
            assert response.status == 403
        async with http.get(f"{base}/mo", params={"text": "TD", "token": "test-mo-token"}) as response:
            assert response.status == 400 and "from" in (await response.json())["error"]
    assert (await hotline.service.get(message.id)).state == "delivered"


async def test_a_failure_report_marks_the_message_failed_and_policy_retries_or_hands_it_over(gateway, hotline) -> None:
    handed = []

    async def to_a_person(message, now) -> None:
        handed.append(message.id)

    hotline.service.failure_handlers["follow_up"] = to_a_person
    since = gateway.carrier.offset()
    # fakesmsc reports every message delivered at once; so that these two stay "sent" (accepted,
    # not yet delivered), Kannel's own reports for their first attempt go to a closed port.
    own_url = hotline.sender.client.callback_base
    hotline.sender.client.callback_base = "http://127.0.0.1:9"
    warning = await hotline.service.enqueue(Outgoing("13800000004", "预警：紧急工单超时", "warning", key="t4:w"))
    follow = await hotline.service.enqueue(Outgoing("13800000005", "回访", "follow_up", key="t4:f",
                                                    expects_reply=True))
    assert await wait_until(lambda: _state_is(hotline, warning.id, State.SENT))
    assert await wait_until(lambda: _state_is(hotline, follow.id, State.SENT))
    assert len(await gateway.carrier.wait_for(since, 2)) == 2
    hotline.sender.client.callback_base = own_url
    base = f"http://127.0.0.1:{gateway.web_port}/api/sms/dlr"
    async with aiohttp.ClientSession() as http:
        for m in (warning, follow):
            # As Kannel would call it, had the phone network reported a failure (2).
            async with http.get(base, params={"id": m.id, "a": "1", "token": m.dlr_token, "type": "2"}) as r:
                assert r.status == 200
    # The warning is retried (a second attempt reaches the carrier); the follow-up goes to a person.
    assert await wait_until(lambda: _attempts(hotline, warning.id, 2))
    assert await wait_until(lambda: _state_is(hotline, warning.id, State.DELIVERED))
    assert (await hotline.service.get(follow.id)).state == "failed" and handed == [follow.id]
    got = await gateway.carrier.wait_for(since, 3)
    assert [g[1] for g in got].count("13800000004") == 2 and [g[1] for g in got].count("13800000005") == 1


async def _attempts(hotline, message_id: str, n: int) -> bool:
    message = await hotline.service.get(message_id)
    return message is not None and message.attempts >= n


async def test_while_kannel_is_down_100_due_messages_wait_and_then_arrive_once(gateway, hotline) -> None:
    gateway.script("bearerbox-stop")
    since = gateway.carrier.offset()
    try:
        added = await hotline.service.enqueue_many(
            [Outgoing(f"139{i:08d}", f"停水通知 {i}", "outage", key=f"t5:{i}", urgent=True) for i in range(100)])
        assert added == 100
        # Down for a while (the sender backs off): nothing is accepted, nothing arrives.
        assert await wait_until(lambda: hotline.sender.down_for >= 2, timeout_s=10)
        counts = await hotline.service.counts()
        assert counts.get("queued") == 100 and gateway.carrier.received(since) == []
    finally:
        gateway.script("bearerbox-start")
    got = await gateway.carrier.wait_for(since, 100, timeout_s=60)
    assert await wait_until(lambda: _all_delivered(hotline, 100), timeout_s=30), await hotline.service.counts()
    got = gateway.carrier.received(since)
    texts = sorted(g[2] for g in got)
    assert len(got) == 100 and texts == sorted(f"停水通知 {i}" for i in range(100))   # each once


async def _all_delivered(hotline, n: int) -> bool:
    return (await hotline.service.counts()).get("delivered", 0) >= n

