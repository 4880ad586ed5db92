"""Which numbers the hotline texts: those the dial policy (callcenter/calls/dial_policy.py)
allows that are mobiles (a text message to a fixed line goes nowhere).

`textable(policy)` gives the check the SMS service uses (`check_number` in
callcenter/sms/service.py): the number normalised (``+8613800000000`` -> ``13800000000``), or
`NumberRefused` (a ValueError) saying why not. `number_ok` is that check on the default policy.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from callcenter.calls.dial_policy import DialPolicy, NumberRefused

__all__ = ["NumberRefused", "number_ok", "textable"]

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def textable(policy: DialPolicy) -> Callable[[str], str]:
    def check(number: str) -> str:
        national = policy.check(number)
        if not _MOBILE.match(national):
            raise NumberRefused(number, "is not a mobile number (text messages go to mobiles)")
        return national

    return check


number_ok = textable(DialPolicy())
