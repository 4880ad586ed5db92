"""Prometheus metrics of the hotline (GET /metrics, admin only).

Each running hotline has its own registry (`HotlineMetrics`), made by the wiring and handed
to the web app: nothing is global, so two apps in one process (tests, two engines) never add
to each other's figures.

What moves them, and when:

    callcenter_calls_total{outcome,queue}          counter  a call's record closes (CallMetrics, an
    callcenter_answer_latency_seconds              histogram    engine hook: the numbers of the
    callcenter_time_to_agent_seconds{queue}        histogram    closed record, the reports' own)
    callcenter_deadline_alerts_total{kind}         counter  the deadline watcher sends an alert
                                                            (warning | escalated | breached; AlertCounter)
    callcenter_calls_waiting{queue}                gauge    read from the engine's ACD at each scrape
    callcenter_agents{queue,state}                 gauge        (AcdCollector: the routing core's own state)
    callcenter_ami_connected                       gauge    the AMI link's state at each scrape
    callcenter_transcription_backlog               gauge    the job stream at each scrape: recordings
                                                            not yet taken by a worker plus those being
                                                            transcribed (Redis consumer group lag + pending)

Figures are this engine's: with several engines, sum the calls and the waiting callers over
them; agents are shared, so every engine shows all of them (take one, or the max).
"""
from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.acd.core import Acd

log = logging.getLogger(__name__)

ANSWER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TIME_TO_AGENT_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)


class HotlineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("callcenter_calls", "Calls ended, by outcome (disposition) and queue",
                             ["outcome", "queue"], registry=r)
        self.answer_latency = Histogram("callcenter_answer_latency_seconds",
                                        "A call's arrival (INVITE) to the engine's answer", buckets=ANSWER_BUCKETS,
                                        registry=r)
        self.time_to_agent = Histogram("callcenter_time_to_agent_seconds",
                                       "A call's arrival to an agent's answer, by queue", ["queue"],
                                       buckets=TIME_TO_AGENT_BUCKETS, registry=r)
        self.deadline_alerts = Counter("callcenter_deadline_alerts", "Work-order deadline alerts, by kind",
                                       ["kind"], registry=r)
        self.ami_connected = Gauge("callcenter_ami_connected", "1 while the AMI link is up", registry=r)
        self.transcription_backlog = Gauge("callcenter_transcription_backlog",
                                           "Recordings waiting for their transcript (queued or being transcribed)",
                                           registry=r)
        # Read before each scrape (the job stream lives in Redis: an await, not a collector).
        self.refreshers: list[Callable[[], Awaitable[None]]] = []

    def follow_engine(self, acd: Acd, queues: list[str], ami_connected: Callable[[], bool]) -> None:
        self.registry.register(AcdCollector(acd, queues))
        self.ami_connected.set_function(lambda: 1.0 if ami_connected() else 0.0)

    def follow_transcription(self, backlog: Callable[[], Awaitable[int]]) -> None:
        async def refresh() -> None:
            self.transcription_backlog.set(await backlog())

        self.refreshers.append(refresh)

    async def refresh(self) -> None:
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception as exc:   # a scrape still answers with the rest
                log.warning("metrics refresh failed: %s: %s", type(exc).__name__, exc)

    def call_ended(self, outcome: str | None, queue: str | None, answer_latency_s: float | None,
                   time_to_agent_s: float | None) -> None:
        self.calls.labels(outcome=outcome or "unknown", queue=queue or "").inc()
        if answer_latency_s is not None:
            self.answer_latency.observe(answer_latency_s)
        if time_to_agent_s is not None:
            self.time_to_agent.labels(queue=queue or "").observe(time_to_agent_s)


class AcdCollector(Collector):
    """Waiting callers and agents by state, per queue, as the routing core holds them now."""

    def __init__(self, acd: Acd, queues: list[str]) -> None:
        self.acd, self.queues = acd, list(queues)

    def describe(self) -> list[Any]:
        return list(self._families({}, Tally()))

    def collect(self) -> Iterator[Any]:
        waiting = {q: 0 for q in self.queues}
        for call in self.acd.calls():
            if call.state.value == "waiting" and call.queue:
                waiting[call.queue] = waiting.get(call.queue, 0) + 1
        agents: Tally[tuple[str, str]] = Tally()
        for agent in self.acd.agents():
            for queue in agent.skills:
                agents[(queue, agent.state.value)] += 1
        yield from self._families(waiting, agents)

    @staticmethod
    def _families(waiting: dict[str, int], agents: Tally[tuple[str, str]]) -> Iterator[Any]:
        calls = GaugeMetricFamily("callcenter_calls_waiting", "Callers waiting for an agent, by queue",
                                  labels=["queue"])
        for queue, n in sorted(waiting.items()):
            calls.add_metric([queue], n)
        yield calls
        by_state = GaugeMetricFamily("callcenter_agents", "Logged-in agents by state, per queue they serve",
                                     labels=["queue", "state"])
        for (queue, state), n in sorted(agents.items()):
            by_state.add_metric([queue, state], n)
        yield by_state


class CallMetrics:
    """An engine hook: when a call's record closes, count it and observe its times."""

    def __init__(self, metrics: HotlineMetrics, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.metrics, self.sessionmaker = metrics, sessionmaker

    async def call_closed(self, call_id: str) -> None:
        from callcenter.calls.models import Call

        async with self.sessionmaker() as session:
            call = await session.get(Call, call_id)
        if call is None:
            return
        latency = None if call.answer_latency_ms is None else call.answer_latency_ms / 1000
        self.metrics.call_ended(call.disposition, call.queue, latency, call.wait_s)

    async def recording_finalised(self, call_id: str, wav_path: Path) -> None:
        return None


class AlertCounter:
    """A work-order alert sink: counts the deadline watcher's alerts by kind."""

    def __init__(self, metrics: HotlineMetrics) -> None:
        self.metrics = metrics

    async def send(self, alert: dict[str, Any]) -> None:
        self.metrics.deadline_alerts.labels(kind=str(alert.get("kind", "unknown"))).inc()
