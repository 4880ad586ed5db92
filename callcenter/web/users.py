"""Users, passwords (argon2), API tokens and page sessions."""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.web import access
from callcenter.web.models import ApiToken, PageSession, User

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def as_user(row: User) -> access.User:
    return access.User(username=row.username, role=row.role, agent_id=row.agent_id, unit=row.unit, phone=row.phone)


async def create_user(session: AsyncSession, username: str, password: str, role: str,
                      agent_id: str | None = None, unit: str | None = None, phone: str | None = None,
                      from_settings: bool = False) -> User:
    if role not in access.ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(access.ROLES)})")
    existing = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if existing is not None:
        existing.password_hash = _hasher.hash(password)
        existing.role, existing.agent_id, existing.unit, existing.active = role, agent_id, unit, True
        existing.phone, existing.from_settings = phone, from_settings
        return existing
    user = User(username=username, password_hash=_hasher.hash(password), role=role, agent_id=agent_id, unit=unit,
                phone=phone, from_settings=from_settings)
    session.add(user)
    await session.flush()
    return user


async def check_password(session: AsyncSession, username: str, password: str) -> User | None:
    """The user when the password is right; None otherwise, in about the same time either way."""
    user = (await session.execute(select(User).where(User.username == username, User.active.is_(True)))).scalar_one_or_none()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


async def issue_token(session: AsyncSession, user: User, label: str = "", token: str | None = None,
                      now: datetime | None = None) -> str:
    token = token or secrets.token_urlsafe(32)
    digest = sha256(token)
    if (await session.execute(select(ApiToken).where(ApiToken.token_sha256 == digest))).scalar_one_or_none() is None:
        session.add(ApiToken(token_sha256=digest, user_id=user.id, label=label,
                             created_at=now or datetime.now().astimezone()))
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
    """Users from the settings (passwords hashed here), and the CLI's admin token."""
    async with sessionmaker() as session, session.begin():
        admin = None
        for spec in settings.users:
            user = await create_user(session, spec.username, spec.password.get_secret_value(), spec.role,
                                     spec.agent_id, spec.unit, spec.phone, from_settings=True)
            if spec.role == access.ADMIN and admin is None:
                admin = user
        if settings.web.cli_token is not None:
            if admin is None:
                admin = await create_user(session, "cli", secrets.token_urlsafe(24), access.ADMIN)
            await issue_token(session, admin, label="cli", token=settings.web.cli_token.get_secret_value(), now=now)
    log.info("web: %d users from the settings", len(settings.users))
