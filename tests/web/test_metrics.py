"""/metrics moves with the hotline: a call on the real engine (fake AMI) is seen waiting, its
agent ringing and talking, and at its end counted with its answer latency and time to agent;
the deadline watcher's alerts and the transcription backlog are counted too. Each app has its
own registry, so nothing here leaks into another test."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from callcenter.recording.jobs import TranscriptionQueue
from callcenter.web import access, users
from callcenter.web.app import init_app
from callcenter.web.metrics import AlertCounter, CallMetrics, HotlineMetrics
from callcenter.workorders import watcher
from callcenter.workorders.categories import load_categories
from callcenter.workorders.models import WorkOrder
from callcenter.workorders.service import WorkOrderService
from tests.calls.fake_line import CALLER, CALLER_ID, agent, running_line
from tests.web.test_app import FakeLive

ADMIN_TOKEN = "metrics-admin-token"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition text: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(figures: dict, name: str, **labels: str) -> float | None:
    return figures.get((name, frozenset(labels.items())))


async def admin_client(aiohttp_client, settings, sessionmaker, redis, metrics: HotlineMetrics):
    async with sessionmaker() as session, session.begin():
        admin = await users.create_user(session, "admin", "admin-password-1", access.ADMIN)
        await users.issue_token(session, admin, token=ADMIN_TOKEN)
    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=FakeLive(), metrics=metrics)
    client = await aiohttp_client(app)

    async def scrape() -> dict:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status == 200, await response.text()
        return samples(await response.text())

    return client, scrape


async def test_a_call_moves_the_metrics(aiohttp_client, settings, sessionmaker, redis_client) -> None:
    client_redis, prefix = redis_client
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"prefix": prefix})})
    metrics = HotlineMetrics()
    async with running_line(settings, sessionmaker, [agent("1001")]) as line:
        engine = line.engine
        engine.hooks.append(CallMetrics(metrics, sessionmaker))
        metrics.follow_engine(engine.acd, [q.name for q in settings.queues], lambda: engine.connection.connected)
        _, scrape = await admin_client(aiohttp_client, settings, sessionmaker, client_redis, metrics)

        before = await scrape()
        assert value(before, "callcenter_ami_connected") == 1
        assert value(before, "callcenter_calls_waiting", queue="leak") == 0
        assert value(before, "callcenter_calls_total", outcome="answered", queue="leak") is None

        await engine.login("1001")
        await engine.pause("1001", "break")
        line.call_in()
        line.fake.session.send({"Event": "Newstate", "Privilege": "call,all", "Channel": CALLER,
                                "Uniqueid": CALLER_ID, "Linkedid": CALLER_ID, "ChannelState": "6",
                                "ChannelStateDesc": "Up", "CallerIDNum": "13800138000"})
        await line.until(lambda: any(c.state.value == "waiting" for c in engine.acd.calls()))
        waiting = await scrape()
        assert value(waiting, "callcenter_calls_waiting", queue="leak") == 1
        assert value(waiting, "callcenter_agents", queue="leak", state="paused") == 1

        await engine.ready("1001")
        await line.dial_sent()
        ringing = await scrape()
        assert value(ringing, "callcenter_calls_waiting", queue="leak") == 0
        assert value(ringing, "callcenter_agents", queue="leak", state="ringing") == 1
        assert value(ringing, "callcenter_agents", queue="leak", state="paused") is None

        line.agent_answers("PJSIP/1001-00000002")
        await line.until(lambda: engine.acd.agent("1001").state.value == "on_call")
        assert value(await scrape(), "callcenter_agents", queue="leak", state="on_call") == 1
        line.hang_up()
        await line.until(lambda: engine.calls_closed == 1)

        async with asyncio.timeout(10):   # the closed record is read by a hook of its own
            while value(await scrape(), "callcenter_calls_total", outcome="answered", queue="leak") != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        after = await scrape()
        assert value(after, "callcenter_answer_latency_seconds_count") == 1
        assert value(after, "callcenter_time_to_agent_seconds_count", queue="leak") == 1
        assert value(after, "callcenter_time_to_agent_seconds_bucket", queue="leak", le="+Inf") == 1
        assert value(after, "callcenter_answer_latency_seconds_sum") > 0
        assert value(after, "callcenter_agents", queue="leak", state="wrap_up") == 1
    # The engine is gone and its link down: the gauge says so at the next scrape.
    assert value(await scrape(), "callcenter_ami_connected") == 0


async def test_deadline_alerts_and_the_transcription_backlog_are_counted(aiohttp_client, settings, sessionmaker,
                                                                         redis_client) -> None:
    client_redis, prefix = redis_client
    metrics = HotlineMetrics()
    orders = WorkOrderService(sessionmaker, load_categories(), settings.hotline.timezone,
                              sinks=[AlertCounter(metrics)])
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        session.add_all([
            WorkOrder(caller_number="1", category="leak", urgency="urgent", unit="pipes", state="accepted",
                      created_at=now - timedelta(hours=9), dispatch_by=now + timedelta(hours=1)),    # 90%: warn
            WorkOrder(caller_number="2", category="leak", urgency="urgent", unit="pipes", state="accepted",
                      created_at=now - timedelta(hours=9), dispatch_by=now - timedelta(minutes=5)),  # overdue
        ])
    queue = TranscriptionQueue(client_redis, prefix, settings.transcription.stream, settings.transcription.group)
    metrics.follow_transcription(queue.backlog)
    _, scrape = await admin_client(aiohttp_client, settings, sessionmaker, client_redis, metrics)
    assert value(await scrape(), "callcenter_transcription_backlog") == 0

    await watcher.scan(orders, watcher.Policy(), now=now)
    for n in range(3):
        await queue.enqueue(f"call-{n}", f"/recordings/call-{n}.wav")
    figures = await scrape()
    assert value(figures, "callcenter_deadline_alerts_total", kind="warning") == 1
    assert value(figures, "callcenter_deadline_alerts_total", kind="escalated") == 1
    assert value(figures, "callcenter_transcription_backlog") == 3

    await queue.ensure_group()
    taken = await queue.next_jobs("w1", block_ms=10)           # a worker takes one: still waiting for its words
    assert value(await scrape(), "callcenter_transcription_backlog") == 3
    await queue.done(taken[0])
    assert value(await scrape(), "callcenter_transcription_backlog") == 2


async def test_two_apps_keep_their_own_figures(aiohttp_client, settings, sessionmaker, redis_client) -> None:
    client_redis, _ = redis_client
    mine, theirs = HotlineMetrics(), HotlineMetrics()
    theirs.call_ended("answered", "leak", 0.02, 12.0)
    _, scrape = await admin_client(aiohttp_client, settings, sessionmaker, client_redis, mine)
    assert value(await scrape(), "callcenter_calls_total", outcome="answered", queue="leak") is None
