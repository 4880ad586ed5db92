"""Live sockets (/ws/live): one subscription to the live channel per app, fanned out.

The app follows the live state's `updates()` once, in a background task, and hands each
change to `LiveSockets.publish`: each view of it (whole; without the caller's number) is
encoded once, as JSON and as a websocket frame, and the same bytes are put in the pending
changes of every socket that sees that view; once per turn of the event loop each socket's
pending frames go to its transport in one write. A socket whose client lags (its transport
holds more than `send_buffer` bytes) has its changes coalesced, the latest state of each
agent, call or queue in place of the earlier ones, and when it falls `max_pending` things
behind it is closed with 1013 so it comes back with a fresh snapshot; it never holds up the
others, and nothing grows without bound. Sockets are kept by user and by what signed them in
(a page session or an API token), so a log-out, a password change or a deactivation closes
them at once in this process (4001); every socket's session or token is also checked again
every `web.live_recheck_s`, so a log-out on another engine ends it too. A user may keep
`web.live_sockets_per_user` sockets; opening one more closes that user's oldest (4002): a
reloaded page keeps working, a forgotten tab gives way.

What a viewer may see: supervisors and admins everything; an agent only their own screen
pops, and no caller number of a call that is not theirs (`for_viewer`, `snapshot_for`).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.web import access, users
from callcenter.web.auth import Credential
from callcenter.web.keys import LiveSource

log = logging.getLogger(__name__)

SIGNED_OUT = 4001   # its session or token ended: log-out, password change, deactivation, revoked
TOO_MANY = 4002     # the user opened more sockets than allowed: this, their oldest, is closed
TOO_SLOW = 1013     # its client fell behind (queue full): reconnect for a fresh snapshot
GOING_AWAY = 1001   # the server is shutting down

# Kinds an agent receives (others, such as work-order alerts, are for the wallboard).
AGENT_KINDS = frozenset({"agent", "queue", "engine", "call", "screen_pop"})


def for_viewer(change: dict[str, Any], user: access.User) -> dict[str, Any] | None:
    """The change as this user may see it, or None when it is not for them."""
    if user.role == access.KIOSK:   # a screen on the floor: no screen pops, no caller's number
        if change.get("kind") == "screen_pop":
            return None
        data = change.get("data")
        if change.get("kind") == "call" and isinstance(data, dict):
            return {**change, "data": {k: v for k, v in data.items() if k != "caller"}}
        return change
    if user.role != access.AGENT:
        return change
    kind = change.get("kind")
    if kind not in AGENT_KINDS:
        return None
    if kind == "screen_pop":
        return change if user.agent_id is not None and change.get("id") == user.agent_id else None
    if kind == "call":
        data = change.get("data")
        if isinstance(data, dict):
            return {**change, "data": _call_for(data, user)}
    return change


def snapshot_for(snapshot: dict[str, Any], user: access.User, view: str = "all") -> dict[str, Any]:
    """The snapshot as this user may see it. The agents' latest screen pops are not in it, but
    an agent's own is (`screen_pop`): a page that was away when the phone rang shows who calls.
    A desk's (view "desk") has what its changes bring: the agents, and the agent's own pop.
    What is not filtered is the snapshot's own object (so `snapshot_text` encodes it once)."""
    pops = snapshot.get("screen_pops") or {}
    keep = ("agents",) if view == DESK else tuple(k for k in snapshot if k != "screen_pops")
    snapshot = {k: snapshot[k] for k in keep if k in snapshot}
    if user.role == access.KIOSK:
        if "calls" not in snapshot:
            return snapshot
        calls = snapshot.get("calls") or {}
        return {**snapshot, "calls": {k: {f: v for f, v in c.items() if f != "caller"} if isinstance(c, dict) else c
                                      for k, c in calls.items()}}
    if user.role != access.AGENT:
        return snapshot
    seen = dict(snapshot)
    if "calls" in snapshot:
        calls = snapshot.get("calls") or {}
        seen["calls"] = {k: _call_for(v, user) if isinstance(v, dict) else v for k, v in calls.items()}
    if user.agent_id is not None and isinstance(pops.get(user.agent_id), dict):
        seen["screen_pop"] = pops[user.agent_id]
    return seen


def _call_for(call: dict[str, Any], user: access.User) -> dict[str, Any]:
    """A call without its caller's number unless it is this agent's call."""
    if user.agent_id is not None and call.get("agent_id") == user.agent_id:
        return call
    return {k: v for k, v in call.items() if k != "caller"}


# A socket opened with ?view=desk (the agent's desk) gets only what the desk shows: the agent's
# own state and screen pops, and the colleagues who become free or stop being free. Five hundred
# desks then do not each receive every call's and every agent's every step.
DESK = "desk"
VIEWS = ("all", DESK)


def _for_the_desk(change: dict[str, Any], user: access.User, flips: bool) -> bool:
    kind = change.get("kind")
    if kind == "screen_pop":
        return True            # for_viewer keeps only the agent's own
    if kind == "agent":
        return flips or (user.agent_id is not None and change.get("id") == user.agent_id)
    return False


def _without_caller(change: dict[str, Any], seen: dict[str, Any]) -> bool:
    """Whether `seen` is the change with only the caller's number taken out (one text for all who see that)."""
    data, shown = change.get("data"), seen.get("data")
    return (isinstance(data, dict) and isinstance(shown, dict) and "caller" not in shown
            and shown == {k: v for k, v in data.items() if k != "caller"})


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A shared read's failure is raised to whoever awaits it; not an unretrieved error if nobody does."""
    if not future.cancelled():
        future.exception()


def text_frame(text: str) -> bytes:
    """One websocket text message from the server (RFC 6455 §5.2: FIN, opcode 1, no mask, no
    compression): the same bytes for every socket that is sent it."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


STATES = frozenset({"agent", "call", "queue", "engine", "screen_pop"})


def _state_key(change: dict[str, Any]) -> object:
    """What a later change replaces: an agent's, call's, queue's or engine's state, an agent's
    screen pop. Anything else (alerts) is news of its own and is never replaced."""
    kind = change.get("kind")
    if kind in STATES:
        return (kind, change.get("id"))
    return object()


@dataclass(eq=False)
class SnapshotRead:
    """One read of the live state, shared by every socket that asked for it before it began;
    the parts that several viewers see alike are encoded once (`snapshot_text`)."""
    data: dict[str, Any]
    encoded: dict[str, str] = field(default_factory=dict)    # top-level key -> its JSON, as read


def snapshot_text(read: SnapshotRead, seen: dict[str, Any]) -> str:
    """The snapshot message for a viewer (`seen`: `snapshot_for` of `read.data`). A part the
    viewer sees as read (the agents, the queues...) is the same text for all: written once."""
    parts = []
    for key, value in seen.items():
        if read.data.get(key) is value:
            text = read.encoded.get(key)
            if text is None:
                text = read.encoded[key] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            text = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{json.dumps(key)}: {text}")
    return '{"kind": "snapshot", "data": {' + ", ".join(parts) + "}}"


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


_order = itertools.count()


@dataclass(eq=False)
class LiveSocket:
    ws: web.WebSocketResponse
    user: access.User
    credential: Credential
    order: int = field(default_factory=lambda: next(_order))
    closing: Close | None = None
    view: str = "all"     # "desk": only what the agent's desk shows (see DESK above)
    # Where its changes are written, once its snapshot is out (`LiveSockets.started`).
    transport: asyncio.WriteTransport | None = None
    # What it has not been written yet, in order; a later state of the same thing replaces the
    # earlier (latest state wins), so a socket that lags holds one entry per thing, not a backlog.
    pending: dict[object, bytes] = field(default_factory=dict)

    @property
    def desk_of(self) -> str | None:
        """The agent whose desk this is (a desk socket signed in as an agent), else None."""
        if self.view == DESK and self.user.role == access.AGENT and self.user.agent_id is not None:
            return self.user.agent_id
        return None


class LiveSockets:
    """This app's open live sockets, by user and credential, and what each has yet to be sent.

    `publish` puts a change, as each viewer may see it, in the pending changes of the sockets it
    is for: the few views of a change are each written as JSON and as a websocket frame once,
    and the same bytes go to every socket. Once per turn of the event loop `flush` writes each
    socket's pending frames to its transport in one write. A socket whose transport still holds
    `send_buffer` bytes or more (its client does not read) is skipped, and its changes wait,
    coalesced; one that falls `max_pending` things behind is closed with 1013 (TOO_SLOW) and
    comes back with a fresh snapshot. No socket holds up another, and none has a task or a
    queue of its own. A desk's colleagues becoming free or busy (its transfer list; forty a
    second at twenty calls a second, to every desk) are written every `colleagues_s`, or with
    the desk's own next change, whichever comes first: its own state is never held back.
    """

    def __init__(self, per_user: int, max_pending: int = 256, send_buffer: int = 256 * 1024,
                 retry_s: float = 0.05, colleagues_s: float = 0.25) -> None:
        self.per_user = per_user
        self.colleagues_s = colleagues_s
        self.max_pending = max_pending
        self.send_buffer = send_buffer
        self.retry_s = retry_s
        self.open: set[LiveSocket] = set()
        self.free: dict[str, bool] = {}    # agent id -> available, as the last change said
        # The agents' desks by agent, and every other socket (wallboards, supervisors, ...): a
        # change about one agent is looked at by that agent's desks, not by five hundred.
        self.desks: dict[str, set[LiveSocket]] = {}
        self.others: set[LiveSocket] = set()
        self._dirty: set[LiveSocket] = set()
        self._flush_soon: asyncio.Handle | None = None          # this turn's flush
        self._retry_at: asyncio.TimerHandle | None = None      # the lagging sockets' next try
        # Desks whose only news is colleagues becoming free or busy: written together every
        # `colleagues_s` (or with the desk's own next change), not one write per colleague.
        self._colleagues: set[LiveSocket] = set()
        self._colleagues_at: asyncio.TimerHandle | None = None
        self._closings: set[asyncio.Task[None]] = set()
        self._next_read: asyncio.Future[SnapshotRead] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.frames_written = 0     # figures for the benchmark
        self.writes = 0

    def add(self, ws: web.WebSocketResponse, user: access.User, credential: Credential, view: str = "all"
            ) -> LiveSocket:
        """Keep a new socket (its changes wait until `started`); when the user has too many,
        close their oldest."""
        sock = LiveSocket(ws, user, credential, view=view)
        theirs = sorted((s for s in self.open if s.credential.user_id == credential.user_id and s.closing is None),
                        key=lambda s: s.order)
        for old in theirs[:max(0, len(theirs) + 1 - self.per_user)]:
            self.close(old, TOO_MANY, f"more than {self.per_user} live sockets for this user: the oldest is closed")
        self.open.add(sock)
        agent_id = sock.desk_of
        if agent_id is not None:
            self.desks.setdefault(agent_id, set()).add(sock)
        else:
            self.others.add(sock)
        return sock

    def started(self, sock: LiveSocket, transport: asyncio.WriteTransport | None) -> None:
        """Its snapshot is written: from now on its changes go to `transport`, those that came
        meanwhile first."""
        sock.transport = transport
        if sock.pending:
            self._mark(sock)

    async def snapshot(self, live: LiveSource) -> SnapshotRead:
        """The live state, read after this call (so a socket added before it misses no change
        between the read and its first pending change). The sockets that ask while a read runs
        share the next one: five hundred pages coming back at once make a few reads, not five
        hundred copies of every agent in memory."""
        loop = asyncio.get_running_loop()
        if self._next_read is None:
            self._next_read = loop.create_future()
            self._next_read.add_done_callback(_retrieved)
            if self._reader is None or self._reader.done():
                self._reader = loop.create_task(self._read(live), name="live snapshot")
        return await asyncio.shield(self._next_read)

    async def _read(self, live: LiveSource) -> None:
        while self._next_read is not None:
            done, self._next_read = self._next_read, None    # who asks from now on waits for the next read
            try:
                done.set_result(SnapshotRead(await live.snapshot()))
            except Exception as exc:
                done.set_exception(exc)
            except asyncio.CancelledError:
                done.cancel()
                raise

    def forget(self, sock: LiveSocket) -> None:
        self.open.discard(sock)
        self.others.discard(sock)
        self._dirty.discard(sock)
        self._colleagues.discard(sock)
        agent_id = sock.desk_of
        if agent_id is not None:
            desks = self.desks.get(agent_id)
            if desks is not None:
                desks.discard(sock)
                if not desks:
                    del self.desks[agent_id]
        sock.pending.clear()
        sock.transport = None

    def close(self, sock: LiveSocket, code: int, reason: str) -> None:
        """Close the socket now: what it had not been sent is dropped."""
        if sock.closing is not None:
            return
        sock.closing = Close(code, reason)
        sock.pending.clear()
        self._dirty.discard(sock)
        task = asyncio.get_running_loop().create_task(self._close(sock, sock.closing), name="live socket close")
        self._closings.add(task)
        task.add_done_callback(self._closings.discard)

    @staticmethod
    async def _close(sock: LiveSocket, close: Close) -> None:
        with contextlib.suppress(Exception):
            await sock.ws.close(code=close.code, message=close.reason.encode())

    def close_where(self, which: Callable[[LiveSocket], bool], code: int, reason: str) -> int:
        chosen = [s for s in self.open if which(s)]
        for sock in chosen:
            self.close(sock, code, reason)
        return len(chosen)

    def end_credential(self, digest: str, reason: str) -> int:
        return self.close_where(lambda s: s.credential.digest == digest, SIGNED_OUT, reason)

    def end_user(self, user_id: int, reason: str, keep: str | None = None) -> int:
        """Close the user's sockets but those signed in by `keep` (a credential digest)."""
        return self.close_where(lambda s: s.credential.user_id == user_id and s.credential.digest != keep,
                                SIGNED_OUT, reason)

    # ------------------------------------------------------------------ the fan-out

    def publish(self, change: dict[str, Any]) -> None:
        """Put the change, as each viewer may see it, in the pending changes of every socket it
        is for (written at the end of this turn of the loop, see `flush`)."""
        frames: dict[object, bytes] = {}
        key = _state_key(change)
        flips = self._availability_flips(change)
        kind = change.get("kind")
        # Desks: their own agent's steps and screen pops; every desk when an agent becomes free
        # or busy (the colleagues a desk may transfer to); nothing else.
        if flips:
            desks: Iterable[LiveSocket] = [s for group in self.desks.values() for s in group]
        elif kind in ("agent", "screen_pop"):
            desks = self.desks.get(str(change.get("id")), ())
        else:
            desks = ()
        for sock in itertools.chain(desks, self.others):
            if sock.closing is not None:
                continue
            if sock.view == DESK and sock.desk_of is None and not _for_the_desk(change, sock.user, flips):
                continue
            seen = for_viewer(change, sock.user)
            if seen is None:
                continue
            view: object = "whole" if seen is change else ("no caller" if _without_caller(change, seen) else id(seen))
            frame = frames.get(view)
            if frame is None:
                frame = frames[view] = text_frame(json.dumps(seen, ensure_ascii=False, default=str))
            pending = sock.pending
            pending.pop(key, None)     # a later state of the same thing goes last, in place of the earlier
            pending[key] = frame
            if len(pending) > self.max_pending:
                self.close(sock, TOO_SLOW, "too slow: reconnect for a fresh snapshot")
                continue
            if flips and self.colleagues_s > 0 and sock.desk_of not in (None, change.get("id")):
                self._colleagues.add(sock)
                if self._colleagues_at is None:
                    self._colleagues_at = asyncio.get_running_loop().call_later(self.colleagues_s,
                                                                                 self._colleagues_due)
            else:
                self._mark(sock)

    def _colleagues_due(self) -> None:
        self._colleagues_at = None
        due, self._colleagues = self._colleagues, set()
        for sock in due:
            self._mark(sock)

    def _mark(self, sock: LiveSocket) -> None:
        self._dirty.add(sock)
        if self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write each socket's pending frames in one write; those whose client lags keep theirs
        (coalesced) and are tried again in `retry_s`."""
        self._flush_soon = None
        lagging: set[LiveSocket] = set()
        for sock in self._dirty:
            transport = sock.transport
            if sock.closing is not None or not sock.pending:
                continue
            if transport is None:
                continue           # its snapshot is not out yet: `started` brings it back
            if transport.is_closing() or sock.ws.closed:     # nothing after a close frame
                sock.pending.clear()
                continue
            if transport.get_write_buffer_size() >= self.send_buffer:
                lagging.add(sock)
                continue
            frames = sock.pending.values()
            self.frames_written += len(frames)
            self.writes += 1
            transport.write(b"".join(frames))
            sock.pending.clear()
        self._dirty = lagging
        if lagging and self._retry_at is None:
            self._retry_at = asyncio.get_running_loop().call_later(self.retry_s, self._retry)

    def _retry(self) -> None:
        self._retry_at = None
        self.flush()

    def _availability_flips(self, change: dict[str, Any]) -> bool:
        """Whether an agent change makes the agent free or no longer free (what a desk's list
        of colleagues to transfer to needs); kept per agent from the changes seen."""
        if change.get("kind") != "agent":
            return False
        agent_id, data = str(change.get("id")), change.get("data")
        free = isinstance(data, dict) and data.get("state") == "available" and data.get("phone_reachable") is not False
        was = self.free.get(agent_id)
        self.free[agent_id] = free
        return was is None or was != free

    async def follow(self, live: LiveSource, retry_s: float = 1.0) -> None:
        """The one subscription of this app: every change to every socket (until cancelled)."""
        while True:
            try:
                async for change in live.updates():
                    self.publish(change)
                return   # the source has no more changes
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():   # being stopped: not a lost connection
                    raise asyncio.CancelledError() from exc
                log.warning("live updates lost (%s); following again in %.0f s", exc, retry_s)
                await asyncio.sleep(retry_s)

    async def recheck(self, sessionmaker: async_sessionmaker[AsyncSession], every_s: float) -> None:
        """Close the sockets whose session or token no longer signs in (e.g. ended elsewhere)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.recheck_once(sessionmaker)
            except Exception as exc:
                log.warning("live sockets: could not re-check sessions (%s)", exc)

    async def recheck_once(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        socks = [s for s in self.open if s.closing is None]
        if not socks:
            return
        sessions = {s.credential.digest for s in socks if s.credential.kind == "session"}
        tokens = {s.credential.digest for s in socks if s.credential.kind == "token"}
        async with sessionmaker() as session:
            valid = await users.still_valid(session, sessions, tokens, datetime.now(UTC))
        for sock in socks:
            if sock.credential.digest not in valid:
                self.close(sock, SIGNED_OUT, "signed out")

    async def close_all(self) -> None:
        """Close every socket now (shutdown: their handlers are about to be cancelled)."""
        for handle in (self._flush_soon, self._retry_at, self._colleagues_at):
            if handle is not None:
                handle.cancel()
        self._flush_soon = self._retry_at = self._colleagues_at = None
        if self._reader is not None:
            self._reader.cancel()
        for sock in list(self.open):
            sock.closing = Close(GOING_AWAY, "server shutting down")
            sock.pending.clear()
        await asyncio.gather(*(s.ws.close(code=GOING_AWAY, message=b"server shutting down") for s in list(self.open)),
                             *list(self._closings), return_exceptions=True)
