"""Users, passwords (argon2), API tokens and page sessions, and what ends them.

argon2 hashes and checks run in an executor (the web app's small password pool), never on the
event loop that also drives live calls. Revocation: a log-out deletes its page session; a
password change deletes the user's other page sessions; a start revokes every "cli" token
that is not the current `web.cli_token` and deactivates the settings' users no longer listed
there (their sessions deleted, their tokens revoked). A user the administrator made or changed in
the database (admin pages, API, `callcenter user`) is the database's: the settings never touch it.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Collection
from concurrent.futures import Executor
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.web import access
from callcenter.web.models import ApiToken, PageSession, User

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def hash_password(password: str, pool: Executor | None = None) -> str:
    return await asyncio.get_running_loop().run_in_executor(pool, _hasher.hash, password)


async def verify_password(password_hash: str, password: str, pool: Executor | None = None) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.get_running_loop().run_in_executor(pool, verify)


def as_user(row: User) -> access.User:
    return access.User(username=row.username, role=row.role, agent_id=row.agent_id, unit=row.unit, phone=row.phone)


async def create_user(session: AsyncSession, username: str, password: str, role: str,
                      agent_id: str | None = None, unit: str | None = None, phone: str | None = None,
                      from_settings: bool = False, pool: Executor | None = None) -> User:
    if role not in access.ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(access.ROLES)})")
    existing = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    password_hash = await hash_password(password, pool)
    if existing is not None:
        existing.password_hash = password_hash
        existing.role, existing.agent_id, existing.unit, existing.active = role, agent_id, unit, True
        existing.phone, existing.from_settings = phone, from_settings
        return existing
    user = User(username=username, password_hash=password_hash, role=role, agent_id=agent_id, unit=unit,
                phone=phone, from_settings=from_settings)
    session.add(user)
    await session.flush()
    return user


async def check_password(sessionmaker: async_sessionmaker[AsyncSession], username: str, password: str,
                         pool: Executor | None = None) -> User | None:
    """The user (detached) when the password is right; None otherwise, in about the same time
    either way. No database connection is held while argon2 works."""
    async with sessionmaker() as session:
        user = (await session.execute(select(User).where(User.username == username,
                                                         User.active.is_(True)))).scalar_one_or_none()
    right = await verify_password(user.password_hash if user else _DUMMY_HASH, password, pool)
    return user if right and user is not None else None


async def end_sessions(session: AsyncSession, user_id: int, keep: str | None = None) -> None:
    """Delete the user's page sessions, but the one whose id hashes to `keep`."""
    query = delete(PageSession).where(PageSession.user_id == user_id)
    if keep is not None:
        query = query.where(PageSession.id_sha256 != keep)
    await session.execute(query)


async def change_password(session: AsyncSession, user_id: int, new_hash: str, keep_session: str | None) -> None:
    """Set a user's password (its argon2 hash, made beforehand: no transaction waits for it)
    and end their other page sessions (all of them when `keep_session` is None)."""
    user = await session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    user.password_hash = new_hash
    await end_sessions(session, user_id, keep=keep_session)


async def still_valid(session: AsyncSession, sessions: Collection[str], tokens: Collection[str],
                      now: datetime) -> set[str]:
    """Which of these page sessions and tokens (SHA-256 digests) still sign their user in."""
    valid: set[str] = set()
    if sessions:
        valid.update((await session.execute(
            select(PageSession.id_sha256).join(User, PageSession.user_id == User.id)
            .where(PageSession.id_sha256.in_(list(sessions)), PageSession.expires_at > now,
                   User.active.is_(True)))).scalars())
    if tokens:
        valid.update((await session.execute(
            select(ApiToken.token_sha256).join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_sha256.in_(list(tokens)), ApiToken.revoked.is_(False),
                   User.active.is_(True)))).scalars())
    return valid


async def issue_token(session: AsyncSession, user: User, label: str = "", token: str | None = None,
                      now: datetime | None = None) -> str:
    token = token or secrets.token_urlsafe(32)
    digest = sha256(token)
    existing = (await session.execute(select(ApiToken).where(ApiToken.token_sha256 == digest))).scalar_one_or_none()
    if existing is None:
        session.add(ApiToken(token_sha256=digest, user_id=user.id, label=label,
                             created_at=now or datetime.now().astimezone()))
    else:   # given again on purpose (e.g. the settings' cli_token set back): it signs in again, as this user
        existing.revoked, existing.user_id = False, user.id
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    row = await session.execute(
        select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == sha256(token), ApiToken.revoked.is_(False), User.active.is_(True)))
    return row.scalar_one_or_none()


async def open_page_session(session: AsyncSession, user: User, ttl_s: int, now: datetime) -> tuple[str, str]:
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(PageSession(id_sha256=sha256(sid), user_id=user.id, csrf_token=csrf,
                            expires_at=now + timedelta(seconds=ttl_s)))
    return sid, csrf


async def page_session(session: AsyncSession, sid: str, now: datetime) -> tuple[User, PageSession] | None:
    row = (await session.execute(
        select(User, PageSession).join(PageSession, PageSession.user_id == User.id)
        .where(PageSession.id_sha256 == sha256(sid), PageSession.expires_at > now, User.active.is_(True)))).first()
    return (row[0], row[1]) if row else None


async def close_page_session(session: AsyncSession, sid: str) -> None:
    await session.execute(delete(PageSession).where(PageSession.id_sha256 == sha256(sid)))


async def seed_users(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> None:
    """Users from the settings (passwords hashed here), and the CLI's admin token.

    A user whose password in the settings changed gets it, and their page sessions end; a
    user the settings no longer list is deactivated (sessions ended, tokens revoked); every
    "cli" token but the current `web.cli_token` is revoked."""
    async with sessionmaker() as session, session.begin():
        rows = {u.username: u for u in (await session.execute(select(User))).scalars()}
        admin = None
        for spec in settings.users:
            password = spec.password.get_secret_value()
            user = rows.get(spec.username)
            if user is not None and not user.from_settings:
                # Made or changed by the administrator (pages, API, CLI): the database's, not the file's.
                log.info("web: user %s is kept as the administrator left them (not from the settings)", spec.username)
                if spec.role == access.ADMIN and admin is None and user.active:
                    admin = user
                continue
            if user is None:
                user = await create_user(session, spec.username, password, spec.role, spec.agent_id, spec.unit,
                                         spec.phone, from_settings=True)
                user.seeded_password_hash = user.password_hash
            else:
                await _seed_password(session, user, password)
                user.role, user.agent_id, user.unit, user.phone = spec.role, spec.agent_id, spec.unit, spec.phone
                user.active, user.from_settings = True, True
            if spec.role == access.ADMIN and admin is None:
                admin = user
        listed = {spec.username for spec in settings.users}
        for user in rows.values():
            if user.from_settings and user.active and user.username not in listed:
                user.active = False
                await end_sessions(session, user.id)
                await session.execute(update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True))
                log.warning("web: user %s is no longer in the settings: deactivated", user.username)
        current = settings.web.cli_token.get_secret_value() if settings.web.cli_token is not None else None
        stale = update(ApiToken).where(ApiToken.label == "cli", ApiToken.revoked.is_(False))
        if current is not None:
            stale = stale.where(ApiToken.token_sha256 != sha256(current))
        if (await session.execute(stale.values(revoked=True))).rowcount:  # type: ignore[attr-defined]
            log.warning("web: the former cli token is revoked")
        if current is not None:
            if admin is None:
                admin = await create_user(session, "cli", secrets.token_urlsafe(24), access.ADMIN)
            await issue_token(session, admin, label="cli", token=current, now=now)
    log.info("web: %d users from the settings", len(settings.users))


async def _seed_password(session: AsyncSession, user: User, password: str) -> None:
    """Give a settings user the settings' password when it is not the one they last gave."""
    if user.seeded_password_hash is not None and await verify_password(user.seeded_password_hash, password):
        return   # unchanged in the settings: keep whatever the user has now
    if user.seeded_password_hash is None and await verify_password(user.password_hash, password):
        user.seeded_password_hash = user.password_hash   # first start since this was recorded
        return
    user.password_hash = await hash_password(password)
    user.seeded_password_hash = user.password_hash
    await end_sessions(session, user.id)
    log.warning("web: user %s has a new password from the settings: their sessions are ended", user.username)
