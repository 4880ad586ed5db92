"""Prometheus metrics of the hotline (GET /metrics)."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

METRICS = CollectorRegistry(auto_describe=True)
calls_total = Counter("callcenter_calls_total", "Calls ended, by disposition", ["disposition"], registry=METRICS)
calls_waiting = Gauge("callcenter_calls_waiting", "Callers waiting, by queue", ["queue"], registry=METRICS)
agents = Gauge("callcenter_agents", "Agents by state", ["state"], registry=METRICS)
answer_latency = Histogram("callcenter_answer_latency_seconds", "Call arrival to the engine's answer",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0), registry=METRICS)
ami_connected = Gauge("callcenter_ami_connected", "1 while the AMI link is up", registry=METRICS)
