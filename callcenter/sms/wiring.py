"""Builds the SMS channel for the running hotline: the store, the sender task, and the hooks
that make other domains' events into messages (follow-ups, outage notices, warnings, dispatch)."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.sms.http import SMS, callback_base
from callcenter.sms.kannel import KannelClient
from callcenter.sms.sender import SmsSender
from callcenter.sms.service import SmsService


def start_sms(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], app: web.Application,
              stop: asyncio.Event, **domains: Any) -> asyncio.Task[None] | None:
    """The sender task (None when SMS is off); the service goes on the app for the routes."""
    service = SmsService(sessionmaker, settings.sms, settings.hotline.timezone)
    app[SMS] = service
    if not settings.sms.enabled:
        return None
    sender = SmsSender(service, KannelClient(settings.sms, callback_base(settings)))
    return asyncio.create_task(sender.run(stop))
