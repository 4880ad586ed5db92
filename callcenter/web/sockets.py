"""Live sockets (/ws/live): one subscription to the live channel per app, fanned out.

The app follows the live state's `updates()` once, in a background task, and puts each
change on every open socket's own bounded queue: a socket whose client reads too slowly
(its queue full) is closed with 1013 so it comes back with a fresh snapshot; it never holds
up the others. Sockets are kept by user and by what signed them in (a page session or an API
token), so a log-out, a password change or a deactivation closes them at once in this
process (4001); every socket's session or token is also checked again every
`web.live_recheck_s`, so a log-out on another engine ends it too. A user may keep
`web.live_sockets_per_user` sockets; opening one more closes that user's oldest (4002): a
reloaded page keeps working, a forgotten tab gives way.

What a viewer may see: supervisors and admins everything; an agent only their own screen
pops, and no caller number of a call that is not theirs (`for_viewer`, `snapshot_for`).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
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


def snapshot_for(snapshot: dict[str, Any], user: access.User) -> dict[str, Any]:
    """The snapshot as this user may see it. The agents' latest screen pops are not in it, but
    an agent's own is (`screen_pop`): a page that was away when the phone rang shows who calls."""
    pops = snapshot.get("screen_pops") or {}
    snapshot = {k: v for k, v in snapshot.items() if k != "screen_pops"}
    if user.role == access.KIOSK:
        calls = snapshot.get("calls") or {}
        return {**snapshot, "calls": {k: {f: v for f, v in c.items() if f != "caller"} if isinstance(c, dict) else c
                                      for k, c in calls.items()}}
    if user.role != access.AGENT:
        return snapshot
    calls = snapshot.get("calls") or {}
    seen = {**snapshot, "calls": {k: _call_for(v, user) if isinstance(v, dict) else v for k, v in calls.items()}}
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
    queue: asyncio.Queue[str | Close]     # changes as JSON text, then maybe a Close
    order: int = field(default_factory=lambda: next(_order))
    closing: Close | None = None
    view: str = "all"     # "desk": only what the agent's desk shows (see DESK below)


class LiveSockets:
    """This app's open live sockets, by user and credential."""

    def __init__(self, per_user: int, queue_size: int = 256) -> None:
        self.per_user = per_user
        self.queue_size = queue_size
        self.open: set[LiveSocket] = set()
        self.free: dict[str, bool] = {}    # agent id -> available, as the last change said

    def add(self, ws: web.WebSocketResponse, user: access.User, credential: Credential, view: str = "all"
            ) -> LiveSocket:
        """Keep a new socket; when the user has too many, close their oldest."""
        sock = LiveSocket(ws, user, credential, asyncio.Queue(maxsize=self.queue_size), view=view)
        theirs = sorted((s for s in self.open if s.credential.user_id == credential.user_id and s.closing is None),
                        key=lambda s: s.order)
        for old in theirs[:max(0, len(theirs) + 1 - self.per_user)]:
            self.close(old, TOO_MANY, f"more than {self.per_user} live sockets for this user: the oldest is closed")
        self.open.add(sock)
        return sock

    def forget(self, sock: LiveSocket) -> None:
        self.open.discard(sock)

    def close(self, sock: LiveSocket, code: int, reason: str) -> None:
        """Ask the socket to close now: what it had not sent yet is dropped."""
        if sock.closing is not None:
            return
        sock.closing = Close(code, reason)
        while not sock.queue.empty():
            sock.queue.get_nowait()
        sock.queue.put_nowait(sock.closing)

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

    def publish(self, change: dict[str, Any]) -> None:
        """Queue the change, as each viewer may see it, on every socket. A change has only a few
        views (whole; a call without its caller's number), so each is written as JSON once and
        the same text goes to every socket that sees it, not once per socket."""
        texts: dict[object, str] = {}
        flips = self._availability_flips(change)
        for sock in list(self.open):
            if sock.closing is not None:
                continue
            if sock.view == DESK and not _for_the_desk(change, sock.user, flips):
                continue
            seen = for_viewer(change, sock.user)
            if seen is None:
                continue
            key: object = "whole" if seen is change else ("no caller" if _without_caller(change, seen) else id(seen))
            text = texts.get(key)
            if text is None:
                text = texts[key] = json.dumps(seen, ensure_ascii=False, default=str)
            try:
                sock.queue.put_nowait(text)
            except asyncio.QueueFull:
                self.close(sock, TOO_SLOW, "too slow: reconnect for a fresh snapshot")

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

    async def pump(self, sock: LiveSocket) -> None:
        """Send the socket its queue until it is asked to close (run by its handler)."""
        while True:
            item = await sock.queue.get()
            if isinstance(item, Close):
                await sock.ws.close(code=item.code, message=item.reason.encode())
                return
            await sock.ws.send_str(item)

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
        for sock in list(self.open):
            sock.closing = Close(GOING_AWAY, "server shutting down")
        await asyncio.gather(*(s.ws.close(code=GOING_AWAY, message=b"server shutting down") for s in list(self.open)),
                             return_exceptions=True)
