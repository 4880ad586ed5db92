"""An engine (on the fake AMI) follows the directory: a queue's new hours, an agent's new skills,
an agent deactivated, and a new agent whose endpoint is rendered and reloaded in Asterisk."""
from __future__ import annotations

from datetime import UTC, datetime

from callcenter.acd import events as acd_ev
from callcenter.admin.service import AdminService, SettingsFollower
from callcenter.app import _applier
from callcenter.asterisk_config import PJSIP_FILE
from tests.calls.fake_line import agent, running_line


async def test_the_engine_takes_every_change_without_a_restart(settings, sessionmaker) -> None:
    async with running_line(settings, sessionmaker, [agent("1001"), agent("1002")]) as line:
        engine = line.engine
        rendered = engine.settings.paths.asterisk_config_dir
        rendered.mkdir(parents=True, exist_ok=True)
        (rendered / PJSIP_FILE).write_text("; rendered at start\n")
        admin = AdminService(sessionmaker, engine.settings.acd)
        await admin.seed(engine.settings)
        follower = SettingsFollower(admin, _applier(engine.settings, engine), poll_s=3600)
        assert await follower.check()
        follower.start()

        def reloads() -> list[dict[str, str]]:
            return [a for s in line.fake.sessions for a in s.actions if a.get("Action") == "Reload"]

        try:
            await line.until(lambda: len(reloads()) == 1)       # the endpoints of the database, at start
            await engine.login("1001")
            await engine.login("1002")
            await admin.change_agent("admin", "1001", queues=["general", "billing"], skills={"billing": 7})
            assert engine.acd.agent("1001").skills == {"general": 1, "billing": 7}
            assert len(reloads()) == 1                          # skills are no business of Asterisk's
            await admin.change_agent("admin", "1002", active=False)
            assert "1002" not in {a.agent_id for a in engine.acd.agents()}      # logged out
            await line.until(lambda: len(reloads()) == 2)       # and its endpoint gone
            await admin.change_queue("admin", "billing", {"open_hours": ["00:00-00:01"], "when_closed": "general"})
            local = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).astimezone(engine.timezone)
            assert engine.policy.open_queue("billing", local, True) == "general"
            assert engine.acd.policy.queue("billing").when_closed == "general"

            await admin.create_agent("admin", "1006", "王芳", "sip-password-1006", ["leak"], {"leak": 5})
            await line.until(lambda: len(reloads()) == 3)
            assert reloads()[-1]["Module"] == "res_pjsip.so"
            text = (rendered / PJSIP_FILE).read_text()
            assert "[1006](endpoint-defaults)" in text and "sip-password-1006" not in text
            assert "[1002](endpoint-defaults)" not in text            # deactivated: no endpoint
            await engine.login("1006")
            assert engine.acd.agent("1006").skills == {"leak": 5}
        finally:
            await follower.stop()
        await engine.feed_acd(acd_ev.AgentLoggedOut("1006", engine.clock.monotonic()))
