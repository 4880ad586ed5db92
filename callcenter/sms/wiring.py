"""Builds the SMS channel for the running hotline: the store, the sender task, and the hooks
that make other domains' events into messages (follow-ups, outage notices, warnings)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.dial_policy import DialPolicy
from callcenter.config import Settings
from callcenter.sms.followups import SmsFollowUps
from callcenter.sms.http import SMS, callback_base
from callcenter.sms.kannel import KannelClient
from callcenter.sms.numbers import textable
from callcenter.sms.sender import SmsSender
from callcenter.sms.service import SmsService

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 60.0


def start_sms(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], app: web.Application,
              stop: asyncio.Event, **domains: Any) -> asyncio.Task[None] | None:
    """The SMS task (None when SMS is off); the service goes on the app for the routes."""
    service = SmsService(sessionmaker, settings.sms, settings.hotline.timezone,
                         check_number=textable(DialPolicy.from_settings(settings.dial_policy)))
    app[SMS] = service
    if not settings.sms.enabled:
        return None
    hooks: list[Any] = []
    if domains.get("followups") is not None:
        hooks.append(SmsFollowUps(service, domains["followups"], settings.hotline.name))
    if domains.get("orders") is not None:
        from callcenter.sms.staff import DispatchTexts, SmsWarnings

        hooks.append(SmsWarnings(service, domains["orders"], settings.hotline.name, settings,
                                 domains.get("notices")))
        hooks.append(DispatchTexts(service, domains["orders"]))
    if domains.get("notices") is not None:
        from callcenter.sms.outages import OutageTexts

        hooks.append(OutageTexts(service, domains["notices"], settings.hotline.name))
    sender = SmsSender(service, KannelClient(settings.sms, callback_base(settings)))
    return asyncio.create_task(_run(sender, hooks, stop))


async def _run(sender: SmsSender, hooks: list[Any], stop: asyncio.Event) -> None:
    async def housekeeping() -> None:
        while not stop.is_set():
            for hook in hooks:
                if hasattr(hook, "housekeeping"):
                    try:
                        await hook.housekeeping()
                    except Exception:
                        log.exception("sms housekeeping of %s failed", type(hook).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_S)

    await asyncio.gather(sender.run(stop), housekeeping())
