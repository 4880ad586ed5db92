"""The IVR menu as data, and its loader.

A menu file (YAML) has menus of keypad choices and the prompts' text; prompt audio is
rendered from that text (ivr/prompts.py). A choice leads to a queue (with the call's
category), to another menu, back to the previous menu, or to a message.

A broken file is a `MenuError` that names the file and the line:
``menu.yaml:14: menus.main.choices.7: unknown queue 'leaks' (queues: general, leak, …)``.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_MENU_FILE = Path(__file__).with_name("menu.yaml")
KEYS = "0123456789*#"
PROMPT_ID = r"^[a-z][a-z0-9_]{0,63}$"


class MenuError(Exception):
    """The menu file is missing or wrong; the message names the file and line."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Model):
    """Where a key leads: exactly one of queue, menu, back, message."""

    label: str = ""
    queue: str | None = None
    category: str | None = None
    menu: str | None = None
    back: bool = False
    message: str | None = Field(default=None, pattern=PROMPT_ID)   # a prompt id from `messages`
    then: str = Field(default="hangup", pattern=r"^(hangup|menu)$")  # after a message

    @model_validator(mode="after")
    def _one_target(self) -> Choice:
        targets = [self.queue is not None, self.menu is not None, self.back, self.message is not None]
        if sum(targets) != 1:
            raise ValueError("a choice leads to exactly one of: queue, menu, back, message")
        if self.category is not None and self.queue is None:
            raise ValueError("category goes with queue")
        return self


class MenuPage(_Model):
    text: str = Field(min_length=1)
    welcome: str | None = None               # said once, before the text, on first entry
    timeout_s: float = Field(default=5, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=9)
    choices: dict[str, Choice]
    default: Choice | None = None            # after the retries: None = hang up politely

    @model_validator(mode="after")
    def _keys(self) -> MenuPage:
        for key in self.choices:
            if len(key) != 1 or key not in KEYS:
                raise ValueError(f"choice key {key!r} is not one keypad key (0-9 * #)")
        return self


class Menu(_Model):
    """The whole IVR: menus, the first menu, and the messages the engine plays."""

    start: str
    menus: dict[str, MenuPage]
    invalid: str = Field(min_length=1)       # text: the key is not on the menu
    no_input: str = Field(min_length=1)      # text: nothing was pressed
    goodbye: str = Field(min_length=1)
    messages: dict[str, str] = Field(default_factory=dict)   # prompt id -> text

    @model_validator(mode="after")
    def _references(self) -> Menu:
        if self.start not in self.menus:
            raise ValueError(f"start menu {self.start!r} is not among the menus")
        for name, menu in self.menus.items():
            for key, choice in list(menu.choices.items()) + ([("default", menu.default)] if menu.default else []):
                if choice.menu is not None and choice.menu not in self.menus:
                    raise ValueError(f"menus.{name}.choices.{key}: unknown menu {choice.menu!r}")
                if choice.message is not None and choice.message not in self.messages:
                    raise ValueError(f"menus.{name}.choices.{key}: unknown message {choice.message!r}")
        for prompt in self.messages:
            import re

            if not re.match(PROMPT_ID, prompt):
                raise ValueError(f"messages.{prompt}: a prompt id is lower-case letters, digits and _")
        return self

    def prompts(self) -> dict[str, str]:
        """Every prompt id this menu plays, with its text."""
        out = {"invalid": self.invalid, "no_input": self.no_input, "goodbye": self.goodbye, **self.messages}
        for name, menu in self.menus.items():
            out[f"menu_{name}"] = menu.text
            if menu.welcome:
                out[f"menu_{name}_welcome"] = f"{menu.welcome} {menu.text}"
        return out

    def queues(self) -> set[str]:
        return {c.queue for m in self.menus.values() for c in [*m.choices.values(), m.default] if c and c.queue}


# ---------------------------------------------------------------- loading with line numbers


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's key lines so validation errors can point at the file."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise MenuError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                            f"(first on line {seen[key]})")
        seen[key] = key_node.start_mark.line + 1
    mapping = {str(k) if isinstance(k, int) else k: v for k, v in loader.construct_mapping(node, deep=deep).items()}
    mapping["__lines__"] = {str(k): line for k, line in seen.items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in ("__lines__", "__line__")}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _line_of(data: Any, loc: Iterable[Any]) -> int | None:
    line = data.get("__line__") if isinstance(data, dict) else None
    node = data
    for part in loc:
        if isinstance(node, dict):
            line = node.get("__lines__", {}).get(str(part), line)
            node = node.get(part, node.get(str(part)))
        else:
            break
    return line


def parse_menu(text: str, source: str = "<menu>") -> Menu:
    try:
        # Keys like 1, 2 are read as text: keypad keys, not numbers.
        raw = yaml.load(text.replace("\t", "    "), Loader=_LineLoader)
    except MenuError as exc:
        raise MenuError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise MenuError(f"{source}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise MenuError(f"{source}: a menu file is a mapping with start, menus, invalid, no_input, goodbye")
    try:
        return Menu.model_validate(_strip(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after"))]
            line = _line_of(raw, loc)
            where = f"{source}:{line}" if line else source
            key = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{where}: {key}: {err['msg'].removeprefix('Value error, ')}")
        raise MenuError("\n".join(problems)) from None


def load_menu(path: str | Path | None = None, queue_names: Iterable[str] | None = None) -> Menu:
    """Read and check a menu file (the embedded one when `path` is empty)."""
    path = Path(path) if path else DEFAULT_MENU_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MenuError(f"{path}: IVR menu file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MenuError(f"{path}: cannot read the IVR menu file: {exc}") from None
    menu = parse_menu(text, str(path))
    if queue_names is not None:
        validate_against(menu, queue_names, str(path), text)
    return menu


def validate_against(menu: Menu, queue_names: Iterable[str], source: str = "<menu>", text: str = "") -> None:
    """Every queue the menu names must be one of the hotline's queues."""
    names = set(queue_names)
    unknown = sorted(menu.queues() - names)
    if unknown:
        lines = [n + 1 for n, line in enumerate(text.splitlines()) if any(f"queue: {q}" in line for q in unknown)]
        where = f"{source}:{lines[0]}" if lines else source
        raise MenuError(f"{where}: unknown queue(s) {', '.join(unknown)} (queues: {', '.join(sorted(names))})")
