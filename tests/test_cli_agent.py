"""`callcenter agent login`: no endpoint unless one of the agent's own phones is named; the
engine checks it (tests/web/test_agent_actions.py)."""
from __future__ import annotations

from typing import Any

import pytest

from callcenter import cli


@pytest.mark.parametrize(("argv", "body"), [
    (["agent", "login", "1001"], {}),
    (["agent", "login", "1001", "--endpoint", "1101"], {"endpoint": "1101"}),
    (["agent", "pause", "1001", "--reason", "training"], {"reason": "training"}),
])
def test_agent_commands_send_only_what_was_asked(monkeypatch, argv: list[str], body: dict[str, str]) -> None:
    sent: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(cli, "_settings", lambda args: None)
    monkeypatch.setattr(cli, "api", lambda settings, method, path, data=None: sent.append((method, path, data)) or {})
    assert cli.main(argv) == 0
    assert sent == [("POST", f"/api/agents/1001/{argv[1]}", body)]
