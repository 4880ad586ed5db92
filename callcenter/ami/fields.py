"""Checking every field that goes into an AMI action, and cleaning caller ids for storage.

AMI is a line protocol: a CR or LF inside a value ends the header and starts a new one, so
a caller id such as ``"1001\\r\\nAction: Originate"`` would inject an action. `check_action`
refuses such values (and NUL, other control characters, over-long values) with
`UnsafeField`, naming the field; nothing is silently altered on the way out.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from callcenter.ami.errors import UnsafeField

DEFAULT_MAX_LENGTH = 1024
CALLER_NUMBER_MAX = 32
CALLER_NAME_MAX = 64

_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_()-]{0,63}")
# C0 controls and DEL; TAB is allowed inside a value (Asterisk passes it through harmlessly).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAMES_OF = {"\r": "CR", "\n": "LF", "\x00": "NUL"}
# Values Asterisk uses for "no caller id".
_NO_CALLER_ID = frozenset({"", "<unknown>", "unknown", "anonymous", "<null>", "(null)"})

ActionValue = str | int | Sequence[str]


def check_value(field: str, value: object, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """One header value as it will be written, or `UnsafeField` saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UnsafeField(field, f"value must be text or a whole number, not {type(value).__name__}")
    text = str(value)
    if len(text) > max_length:
        raise UnsafeField(field, f"value is {len(text)} characters long, the limit is {max_length}")
    bad = _FORBIDDEN.search(text)
    if bad:
        char = bad.group()
        name = _NAMES_OF.get(char, f"control character U+{ord(char):04X}")
        raise UnsafeField(field, f"value contains {name} at position {bad.start()}")
    return text


def check_action(
    action: Mapping[str, ActionValue], max_length: int = DEFAULT_MAX_LENGTH
) -> dict[str, str | list[str]]:
    """Every key and value of an action checked; the action as it will be sent.

    A list value (e.g. several ``Variable`` headers of an Originate) is checked item by item.
    """
    if not any(key.lower() == "action" for key in action):
        raise UnsafeField("Action", "every AMI action needs an Action header")
    checked: dict[str, str | list[str]] = {}
    for key, value in action.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise UnsafeField(str(key), "not a valid AMI header name (letters, digits, _-() only)")
        if isinstance(value, list | tuple):
            checked[key] = [check_value(f"{key}[{i}]", item, max_length) for i, item in enumerate(value)]
        else:
            checked[key] = check_value(key, value, max_length)
    return checked


def _without_controls(raw: str, instead: str = "") -> str:
    return "".join(instead if unicodedata.category(ch).startswith("C") else ch for ch in raw)


def clean_caller_number(raw: str) -> str:
    """A caller number fit to store: full-width digits made ASCII, only 0-9 + * # kept, ≤ 32.

    A leading ``+`` is kept; ``+`` elsewhere is dropped. "No caller id" values become "".
    """
    text = unicodedata.normalize("NFKC", _without_controls(raw or "")).strip()
    if text.lower() in _NO_CALLER_ID:
        return ""
    kept = [ch for ch in text if ch in "0123456789*#"]
    prefix = "+" if text.startswith("+") else ""
    return (prefix + "".join(kept))[:CALLER_NUMBER_MAX]


def clean_caller_name(raw: str, max_length: int = CALLER_NAME_MAX) -> str:
    """A caller name fit to store and show: no control characters, no quotes or angle
    brackets, whitespace collapsed, clipped to `max_length`. "No caller id" values become "".
    """
    text = _without_controls(raw or "", instead=" ")
    text = "".join(ch for ch in text if ch not in '"<>\\')
    text = " ".join(text.split())
    if text.lower() in _NO_CALLER_ID or text.lower() in {"unknown", "anonymous"}:
        return ""
    return text[:max_length]
