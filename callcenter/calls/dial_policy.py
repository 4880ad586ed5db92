"""The dial policy: which numbers the hotline itself may dial out (callbacks, follow-up calls).

No number from a request or a caller id reaches the trunk unless `DialPolicy.check` accepted
it; the gateway then dials only the digits it returns (`AmiGateway.dial_number`). A refused
number raises `NumberRefused` (a ValueError) with the reason, and the caller of `check`
records the refusal (a callback attempt `callback_refused`, a follow-up `refused`).

The rules, in the order they are applied (default: mainland China numbers only):

1. Only digits, optionally after one leading ``+``; nothing else (no spaces, ``*``, ``#``,
   letters, control characters), at most 20 digits.
2. ``+86`` and ``0086`` are taken off: the rest is the national number (an area code gets
   its trunk ``0`` back: ``+862187654321`` is ``02187654321``). Any other ``+`` is
   written ``00`` (``+852...`` is ``00852...``), so prefixes below see one form.
3. The deployment's ``[dial_policy] refused_prefixes``: refused, always.
4. The deployment's ``[dial_policy] allowed_prefixes``: accepted, even when a rule below
   refuses them (e.g. ``95598``, a utility's service number, or ``00852`` for Hong Kong).
5. International (``00...``): refused.
6. Premium, voice-information and carrier prefixes (`PREMIUM_PREFIXES`): refused, on the
   national number and on the subscriber number after an area code. These are 160/168
   voice information, 1259x SP services, 179xx/12593/10193 IP-call prefixes, 95/96 short
   service numbers.
7. Accepted:
   - mobile: ``1[3-9]`` and 9 more digits (11 digits);
   - fixed line with area code: ``0`` + a 2-digit area code (``10``, ``2x``) + an 8-digit
     number, or ``0`` + a 3-digit area code (``3xx``-``9xx``) + a 7- or 8-digit number; the
     subscriber number never starts with 0 or 1;
   - local: 7 or 8 digits not starting with 0 or 1.
8. Anything else (emergency and other short numbers, 400/800 shared-cost and free-phone
   numbers, ...): refused.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_DIGITS = 20

PREMIUM_PREFIXES: tuple[str, ...] = (
    "160", "168",                          # voice information services (声讯台)
    "1259",                                # 1259x: SP value-added services
    "17900", "17901", "17908", "17909", "17910", "17911", "17930", "17931", "17950", "17951",
    "17960", "17961", "17968", "17969", "12593", "10193",   # IP-call carrier prefixes
    "95", "96",                            # short service numbers (unless allowed)
)

_SHAPE = re.compile(r"\+?[0-9]{1,20}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_FIXED_2 = re.compile(r"0(?:10|2[0-9])([2-9][0-9]{7})")
_FIXED_3 = re.compile(r"0[3-9][0-9]{2}([2-9][0-9]{6,7})")
_LOCAL = re.compile(r"[2-9][0-9]{6,7}")


class NumberRefused(ValueError):
    """The dial policy refuses `number`; `reason` says which rule."""

    def __init__(self, number: object, reason: str) -> None:
        self.number = number
        self.reason = reason
        super().__init__(f"number {str(number)[:40]!r}: {reason}")


def _normalised(number: object) -> str:
    if not isinstance(number, str) or not _SHAPE.fullmatch(number):
        raise NumberRefused(number, f"only digits (at most {MAX_DIGITS}), optionally after one leading +")
    for country in ("+86", "0086"):
        if number.startswith(country):
            rest = number[len(country):]
            # In the international form an area code loses its trunk 0: +86 21 ... is 021 ...
            return rest if not rest or rest.startswith(("0", "1")) else "0" + rest
    if number.startswith("+"):
        return "00" + number[1:]
    return number


def _first(number: str, prefixes: Iterable[str]) -> str | None:
    return next((p for p in prefixes if number.startswith(p)), None)


@dataclass(frozen=True)
class DialPolicy:
    allowed_prefixes: tuple[str, ...] = ()
    refused_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> DialPolicy:
        """From the `[dial_policy]` settings (config.DialPolicySettings)."""
        return cls(tuple(settings.allowed_prefixes), tuple(settings.refused_prefixes))

    def check(self, number: object) -> str:
        """The number to dial (normalised: ``+8613800000000`` -> ``13800000000``), or
        `NumberRefused` saying why not."""
        national = _normalised(number)
        if not national:
            raise NumberRefused(number, "no digits after the country code")
        if (prefix := _first(national, self.refused_prefixes)) is not None:
            raise NumberRefused(number, f"prefix {prefix} is refused by the settings (dial_policy.refused_prefixes)")
        if _first(national, self.allowed_prefixes) is not None:
            return national
        if national.startswith("00"):
            raise NumberRefused(number, "international numbers are not dialled")
        fixed = _FIXED_2.fullmatch(national) or _FIXED_3.fullmatch(national)
        for part in (national, fixed.group(1) if fixed else ""):
            if part and (prefix := _first(part, PREMIUM_PREFIXES)) is not None:
                raise NumberRefused(number, f"premium or service prefix {prefix} is not dialled")
        if _MOBILE.fullmatch(national) or fixed or _LOCAL.fullmatch(national):
            return national
        raise NumberRefused(number, "not a mainland China mobile, fixed-line (with area code) or local number")

    def allows(self, number: object) -> bool:
        try:
            self.check(number)
        except NumberRefused:
            return False
        return True
