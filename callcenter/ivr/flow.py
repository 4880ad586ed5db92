"""The IVR stepper: one per call, pure. The engine plays what it says and feeds back what happened.

Theory of operation
-------------------
`start()` returns the first action. After a `PlayAndCollect` the engine calls
`on_digit(key or None)` (None: nothing pressed before the timeout); after a `PlayMessage`
it calls `on_played()`. Each returns the next action, until `RouteToQueue` or `Hangup`.
Feeding an input the current step does not expect raises `IllegalInput` and changes nothing.

Rules
-----
- The start menu's first prompt carries the welcome, so a caller who knows the menu can
  press a key while the welcome plays.
- A key that is not on the menu plays the "invalid" prompt, silence plays "no input"; then
  the menu again. After `retries` such tries the menu's `default` is taken (the water
  hotline: the general queue), or the caller hears goodbye when there is none.
- `back` returns to the menu the caller came from.
- With an outage notice, the notice plays first; key 1 leaves (the notice was what the
  caller needed), anything else or silence goes on to the menu.
- `path` records every step ("main", "main:2", "main:invalid:9", "main:timeout",
  "notice:left"), `choice` the keys that chose the queue ("2", "4-3") or "default".
"""
from __future__ import annotations

from dataclasses import dataclass

from callcenter.ivr.model import KEYS, Choice, Menu

NOTICE_LEAVE_KEY = "1"
NOTICE_WAIT_S = 2.0


class IllegalInput(Exception):
    pass


@dataclass(frozen=True)
class PlayAndCollect:
    prompt: str
    timeout_s: float
    accept: str


@dataclass(frozen=True)
class PlayMessage:
    prompt: str


@dataclass(frozen=True)
class RouteToQueue:
    queue: str
    category: str | None
    choice: str


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = PlayAndCollect | PlayMessage | RouteToQueue | Hangup


@dataclass(frozen=True)
class Notice:
    """An outage notice the caller hears before the menu (its audio: prompt id)."""

    prompt: str
    notice_id: str = ""


class IvrFlow:
    def __init__(self, menu: Menu, notice: Notice | None = None) -> None:
        self.menu = menu
        self.notice = notice
        self.path: list[str] = []
        self.choice: str | None = None
        self._current = menu.start
        self._stack: list[str] = []
        self._keys: list[str] = []
        self._tries = 0
        self._expect = "start"   # start | notice | digit | replay | message_menu | message_hangup | goodbye | done

    # ------------------------------------------------------------------ the way in

    def start(self) -> Action:
        self._require("start")
        if self.notice is not None:
            self.path.append("notice")
            self._expect = "notice"
            return PlayAndCollect(self.notice.prompt, NOTICE_WAIT_S, NOTICE_LEAVE_KEY)
        return self._enter(self.menu.start, first=True)

    def on_digit(self, digit: str | None) -> Action:
        if digit is not None and (len(digit) != 1 or digit not in KEYS):
            raise IllegalInput(f"not a keypad key: {digit!r}")
        if self._expect == "notice":
            if digit == NOTICE_LEAVE_KEY:
                self.path.append("notice:left")
                self._expect = "goodbye"   # a word of goodbye rather than a click
                return PlayMessage("goodbye")
            return self._enter(self.menu.start, first=True)
        self._require("digit")
        page = self.menu.menus[self._current]
        if digit is None:
            self.path.append(f"{self._current}:timeout")
            return self._retry("no_input")
        choice = page.choices.get(digit)
        if choice is None:
            self.path.append(f"{self._current}:invalid:{digit}")
            return self._retry("invalid")
        self.path.append(f"{self._current}:{digit}")
        self._keys.append(digit)
        return self._follow(choice)

    def on_played(self) -> Action:
        if self._expect == "replay":
            return self._prompt(first=False)
        if self._expect == "message_menu":
            return self._prompt(first=False)
        if self._expect in ("message_hangup", "goodbye"):
            self._expect = "done"
            return Hangup("menu message" if self.path else "goodbye")
        raise IllegalInput(f"no message was playing (expecting {self._expect})")

    # ------------------------------------------------------------------ steps

    def _require(self, expected: str) -> None:
        if self._expect != expected:
            raise IllegalInput(f"the IVR expects {self._expect}, not {expected}")

    def _prompt(self, first: bool) -> PlayAndCollect:
        page = self.menu.menus[self._current]
        prompt = f"menu_{self._current}_welcome" if first and page.welcome else f"menu_{self._current}"
        self._expect = "digit"
        return PlayAndCollect(prompt, page.timeout_s, "".join(page.choices))

    def _enter(self, name: str, first: bool = False) -> PlayAndCollect:
        self._current, self._tries = name, 0
        self.path.append(name)
        return self._prompt(first)

    def _retry(self, prompt: str) -> Action:
        page = self.menu.menus[self._current]
        self._tries += 1
        if self._tries > page.retries:
            if page.default is not None:
                self.path.append(f"{self._current}:default")
                self._keys = ["default"]
                return self._follow(page.default)
            self._expect = "goodbye"
            return PlayMessage("goodbye")
        self._expect = "replay"
        return PlayMessage(prompt)

    def _follow(self, choice: Choice) -> Action:
        if choice.queue is not None:
            self.choice = "-".join(self._keys)
            self._expect = "done"
            return RouteToQueue(choice.queue, choice.category, self.choice)
        if choice.menu is not None:
            self._stack.append(self._current)
            return self._enter(choice.menu)
        if choice.back:
            if self._keys:
                self._keys.pop()
            if self._keys:
                self._keys.pop()
            return self._enter(self._stack.pop() if self._stack else self._current)
        assert choice.message is not None
        self._expect = "message_menu" if choice.then == "menu" else "message_hangup"
        if self._keys and choice.then == "menu":
            self._keys.pop()
        return PlayMessage(choice.message)
