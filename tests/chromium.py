"""Debian's headless Chromium driven by selenium through chromedriver: one set of flags and one driver
factory for the browser tests (tests/test_serve_browser.py, tests/mediapipe_web.py). Needs
/usr/bin/chromium and /usr/bin/chromedriver (scripts/ci_browser_deps.sh, run by `make test`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=900,760")


@contextlib.contextmanager
def headless_chromium(profile: Path, wait_s: float) -> Iterator[webdriver.Chrome]:
    """A driver with its own profile directory; page loads and async scripts time out after `wait_s`."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(wait_s)
    driver.set_script_timeout(wait_s)
    try:
        yield driver
    finally:
        driver.quit()
