"""A fake Asterisk manager interface for the adapter's tests: a real TCP server on a free
loopback port that speaks AMI (banner, Login, Ping, replies) and replays trace files.

Trace files (tests/ami/traces/*.ami) are AMI as it comes off the wire, written with plain
newlines for reading; they are sent with CRLF. Messages are separated by a blank line;
``{ActionID}`` and ``{CommandID}`` are filled in when a trace answers an action.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

TRACES = Path(__file__).with_name("traces")
BANNER = b"Asterisk Call Manager/9.0.0\r\n"

Message = dict[str, str] | str
Reply = Callable[["FakeSession", dict[str, str]], list[Message] | None]


def trace(name: str, **values: str) -> str:
    text = (TRACES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def wire(message: Message) -> bytes:
    if isinstance(message, dict):
        return ("".join(f"{k}: {v}\r\n" for k, v in message.items()) + "\r\n").encode("utf-8")
    text = message.strip("\n") + "\n\n"
    return text.replace("\n", "\r\n").encode("utf-8")


def agi_exec(channel: str, uniqueid: str, command_id: str, result: str, linkedid: str | None = None) -> dict[str, str]:
    return {
        "Event": "AsyncAGIExec", "Privilege": "agi,all", "Channel": channel, "ChannelState": "6",
        "ChannelStateDesc": "Up", "CallerIDNum": "13800138000", "CallerIDName": "<unknown>",
        "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>", "Language": "zh",
        "AccountCode": "", "Context": "hotline", "Exten": "96666", "Priority": "2",
        "Uniqueid": uniqueid, "Linkedid": linkedid or uniqueid, "CommandId": command_id,
        "Result": quote(result + "\n", safe=""),
    }


class FakeSession:
    def __init__(self, server: FakeAmi, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.actions: list[dict[str, str]] = []
        self.closed = asyncio.Event()
        self.opened_at = asyncio.get_running_loop().time()

    def send(self, *messages: Message) -> None:
        for message in messages:
            self.writer.write(wire(message))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    def drop(self) -> None:
        self.writer.close()

    def names(self) -> list[str]:
        return [a.get("Action", "") for a in self.actions]

    async def serve(self) -> None:
        self.writer.write(BANNER)
        buffer = b""
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    block, buffer = buffer.split(b"\r\n\r\n", 1)
                    action: dict[str, str] = {}
                    for line in block.decode("utf-8").split("\r\n"):
                        key, _, value = line.partition(": ")
                        if key in action:  # repeated headers (Variable) kept as one joined value
                            action[key] += "|" + value
                        else:
                            action[key] = value
                    self.actions.append(action)
                    self.server.action_seen.set()
                    self._answer(action)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed.set()
            self.writer.close()

    def _answer(self, action: dict[str, str]) -> None:
        name = action.get("Action", "")
        action_id = action.get("ActionID", "")
        if name == "Login":
            if self.server.mute_login:
                return
            if action.get("Secret") != self.server.secret:
                self.send({"Response": "Error", "ActionID": action_id, "Message": "Authentication failed"})
                return
            self.send({"Response": "Success", "ActionID": action_id, "Message": "Authentication accepted"},
                      {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "3600",
                       "LastReload": "3600", "Status": "Fully Booted"})
            if self.server.drop_after_login:
                self.drop()
            return
        if name == "Ping":
            if not self.server.silent:
                self.send({"Response": "Success", "ActionID": action_id, "Ping": "Pong",
                           "Timestamp": "1732345200.000000"})
            return
        reply = self.server.replies.get(name)
        if reply is not None:
            messages = reply(self, action)
            if messages:
                self.send(*messages)
            return
        if name == "AGI":
            self.send({"Response": "Success", "ActionID": action_id, "Message": "Added AGI command to queue"})
            return
        if name == "CoreShowChannels":
            self.send(trace("core_show_channels.ami", ActionID=action_id))
            return
        self.send({"Response": "Success", "ActionID": action_id, "Message": f"{name} done"})


class FakeAmi:
    def __init__(self, secret: str = "test-ami-secret") -> None:
        self.secret = secret
        self.sessions: list[FakeSession] = []
        self.replies: dict[str, Reply] = {}
        self.silent = False  # True: Ping gets no reply (a dead-but-open Asterisk)
        self.drop_after_login = False  # True: every session ends right after a good Login
        self.mute_login = False  # True: Login gets no answer
        self.action_seen = asyncio.Event()
        self._new_session = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def session(self) -> FakeSession:
        return self.sessions[-1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = FakeSession(self, reader, writer)
        self.sessions.append(session)
        self._new_session.set()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await session.serve()
        finally:
            self._tasks.discard(task)

    async def wait_sessions(self, count: int, timeout: float = 5.0) -> FakeSession:
        async with asyncio.timeout(timeout):
            while len(self.sessions) < count:
                self._new_session.clear()
                await self._new_session.wait()
        return self.sessions[count - 1]

    async def wait_action(self, name: str, session: FakeSession | None = None, timeout: float = 5.0) -> dict[str, str]:
        async with asyncio.timeout(timeout):
            while True:
                for s in [session] if session else self.sessions:
                    for action in s.actions:
                        if action.get("Action") == name:
                            return action
                self.action_seen.clear()
                await self.action_seen.wait()

    async def close(self) -> None:
        for session in self.sessions:
            session.writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
