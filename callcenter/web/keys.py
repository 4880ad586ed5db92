"""The web app's typed keys, and the protocols of what the wiring puts under them."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings


class AgentControl(Protocol):
    """Agent state, as the engine offers it (raises LookupError / ValueError)."""

    async def login(self, agent_id: str, endpoint: str | None = None) -> None: ...
    async def logout(self, agent_id: str) -> None: ...
    async def pause(self, agent_id: str, reason: str) -> None: ...
    async def ready(self, agent_id: str) -> None: ...
    async def extend_wrapup(self, agent_id: str, seconds: float) -> None: ...
    async def agents(self) -> list[dict[str, Any]]: ...
    async def spy(self, agent_id: str, phone: str, mode: str, supervisor: str) -> dict[str, Any]: ...
    async def pause_recording(self, agent_id: str, paused: bool) -> dict[str, Any]: ...
    async def transfer(self, agent_id: str, *, queue: str | None = None,
                       to_agent: str | None = None) -> dict[str, Any]: ...
    async def consult(self, agent_id: str, to_agent: str) -> dict[str, Any]: ...


class LiveSource(Protocol):
    async def snapshot(self) -> dict[str, Any]: ...
    def updates(self) -> AsyncIterator[dict[str, Any]]: ...


SETTINGS = web.AppKey("settings", Settings)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
REDIS = web.AppKey("redis", aioredis.Redis)
LIVE = web.AppKey("live", LiveSource)
AGENT_CONTROL = web.AppKey("agent_control", AgentControl)
AMI_STATUS = web.AppKey("ami_status", Callable[[], Awaitable[dict[str, Any]]])
