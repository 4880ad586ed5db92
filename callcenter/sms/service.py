"""The SMS store: messages enqueued once, claimed by the sender, moved by Kannel's answers,
delivery reports and replies.

Never sent twice. Each message has an idempotency key (enqueuing the same key again adds
nothing), and the sender hands a message to Kannel at least once, deduplicated where Kannel
tells us enough:
- Kannel answered 202 (accepted or queued): sent; never handed over again.
- Kannel refused before taking it (connection refused, 503: bearerbox down): nothing was
  accepted, so it goes back to the queue at once and the sender backs off the gateway.
- No answer (timeout, connection dropped after the request): Kannel may have accepted it.
  The message waits `uncertain_wait_s`; a delivery report for it in that time (the carrier's
  8 comes within a second) proves it was accepted and it is not sent again. Only without
  any report is it handed over again.
Each delivery-report URL carries the message id, its attempt and a per-message secret token:
a forged report (no token) cannot move a message, and a report of an earlier attempt does
not move a retried one.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock, SystemClock
from callcenter.config import SmsSettings
from callcenter.sms import core
from callcenter.sms.core import State
from callcenter.sms.models import SmsMessage, SmsOptOut, SmsReply
from callcenter.sms.numbers import NumberRefused, number_ok

log = logging.getLogger(__name__)
__all__ = ["NumberRefused", "Outgoing", "SmsService"]

ReplyHandler = Callable[[SmsMessage, core.Reply, datetime], Awaitable[None]]
FailureHandler = Callable[[SmsMessage, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Outgoing:
    """A message to enqueue."""

    number: str
    text: str
    kind: str
    key: str
    urgent: bool = False
    ref: str | None = None
    expects_reply: bool = False   # a short code is drawn; "{code}" in the text is replaced by it


T = TypeVar("T")


@dataclass
class _Report:
    message_id: str
    attempt: int
    token: str
    dlr_type: int
    now: datetime
    done: asyncio.Future[SmsMessage]


async def when_unlocked(work: Callable[[], Awaitable[T]], tries: int = 40) -> T:
    """Run `work` again while SQLite says "database is locked" (a burst of writers outlasting
    its busy timeout): a stored outcome is worth a short wait."""
    for round_ in range(tries):
        try:
            return await work()
        except OperationalError as exc:
            if "locked" not in str(exc) or round_ == tries - 1:
                raise
            await asyncio.sleep(min(1.0, 0.02 * (round_ + 1)))
    raise AssertionError("unreachable")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class SmsService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: SmsSettings, timezone: str,
                 clock: Clock | None = None, check_number: Callable[[str], str] = number_ok) -> None:
        self.sessionmaker = sessionmaker
        # Which numbers may be texted: `DialPolicy(...).check` once the dial policy is merged
        # (the same contract: the number normalised, or a ValueError naming it).
        self.check_number = check_number
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.quiet = core.QuietHours(_hhmm(settings.quiet_start), _hhmm(settings.quiet_end), timezone)
        self.reply_handlers: dict[str, ReplyHandler] = {}
        self.failure_handlers: dict[str, FailureHandler] = {}
        self.queued_listeners: list[Callable[[], None]] = []   # the sender wakes up
        self._reports: list[_Report] = []
        self._writer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ enqueue

    async def enqueue(self, message: Outgoing, now: datetime | None = None) -> SmsMessage:
        """One message (or the one already stored under its key). Raises NumberRefused."""
        await self.enqueue_many([message], now)
        async with self.sessionmaker() as session:
            stored = (await session.execute(select(SmsMessage).where(SmsMessage.idempotency_key == message.key)))\
                .scalar_one()
        return stored

    async def enqueue_many(self, messages: Sequence[Outgoing], now: datetime | None = None) -> int:
        """Store the messages not stored yet (by key); the count added. Numbers the policy refuses
        raise NumberRefused before anything is stored; opted-out customers' messages are stored failed."""
        now = now or self.clock.now()
        rows = []
        numbers = [self.check_number(m.number) for m in messages]
        for m in messages:
            if m.kind not in core.KINDS:
                raise ValueError(f"kind: {m.kind!r} is not one of {', '.join(sorted(core.KINDS))}")
            if not m.text.strip():
                raise ValueError("text: empty")
        async with self.sessionmaker() as session, session.begin():
            opted = await self._opted_out(session, numbers)
            codes = await self._codes_in_use(session, [n for n, m in zip(numbers, messages, strict=True)
                                                       if m.expects_reply], now)
            for number, m in zip(numbers, messages, strict=True):
                seg = core.segments(m.text)
                refused = core.opt_out_applies(m.kind) and number in opted
                code = until = None
                if m.expects_reply:
                    used = codes.setdefault(number, set())
                    code = random.choice([c for c in (f"{i:03d}" for i in range(100, 1000)) if c not in used])
                    used.add(code)
                    until = now + timedelta(hours=self.settings.reply_window_h)
                text = m.text.replace("{code}", code) if code else m.text
                seg = core.segments(text)
                rows.append({
                    "id": str(uuid.uuid4()), "idempotency_key": m.key, "number": number, "text": text,
                    "kind": m.kind, "urgent": m.urgent, "ref": m.ref, "coding": seg.coding, "parts": seg.parts,
                    "state": (State.FAILED if refused else State.QUEUED).value, "attempts": 0,
                    "next_attempt_at": core.earliest_send(m.kind, m.urgent, now, self.quiet), "claim": None,
                    "dlr_token": secrets.token_urlsafe(18), "reply_code": code, "reply_until": until,
                    "reply_text": None, "last_error": "opted out (TD)" if refused else "", "created_at": now,
                    "failed_at": now if refused else None, "reports": 0,
                })
            added = 0
            for start in range(0, len(rows), 500):
                added += await self._insert_new(session, rows[start:start + 500])
        if added:
            for wake in self.queued_listeners:
                wake()
        return added

    async def _insert_new(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (insert(SmsMessage).on_conflict_do_nothing(index_elements=["idempotency_key"])
                     .returning(SmsMessage.id))
        return len((await session.execute(statement, rows)).all())

    async def _opted_out(self, session: AsyncSession, numbers: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = sorted(set(numbers))
        for start in range(0, len(unique), 500):
            found |= set((await session.execute(select(SmsOptOut.number).where(
                SmsOptOut.number.in_(unique[start:start + 500])))).scalars())
        return found

    async def _codes_in_use(self, session: AsyncSession, numbers: Sequence[str], now: datetime) -> dict[str, set[str]]:
        codes: dict[str, set[str]] = {}
        if numbers:
            rows = await session.execute(select(SmsMessage.number, SmsMessage.reply_code).where(
                SmsMessage.number.in_(sorted(set(numbers))), SmsMessage.reply_until > now,
                SmsMessage.reply_code.is_not(None)))
            for number, code in rows:
                codes.setdefault(number, set()).add(str(code))
        return codes

    # ------------------------------------------------------------ the sender's side

    async def claim(self, limit: int, now: datetime | None = None) -> list[SmsMessage]:
        """Due messages for this sender alone (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one
        UPDATE statement, which SQLite runs alone). A claim is a lease: the message is due again
        after `lease_s` if its sender died."""
        now = now or self.clock.now()
        claim = str(uuid.uuid4())
        due = (select(SmsMessage.id).where(SmsMessage.state == State.QUEUED.value, SmsMessage.next_attempt_at <= now)
               .order_by(SmsMessage.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(SmsMessage).where(SmsMessage.id.in_(due.scalar_subquery()))
                                  .values(claim=claim, attempts=SmsMessage.attempts + 1,
                                          next_attempt_at=now + timedelta(seconds=self.settings.lease_s))
                                  .execution_options(synchronize_session=False))
            claimed = list((await session.execute(select(SmsMessage).where(SmsMessage.claim == claim)
                                                  .order_by(SmsMessage.created_at))).scalars())
            # Opted out since it was queued: not sent.
            customer = [m.number for m in claimed if core.opt_out_applies(m.kind)]
            opted = await self._opted_out(session, customer) if customer else set()
            kept = []
            for m in claimed:
                if core.opt_out_applies(m.kind) and m.number in opted:
                    m.state, m.failed_at, m.last_error, m.claim = State.FAILED.value, now, "opted out (TD)", None
                else:
                    kept.append(m)
        return kept

    async def accepted(self, ids: Sequence[str], now: datetime | None = None) -> None:
        """Kannel took these: sent (unless a delivery report already moved them further)."""
        now = now or self.clock.now()
        if not ids:
            return

        async def work() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(SmsMessage).where(SmsMessage.id.in_(list(ids)))
                                      .values(claim=None, sent_at=func.coalesce(SmsMessage.sent_at, now)))
                await session.execute(update(SmsMessage).where(SmsMessage.id.in_(list(ids)),
                                                               SmsMessage.state == State.QUEUED.value)
                                      .values(state=State.SENT.value))

        await when_unlocked(work)

    async def gateway_down(self, ids: Sequence[str], why: str, now: datetime | None = None) -> None:
        """Kannel took nothing: due again at once (the sender backs off the gateway itself);
        the attempt does not count against the message."""
        now = now or self.clock.now()
        if not ids:
            return

        async def work() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(SmsMessage).where(SmsMessage.id.in_(list(ids)),
                                                               SmsMessage.state == State.QUEUED.value)
                                      .values(claim=None, attempts=SmsMessage.attempts - 1, next_attempt_at=now,
                                              last_error=why))

        await when_unlocked(work)

    async def uncertain(self, message_id: str, why: str, now: datetime | None = None) -> None:
        """No answer: wait for a delivery report before handing it over again."""
        now = now or self.clock.now()

        async def work() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(SmsMessage).where(SmsMessage.id == message_id,
                                                               SmsMessage.state == State.QUEUED.value)
                                      .values(claim=None, last_error=why, next_attempt_at=now + timedelta(
                                          seconds=self.settings.uncertain_wait_s)))

        await when_unlocked(work)

    async def rejected(self, message_id: str, why: str, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            message = await session.get(SmsMessage, message_id)
            if message is None or message.state != State.QUEUED.value:
                return
            message.state, message.failed_at, message.last_error, message.claim = State.FAILED.value, now, why, None
        await self._failed(message, now)

    # ------------------------------------------------------------ delivery reports

    async def report(self, message_id: str, attempt: int, token: str, dlr_type: int,
                     now: datetime | None = None) -> SmsMessage:
        """A delivery report as Kannel passes it on, once it is stored. LookupError: no such
        message; PermissionError: wrong token. A report of an earlier attempt is counted and
        moves nothing.

        Reports come in bursts (two a message, 8 and 1 together): they are written by one
        writer, many to a transaction (group commit), and each caller waits for its own."""
        now = now or self.clock.now()
        if dlr_type not in core.DLR_TYPES:
            raise ValueError(f"type: {dlr_type} is not a Kannel delivery report type")
        done: asyncio.Future[SmsMessage] = asyncio.get_running_loop().create_future()
        self._reports.append(_Report(message_id, attempt, token, dlr_type, now, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_reports())
        return await done

    async def _write_reports(self) -> None:
        while self._reports:
            batch, self._reports = self._reports[:500], self._reports[500:]
            try:
                outcomes = await when_unlocked(lambda batch=batch: self._apply_reports(batch))   # type: ignore[misc]
            except Exception as exc:
                for r in batch:
                    if not r.done.done():
                        r.done.set_exception(exc)
                continue
            for r, (outcome, failed) in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    r.done.set_exception(outcome)
                    continue
                if failed:
                    await self._failed(outcome, r.now)
                r.done.set_result(outcome)

    async def _apply_reports(self, batch: list[_Report]) -> list[tuple[Any, bool]]:
        outcomes: list[tuple[Any, bool]] = []
        async with self.sessionmaker() as session, session.begin():
            ids = sorted({r.message_id for r in batch})
            found = {m.id: m for m in (await session.execute(
                select(SmsMessage).where(SmsMessage.id.in_(ids)).with_for_update())).scalars()}
            for r in batch:
                message = found.get(r.message_id)
                if message is None:
                    outcomes.append((LookupError(f"id: no message {r.message_id!r}"), False))
                    continue
                if not hmac.compare_digest(message.dlr_token.encode(), r.token.encode()):
                    outcomes.append((PermissionError("token: wrong for this message"), False))
                    continue
                message.reports += 1
                before = State(message.state)
                after = core.after_report(before, r.dlr_type)
                failed = False
                if r.attempt == message.attempts and after is not before:
                    message.state, message.claim = after.value, None
                    if after is State.SENT:
                        message.sent_at = message.sent_at or r.now
                    elif after is State.DELIVERED:
                        message.delivered_at, message.sent_at = r.now, message.sent_at or r.now
                    elif after is State.FAILED:
                        message.failed_at, message.last_error = r.now, f"delivery report {r.dlr_type}"
                        if self._retry_after_failure(message):
                            message.state, message.failed_at = State.QUEUED.value, None
                            message.next_attempt_at = core.earliest_send(
                                message.kind, message.urgent, r.now + timedelta(seconds=core.backoff_s(
                                    message.attempts, self.settings.retry_initial_s, self.settings.retry_max_s)),
                                self.quiet)
                        else:
                            failed = True
                outcomes.append((message, failed))
        return outcomes

    def _retry_after_failure(self, message: SmsMessage) -> bool:
        if message.attempts >= self.settings.max_attempts:
            return False
        return message.kind != "follow_up" or self.settings.follow_up_on_failure == "retry"

    async def _failed(self, message: SmsMessage, now: datetime) -> None:
        handler = self.failure_handlers.get(message.kind)
        if handler is not None:
            try:
                await handler(message, now)
            except Exception as exc:
                log.error("message %s failed, and its %s handler failed: %s", message.id, message.kind, exc)

    # ------------------------------------------------------------ replies (MO)

    async def receive(self, number: str, to: str, text: str, now: datetime | None = None) -> SmsReply:
        """A message in: an opt-out, an answer to an open message, or unmatched (for a person)."""
        now = now or self.clock.now()
        try:
            number = self.check_number(number)
        except ValueError:
            pass   # stored as it came; it matches nothing we sent
        matched: SmsMessage | None = None
        reply = core.parse_reply(text)
        async with self.sessionmaker() as session, session.begin():
            if core.is_opt_out(text):
                if await session.get(SmsOptOut, number) is None:
                    session.add(SmsOptOut(number=number, at=now, text=text))
                row = SmsReply(number=number, to=to, text=text, received_at=now, taken_as="opt_out")
                session.add(row)
                log.info("sms: %s opted out", number)
                return row
            if reply is not None:
                waiting = list((await session.execute(select(SmsMessage).where(
                    SmsMessage.number == number, SmsMessage.reply_until > now, SmsMessage.reply_code.is_not(None),
                    SmsMessage.state.in_([State.QUEUED.value, State.SENT.value, State.DELIVERED.value]))
                    .order_by(SmsMessage.created_at.desc()).with_for_update())).scalars())
                found = core.match_reply(reply, [core.Open(m.id, m.reply_code or "", m.created_at) for m in waiting])
                if found is not None:
                    matched = next(m for m in waiting if m.id == found.message_id)
                    matched.state, matched.reply_text, matched.replied_at = State.REPLIED.value, text, now
            row = SmsReply(number=number, to=to, text=text, received_at=now,
                           message_id=matched.id if matched else None, taken_as="answer" if matched else "unmatched")
            session.add(row)
        if matched is not None and reply is not None:
            handler = self.reply_handlers.get(matched.kind)
            if handler is not None:
                await handler(matched, reply, now)
        return row

    # ------------------------------------------------------------ reading

    async def get(self, message_id: str) -> SmsMessage | None:
        async with self.sessionmaker() as session:
            return await session.get(SmsMessage, message_id)

    async def by_ref(self, ref: str) -> list[SmsMessage]:
        async with self.sessionmaker() as session:
            return list((await session.execute(select(SmsMessage).where(SmsMessage.ref == ref)
                                               .order_by(SmsMessage.created_at))).scalars())

    async def counts(self) -> dict[str, int]:
        async with self.sessionmaker() as session:
            rows = await session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state))
            return {state: int(n) for state, n in rows}

    async def expired_replies(self, kind: str, now: datetime | None = None) -> list[SmsMessage]:
        """Messages of this kind whose reply window closed without a reply."""
        now = now or self.clock.now()
        async with self.sessionmaker() as session:
            return list((await session.execute(select(SmsMessage).where(
                SmsMessage.kind == kind, SmsMessage.reply_until <= now,
                SmsMessage.state.in_([State.SENT.value, State.DELIVERED.value, State.QUEUED.value])))).scalars())

    async def open_warnings(self) -> list[SmsMessage]:
        """Warnings nobody has acknowledged yet (by a reply or on the wallboard)."""
        async with self.sessionmaker() as session:
            return list((await session.execute(select(SmsMessage).where(
                SmsMessage.kind == "warning", SmsMessage.state != State.REPLIED.value, SmsMessage.replied_at.is_(None))
                .order_by(SmsMessage.created_at))).scalars())

    async def acknowledge(self, ref: str, by: str, now: datetime | None = None) -> int:
        """A warning acknowledged (on the wallboard, or by one duty phone's reply): every copy of it."""
        now = now or self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                update(SmsMessage).where(SmsMessage.ref == ref, SmsMessage.kind == "warning",
                                         SmsMessage.replied_at.is_(None))
                .values(replied_at=now, reply_text=f"acknowledged by {by}", reply_until=None)
                .returning(SmsMessage.id))
            return len(result.all())

    async def close_reply_window(self, message_id: str) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(SmsMessage).where(SmsMessage.id == message_id)
                                  .values(reply_until=None, reply_code=None))
