"""Work orders and their audit trail (every change: who, when, from, to, why)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class WorkOrder(Base):
    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), unique=True)
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    subcategory: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    returns: Mapped[int] = mapped_column(Integer, default=0)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    needs_review: Mapped[bool] = mapped_column(default=False)   # drafted with gaps (no category, no address)
    # A second complaint (二次投诉): the caller's earlier order that is still open.
    repeat_of: Mapped[int | None] = mapped_column(Integer, index=True)
    # The call was transferred between agents (followed up by policy, like repeat cases).
    transferred: Mapped[bool] = mapped_column(default=False)
    # The outage's order (the one case an outage opens): later callers about the same outage
    # are attached to it (WorkOrderCall) instead of opening a case each.
    outage_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The deadline the watcher last warned about (so it warns once per deadline).
    warned: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    dispatch_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    arrive_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reply_by: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkOrderEvent(Base):
    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class WorkOrderCall(Base):
    """A later call about a case that is already open: attached to that order (the caller's own
    open order, or the outage's) instead of opening a new one. A call has one order at most:
    its own (WorkOrder.call_id) or the one it is attached to here."""

    __tablename__ = "work_order_calls"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))


class FollowUp(Base):
    """A follow-up (回访) of an order: an automated call first; unhappy or unanswered ones go
    to an agent's follow-up list."""

    __tablename__ = "follow_ups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)   # scheduled calling satisfied unsatisfied no_answer refused
    digit: Mapped[str | None] = mapped_column(String(1))
    needs_agent: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Customer(Base):
    """A customer account, looked up by the caller's number to fill an order's address."""

    __tablename__ = "customers"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    # The supply area (片区) the address is in: outage notices are addressed to areas.
    area: Mapped[str] = mapped_column(String(64), default="", index=True)
    # A key customer (大客户: a hospital, a factory, a school) is told of an outage at any hour,
    # and before the other customers of the area.
    key_customer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Handover(Base):
    """A shift handover (交接班) record: drafted by the system for a shift window, accepted by
    the incoming crew, and only then closed by the outgoing one."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shift_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    shift_end: Mapped[datetime] = mapped_column(UTCDateTime())
    drafted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    drafted_by: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="")
    accepted_by: Mapped[str | None] = mapped_column(String(64))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrderPhoto(Base):
    """A photo a field unit took as evidence of its work on an order. The file lives under the
    spool with a name we made (`path`, relative to the photos folder), never one from the request."""

    __tablename__ = "work_order_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255), unique=True)
    content_type: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
