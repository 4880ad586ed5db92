"""What each kind of live socket is sent (web/sockets.py): the desk's view, a wallboard screen's;
how it is sent: each change encoded once, one write per socket per turn of the loop, a lagging
client's changes coalesced (latest state wins) and a client too far behind told to resync; the
snapshot read once for the sockets that come at the same moment."""
from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from callcenter.web import access, sockets
from callcenter.web.auth import Credential

SUP = access.User("sup", access.SUPERVISOR)
ME = access.User("a1", access.AGENT, agent_id="1001")


class _Socket:
    closed = False

    def __init__(self) -> None:
        self.closed_with: tuple[int, bytes] | None = None

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed_with = (code, message)


class _Transport:
    """What the fan-out writes to: everything written, and as much left unsent as the test says."""

    def __init__(self, unsent: int = 0) -> None:
        self.data = bytearray()
        self.writes = 0
        self.unsent = unsent

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return False


def messages(data: bytes) -> list[dict[str, Any]]:
    """The websocket text messages in what the server wrote (RFC 6455 frames, unmasked)."""
    out, at = [], 0
    while at < len(data):
        first, second = data[at], data[at + 1]
        assert first == 0x81 and not second & 0x80           # FIN, text, no mask
        n, at = second & 0x7F, at + 2
        if n == 126:
            (n,), at = struct.unpack("!H", data[at:at + 2]), at + 2
        elif n == 127:
            (n,), at = struct.unpack("!Q", data[at:at + 8]), at + 8
        out.append(json.loads(data[at:at + n].decode()))
        at += n
    return out


def opened(live: sockets.LiveSockets, user: access.User, digest: str, view: str = "all", unsent: int = 0
           ) -> tuple[sockets.LiveSocket, _Transport, _Socket]:
    ws, transport = _Socket(), _Transport(unsent)
    sock = live.add(ws, user, Credential(hash(digest) % 1000, "session", digest), view=view)  # type: ignore[arg-type]
    live.started(sock, transport)   # type: ignore[arg-type]
    return sock, transport, ws


async def a_turn() -> None:
    """The loop's next turn, when what was published is written."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_desk_hears_its_own_steps_and_colleagues_only_when_they_become_free_or_busy() -> None:
    live = sockets.LiveSockets(per_user=4, colleagues_s=0)     # colleagues at once, for this test
    _, desk, _ = opened(live, ME, "d1", view=sockets.DESK)
    _, board, _ = opened(live, SUP, "w1")
    for state in ("available", "ringing", "on_call", "wrap_up", "available"):
        live.publish({"kind": "agent", "id": "1002", "data": {"state": state}})
        await a_turn()
    for change in ({"kind": "agent", "id": "1001", "data": {"state": "on_call"}},
                   {"kind": "call", "id": "c1", "data": {"state": "waiting", "caller": "13900000001"}},
                   {"kind": "queue", "id": "leak", "data": {"waiting": 1}},
                   {"kind": "screen_pop", "id": "1001", "data": {"caller": "13900000001"}},
                   {"kind": "screen_pop", "id": "1002", "data": {"caller": "13900000002"}}):
        live.publish(change)
        await a_turn()
    heard = [(c["kind"], c["id"], (c["data"] or {}).get("state")) for c in messages(desk.data)]
    assert heard == [("agent", "1002", "available"), ("agent", "1002", "ringing"), ("agent", "1002", "available"),
                     ("agent", "1001", "on_call"), ("screen_pop", "1001", None)]
    assert len(messages(board.data)) == 10          # the wallboard hears everything


async def test_a_desk_gets_its_colleagues_together_and_its_own_state_at_once() -> None:
    live = sockets.LiveSockets(per_user=4, colleagues_s=0.05)
    _, desk, _ = opened(live, ME, "d1", view=sockets.DESK)
    _, board, _ = opened(live, SUP, "w1")
    for n in range(5):                                     # five colleagues become busy
        live.publish({"kind": "agent", "id": f"20{n}", "data": {"state": "ringing"}})
        await a_turn()
    assert desk.writes == 0 and board.writes == 5          # the wallboard: each at once
    await asyncio.sleep(0.08)
    assert desk.writes == 1 and [c["id"] for c in messages(desk.data)] == [f"20{n}" for n in range(5)]
    live.publish({"kind": "agent", "id": "300", "data": {"state": "ringing"}})
    live.publish({"kind": "agent", "id": "1001", "data": {"state": "ringing"}})   # its own: at once, with the rest
    await a_turn()
    assert desk.writes == 2 and [c["id"] for c in messages(desk.data)][-2:] == ["300", "1001"]


async def test_a_wallboard_screen_gets_no_screen_pop_and_no_callers_number() -> None:
    live = sockets.LiveSockets(per_user=4)
    _, screen, _ = opened(live, access.User("kiosk-floor-1", access.KIOSK), "k1")
    _, agent, _ = opened(live, access.User("a2", access.AGENT, agent_id="1002"), "a2")
    live.publish({"kind": "call", "id": "c1", "data": {"state": "waiting", "caller": "13900000001", "agent_id": "1001"}})
    live.publish({"kind": "screen_pop", "id": "1001", "data": {"caller": "13900000001"}})
    await a_turn()
    assert b"13900000001" not in screen.data
    [change] = messages(screen.data)
    assert change["data"]["state"] == "waiting"
    assert agent.data == screen.data          # the same view, the same bytes
    snapshot = sockets.snapshot_for({"calls": {"c1": {"caller": "13900000001"}},
                                     "screen_pops": {"1001": {"caller": "13900000001"}}},
                                    access.User("kiosk-floor-1", access.KIOSK))
    assert "13900000001" not in json.dumps(snapshot)


async def test_each_change_is_encoded_once_and_each_socket_gets_one_write_a_turn() -> None:
    live = sockets.LiveSockets(per_user=4)
    boards = [opened(live, SUP, f"w{n}")[1] for n in range(3)]
    live.publish({"kind": "agent", "id": "1002", "data": {"state": "on_call"}})
    live.publish({"kind": "call", "id": "c1", "data": {"state": "talking", "agent_id": "1002"}})
    live.publish({"kind": "queue", "id": "leak", "data": {"waiting": 0}})
    await a_turn()
    assert [b.writes for b in boards] == [1, 1, 1]
    assert [c["kind"] for c in messages(boards[0].data)] == ["agent", "call", "queue"]
    assert boards[0].data == boards[1].data == boards[2].data
    assert live.frames_written == 9 and live.writes == 3


async def test_a_lagging_client_gets_the_latest_state_of_each_thing_when_it_catches_up() -> None:
    live = sockets.LiveSockets(per_user=4, send_buffer=1000, retry_s=0.01)
    _, slow, slow_ws = opened(live, SUP, "w1", unsent=5000)   # its client has not read what it was sent
    _, quick, _ = opened(live, SUP, "w2")
    for state in ("ringing", "on_call", "wrap_up"):
        live.publish({"kind": "agent", "id": "1002", "data": {"state": state}})
        live.publish({"kind": "alert", "id": "o7", "data": {"kind": "warning"}})
        await a_turn()
    live.publish({"kind": "agent", "id": "1003", "data": {"state": "paused"}})
    await a_turn()
    assert slow.writes == 0 and len(messages(quick.data)) == 7
    slow.unsent = 0                                          # it reads again
    await asyncio.sleep(0.05)
    heard = [(c["kind"], c["id"], c["data"].get("state", c["data"].get("kind"))) for c in messages(slow.data)]
    # Alerts are news, each kept; an agent's states replace one another (the latest, in its place).
    assert heard == [("alert", "o7", "warning"), ("alert", "o7", "warning"), ("agent", "1002", "wrap_up"),
                     ("alert", "o7", "warning"), ("agent", "1003", "paused")]
    assert slow.writes == 1 and slow_ws.closed_with is None


async def test_a_client_too_far_behind_is_closed_to_resync_and_the_others_get_every_change() -> None:
    live = sockets.LiveSockets(per_user=4, max_pending=3, send_buffer=1000)
    slow_sock, slow, slow_ws = opened(live, SUP, "w1", unsent=5000)
    _, quick, _ = opened(live, SUP, "w2")
    for n in range(10):
        live.publish({"kind": "agent", "id": str(n), "data": None})
        await a_turn()
    assert slow_ws.closed_with is not None and slow_ws.closed_with[0] == sockets.TOO_SLOW
    assert slow.writes == 0 and slow_sock.pending == {}
    assert [c["id"] for c in messages(quick.data)] == [str(n) for n in range(10)]


async def test_changes_wait_for_the_snapshot_and_go_out_after_it() -> None:
    live = sockets.LiveSockets(per_user=4)
    sock = live.add(_Socket(), SUP, Credential(1, "session", "w1"))       # type: ignore[arg-type]
    live.publish({"kind": "agent", "id": "1002", "data": {"state": "on_call"}})
    await a_turn()
    transport = _Transport()
    live.started(sock, transport)    # type: ignore[arg-type]
    await a_turn()
    assert [c["id"] for c in messages(transport.data)] == ["1002"]


class _Live:
    """A live state whose reads are counted, and held until the test lets them end."""

    def __init__(self) -> None:
        self.reads = 0
        self.go = asyncio.Event()

    async def snapshot(self) -> dict[str, Any]:
        self.reads += 1
        n = self.reads
        await self.go.wait()
        return {"agents": {"1001": {"state": "available", "read": n}}, "calls": {},
                "screen_pops": {"1001": {"caller": "13900000001"}}}


async def test_sockets_that_come_together_share_one_read_and_one_that_comes_during_it_gets_the_next() -> None:
    live, source = sockets.LiveSockets(per_user=4), _Live()
    together = [asyncio.create_task(live.snapshot(source)) for _ in range(20)]
    await asyncio.sleep(0.01)
    later = asyncio.create_task(live.snapshot(source))   # during the read: a change may fall before it ends
    await asyncio.sleep(0.01)
    source.go.set()
    reads = await asyncio.gather(*together)
    assert {id(r) for r in reads} == {id(reads[0])} and reads[0].data["agents"]["1001"]["read"] == 1
    assert (await later).data["agents"]["1001"]["read"] == 2 and source.reads == 2


def test_the_snapshot_text_is_each_viewers_snapshot_with_the_shared_parts_written_once() -> None:
    read = sockets.SnapshotRead({"agents": {"1001": {"state": "on_call"}, "1002": {"state": "available"}},
                                 "queues": {"leak": {"waiting": 2}},
                                 "calls": {"c1": {"caller": "13900000001", "agent_id": "1001"}},
                                 "engines": {}, "screen_pops": {"1001": {"caller": "13900000001"}}})
    viewers = [(SUP, "all"), (ME, "all"), (ME, sockets.DESK), (access.User("a2", access.AGENT, agent_id="1002"),
                                                              sockets.DESK),
               (access.User("kiosk-floor-1", access.KIOSK), "all")]
    for user, view in viewers:
        seen = sockets.snapshot_for(read.data, user, view)
        message = json.loads(sockets.snapshot_text(read, seen))
        assert message == {"kind": "snapshot", "data": json.loads(json.dumps(seen))}
    assert set(read.encoded) == {"agents", "queues", "engines", "calls"}    # as read, for whoever sees them so
    desk = sockets.snapshot_for(read.data, ME, sockets.DESK)
    assert desk == {"agents": read.data["agents"], "screen_pop": {"caller": "13900000001"}}
    assert sockets.snapshot_for(read.data, access.User("a2", access.AGENT, agent_id="1002"), sockets.DESK) == {
        "agents": read.data["agents"]}
