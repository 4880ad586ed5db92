"""Agents and queues as the database keeps them, the audit trail of every change, and the
hotline's settings version (counted up by each change: how engines know they are behind).

The settings file seeds `hotline_agents` and `hotline_queues` on the first start only (the row
of `hotline_settings` says when); afterwards the pages, the API and the CLI change them.
An agent's SIP password is never stored: only its digest (HA1, MD5 of "id:realm:password"),
which is what Asterisk's PJSIP needs to check a registration.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class AgentRecord(Base):
    __tablename__ = "hotline_agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    sip_ha1: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str | None] = mapped_column(String(200))
    endpoints: Mapped[list[str]] = mapped_column(JSON, default=list)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    skills: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QueueRecord(Base):
    __tablename__ = "hotline_queues"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)     # the order of the settings' [[queues]]
    # Every key of acd.settings.QueuePolicy but the name (title, category, priority, open_hours,
    # open_days, when_closed, overflow_to, ...), as the policy dumps it.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    __tablename__ = "hotline_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))        # agent | queue | user
    key: Mapped[str] = mapped_column(String(64))         # the agent id, queue name or user name
    action: Mapped[str] = mapped_column(String(32))      # create | update | deactivate | reset_password ...
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)   # the settings version it made


class HotlineVersion(Base):
    __tablename__ = "hotline_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)   # always 1
    version: Mapped[int] = mapped_column(Integer, default=0)
    seeded_at: Mapped[datetime] = mapped_column(UTCDateTime())
