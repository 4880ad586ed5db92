"""Fixtures of the AMI adapter tests: a fake AMI server and connections to it."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from callcenter.ami.connection import AmiConnection, ConnectHook
from callcenter.ami.events import Event
from callcenter.config import AmiSettings
from tests.ami.fake_ami import FakeAmi


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


def fast_settings(port: int, **overrides: Any) -> AmiSettings:
    """AmiSettings for tests: short limits, so a silent server is found in a fraction of a second."""
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "username": "callcenter", "secret": "test-ami-secret",
        "action_timeout_s": 1.0, "ping_interval_s": 0.1, "ping_timeout_s": 0.2,
        "reconnect_backoff_initial_s": 0.02, "reconnect_backoff_max_s": 0.2,
    }
    values.update(overrides)
    return AmiSettings(**values)


class Recorder:
    """An event handler that keeps what it got."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()


Connect = Callable[..., Awaitable[AmiConnection]]


@pytest.fixture
async def connect(fake_ami: FakeAmi) -> AsyncIterator[Connect]:
    """connect(handler, on_connect=None, **setting_overrides) -> a started, logged-in AmiConnection."""
    made: list[AmiConnection] = []

    async def make(handler: Callable[[Event], Awaitable[None]], on_connect: ConnectHook | None = None,
                   wait: bool = True, **overrides: Any) -> AmiConnection:
        connection = AmiConnection(fast_settings(fake_ami.port, **overrides), handler, on_connect=on_connect)
        made.append(connection)
        await connection.start()
        if wait:
            await connection.wait_connected(5.0)
        return connection

    yield make
    for connection in made:
        await connection.close()
