from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callcenter.calls.models import ANSWERED, AgentAttempt, Call


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
