import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.calls.core import Adoption, Phase, adoption
from callcenter.calls.models import ANSWERED, AgentAttempt, Call
from callcenter.calls.store import CallStore


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
