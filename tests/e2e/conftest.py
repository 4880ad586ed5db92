"""The real-Asterisk fixtures live in tests/real_hotline.py (registered once, by tests/conftest.py,
for tests/e2e and tests/faults alike); the helpers are re-exported here for the e2e tests."""
from tests.real_hotline import (  # noqa: F401
    AGENTS,
    PROMPT_CACHE,
    SHORT_MENU,
    SOFTPHONE_PASSWORD,
    WEB_USERS,
    AmiProxy,
    Hotline,
    WebHotline,
    WebUser,
    free_port,
    passed,
    rig_overrides,
    wait_until,
)
