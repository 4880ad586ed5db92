"""The sender: an asyncio task that hands due messages to Kannel, at the gateway's rate.

Each pass claims a batch of due messages (callcenter/sms/service.py `claim`), sends them
`concurrency` at a time through the per-gateway token bucket, and stores each outcome. When
the gateway is down (connection refused, 503) the batch goes back to the queue and the sender
waits, doubling the wait up to `retry_max_s`, before it tries again; the first accepted message
resets the wait.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from callcenter.clock import Clock, SystemClock
from callcenter.sms import core
from callcenter.sms.kannel import KannelClient
from callcenter.sms.models import SmsMessage
from callcenter.sms.service import SmsService

log = logging.getLogger(__name__)


class SmsSender:
    def __init__(self, service: SmsService, client: KannelClient, clock: Clock | None = None) -> None:
        self.service = service
        self.client = client
        self.settings = service.settings
        self.clock: Clock = clock or SystemClock()
        self.bucket = core.TokenBucket(self.settings.rate_per_s, float(self.settings.burst))
        self.down_for = 0      # consecutive passes that found the gateway down
        self.wake = asyncio.Event()
        service.queued_listeners.append(self.wake.set)

    async def send_due(self) -> int:
        """One pass: the messages handed to Kannel (accepted or not)."""
        batch = await self.service.claim(self.settings.batch)
        if not batch:
            return 0
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        outcomes: list[tuple[SmsMessage, core.Outcome, str]] = []

        async def one(message: SmsMessage) -> None:
            async with semaphore:
                await self._token()
                outcome, detail = await self.client.send(message)
                outcomes.append((message, outcome, detail))

        await asyncio.gather(*(one(m) for m in batch))
        accepted = [m.id for m, o, _ in outcomes if o is core.Outcome.ACCEPTED]
        down = [(m.id, d) for m, o, d in outcomes if o is core.Outcome.GATEWAY_DOWN]
        await self.service.accepted(accepted)
        if down:
            await self.service.gateway_down([i for i, _ in down], down[0][1])
        for message, outcome, detail in outcomes:
            if outcome is core.Outcome.UNCERTAIN:
                await self.service.uncertain(message.id, detail)
            elif outcome is core.Outcome.REJECTED:
                log.warning("sms %s to %s refused by the gateway: %s", message.id, message.number, detail)
                await self.service.rejected(message.id, detail)
        if down and not accepted:
            self.down_for += 1
            log.warning("sms gateway down (%s); %d messages wait", down[0][1], len(down))
        elif accepted:
            self.down_for = 0
        return len(batch)

    async def _token(self) -> None:
        """Wait for the gateway's token bucket (the rate limit)."""
        for _ in range(10_000):
            wait = self.bucket.take(self.clock.monotonic())
            if not wait:
                return
            await asyncio.sleep(wait)

    def pause_s(self) -> float:
        if self.down_for:
            return core.backoff_s(self.down_for, self.settings.retry_initial_s, self.settings.retry_max_s)
        return self.settings.poll_interval_s

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    handled = await self.send_due()
                except Exception:
                    log.exception("sms sender pass failed")
                    handled = 0
                if handled and not self.down_for:
                    continue   # more may be due at once
                self.wake.clear()
                waiters = [asyncio.ensure_future(stop.wait())]
                if not self.down_for:
                    waiters.append(asyncio.ensure_future(self.wake.wait()))
                _, pending = await asyncio.wait(waiters, timeout=self.pause_s(), return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await self.client.close()
