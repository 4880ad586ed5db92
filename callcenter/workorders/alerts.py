"""Where work-order alerts go: the dashboard's live channel and configurable webhooks.

An alert is a small JSON object: kind (warning | escalated | breached), the order, its unit,
the deadline concerned and why. A sink that fails logs and drops the alert; the order and its
audit trail are already stored, and the next watcher scan does not depend on the alert.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    async def send(self, alert: dict[str, Any]) -> None: ...


def order_alert(kind: str, order: Any, reason: str, at: datetime, deadline: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "order_id": order.id, "unit": order.unit, "category": order.category,
            "state": order.state, "escalation_level": order.escalation_level, "deadline": deadline,
            "reason": reason, "at": at.isoformat()}


class LiveChannelSink:
    """Publishes on the live channel the wallboard follows (kind "alert")."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = f"{prefix}live"

    async def send(self, alert: dict[str, Any]) -> None:
        message = {"kind": "alert", "id": str(alert["order_id"]), "data": alert}
        await self.redis.publish(self.channel, json.dumps(message, ensure_ascii=False))


class WebhookSink:
    """POSTs each alert as JSON to every configured URL (one retry, a short timeout)."""

    def __init__(self, urls: Sequence[str], timeout_s: float = 5.0) -> None:
        self.urls = list(urls)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, alert: dict[str, Any]) -> None:
        if not self.urls:
            return
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            await asyncio.gather(*(self._post(http, url, alert) for url in self.urls))

    async def _post(self, http: aiohttp.ClientSession, url: str, alert: dict[str, Any]) -> None:
        for attempt in (1, 2):
            try:
                async with http.post(url, json=alert) as response:
                    if response.status < 400:
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s, attempt %d: %s", url, attempt, problem)
        log.error("webhook %s: alert for order %s dropped after 2 attempts", url, alert.get("order_id"))


async def send_all(sinks: Sequence[AlertSink], alert: dict[str, Any]) -> None:
    for sink in sinks:
        try:
            await sink.send(alert)
        except Exception as exc:
            log.error("alert sink %s failed for order %s: %s", type(sink).__name__, alert.get("order_id"), exc)
