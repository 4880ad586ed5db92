"""Wiring: the one place that builds the running hotline from its settings (plain code, no framework).

    build_hotline(settings): an async context manager that opens database (migrated) → Redis →
    live state → the domains → engine (AMI) → web server → SMS sender → duties, and closes them
    in the reverse order. `serve` (what `callcenter run` runs), the real-Asterisk tests and the
    benchmarks all run the hotline it builds. With `transcription_workers=N` it also runs that
    many transcription workers in the same process (`callcenter run` does, by `[transcription]
    workers_in_run`); a deployment runs `callcenter worker` processes instead.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.acd.live import LiveState
from callcenter.admin import http as admin_http
from callcenter.admin.directory import Directory
from callcenter.admin.service import AdminService, SettingsFollower
from callcenter.ami.errors import AmiError
from callcenter.asterisk_config import write_pjsip
from callcenter.calls.engine import Engine
from callcenter.calls.outbound import FollowUpCalls
from callcenter.calls.shared import SharedHotline
from callcenter.config import Settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.ivr.model import load_menu
from callcenter.notices import http as notices_http
from callcenter.notices.service import NoticeService
from callcenter.recording.service import RecordingService
from callcenter.sms.wiring import start_sms
from callcenter.web.app import init_app
from callcenter.web.metrics import AlertCounter, CallMetrics, HotlineMetrics
from callcenter.web.users import seed_users
from callcenter.workorders import http as workorders_http
from callcenter.workorders import runner as workorders_runner
from callcenter.workorders.alerts import AlertSink, LiveChannelSink, WebhookSink
from callcenter.workorders.categories import load_categories
from callcenter.workorders.followups import FollowUpService
from callcenter.workorders.service import WorkOrderService

log = logging.getLogger(__name__)
WORKER_RETRY_S = 5.0
WORKERS_STOP_S = 30.0


def domain_routes() -> list[Any]:
    """Every domain's HTTP routes that are present in this build."""
    import importlib

    setups = []
    for module in ("callcenter.admin.http", "callcenter.workorders.http", "callcenter.recording.http", "callcenter.qa.http",
                   "callcenter.notices.http", "callcenter.sms.http", "callcenter.pages.http"):
        try:
            setups.append(importlib.import_module(module).setup_routes)
        except ModuleNotFoundError:
            continue
    return setups


@dataclass
class Hotline:
    """Everything `build_hotline` opened, for whoever runs it (`serve`, the tests, the benchmarks)."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    live: LiveState
    engine: Engine
    shared: SharedHotline
    workorders: WorkOrderService
    followups: FollowUpService
    dialer: FollowUpCalls
    notices: NoticeService
    recordings: RecordingService
    app: web.Application
    metrics: HotlineMetrics
    stop: asyncio.Event

    @property
    def url(self) -> str:
        return f"http://{self.settings.web.host}:{self.settings.web.port}"


@asynccontextmanager
async def build_hotline(settings: Settings, stop: asyncio.Event | None = None, *,
                        transcription_workers: int = 0) -> AsyncIterator[Hotline]:
    """Open the hotline's resources in order — database (migrated), Redis, live state, the
    domains, the engine (AMI), the web server, the SMS gateway's sender and the once-only duties
    — and close them in the reverse order when the block ends (or `stop` is set and the block
    returns). Asterisk itself is not started here: `callcenter run` starts it first."""
    stop = stop or asyncio.Event()
    menu = load_menu(settings.ivr.menu_file or None, queue_names=[q.name for q in settings.queues])
    await migrate(settings.database.url)
    async with contextlib.AsyncExitStack() as opened:
        db = create_engine(settings.database.url)
        opened.push_async_callback(db.dispose)
        sessionmaker = make_sessionmaker(db)
        redis = aioredis.Redis.from_url(settings.redis.url, decode_responses=True, socket_connect_timeout=2)
        opened.push_async_callback(redis.aclose)
        engine_id = settings.cluster.engine_id or f"engine-{settings.web.port}"
        live = LiveState(redis, settings.redis.prefix, engine_id)
        recordings = RecordingService(redis, settings.redis.prefix, settings.transcription.stream,
                                      settings.transcription.group)
        metrics = HotlineMetrics()
        sinks: list[AlertSink] = [LiveChannelSink(redis, settings.redis.prefix),
                                  WebhookSink(settings.workorders.webhooks), AlertCounter(metrics)]
        categories = load_categories(settings.workorders.categories_file or None)
        workorders = WorkOrderService(sessionmaker, categories, settings.hotline.timezone, sinks=sinks)
        # Agents and queues live in the database: the settings seed them on the first start only.
        admin = AdminService(sessionmaker, settings.acd, redis=redis, prefix=settings.redis.prefix,
                             categories=categories.categories, units={c.unit for c in categories.categories.values()})
        await admin.seed(settings)
        directory = await admin.directory()
        followups = FollowUpService(sessionmaker, workorders)
        notices = NoticeService(sessionmaker, settings.paths.prompts_dir, settings.hotline.timezone,
                                settings.ivr.voice, settings.ivr.speed_wpm)
        engine = Engine(settings, sessionmaker, menu, live=live, engine_id=engine_id,
                        hooks=[recordings, workorders, CallMetrics(metrics, sessionmaker)], notices=notices.notice_for)
        metrics.follow_engine(engine.acd, [q.name for q in settings.queues], lambda: engine.connection.connected)
        metrics.follow_transcription(recordings.queue.backlog)
        engine.apply_directory(directory)
        shared = SharedHotline(engine, live)
        dialer = FollowUpCalls(engine, followups)
        await seed_users(sessionmaker, settings, datetime.now(UTC))

        async def ami_status() -> dict[str, Any]:
            return {"ok": engine.connection.connected, "calls": len(engine.sessions)}

        app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=live, agent_control=engine,
                       route_setups=domain_routes(), ami_status=ami_status, metrics=metrics)
        app[workorders_http.ORDERS], app[workorders_http.FOLLOWUPS] = workorders, followups
        app[notices_http.NOTICES] = notices
        app[admin_http.ADMIN] = admin
        await engine.start()
        opened.push_async_callback(engine.stop)
        follower = SettingsFollower(admin, _applier(settings, engine), current=0)
        await follower.check()          # the directory into the engine, its endpoints into Asterisk
        follower.start()
        opened.push_async_callback(follower.stop)
        sms = start_sms(settings, sessionmaker, app, stop, orders=workorders, followups=followups,
                        notices=notices)
        if sms is not None:
            opened.push_async_callback(_finish, sms)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        opened.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, settings.web.host, settings.web.port).start()
        duties = asyncio.create_task(workorders_runner.run(settings, workorders, followups, dialer, stop,
                                                           lead=shared.lead), name="duties")
        opened.push_async_callback(_finish, duties)
        workers = [asyncio.create_task(transcription_worker(settings, stop, f"{engine_id}-transcriber-{n + 1}"),
                                       name=f"transcriber-{n + 1}") for n in range(transcription_workers)]
        if workers:
            opened.push_async_callback(_finish_workers, workers)
        opened.callback(stop.set)          # closes first: the tasks above end on it
        log.info("hotline running: web on http://%s:%s/", settings.web.host, settings.web.port)
        yield Hotline(settings=settings, sessionmaker=sessionmaker, redis=redis, live=live, engine=engine,
                      shared=shared, workorders=workorders, followups=followups, dialer=dialer, notices=notices,
                      recordings=recordings, app=app, metrics=metrics, stop=stop)
        log.info("shutting down")


def _applier(settings: Settings, engine: Engine) -> Any:
    """How a newer directory reaches this engine: its core at once; when the agents' endpoints
    changed, the pjsip file rendered again (on the machine that has Asterisk's configs) and
    res_pjsip reloaded over AMI, so a new agent's phone registers without a restart."""
    rendered: list[Any] = [None]

    async def apply(directory: Directory) -> None:
        engine.apply_directory(directory)
        key = directory.endpoints_key()
        if key == rendered[0]:
            return
        path = await asyncio.to_thread(write_pjsip, settings, directory.active_agents())
        rendered[0] = key
        if path is None:
            return
        try:
            await engine.gateway.reload_pjsip()
            log.info("agents' endpoints rendered (%d) and res_pjsip reloaded", len(directory.active_agents()))
        except (AmiError, OSError) as exc:
            rendered[0] = None     # try again with the next version or poll
            log.error("res_pjsip not reloaded (%s): new agents' phones cannot register yet", exc)

    return apply


async def transcription_worker(settings: Settings, stop: asyncio.Event, consumer: str) -> None:
    """A transcription worker inside the hotline's process, until `stop`. A failure (no Vosk
    model, Redis gone) is logged and the worker starts again a little later; calls go on."""
    from callcenter.recording.worker import run_worker

    while not stop.is_set():
        try:
            await run_worker(settings, stop, consumer=consumer)
        except Exception:
            log.exception("transcription worker %s stopped; starting again in %.0f s", consumer, WORKER_RETRY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WORKER_RETRY_S)


async def _finish_workers(workers: list[asyncio.Task[None]]) -> None:
    """A worker finishes the recording it is on (its job is acknowledged); one still decoding
    after WORKERS_STOP_S is cancelled and its job is taken again later."""
    _, late = await asyncio.wait(workers, timeout=WORKERS_STOP_S)
    for task in late:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def _finish(task: asyncio.Task[Any]) -> None:
    """A task that ends once `stop` is set: waited for; one that failed is logged, not raised."""
    try:
        await task
    except Exception:
        log.exception("%s ended with an error", task.get_name())


async def serve(settings: Settings, stop: asyncio.Event | None = None, *, transcription_workers: int = 0) -> None:
    """The hotline until SIGINT/SIGTERM (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with build_hotline(settings, stop, transcription_workers=transcription_workers):
        await stop.wait()
