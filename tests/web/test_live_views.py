"""What each kind of live socket is sent (web/sockets.py): the desk's view, a wallboard screen's."""
from __future__ import annotations

import json

from callcenter.web import access, sockets
from callcenter.web.auth import Credential


class _Socket:
    async def send_str(self, text: str) -> None: ...

    async def close(self, *, code: int, message: bytes) -> None: ...


def _texts(sock: sockets.LiveSocket) -> list[str]:
    out = []
    while not sock.queue.empty():
        out.append(sock.queue.get_nowait())
    return out


def test_a_desk_hears_its_own_steps_and_colleagues_only_when_they_become_free_or_busy() -> None:
    live = sockets.LiveSockets(per_user=4)
    me = access.User("a1", access.AGENT, agent_id="1001")
    desk = live.add(_Socket(), me, Credential(1, "session", "d1"), view=sockets.DESK)     # type: ignore[arg-type]
    board = live.add(_Socket(), access.User("sup", access.SUPERVISOR), Credential(2, "session", "w1"))  # type: ignore[arg-type]
    for state in ("available", "ringing", "on_call", "wrap_up", "available"):
        live.publish({"kind": "agent", "id": "1002", "data": {"state": state}})
    live.publish({"kind": "agent", "id": "1001", "data": {"state": "on_call"}})
    live.publish({"kind": "call", "id": "c1", "data": {"state": "waiting", "caller": "13900000001"}})
    live.publish({"kind": "queue", "id": "leak", "data": {"waiting": 1}})
    live.publish({"kind": "screen_pop", "id": "1001", "data": {"caller": "13900000001"}})
    live.publish({"kind": "screen_pop", "id": "1002", "data": {"caller": "13900000002"}})
    heard = [(c["kind"], c["id"], (c["data"] or {}).get("state")) for c in map(json.loads, _texts(desk))]
    assert heard == [("agent", "1002", "available"), ("agent", "1002", "ringing"), ("agent", "1002", "available"),
                     ("agent", "1001", "on_call"), ("screen_pop", "1001", None)]
    assert len(_texts(board)) == 10          # the wallboard hears everything


def test_a_wallboard_screen_gets_no_screen_pop_and_no_callers_number() -> None:
    live = sockets.LiveSockets(per_user=4)
    screen = live.add(_Socket(), access.User("kiosk-floor-1", access.KIOSK), Credential(3, "token", "k1"))  # type: ignore[arg-type]
    agent = live.add(_Socket(), access.User("a2", access.AGENT, agent_id="1002"), Credential(4, "session", "a2"))  # type: ignore[arg-type]
    live.publish({"kind": "call", "id": "c1", "data": {"state": "waiting", "caller": "13900000001", "agent_id": "1001"}})
    live.publish({"kind": "screen_pop", "id": "1001", "data": {"caller": "13900000001"}})
    [text] = _texts(screen)
    assert "13900000001" not in text and json.loads(text)["data"]["state"] == "waiting"
    assert _texts(agent) == [text]           # the same view is written once, for both
    snapshot = sockets.snapshot_for({"calls": {"c1": {"caller": "13900000001"}},
                                     "screen_pops": {"1001": {"caller": "13900000001"}}},
                                    access.User("kiosk-floor-1", access.KIOSK))
    assert "13900000001" not in json.dumps(snapshot)
