"""The fault battery: the hotline on the real Asterisk, hurt on purpose.

Until the battery's own fixtures land, it uses the end-to-end ones (one Asterisk per session,
a fresh hotline per test, SIPp held to its verdict).
"""
from tests.e2e.conftest import (  # noqa: F401
    hotline,
    pytest_runtest_makereport,
    rig,
    sipp,
)
