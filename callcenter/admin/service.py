"""Agents, queues and users run from the database; every change audited and told to the engines.

Theory of operation
-------------------
* **Seeding.** On the hotline's first start (no row in `hotline_settings`) the settings file's
  `[[agents]]` and `[[queues]]` are written to the database, as version 1. From then on the
  database is the hotline's word: the settings' agents and queues are not read again (users keep
  their own rule: see web/users.py, which leaves alone a user the administrator changed).
* **A change** (pages, API, CLI) is checked (each refusal an `AdminError` naming the field),
  written with its audit entry (who, when, what, before and after) and a new settings version,
  all in one transaction. Then it is told: the engines of this process at once (`listeners`),
  the others through Redis (`<prefix>settings`, a message `{"version": n}`).
* **An engine** (`SettingsFollower`) re-reads the directory whenever it hears of a newer
  version — from Redis, and also every `poll_s` seconds from the database, so a change made
  while Redis was down (or a message lost on a reconnect) still arrives — and applies it to its
  core without a restart (`Engine.apply_directory`). When the agents' endpoints changed, the
  pjsip file is rendered again and Asterisk reloads res_pjsip (an AMI `Reload`): a new agent's
  phone can register at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.acd.settings import MAX_SKILL_LEVEL, AcdPolicy, QueuePolicy, parse_span
from callcenter.admin.directory import AgentEntry, Directory, policy_of, sip_ha1
from callcenter.admin.models import AgentRecord, AuditEntry, HotlineVersion, QueueRecord
from callcenter.web import access, users
from callcenter.web.models import ApiToken, User

log = logging.getLogger(__name__)

AGENT_ID = re.compile(r"^[0-9]{3,8}$")            # agent ids made here: digits (they are SIP user names)
NAME_BANNED = set(';[]<>"\\')                     # a name becomes the phone's caller ID text
MAX_NAME = 64
PASSWORD = re.compile(r"^[\x21-\x7e]{10,64}$")    # printable ASCII, no spaces, 10 to 64
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_USER_PASSWORD, MAX_USER_PASSWORD = 10, 256
MAX_QUEUES = 50
QUEUE_KEYS = ("title", "category", "priority", "open_hours", "open_days", "when_closed", "overflow_to",
              "max_wait_s", "wrapup_s", "strategy")
CHANNEL = "settings"


class AdminError(ValueError):
    """A change refused: `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(AdminError):
    """The thing exists already."""


def _now() -> datetime:
    return datetime.now(UTC)


def check_name(field: str, value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_NAME:
        raise AdminError(field, f"1 to {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 or c in NAME_BANNED for c in value):
        raise AdminError(field, 'no control characters and none of ; [ ] < > " \\')
    return value


def check_sip_password(value: str) -> str:
    if not PASSWORD.fullmatch(value):
        raise AdminError("sip_password", "10 to 64 printable characters without spaces")
    return value


def _record_json(r: AgentRecord) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "contact": r.contact, "endpoints": list(r.endpoints or []),
            "queues": list(r.queues or []), "skills": dict(r.skills or {}), "active": r.active}


def _entry(r: AgentRecord) -> AgentEntry:
    return AgentEntry(id=r.id, name=r.name, sip_ha1=r.sip_ha1, contact=r.contact, endpoints=tuple(r.endpoints or ()),
                      queues=tuple(r.queues or ()), skills=dict(r.skills or {}), active=r.active)


def user_json(u: User) -> dict[str, Any]:
    return {"username": u.username, "role": u.role, "agent_id": u.agent_id, "unit": u.unit, "phone": u.phone,
            "active": u.active, "from_settings": u.from_settings}


class AdminService:
    """The hotline's administration over one database (and Redis, to tell the other engines)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], acd: AcdPolicy, *, redis: Any = None,
                 prefix: str = "", categories: Iterable[str] = (), units: Iterable[str] = ()) -> None:
        self.sessionmaker = sessionmaker
        self.acd = acd
        self.redis = redis
        self.channel = prefix + CHANNEL
        self.categories = frozenset(categories)
        self.units = frozenset(units)
        # Told the new version after each change this process made (its engine's follower).
        self.listeners: list[Callable[[int], Awaitable[None]]] = []

    # ------------------------------------------------------------------ seeding, reading

    async def seed(self, settings: Any) -> bool:
        """The settings' agents and queues into the database on the first start; True then."""
        async with self.sessionmaker() as session, session.begin():
            if await session.get(HotlineVersion, 1) is not None:
                return False
            now = _now()
            for n, q in enumerate(settings.queues):
                session.add(QueueRecord(name=q.name, position=n, policy=q.model_dump(mode="json", exclude={"name"}),
                                        updated_at=now))
            for a in settings.agents:
                session.add(AgentRecord(id=a.id, name=a.name, sip_ha1=sip_ha1(a.id, a.sip_password.get_secret_value()),
                                        contact=a.contact, endpoints=list(a.endpoints), queues=list(a.queues),
                                        skills=dict(a.skills), active=True, updated_at=now))
            session.add(HotlineVersion(id=1, version=1, seeded_at=now))
            session.add(AuditEntry(at=now, actor="settings", kind="hotline", key="seed", action="seed", before=None,
                                   after={"agents": [a.id for a in settings.agents],
                                          "queues": [q.name for q in settings.queues]}, version=1))
        log.info("admin: %d agents and %d queues seeded from the settings (first start)", len(settings.agents),
                 len(settings.queues))
        return True

    async def version(self) -> int:
        async with self.sessionmaker() as session:
            row = await session.get(HotlineVersion, 1)
        return row.version if row is not None else 0

    async def directory(self) -> Directory:
        async with self.sessionmaker() as session:
            row = await session.get(HotlineVersion, 1)
            agents = list((await session.execute(select(AgentRecord).order_by(AgentRecord.id))).scalars())
            queues = list((await session.execute(select(QueueRecord).order_by(QueueRecord.position,
                                                                               QueueRecord.name))).scalars())
        policy = policy_of(self.acd, [{**q.policy, "name": q.name} for q in queues])
        return Directory(version=row.version if row else 0, agents={a.id: _entry(a) for a in agents}, policy=policy)

    async def agents(self) -> list[dict[str, Any]]:
        async with self.sessionmaker() as session:
            return [_record_json(r) for r in (await session.execute(select(AgentRecord).order_by(AgentRecord.id))).scalars()]

    async def queues(self) -> list[dict[str, Any]]:
        async with self.sessionmaker() as session:
            rows = list((await session.execute(select(QueueRecord).order_by(QueueRecord.position,
                                                                             QueueRecord.name))).scalars())
        return [QueuePolicy.model_validate({**q.policy, "name": q.name}).model_dump(mode="json") for q in rows]

    async def audit(self, limit: int = 200, kind: str | None = None) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if kind:
            query = query.where(AuditEntry.kind == kind)
        async with self.sessionmaker() as session:
            return list((await session.execute(query)).scalars())

    # ------------------------------------------------------------------ the one way a change is kept

    async def _bump(self, session: AsyncSession) -> int:
        await session.execute(update(HotlineVersion).where(HotlineVersion.id == 1)
                              .values(version=HotlineVersion.version + 1))
        row = (await session.execute(select(HotlineVersion.version).where(HotlineVersion.id == 1))).scalar_one_or_none()
        if row is None:          # never seeded (a database set up by hand): start counting here
            session.add(HotlineVersion(id=1, version=1, seeded_at=_now()))
            return 1
        return int(row)

    @staticmethod
    def _audit(session: AsyncSession, actor: str, kind: str, key: str, action: str, before: Any, after: Any,
               version: int) -> None:
        session.add(AuditEntry(at=_now(), actor=actor[:64], kind=kind, key=key[:64], action=action, before=before,
                               after=after, version=version))

    async def _told(self, version: int) -> None:
        """After the commit: this process's engines at once, the others through Redis."""
        for listener in list(self.listeners):
            try:
                await listener(version)
            except Exception:
                log.exception("admin: a listener failed on version %d", version)
        if self.redis is not None:
            try:
                await self.redis.publish(self.channel, json.dumps({"version": version}))
            except Exception as exc:   # the others re-read the database on their own (poll_s)
                log.warning("admin: version %d not published (%s); engines will read it within their poll", version, exc)

    async def record(self, actor: str, kind: str, key: str, action: str, before: Any, after: Any) -> None:
        """An audit entry for a change another domain kept (an outage notice entered on /admin)."""
        async with self.sessionmaker() as session, session.begin():
            self._audit(session, actor, kind, key, action, before, after, 0)

    # ------------------------------------------------------------------ agents

    async def _checked_skills(self, queues: list[str], skills: dict[str, int], known: set[str]) -> tuple[list[str], dict[str, int]]:
        if len(queues) > MAX_QUEUES:
            raise AdminError("queues", f"at most {MAX_QUEUES}")
        for n, q in enumerate(queues):
            if q not in known:
                raise AdminError(f"queues[{n}]", f"{q[:40]!r} is not a queue")
        queues = list(dict.fromkeys(queues))
        for q, level in skills.items():
            if q not in known:
                raise AdminError(f"skills.{q[:40]}", "not a queue")
            if q not in queues:
                raise AdminError(f"skills.{q[:40]}", "a skill for a queue the agent is not on")
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_SKILL_LEVEL:
                raise AdminError(f"skills.{q[:40]}", f"a level from 1 to {MAX_SKILL_LEVEL}")
        return queues, dict(skills)

    async def _queue_names(self, session: AsyncSession) -> set[str]:
        return set((await session.execute(select(QueueRecord.name))).scalars())

    async def create_agent(self, actor: str, agent_id: str, name: str, sip_password: str, queues: list[str],
                           skills: dict[str, int] | None = None) -> dict[str, Any]:
        if not AGENT_ID.fullmatch(agent_id):
            raise AdminError("id", "3 to 8 digits")
        name = check_name("name", name)
        check_sip_password(sip_password)
        async with self.sessionmaker() as session, session.begin():
            checked_queues, checked_skills = await self._checked_skills(queues, skills or {},
                                                                        await self._queue_names(session))
            if not checked_queues:
                raise AdminError("queues", "at least one queue")
            if await session.get(AgentRecord, agent_id) is not None:
                raise Conflict("id", f"agent {agent_id} exists")
            record = AgentRecord(id=agent_id, name=name, sip_ha1=sip_ha1(agent_id, sip_password), contact=None,
                                 endpoints=[], queues=checked_queues, skills=checked_skills, active=True,
                                 updated_at=_now())
            session.add(record)
            version = await self._bump(session)
            after = _record_json(record)
            self._audit(session, actor, "agent", agent_id, "create", None, after, version)
        log.warning("admin: %s added agent %s (queues %s)", actor, agent_id, ", ".join(checked_queues))
        await self._told(version)
        return after

    async def change_agent(self, actor: str, agent_id: str, *, name: str | None = None, sip_password: str | None = None,
                           queues: list[str] | None = None, skills: dict[str, int] | None = None,
                           active: bool | None = None) -> dict[str, Any]:
        async with self.sessionmaker() as session, session.begin():
            record = await session.get(AgentRecord, agent_id)
            if record is None:
                raise LookupError(f"id: no agent {agent_id}")
            before = _record_json(record)
            if name is not None:
                record.name = check_name("name", name)
            if sip_password is not None:
                record.sip_ha1 = sip_ha1(agent_id, check_sip_password(sip_password))
            if queues is not None or skills is not None:
                new_queues, new_skills = await self._checked_skills(
                    list(record.queues) if queues is None else queues,
                    {q: s for q, s in (record.skills or {}).items() if queues is None or q in queues}
                    if skills is None else skills, await self._queue_names(session))
                if not new_queues:
                    raise AdminError("queues", "at least one queue")
                record.queues, record.skills = new_queues, new_skills
            if active is not None:
                record.active = active
            after = _record_json(record)
            if after == before and sip_password is None:
                return after
            record.updated_at = _now()
            version = await self._bump(session)
            action = "deactivate" if active is False and before["active"] else "update"
            self._audit(session, actor, "agent", agent_id, action, before,
                        {**after, **({"sip_password": "changed"} if sip_password is not None else {})}, version)
        await self._told(version)
        return after

    # ------------------------------------------------------------------ queues

    def _checked_queue(self, name: str, fields: dict[str, Any], known: set[str]) -> dict[str, Any]:
        for key in fields:
            if key not in QUEUE_KEYS:
                raise AdminError(key, "unknown field")
        for n, span in enumerate(fields.get("open_hours") or []):
            try:
                parse_span(name, span)
            except ValueError as exc:
                raise AdminError(f"open_hours[{n}]", str(exc).split(": ", 1)[-1]) from None
        for key in ("when_closed", "overflow_to"):
            target = fields.get(key)
            if target is not None and target not in known:
                raise AdminError(key, f"{str(target)[:40]!r} is not a queue")
            if target == name:
                raise AdminError(key, "names the queue itself")
        if fields.get("open_hours") and not fields.get("when_closed"):
            raise AdminError("when_closed", "office hours need the queue that takes the callers while closed")
        category = fields.get("category")
        if category is not None and self.categories and category not in self.categories:
            raise AdminError("category", f"{str(category)[:40]!r} is not a work-order category")
        try:
            policy = QueuePolicy.model_validate({**fields, "name": name})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise AdminError(".".join(str(p) for p in first["loc"]) or "body",
                             str(first["msg"]).removeprefix("Value error, ")) from None
        return policy.model_dump(mode="json", exclude={"name"})

    async def create_queue(self, actor: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        if not re.fullmatch(r"^[a-z][a-z0-9_-]{0,31}$", name):
            raise AdminError("name", "a lower-case letter, then up to 31 letters, digits, - or _")
        async with self.sessionmaker() as session, session.begin():
            known = await self._queue_names(session)
            if name in known:
                raise Conflict("name", f"queue {name} exists")
            policy = self._checked_queue(name, fields, known | {name})
            session.add(QueueRecord(name=name, position=len(known), policy=policy, updated_at=_now()))
            version = await self._bump(session)
            self._audit(session, actor, "queue", name, "create", None, policy, version)
        await self._told(version)
        return {"name": name, **policy}

    async def change_queue(self, actor: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        async with self.sessionmaker() as session, session.begin():
            record = await session.get(QueueRecord, name)
            if record is None:
                raise LookupError(f"name: no queue {name}")
            before = dict(record.policy)
            merged = {k: v for k, v in {**before, **changes}.items() if k in QUEUE_KEYS}
            policy = self._checked_queue(name, merged, await self._queue_names(session))
            if policy == before:
                return {"name": name, **policy}
            record.policy, record.updated_at = policy, _now()
            version = await self._bump(session)
            self._audit(session, actor, "queue", name, "update", before, policy, version)
        await self._told(version)
        return {"name": name, **policy}

    # ------------------------------------------------------------------ users (web/users.py does the hashing)

    async def users(self) -> list[dict[str, Any]]:
        async with self.sessionmaker() as session:
            return [user_json(u) for u in (await session.execute(select(User).order_by(User.username))).scalars()]

    def _check_user_fields(self, role: str, agent_id: str | None, unit: str | None) -> None:
        if role not in access.ROLES:
            raise AdminError("role", f"one of {', '.join(access.ROLES)}")
        if role == access.AGENT and not agent_id:
            raise AdminError("agent_id", "an agent's log-in names the agent")
        if role == access.UNIT and not unit:
            raise AdminError("unit", "a field unit's log-in names the unit")
        if unit is not None and self.units and unit not in self.units:
            raise AdminError("unit", f"{unit[:40]!r} is not a unit of the work-order rules")

    async def create_user(self, actor: str, username: str, password: str, role: str, agent_id: str | None = None,
                          unit: str | None = None, phone: str | None = None) -> dict[str, Any]:
        if not USERNAME.fullmatch(username):
            raise AdminError("username", "1 to 64 letters, digits, . _ or -")
        if not MIN_USER_PASSWORD <= len(password) <= MAX_USER_PASSWORD:
            raise AdminError("password", f"{MIN_USER_PASSWORD} to {MAX_USER_PASSWORD} characters")
        self._check_user_fields(role, agent_id, unit)
        password_hash = await users.hash_password(password)
        async with self.sessionmaker() as session, session.begin():
            if agent_id is not None and await session.get(AgentRecord, agent_id) is None:
                raise AdminError("agent_id", f"no agent {agent_id[:40]}")
            if phone is not None and await session.get(AgentRecord, phone) is None:
                raise AdminError("phone", f"no endpoint {phone[:40]}")
            if (await session.execute(select(User).where(User.username == username))).scalar_one_or_none():
                raise Conflict("username", f"{username} exists")
            user = User(username=username, password_hash=password_hash, role=role, agent_id=agent_id, unit=unit,
                        phone=phone, from_settings=False, active=True)
            session.add(user)
            await session.flush()
            after = user_json(user)
            self._audit(session, actor, "user", username, "create", None, after, 0)
        return after

    async def change_user(self, actor: str, username: str, action: str, *, role: str | None = None,
                          password: str | None = None, agent_id: str | None = None,
                          unit: str | None = None) -> dict[str, Any]:
        """deactivate | activate | reset_password | revoke_tokens | role. The user is the database's
        from now on: the settings file no longer changes them (web/users.py)."""
        new_hash = None
        if username == actor and action in ("deactivate", "role"):
            raise AdminError("username", "not your own log-in (another administrator does that)")
        if action == "reset_password":
            if password is None or not MIN_USER_PASSWORD <= len(password) <= MAX_USER_PASSWORD:
                raise AdminError("password", f"{MIN_USER_PASSWORD} to {MAX_USER_PASSWORD} characters")
            new_hash = await users.hash_password(password)
        async with self.sessionmaker() as session, session.begin():
            user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
            if user is None:
                raise LookupError(f"username: no user {username}")
            before = user_json(user)
            revoke = update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True)
            if action == "deactivate":
                user.active = False
                await users.end_sessions(session, user.id)
                await session.execute(revoke)
            elif action == "activate":
                user.active = True
            elif action == "reset_password":
                assert new_hash is not None
                user.password_hash = new_hash
                await users.end_sessions(session, user.id)
            elif action == "revoke_tokens":
                await session.execute(revoke)
                await users.end_sessions(session, user.id)
            elif action == "role":
                if role is None:
                    raise AdminError("role", "the new role")
                self._check_user_fields(role, agent_id if agent_id is not None else user.agent_id,
                                        unit if unit is not None else user.unit)
                user.role = role
                if agent_id is not None:
                    user.agent_id = agent_id
                if unit is not None:
                    user.unit = unit
                await users.end_sessions(session, user.id)   # the next log-in carries the new role
            else:
                raise AdminError("action", "deactivate, activate, reset_password, revoke_tokens or role")
            user.from_settings, user.seeded_password_hash = False, None
            after = user_json(user)
            self._audit(session, actor, "user", username, action, before, after, 0)
        log.warning("admin: %s: %s on user %s", actor, action, username)
        return after


Apply = Callable[[Directory], Awaitable[None]]


class SettingsFollower:
    """One engine's follower of the settings version: Redis pub/sub for at once, the database
    every `poll_s` for sure. `apply` gets each newer directory, in order, never two at once."""

    def __init__(self, service: AdminService, apply: Apply, *, current: int = 0, poll_s: float = 5.0) -> None:
        self.service = service
        self.apply = apply
        self.version = current
        self.poll_s = poll_s
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.reloads = 0

    async def check(self, heard: int | None = None) -> bool:
        """Read and apply the directory when the database has a newer version than applied."""
        async with self._lock:
            if heard is not None and heard <= self.version:
                return False
            directory = await self.service.directory()
            if directory.version <= self.version:
                return False
            await self.apply(directory)
            self.version = directory.version
            self.reloads += 1
            log.info("settings version %d applied", directory.version)
            return True

    async def _heard(self, version: int) -> None:
        await self.check(version)

    def start(self) -> None:
        self.service.listeners.append(self._heard)
        self._tasks = [asyncio.create_task(self._poll(), name="settings-poll")]
        if self.service.redis is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="settings-listen"))

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.service.listeners.remove(self._heard)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.check()
            except Exception as exc:
                log.warning("settings: the directory could not be read (%s); trying again", exc)

    async def _listen(self) -> None:
        """Redis pub/sub; on every (re)subscription the database is read too (a message sent
        while the link was down is not lost: its version is there)."""
        redis = self.service.redis
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.service.channel)
                    await self.check()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            version = int(json.loads(message["data"])["version"])
                        except (ValueError, KeyError, TypeError):
                            continue
                        await self.check(version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("settings: Redis subscription lost (%s); again in 1 s", exc)
                await asyncio.sleep(1.0)
