import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.calls.core import Adoption, Phase, adoption
from callcenter.calls.models import ANSWERED, AgentAttempt, Call
from callcenter.calls.store import CallStore
from callcenter.db import create_engine, make_sessionmaker


async def test_call_record_round_trip_keeps_utc(sessionmaker) -> None:
    t0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    async with sessionmaker() as session:
        call = Call(id="c1", uniqueid="1700000000.1", linkedid="1700000000.1", channel="PJSIP/trunk-1",
                    caller_number="13800000000", arrived_at=t0, agent_answered_at=t0 + timedelta(seconds=7),
                    disposition=ANSWERED)
        call.attempts.append(AgentAttempt(agent_id="1001", started_at=t0, result="answered"))
        session.add(call)
        await session.commit()
    async with sessionmaker() as session:
        stored = (await session.execute(select(Call))).scalar_one()
        assert stored.arrived_at == t0 and stored.arrived_at.tzinfo is not None
        assert stored.wait_s == 7.0
        attempts = (await session.execute(select(AgentAttempt))).scalars().all()
        assert [a.agent_id for a in attempts] == ["1001"]


async def test_an_orphaned_call_is_taken_over_by_exactly_one_engine(sessionmaker) -> None:
    store = CallStore(sessionmaker)
    t0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    for n, engine in enumerate(["dead", "dead", "alive"]):
        await store.open(id=f"c{n}", uniqueid=f"17.{n}", linkedid=f"17.{n}", channel=f"PJSIP/trunk-{n}",
                         engine_id=engine, caller_number="13800000000", caller_name="", dialled_number="96666",
                         arrived_at=t0 + timedelta(seconds=n))
    await store.update("c1", closed=True)
    assert [c.id for c in await store.open_calls_of("dead")] == ["c0"]
    won = await asyncio.gather(*(store.take_over("c0", "dead", f"survivor{n}") for n in range(4)))
    assert sorted(won) == [False, False, False, True]
    assert await store.open_calls_of("dead") == []
    assert not await store.take_over("c1", "dead", "survivor0")        # ended calls stay where they are


def _open(store: CallStore, n: int, t0: datetime) -> asyncio.Future[None]:
    return store.open(id=f"c{n}", uniqueid=f"17.{n}", linkedid=f"17.{n}", channel=f"PJSIP/trunk-{n}",
                      engine_id="e1", caller_number="13800000000", caller_name="", dialled_number="96666",
                      arrived_at=t0 + timedelta(seconds=n))


async def test_a_calls_writes_need_not_be_awaited_and_land_in_order(sessionmaker) -> None:
    """What a call's steps ask the store is written in the order asked, after its open; an
    attempt's end is asked before the attempt is even written."""
    store = CallStore(sessionmaker)
    t0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    _open(store, 1, t0)
    store.update("c1", queue="leak", queued_at=t0 + timedelta(seconds=2))
    attempt = store.add_attempt("c1", "1001", t0 + timedelta(seconds=3))
    store.end_attempt("c1", attempt, "answered", t0 + timedelta(seconds=5))
    closed = store.update("c1", agent_id="1001", closed=True)
    await closed                                            # resolved once committed
    assert await attempt is not None
    async with sessionmaker() as session:
        call = (await session.execute(select(Call))).scalar_one()
        row = (await session.execute(select(AgentAttempt))).scalar_one()
    assert (call.queue, call.agent_id, call.closed) == ("leak", "1001", True)
    assert (row.id, row.result, row.ended_at) == (await attempt, "answered", t0 + timedelta(seconds=5))


@pytest.fixture
async def one_connection(database_url: str, db_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test's database through a pool of one connection that waits at most a second for it."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=1)
    yield engine
    await engine.dispose()


async def test_many_calls_writing_at_once_share_one_connection_in_few_transactions(one_connection) -> None:
    """Forty calls each writing five times at the same moment: every write lands, in order,
    through a pool of a single connection, in far fewer transactions than writes."""
    store = CallStore(make_sessionmaker(one_connection))
    t0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)

    async def call(n: int) -> None:
        _open(store, n, t0)
        store.update(f"c{n}", queue="leak")
        attempt = store.add_attempt(f"c{n}", "1001", t0)
        store.end_attempt(f"c{n}", attempt, "answered", t0)
        await store.update(f"c{n}", closed=True)

    await asyncio.gather(*(call(n) for n in range(40)))
    async with make_sessionmaker(one_connection)() as session:
        calls = (await session.execute(select(Call))).scalars().all()
        attempts = (await session.execute(select(AgentAttempt))).scalars().all()
    assert len(calls) == 40 and all(c.closed and c.queue == "leak" for c in calls)
    assert len(attempts) == 40 and all(a.result == "answered" for a in attempts)
    assert store.writer.transactions < 40 * 5 / 4        # batched: far fewer transactions than writes


async def test_a_write_that_fails_does_not_take_the_others_of_its_batch_with_it(sessionmaker, caplog) -> None:
    store = CallStore(sessionmaker)
    t0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    await _open(store, 1, t0)
    with caplog.at_level(logging.ERROR, logger="callcenter.db.writer"):
        again = _open(store, 1, t0)            # the same call id twice: refused by the database
        _open(store, 2, t0)
        store.update("c2", queue="billing")
        assert await again is None
        await store.flush()
    async with sessionmaker() as session:
        calls = {c.id: c for c in (await session.execute(select(Call))).scalars()}
    assert sorted(calls) == ["c1", "c2"] and calls["c2"].queue == "billing"
    assert any("call c1: open" in r.getMessage() and "failed after 3 tries" in r.getMessage() for r in caplog.records)


CHANNELS = {"PJSIP/trunk-1": ("17.1", "bridge-1"), "PJSIP/1001-1": ("17.1", "bridge-1"),
            "PJSIP/trunk-2": ("17.2", ""), "PJSIP/1002-2": ("17.2", ""),
            "PJSIP/trunk-3": ("17.3", ""), "PJSIP/trunk-9": ("17.9", "bridge-9"), "PJSIP/spy-9": ("99.1", "bridge-9")}


@pytest.mark.parametrize(("channel", "linkedid", "queued", "answered", "expected"), [
    ("PJSIP/trunk-0", "17.0", True, True, Adoption(Phase.ENDED)),                        # the caller is gone
    ("PJSIP/trunk-1", "17.1", True, True, Adoption(Phase.TALKING, agent_channel="PJSIP/1001-1")),
    ("PJSIP/trunk-2", "17.2", True, False, Adoption(Phase.WAITING, hang_up=("PJSIP/1002-2",))),  # still ringing
    ("PJSIP/trunk-3", "17.3", True, True, Adoption(Phase.SURVEY)),                       # the agent has left
    ("PJSIP/trunk-3", "17.3", True, False, Adoption(Phase.WAITING)),
    ("PJSIP/trunk-3", "17.3", False, False, Adoption(Phase.IVR)),
    ("PJSIP/trunk-9", "17.9", True, True, Adoption(Phase.SURVEY)),   # bridged with a stranger, not its agent
])
def test_where_an_orphaned_call_picks_up(channel: str, linkedid: str, queued: bool, answered: bool,
                                         expected: Adoption) -> None:
    assert adoption(channel, linkedid, queued=queued, agent_answered=answered, channels=CHANNELS) == expected
