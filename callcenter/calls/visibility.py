"""Who may see a call: one rule for every route that shows a call, its recording, its audio
link, its transcript and words, and its search hits (qa/http.py, recording/http.py).

- Agents: their own calls (an agent log-in without an agent id sees none).
- QA: the calls of the queues they cover (every queue when they cover none) and every call
  assigned to them.
- Supervisors: every call's record, checks and scores, but no words and no audio: they read no
  transcript, hear no recording and get no word said, not even as a search hit or a check's
  evidence.
- Admin: everything.
- Anyone else (field units): no call.

A call outside a user's scope is "not found" to them, exactly like a call that does not exist.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import Call
from callcenter.qa.models import Assignment, ReviewerQueue
from callcenter.web import access

LISTENERS = (access.AGENT, access.QA, access.ADMIN)                       # hear the audio, read the words
READERS = (access.AGENT, access.QA, access.SUPERVISOR, access.ADMIN)      # see a call's record


@dataclass(frozen=True)
class Scope:
    """The calls a user may see, and what of them. The default sees every call, words and audio."""

    agent_id: str | None = None             # only this agent's calls
    queues: frozenset[str] | None = None    # only these queues' calls, and the calls assigned to `reviewer`
    reviewer: str | None = None
    words: bool = True                      # may read what was said (transcript, words, hits, evidence)
    audio: bool = True                      # may hear the recording (a signed audio link)
    nothing: bool = False                   # sees no call at all


NOTHING = Scope(words=False, audio=False, nothing=True)


def scope_of(user: access.User, covered: frozenset[str] | None = None) -> Scope:
    """The rule, pure: `covered` is the queues a QA user covers (None: every queue)."""
    if user.role == access.AGENT:
        return Scope(agent_id=user.agent_id) if user.agent_id else NOTHING
    if user.role == access.QA:
        return Scope(queues=covered, reviewer=user.username)
    if user.role == access.SUPERVISOR:
        return Scope(words=False, audio=False)
    if user.role == access.ADMIN:
        return Scope()
    return NOTHING


async def covered_queues(sessionmaker: async_sessionmaker[AsyncSession], reviewer: str) -> frozenset[str] | None:
    """The queues a QA user covers; None when they cover none (then they cover every queue)."""
    async with sessionmaker() as session:
        queues = (await session.scalars(select(ReviewerQueue.queue).where(ReviewerQueue.reviewer == reviewer))).all()
    return frozenset(queues) if queues else None


async def scope_for(sessionmaker: async_sessionmaker[AsyncSession], user: access.User) -> Scope:
    covered = await covered_queues(sessionmaker, user.username) if user.role == access.QA else None
    return scope_of(user, covered)


def in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    """WHERE clauses on Call that keep the calls in the scope."""
    if scope.nothing:
        return [false()]
    clauses: list[ColumnElement[bool]] = []
    if scope.agent_id is not None:
        clauses.append(Call.agent_id == scope.agent_id)
    if scope.queues is not None:
        mine = select(Assignment.call_id).where(Assignment.reviewer == (scope.reviewer or ""))
        clauses.append(or_(Call.queue.in_(sorted(scope.queues)), Call.id.in_(mine)))
    return clauses


async def visible_call(sessionmaker: async_sessionmaker[AsyncSession], call_id: str, scope: Scope) -> Call | None:
    """The call, when it exists and is in the scope; else None (the routes answer "not found")."""
    async with sessionmaker() as session:
        return (await session.scalars(select(Call).where(Call.id == call_id, *in_scope(scope)))).one_or_none()


def checks_for(scope: Scope, checks: list[Any] | None) -> list[Any]:
    """A call's check results as the scope may see them: without the words said as evidence
    (a greeting's or a forbidden phrase's text) when it may not read words; the times stay."""
    if scope.words:
        return list(checks or [])
    return [{**c, "evidence": [{k: v for k, v in e.items() if k != "text"} for e in c.get("evidence", [])
                                if isinstance(e, dict)]} if isinstance(c, dict) else c for c in checks or []]
