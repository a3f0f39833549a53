"""The real browser the report tests drive: the system chromium through playwright."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    """Skip the test where no browser is installed, or fail where SGI_REQUIRE_BROWSER=1 (CI)."""
    if CHROMIUM.exists() and find_spec("playwright"):
        return
    message = "no /usr/bin/chromium or playwright (.ci/chromium installs chromium)"
    if os.environ.get("SGI_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def open_browser():
    """(playwright, browser): stop both when done."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    return playwright, playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
