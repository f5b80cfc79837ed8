"""Headless Chromium for the page tests: Debian's `chromium`, driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# Chromium on a closed network: no background connections, no first-run work, no GPU.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium; `make test` installs it and sets CREDITGUARD_REQUIRE_BROWSER=1, so the
    browser tests fail there rather than skip when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CREDITGUARD_REQUIRE_BROWSER") == "1":
            raise RuntimeError("chromium is not installed (make browser installs Debian's)")
        pytest.skip("chromium is not installed: browser tests skipped (make browser)")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
