"""The fault battery: the hotline on the real Asterisk, hurt on purpose.

Its fixtures are the real-Asterisk ones of tests/real_hotline.py (rig, sipp, hotline,
web_hotline), which tests/conftest.py registers for the whole suite, so one Asterisk serves
tests/e2e and tests/faults in one run. The helpers are re-exported here for the battery.
"""
from tests.real_hotline import (  # noqa: F401
    AGENTS,
    SHORT_MENU,
    SOFTPHONE_PASSWORD,
    AmiProxy,
    Hotline,
    free_port,
    rig_overrides,
    wait_until,
)
