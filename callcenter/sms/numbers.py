"""Which numbers the hotline texts: a stand-in for the dial policy (callcenter/calls/dial_policy.py).

`number_ok(number) -> str` gives the number normalised or raises `NumberRefused` (a ValueError),
the same contract as `DialPolicy.check`; the service calls it through one name (`check_number`
in callcenter/sms/service.py), so the dial policy replaces it in one line once it is merged.
"""
from __future__ import annotations

import re

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


class NumberRefused(ValueError):
    def __init__(self, number: str, reason: str) -> None:
        super().__init__(f"number: {number!r} {reason}")
        self.number, self.reason = number, reason


def number_ok(number: str) -> str:
    """A mainland mobile number (SMS goes to mobiles), without +86 / 0086 / spaces."""
    cleaned = re.sub(r"[\s-]", "", number)
    for prefix in ("+86", "0086"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix):]
    if not _MOBILE.match(cleaned):
        raise NumberRefused(number, "is not a mobile number")
    return cleaned
