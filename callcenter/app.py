"""Wiring: the one place that builds the running hotline from its settings (plain code, no framework).

    serve(settings): database (migrated) → Redis → live state → engine (AMI) → web server,
    until SIGINT/SIGTERM; then the web server, the engine and the connections close in order.
    serve(settings, transcription_workers=1) also runs that many transcription workers in the
    same process (`callcenter run` does, by `[transcription] workers_in_run`); a deployment
    runs `callcenter worker` processes instead.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from callcenter.acd.live import LiveState
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


def domain_routes() -> list[Any]:
    """Every domain's HTTP routes that are present in this build."""
    import importlib

    setups = []
    for module in ("callcenter.workorders.http", "callcenter.recording.http", "callcenter.qa.http",
                   "callcenter.notices.http", "callcenter.sms.http", "callcenter.pages.http"):
        try:
            setups.append(importlib.import_module(module).setup_routes)
        except ModuleNotFoundError:
            continue
    return setups


WORKER_RETRY_S = 5.0
WORKERS_STOP_S = 30.0


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


async def serve(settings: Settings, stop: asyncio.Event | None = None, *, transcription_workers: int = 0) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    menu = load_menu(settings.ivr.menu_file or None, queue_names=[q.name for q in settings.queues])
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    sessionmaker = make_sessionmaker(db)
    redis = aioredis.Redis.from_url(settings.redis.url, decode_responses=True, socket_connect_timeout=2)
    engine_id = settings.cluster.engine_id or f"engine-{settings.web.port}"
    live = LiveState(redis, settings.redis.prefix, engine_id)
    recordings = RecordingService(redis, settings.redis.prefix, settings.transcription.stream,
                                  settings.transcription.group)
    metrics = HotlineMetrics()
    sinks: list[AlertSink] = [LiveChannelSink(redis, settings.redis.prefix), WebhookSink(settings.workorders.webhooks),
                              AlertCounter(metrics)]
    workorders = WorkOrderService(sessionmaker, load_categories(settings.workorders.categories_file or None),
                                  settings.hotline.timezone, sinks=sinks)
    followups = FollowUpService(sessionmaker, workorders)
    notices = NoticeService(sessionmaker, settings.paths.prompts_dir, settings.hotline.timezone, settings.ivr.voice,
                            settings.ivr.speed_wpm)
    engine = Engine(settings, sessionmaker, menu, live=live, engine_id=engine_id,
                    hooks=[recordings, workorders, CallMetrics(metrics, sessionmaker)], notices=notices.notice_for)
    metrics.follow_engine(engine.acd, [q.name for q in settings.queues], lambda: engine.connection.connected)
    metrics.follow_transcription(recordings.queue.backlog)
    shared = SharedHotline(engine, live)
    dialer = FollowUpCalls(engine, followups)
    await seed_users(sessionmaker, settings, datetime.now(UTC))

    async def ami_status() -> dict[str, Any]:
        return {"ok": engine.connection.connected, "calls": len(engine.sessions)}

    app = init_app(settings, sessionmaker=sessionmaker, redis=redis, live=live, agent_control=engine,
                   route_setups=domain_routes(), ami_status=ami_status, metrics=metrics)
    app[workorders_http.ORDERS], app[workorders_http.FOLLOWUPS] = workorders, followups
    app[notices_http.NOTICES] = notices
    sms = start_sms(settings, sessionmaker, app, stop, orders=workorders, followups=followups, notices=notices)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web.host, settings.web.port)
    duties: asyncio.Task[None] | None = None
    workers: list[asyncio.Task[None]] = []
    try:
        await engine.start()
        await site.start()
        duties = asyncio.create_task(workorders_runner.run(settings, workorders, followups, dialer, stop,
                                                                lead=shared.lead))
        workers = [asyncio.create_task(transcription_worker(settings, stop, f"{engine_id}-transcriber-{n + 1}"),
                                       name=f"transcriber-{n + 1}") for n in range(transcription_workers)]
        log.info("hotline running: web on http://%s:%s/", settings.web.host, settings.web.port)
        await stop.wait()
    finally:
        log.info("shutting down")
        stop.set()
        if duties is not None:
            await duties
        if workers:
            # A worker finishes the recording it is on (its job is acknowledged); one still
            # decoding after WORKERS_STOP_S is cancelled and its job is taken again later.
            _, late = await asyncio.wait(workers, timeout=WORKERS_STOP_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if sms is not None:
            await sms
        await runner.cleanup()
        await engine.stop()
        await redis.aclose()
        await db.dispose()
