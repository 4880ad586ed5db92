"""Web log-ins: users, API tokens and page sessions (only hashes of secrets are stored)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class User(Base):
    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The PJSIP endpoint (an agent id of the settings) that rings when this user listens in.
    phone: Mapped[str | None] = mapped_column(String(32))
    # Seeded from the settings file: a user removed there is deactivated on the next start.
    from_settings: Mapped[bool] = mapped_column(Boolean, default=False)
    # The argon2 hash of the password the settings last gave (None: not from the settings): a
    # start with a different one sets it again and ends the user's sessions; a password the
    # user chose since (POST /api/password) stays while the settings' password is unchanged.
    seeded_password_hash: Mapped[str | None] = mapped_column(String(256))


class ApiToken(Base):
    __tablename__ = "web_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class PageSession(Base):
    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
