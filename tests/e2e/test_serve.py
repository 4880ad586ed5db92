"""`make run`'s hotline as one piece: `serve()` wires the database, Redis, the engine on the real
Asterisk, the web API and the work-order duties; a call goes through and its order is worked
over HTTP by the agent desk and the field unit."""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.app import serve
from callcenter.config import load_settings
from callcenter.rig import AsteriskRig
from callcenter.sipp import Key, Sipp, agent_scenario, caller_scenario, expect_ok
from tests.conftest import REDIS_URL
from tests.e2e.conftest import AGENTS, free_port, rig_overrides, wait_until
from tests.e2e.test_spine import MENU_KEY_AFTER_MS

pytestmark = pytest.mark.asterisk
CLI_TOKEN = "serve-test-admin-token"


async def test_the_wired_hotline_takes_a_call_and_its_order_is_worked_over_http(rig: AsteriskRig, sipp: Sipp,
                                                                              tmp_path: Path) -> None:
    assert rig.settings.ami.secret is not None
    port = free_port()
    overrides = rig_overrides(rig.spool, rig.settings.ami.secret.get_secret_value())
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"}
    overrides["redis"] = {"url": REDIS_URL, "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"}
    overrides["web"] = {**overrides["web"], "port": port, "cli_token": CLI_TOKEN}
    overrides["users"] = [{"username": "repair", "password": "repair-password-1", "role": "unit",
                           "unit": "repair_team"}]
    settings = load_settings(overrides=overrides)
    stop = asyncio.Event()
    hotline = asyncio.create_task(serve(settings, stop))
    base, admin = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {CLI_TOKEN}"}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:   # an IP host
            async def healthy() -> bool:
                try:
                    async with http.get(f"{base}/health") as r:
                        return r.status == 200 and (await r.json())["ami"]["ok"]
                except aiohttp.ClientError:
                    return False

            await wait_until(healthy, 30, "the hotline answers /health with AMI up")
            async with http.post(f"{base}/api/agents/1001/login", headers=admin, json={}) as r:
                assert r.status == 200, await r.text()
            agent_port = AGENTS["1001"]
            agent = await sipp.start("serve-agent", agent_scenario(ring_ms=400, hangup_after_ms=60_000),
                                     sip_port=agent_port, media_port=20000 + (agent_port - 5070) * 100, target=None,
                                     calls=1, timeout_s=120)
            caller = await sipp.start("serve-caller", caller_scenario(
                number="13912340000", keys=(Key("2", MENU_KEY_AFTER_MS),), hangup_after_ms=4000),
                sip_port=5398, media_port=39800, service=settings.hotline.number, calls=1, timeout_s=90)
            await expect_ok(caller)

            async def one_order() -> list[dict]:
                async with http.get(f"{base}/api/orders", headers=admin) as r:
                    return (await r.json())["orders"]

            await wait_until(one_order, 20, "the call's work order")
            [order] = await one_order()
            assert (order["category"], order["unit"], order["caller_number"]) == ("leak", "repair_team", "13912340000")
            async with http.post(f"{base}/api/orders/{order['id']}/events", headers=admin,
                                 json={"event": "dispatch"}) as r:
                assert (await r.json())["order"]["state"] == "dispatched"
            async with http.post(f"{base}/api/login", json={"username": "repair", "password": "repair-password-1"}) as r:
                assert r.status == 200
                csrf = (await r.json())["csrf_token"]
            async with http.post(f"{base}/api/unit/orders/{order['id']}/acknowledge",
                                 headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["order"]["state"] == "acknowledged"
            await expect_ok(agent)

            async def counted() -> dict[str, float]:
                async with http.get(f"{base}/metrics", headers=admin) as r:
                    assert r.status == 200, await r.text()
                    return {f"{s.name}{sorted(s.labels.items())}": s.value
                            for f in text_string_to_metric_families(await r.text()) for s in f.samples}

            async def call_counted() -> bool:
                return counted_answered(await counted()) == 1

            def counted_answered(figures: dict[str, float]) -> float:
                return sum(v for k, v in figures.items()
                           if k.startswith("callcenter_calls_total[") and "('outcome', 'answered')" in k)

            await wait_until(call_counted, 20, "/metrics counts the answered call")
            figures = await counted()
            assert figures["callcenter_ami_connected[]"] == 1
            assert figures["callcenter_answer_latency_seconds_count[]"] == 1
            assert sum(v for k, v in figures.items() if k.startswith("callcenter_time_to_agent_seconds_count[")) == 1
    finally:
        stop.set()
        await asyncio.wait_for(hotline, 30)
    assert hotline.exception() is None
