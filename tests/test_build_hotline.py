"""`build_hotline` below Asterisk: the whole hotline on the fake AMI server, a real SQLite
database and Redis — it answers on its web port while open, a call on the line becomes a
record, and everything it opened is closed again when the block ends."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
from sqlalchemy import select

from callcenter.app import build_hotline
from callcenter.calls.models import Call
from tests.ami.fake_ami import FakeAmi
from tests.calls.fake_line import FakeLine, agent, line_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_hotline_it_builds_answers_takes_a_call_and_closes_all_it_opened(settings) -> None:
    fake = FakeAmi()
    await fake.start()
    port = free_port()
    settings = line_settings(settings, fake.port, [agent("1001")])
    settings = settings.model_copy(update={
        "web": settings.web.model_copy(update={"host": "127.0.0.1", "port": port}),
        "sms": settings.sms.model_copy(update={"enabled": False})})
    try:
        async with build_hotline(settings) as hotline:
            line = FakeLine(fake, hotline.engine)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{hotline.url}/health") as response:
                    assert response.status == 200 and (await response.json())["ok"] is True
            line.call_in()
            await line.until(lambda: any(c.startswith("EXEC Playback") or c.startswith("GET DATA")
                                         for c in line.commands))
            line.hang_up()

            async def closed() -> bool:
                async with hotline.sessionmaker() as session:
                    return bool((await session.execute(select(Call.closed))).scalars().all() == [True])
            for _ in range(100):
                if await closed():
                    break
                await asyncio.sleep(0.05)
            assert await closed()
            duties = [t for t in asyncio.all_tasks() if t.get_name() == "duties"]
            assert len(duties) == 1 and not duties[0].done()
        assert hotline.stop.is_set() and duties[0].done()
        assert not hotline.engine.connection.connected
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0       # the web port is closed
    finally:
        await fake.close()
