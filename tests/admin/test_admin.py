"""Agents, queues and users from the database: seeded on the first start only, every refusal a
4xx naming the field, every change in the audit trail and heard by every engine (Redis at
once, the database's poll when Redis says nothing)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from callcenter import cli
from callcenter.admin import http as admin_http
from callcenter.admin.directory import Directory, sip_ha1
from callcenter.admin.service import AdminService, SettingsFollower
from callcenter.config import AgentSettings, Settings
from callcenter.web import access, users
from callcenter.web.app import init_app
from tests.web.test_app import FakeAgents, FakeLive

ADMIN_PASSWORD, SUP_PASSWORD = "admin-password-1", "sup-password-1"


def with_agents(settings: Settings, *ids: str) -> Settings:
    agents = [AgentSettings(id=i, name=f"座席{i}", sip_password=SecretStr(f"pw-{i}-0123456789"), queues=["general", "leak"],
                            skills={"leak": 3}) for i in ids]
    return settings.model_copy(update={"agents": agents})


def service(settings: Settings, sessionmaker: Any, redis: Any = None, prefix: str = "") -> AdminService:
    return AdminService(sessionmaker, settings.acd, redis=redis, prefix=prefix)


async def test_the_settings_seed_agents_and_queues_on_the_first_start_only(settings, sessionmaker) -> None:
    first = service(settings, sessionmaker)
    assert await first.seed(with_agents(settings, "1001", "1002"))
    directory = await first.directory()
    assert directory.version == 1 and sorted(directory.agents) == ["1001", "1002"]
    assert directory.agents["1001"].sip_ha1 == sip_ha1("1001", "pw-1001-0123456789")   # never the password itself
    assert [q.name for q in directory.policy.queues] == [q.name for q in settings.queues]
    await first.change_agent("admin", "1001", name="王芳")
    # The next start has other agents in its file: the database keeps its own.
    assert not await first.seed(with_agents(settings, "1009"))
    again = await first.directory()
    assert sorted(again.agents) == ["1001", "1002"] and again.agents["1001"].name == "王芳"
    assert again.version == 2


async def test_a_change_reaches_another_engine_through_redis_and_without_it(settings, sessionmaker,
                                                                            redis_client) -> None:
    redis, prefix = redis_client
    here = service(settings, sessionmaker, redis, prefix)
    await here.seed(with_agents(settings, "1001"))
    heard: list[Directory] = []
    both = asyncio.Event()

    async def apply(directory: Directory) -> None:
        heard.append(directory)
        if len(heard) == 2:
            both.set()

    other = SettingsFollower(service(settings, sessionmaker, redis, prefix), apply, current=1, poll_s=3600)
    other.start()
    offline = SettingsFollower(service(settings, sessionmaker), apply, current=1, poll_s=0.2)   # no Redis at all
    offline.start()
    try:
        await asyncio.sleep(0.3)   # subscribed
        await here.create_agent("admin", "1006", "新座席", "sip-password-1006", ["leak"], {"leak": 5})
        await asyncio.wait_for(both.wait(), 5)
    finally:
        await other.stop()
        await offline.stop()
    assert [d.version for d in heard] == [2, 2]
    assert all(d.agents["1006"].skills == {"leak": 5} for d in heard)


async def test_a_user_the_administrator_changed_is_left_alone_by_the_settings(settings, sessionmaker) -> None:
    listed = Settings.model_validate({**settings.model_dump(), "users": [
        {"username": "boss", "password": "boss-password-1", "role": "supervisor"}]})
    await users.seed_users(sessionmaker, listed, settings_now())
    admin = service(settings, sessionmaker)
    await admin.change_user("admin", "boss", "role", role="qa")
    made = await admin.create_user("admin", "li.qa", "qa-password-12", "qa")
    assert made["from_settings"] is False
    await users.seed_users(sessionmaker, listed, settings_now())       # the file still says supervisor
    rows = {u["username"]: u for u in await admin.users()}
    assert rows["boss"]["role"] == "qa" and rows["li.qa"]["active"]
    await users.seed_users(sessionmaker, Settings.model_validate({**settings.model_dump(), "users": []}),
                           settings_now())
    rows = {u["username"]: u for u in await admin.users()}
    assert rows["boss"]["active"] and rows["li.qa"]["active"]          # neither is the file's any more


def settings_now() -> Any:
    from datetime import UTC, datetime
    return datetime.now(UTC)


@pytest.fixture
async def client(aiohttp_client, settings, sessionmaker, redis_client) -> Any:
    redis, prefix = redis_client
    async with sessionmaker() as session, session.begin():
        await users.create_user(session, "admin", ADMIN_PASSWORD, access.ADMIN)
        await users.create_user(session, "sup", SUP_PASSWORD, access.SUPERVISOR)
    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=FakeLive(), agent_control=FakeAgents(),
                   route_setups=[admin_http.setup_routes])
    app[admin_http.ADMIN] = AdminService(sessionmaker, settings.acd, redis=redis, prefix=prefix,
                                         categories={"leak", "billing", "other", "complaint"})
    await app[admin_http.ADMIN].seed(with_agents(settings, "1001"))
    return await aiohttp_client(app)


async def signed_in(client: Any, username: str, password: str) -> dict[str, str]:
    response = await client.post("/api/login", json={"username": username, "password": password})
    assert response.status == 200
    return {"X-CSRF-Token": (await response.json())["csrf_token"]}


GOOD = {"id": "1006", "name": "王芳", "sip_password": "sip-password-1006", "queues": ["leak"], "skills": {"leak": 5}}


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"id": "10a6"}, 400, "id"),
    ({"id": "1" * 9}, 400, "id"),
    ({"name": "王芳 <1001>"}, 400, "name"),
    ({"name": "x" * 65}, 400, "name"),
    ({"sip_password": "short"}, 400, "sip_password"),
    ({"sip_password": "has a space in it"}, 400, "sip_password"),
    ({"queues": ["nosuch"]}, 400, "queues[0]"),
    ({"queues": []}, 400, "queues"),
    ({"skills": {"leak": 11}}, 400, "skills.leak"),
    ({"skills": {"leak": 0}}, 400, "skills.leak"),
    ({"skills": {"billing": 3}}, 400, "skills.billing"),
    ({"id": "1001"}, 409, "id"),
    ({"extra": 1}, 400, "extra"),
])
async def test_a_bad_agent_is_refused_naming_the_field(client, change: dict[str, Any], status: int, field: str) -> None:
    csrf = await signed_in(client, "admin", ADMIN_PASSWORD)
    response = await client.post("/api/admin/agents", json={**GOOD, **change}, headers=csrf)
    assert response.status == status, await response.text()
    assert (await response.json())["error"].startswith(field + ":")


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"open_hours": ["25:00-26:00"], "when_closed": "general"}, 400, "open_hours[0]"),
    ({"open_hours": ["17:00-08:00"], "when_closed": "general"}, 400, "open_hours[0]"),
    ({"open_hours": ["08:00-17:00"]}, 400, "when_closed"),
    ({"when_closed": "nosuch"}, 400, "when_closed"),
    ({"overflow_to": "billing"}, 400, "overflow_to"),
    ({"category": "nosuch"}, 400, "category"),
    ({"priority": 10_000}, 400, "priority"),
    ({"open_days": "sundays"}, 400, "open_days"),
])
async def test_a_bad_queue_change_is_refused_naming_the_field(client, change, status, field) -> None:
    csrf = await signed_in(client, "admin", ADMIN_PASSWORD)
    response = await client.patch("/api/admin/queues/billing", json=change, headers=csrf)
    assert response.status == status, await response.text()
    assert (await response.json())["error"].startswith(field + ":")


async def test_the_administrator_changes_and_the_supervisor_looks(client) -> None:
    csrf = await signed_in(client, "admin", ADMIN_PASSWORD)
    response = await client.post("/api/admin/agents", json=GOOD, headers=csrf)
    assert response.status == 201
    response = await client.patch("/api/admin/queues/billing", json={"open_hours": ["08:30-17:30"],
                                                                     "when_closed": "general"}, headers=csrf)
    assert response.status == 200 and (await response.json())["queue"]["open_hours"] == ["08:30-17:30"]
    assert (await client.patch("/api/admin/queues/nosuch", json={}, headers=csrf)).status == 404
    assert (await client.patch("/api/admin/agents/9999", json={"name": "x"}, headers=csrf)).status == 404
    response = await client.post("/api/admin/users", json={"username": "li.qa", "password": "qa-password-12",
                                                           "role": "qa"}, headers=csrf)
    assert response.status == 201
    response = await client.post("/api/admin/users", json={"username": "u1", "password": "unit-password-1",
                                                           "role": "unit"}, headers=csrf)
    assert response.status == 400 and (await response.json())["error"].startswith("unit:")
    assert (await client.post("/api/admin/users/li.qa", json={"action": "deactivate"}, headers=csrf)).status == 200
    myself = await client.post("/api/admin/users/admin", json={"action": "deactivate"}, headers=csrf)
    assert myself.status == 400 and (await myself.json())["error"].startswith("username:")
    refused = await client.post("/api/login", json={"username": "li.qa", "password": "qa-password-12"})
    assert refused.status == 401
    entries = (await (await client.get("/api/admin/audit")).json())["entries"]
    done = [(e["kind"], e["key"], e["action"]) for e in entries]
    assert done[:4] == [("user", "li.qa", "deactivate"), ("user", "li.qa", "create"), ("queue", "billing", "update"),
                        ("agent", "1006", "create")]
    billing = next(e for e in entries if e["kind"] == "queue")
    assert billing["before"]["open_hours"] == [] and billing["after"]["open_hours"] == ["08:30-17:30"]
    assert all(e["actor"] == "admin" for e in entries[:4])

    sup = await signed_in(client, "sup", SUP_PASSWORD)
    assert (await client.get("/api/admin/agents")).status == 200
    refused = await client.post("/api/admin/agents", json={**GOOD, "id": "1007"}, headers=sup)
    assert refused.status == 403


async def test_a_notice_is_heard_before_it_is_published(client) -> None:
    await signed_in(client, "admin", ADMIN_PASSWORD)
    response = await client.get("/api/admin/notices/preview", params={"text": "东区今日停水。"})
    assert response.status == 200 and response.content_type == "audio/wav"
    assert (await response.read())[:4] == b"RIFF"
    bad = await client.get("/api/admin/notices/preview", params={"text": "x" * 501})
    assert bad.status == 400 and (await bad.json())["error"].startswith("text:")


def test_cli_adds_a_user_and_an_agent(tmp_path, settings, capsys, monkeypatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "callcenter.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[redis]\nprefix = "{settings.redis.prefix}"\n'
                      '[web]\nsecret_key = "cli-test-secret-0123456789"\n[ami]\nsecret = "x"\n')
    secret = tmp_path / "pw.txt"
    secret.write_text("qa-password-123\n")
    assert cli.main(["--config", str(config), "user", "add", "--role", "qa", "li.qa", "--password-file", str(secret)]) == 0
    assert cli.main(["--config", str(config), "agent", "add", "1006", "--name", "王芳", "--queue", "leak",
                     "--skill", "leak=5", "--password-file", str(secret)]) == 0
    assert cli.main(["--config", str(config), "agent", "add", "1007", "--queue", "nosuch",
                     "--password-file", str(secret)]) == 2
    assert cli.main(["--config", str(config), "user", "list"]) == 0
    out = capsys.readouterr()
    assert '"li.qa"' in out.out and '"leak": 5' in out.out and "queues[0]" in out.err
    assert cli.main(["--config", str(config), "user", "deactivate", "li.qa"]) == 0
    assert '"active": false' in capsys.readouterr().out


def test_the_agents_endpoints_carry_only_the_digest_of_their_password(settings) -> None:
    from callcenter.admin.directory import AgentEntry
    from callcenter.asterisk_config import pjsip_conf

    text = pjsip_conf(settings, [AgentEntry(id="1006", name="王芳", sip_ha1=sip_ha1("1006", SIP_PASSWORD))])
    assert "md5_cred = " + sip_ha1("1006", SIP_PASSWORD) in text and SIP_PASSWORD not in text
    assert "callerid = 王芳 <1006>" in text and "realm = asterisk" in text


SIP_PASSWORD = "sip-password-1006"
