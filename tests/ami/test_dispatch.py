from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from callcenter.ami.connection import backoff
from callcenter.ami.dispatch import TaskSupervisor


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert list(itertools.islice(backoff(0.2, 10.0), 8)) == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert list(itertools.islice(backoff(5.0, 1.0), 2)) == [1.0, 1.0]


async def test_supervisor_keeps_tasks_and_logs_their_failures(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSupervisor()

    async def fails() -> None:
        raise ValueError("lost in a fire-and-forget callback")

    async def waits() -> None:
        await asyncio.sleep(60)

    caplog.set_level(logging.ERROR, logger="callcenter.ami")
    tasks.spawn(fails(), name="ami-test-failing")
    tasks.spawn(waits(), name="ami-test-waiting")
    assert len(tasks) == 2
    await asyncio.sleep(0.01)
    assert tasks.failures == 1 and len(tasks) == 1
    record = next(r for r in caplog.records if "ami-test-failing" in r.getMessage())
    assert record.exc_info is not None and "lost in a fire-and-forget callback" in str(record.exc_info[1])
    await tasks.close()
    assert len(tasks) == 0 and tasks.failures == 1  # cancelling is not a failure
