"""The rules of the SMS channel, pure: no I/O, `now` passed in.

- Encoding and segments: a text that fits the GSM 03.38 alphabet goes as GSM-7 (160 septets
  in one message, 153 per part of a long one; the extension characters take two); anything
  else (Chinese) as UCS-2 (70 UTF-16 units, 67 per part). The count is known before sending.
- Quiet hours (免打扰): customer messages wait for the morning; urgent outage notices and
  messages to the hotline's own staff do not.
- Opt-out (回复TD退订): a reply of TD or 退订 stops customer messages to that number.
- States: queued -> sent (Kannel accepted it) -> delivered | failed; replied when the
  recipient's reply was matched to it. A delivery report never moves a message backwards.
- Retries back off exponentially with a cap; a per-gateway token bucket limits the rate.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")

GSM7, UCS2 = "gsm7", "ucs2"
# Kannel's sendsms `coding`: 0 GSM-7, 2 UCS-2.
KANNEL_CODING = {GSM7: 0, UCS2: 2}


class State(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    REPLIED = "replied"


# Kinds of message: to customers (quiet hours and opt-out apply) or to the hotline's own people.
CUSTOMER_KINDS = frozenset({"follow_up", "outage", "reminder"})
STAFF_KINDS = frozenset({"warning", "dispatch"})
KINDS = CUSTOMER_KINDS | STAFF_KINDS

OPT_OUT_WORDS = frozenset({"TD", "退订", "TD退订", "退订TD", "回复TD退订"})


@dataclass(frozen=True)
class Segments:
    coding: str      # gsm7 | ucs2
    units: int       # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int


def coding_of(text: str) -> str:
    return GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else UCS2


def segments(text: str) -> Segments:
    """How the text goes out and in how many parts (concatenated SMS lose room to the UDH)."""
    coding = coding_of(text)
    if coding == GSM7:
        units, single, part = sum(2 if c in GSM7_EXTENSION else 1 for c in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-be")) // 2, 70, 67
    parts = 1 if units <= single else math.ceil(units / part)
    return Segments(coding, units, parts)


# ---------------------------------------------------------------- quiet hours


@dataclass(frozen=True)
class QuietHours:
    start: time          # local time the quiet begins, e.g. 21:00
    end: time            # local time it ends, e.g. 08:00 (may be on the next day)
    timezone: str

    def covers(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone)).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, at: datetime) -> datetime:
        """`at` itself when it is outside the quiet hours, else the moment they end."""
        if not self.covers(at):
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        end = datetime.combine(local.date(), self.end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return end.astimezone(at.tzinfo)


def exempt_from_quiet_hours(kind: str, urgent: bool) -> bool:
    """Staff messages go at any hour; of the customer messages only urgent outage notices do."""
    return kind in STAFF_KINDS or (kind == "outage" and urgent)


def earliest_send(kind: str, urgent: bool, at: datetime, quiet: QuietHours) -> datetime:
    return at if exempt_from_quiet_hours(kind, urgent) else quiet.next_allowed(at)


# ---------------------------------------------------------------- opt-out and replies


def _squeeze(text: str) -> str:
    return re.sub(r"[\s　,，.。!！]+", "", text).upper()


def is_opt_out(text: str) -> bool:
    return _squeeze(text) in OPT_OUT_WORDS


def opt_out_applies(kind: str) -> bool:
    return kind in CUSTOMER_KINDS


@dataclass(frozen=True)
class Reply:
    digit: str            # the answer: 1 satisfied / 2 unsatisfied / 3 not resolved (or a unit's 1: 签收)
    code: str | None      # the message's short code, when the sender added one


_SEPARATORS = re.compile(r"[\s　#＃*,，.。]+")


def parse_reply(text: str) -> Reply | None:
    """'2', '2 417', '2#417', '2417' or '417 2' -> Reply; anything else None (stored, for a person)."""
    cleaned = text.strip().replace("签收", " 1 ")
    cleaned = cleaned.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    words = [w for w in _SEPARATORS.split(cleaned) if w]
    if not words or not all(w.isascii() and w.isdigit() for w in words):
        return None
    if len(words) == 1 and len(words[0]) in (1, 4):
        return Reply(words[0][0], words[0][1:] or None)
    if len(words) == 2:
        one, other = sorted(words, key=len)
        if len(one) == 1 and len(other) == 3:
            return Reply(one, other)
    return None


@dataclass(frozen=True)
class Open:
    """A message still waiting for its recipient's reply."""

    message_id: str
    code: str
    sent_at: datetime


def match_reply(reply: Reply, waiting: list[Open]) -> Open | None:
    """The message a reply answers: the one open message to that number; with several open,
    the one whose short code the reply names (without a code: none, a person reads it)."""
    if reply.code is not None:
        return next((o for o in waiting if o.code == reply.code), None)
    return waiting[0] if len(waiting) == 1 else None


# ---------------------------------------------------------------- delivery reports

# Kannel dlr-mask bits: 1 delivered to the phone, 2 delivery failed, 4 buffered,
# 8 the carrier accepted it, 16 the carrier rejected it. We ask for 1 + 2 + 8 + 16.
DLR_DELIVERED, DLR_FAILED, DLR_BUFFERED, DLR_SMSC_ACCEPTED, DLR_SMSC_REJECTED = 1, 2, 4, 8, 16
DLR_MASK = DLR_DELIVERED | DLR_FAILED | DLR_SMSC_ACCEPTED | DLR_SMSC_REJECTED
DLR_TYPES = frozenset({1, 2, 4, 8, 16})

_RANK = {State.QUEUED: 0, State.SENT: 1, State.FAILED: 2, State.DELIVERED: 3, State.REPLIED: 4}


def after_report(state: State, dlr_type: int) -> State:
    """The state after a delivery report. Reports come in no fixed order (the carrier's 8 may
    follow the phone's 1): a report only ever moves a message forwards; a reply outranks all."""
    target = {DLR_DELIVERED: State.DELIVERED, DLR_FAILED: State.FAILED, DLR_SMSC_REJECTED: State.FAILED,
              DLR_SMSC_ACCEPTED: State.SENT, DLR_BUFFERED: State.SENT}[dlr_type]
    return target if _RANK[target] > _RANK[state] else state


# ---------------------------------------------------------------- sending


class Outcome(StrEnum):
    ACCEPTED = "accepted"        # Kannel took it (202: 0 Accepted / 3 Queued): never send again
    GATEWAY_DOWN = "down"        # refused before it was taken (connection refused, 503): safe to retry
    UNCERTAIN = "uncertain"      # sent, no answer (timeout): wait for a delivery report first
    REJECTED = "rejected"        # Kannel refused this message (4xx): retrying will not help


def outcome_of_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status in (503, 502, 504) or status >= 500:
        return Outcome.GATEWAY_DOWN
    return Outcome.REJECTED


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Wait before attempt `attempt + 1`: initial, 2x, 4x ... up to max."""
    return min(max_s, initial_s * (2 ** max(0, attempt - 1)))


@dataclass
class TokenBucket:
    """At most `rate` messages a second on average, bursts up to `burst`. `monotonic` in seconds."""

    rate: float
    burst: float
    tokens: float = -1.0
    last: float = 0.0

    def take(self, monotonic: float) -> float:
        """Take one token: 0.0 when it may go now, else the seconds to wait (nothing taken)."""
        if self.tokens < 0:
            self.tokens, self.last = self.burst, monotonic
        self.tokens = min(self.burst, self.tokens + (monotonic - self.last) * self.rate)
        self.last = monotonic
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


# ---------------------------------------------------------------- follow-up policy


@dataclass(frozen=True)
class FollowUpPolicy:
    """Per case, how a resolved order is followed up (回访): by SMS, the automated call or a
    person. The energy hotline's rule: SMS for every case but inquiries and praise; rescue,
    reports, complaints, repeat and transferred cases go to a person."""

    none: frozenset[str]          # categories not followed up
    person: frozenset[str]        # categories a person follows up
    call: frozenset[str]          # categories the automated call follows up
    person_when: frozenset[str]   # cases a person follows up: repeat, transferred, escalated

    def channel(self, category: str, cases: set[str]) -> str:
        if category in self.none:
            return "none"
        if category in self.person or cases & self.person_when:
            return "person"
        if category in self.call:
            return "call"
        return "sms"


FOLLOW_UP_DIGITS = {"1": "satisfied", "2": "unsatisfied", "3": "not_resolved"}
