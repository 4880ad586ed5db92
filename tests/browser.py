"""Debian's Chromium for the browser tests of every folder (tests/pages, and the pages against
the real hotline in tests/e2e), and the folder their screenshots go to. Registered once, by
tests/conftest.py."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"     # Debian's, never a downloaded one


@pytest.fixture(scope="session")
def shots(pytestconfig: pytest.Config) -> Path:
    """Where the browser tests save their screenshots."""
    folder = Path(pytestconfig.rootpath) / "var" / "test-results" / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def chromium_browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; audio may play without a click (the QA player's tests)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"])
        yield chromium
        await chromium.close()
