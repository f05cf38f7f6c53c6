"""The page at / in a real headless Chromium (Debian's, driven by selenium through chromedriver).

Needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/ci_browser_deps.sh, run by `make test`).
The screenshots go to the test's tmp dir; with EDGE_ALBERT_SCREENSHOT_DIR set they are copied there
too (that is how docs/serve-page.png was made).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.chromium import headless_chromium
from tests.runtime_bundles import bundle_for
from tests.serve_helpers import serve_process

WAIT_S = 60


@pytest.fixture()
def browser(tmp_path):
    with headless_chromium(tmp_path / "chromium-profile", WAIT_S) as driver:
        yield driver


def keep_screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 1000
    extra = os.environ.get("EDGE_ALBERT_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / name)
    return path


def test_page_shows_label_score_bars_latency_and_qa_answers(tmp_path_factory, tmp_path, browser):
    root = tmp_path_factory.mktemp("serve-browser")
    bundles = [bundle_for(root, "text-classification"), bundle_for(root, "question-answering")]
    with serve_process(bundles) as server:
        browser.get(server.base_url + "/")
        wait = WebDriverWait(browser, WAIT_S)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
        Select(browser.find_element(By.ID, "model")).select_by_visible_text("text-classification-fp32-loop")
        browser.find_element(By.ID, "text").send_keys("a gorgeous, witty, seductive movie")
        browser.find_element(By.ID, "run").click()
        label = wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "#result .label")))
        assert label.text in ("negative", "positive")
        rows = browser.find_elements(By.CSS_SELECTOR, "#result .bar-row")
        assert [row.find_element(By.TAG_NAME, "span").text for row in rows] == [label.text] + \
            [name for name in ("negative", "positive") if name != label.text]
        widths = [row.find_element(By.CSS_SELECTOR, ".bar > div").value_of_css_property("width") for row in rows]
        assert all(width.endswith("px") and float(width[:-2]) > 0 for width in widths)
        assert "ms (server)" in browser.find_element(By.ID, "result").text
        keep_screenshot(browser, tmp_path, "serve-page.png")

        Select(browser.find_element(By.ID, "model")).select_by_visible_text("question-answering-fp32-loop")
        assert browser.find_element(By.ID, "question").is_displayed()
        assert not browser.find_element(By.ID, "text").is_displayed()
        browser.find_element(By.ID, "question").send_keys("Who went home?")
        context = "Bob went home after the meeting."
        browser.find_element(By.ID, "context").send_keys(context)
        browser.find_element(By.ID, "run").click()
        marked = wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "#result mark")))
        answer = browser.find_element(By.CSS_SELECTOR, "#result .label").text
        assert marked.text == answer and answer in context
        keep_screenshot(browser, tmp_path, "serve-page-qa.png")
