"""Every `callcenter <command>` the README names is a command of the CLI (a newcomer copies them)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter import cli

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = sorted(set(re.findall(r"callcenter ([a-z][a-z-]+)", README.read_text())))


def test_the_readme_names_commands() -> None:
    assert {"run", "serve", "worker", "agent", "call", "report"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_of_the_readme_exists(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0, capsys.readouterr().err
    assert "usage" in capsys.readouterr().out.lower()
