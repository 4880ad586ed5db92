"""The hotline's directory as the engines use it: agents (who may log in, their phone, queues
and skill levels) and the routing policy (the queues), read from the database. Pure: no I/O.

`Directory` is what one settings version says; an engine holds the newest it has read and
swaps it whole when a newer one comes (admin/service.py tells it).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callcenter.acd.settings import AcdPolicy, QueuePolicy, RoutingPolicy

# The PJSIP realm the agents' digests are made for (Asterisk's default_realm).
REALM = "asterisk"


def sip_ha1(agent_id: str, password: str) -> str:
    """The digest PJSIP checks a registration against (md5_cred): MD5 of "id:realm:password"."""
    return hashlib.md5(f"{agent_id}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class AgentEntry:
    """One agent of the directory (what the engine needs: no password, only its digest)."""

    id: str
    name: str
    sip_ha1: str
    contact: str | None = None
    endpoints: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    skills: Mapping[str, int] = field(default_factory=dict)
    active: bool = True

    def login_skills(self, names: Iterable[str]) -> dict[str, int]:
        """Skill per queue for a log-in on these queues (1 where no level is given)."""
        return {q: int(self.skills.get(q, 1)) for q in names}

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "contact": self.contact, "endpoints": list(self.endpoints),
                "queues": list(self.queues), "skills": dict(self.skills), "active": self.active}


@dataclass(frozen=True)
class Directory:
    version: int
    agents: Mapping[str, AgentEntry]
    policy: RoutingPolicy

    def agent(self, agent_id: str) -> AgentEntry:
        """An active agent, or LookupError."""
        found = self.agents.get(agent_id)
        if found is None or not found.active:
            raise LookupError(f"unknown agent {agent_id!r}: not in the hotline's agents")
        return found

    def active_agents(self) -> list[AgentEntry]:
        return [a for a in self.agents.values() if a.active]

    def endpoints_key(self) -> tuple[Any, ...]:
        """What Asterisk's endpoints depend on: a change here means a new pjsip file and a reload."""
        return tuple(sorted((a.id, a.name, a.sip_ha1, a.contact or "") for a in self.active_agents()))


def policy_of(acd: AcdPolicy, queues: Iterable[Mapping[str, Any]]) -> RoutingPolicy:
    """The routing policy of the [acd] section and the queues' rows (each a QueuePolicy dump)."""
    return RoutingPolicy(acd=acd, queues=tuple(QueuePolicy.model_validate(q) for q in queues))


def skills_changed(old: AgentEntry | None, new: AgentEntry) -> bool:
    return old is None or (old.queues, dict(old.skills)) != (new.queues, dict(new.skills))
