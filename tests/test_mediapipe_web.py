"""web/mediapipe in headless Debian Chromium: @mediapipe/tasks-text (npm, wasm served locally) on an
export-mediapipe model classifies like MediaPipe's Python TextClassifier and like the bundle.

Needs /usr/bin/chromium, /usr/bin/chromedriver and npm (scripts/ci_browser_deps.sh), web/mediapipe's
node_modules (`make web-deps`) and the MediaPipe venv (`make mediapipe-venv`): `make test` makes all four.
The model is examples/sst2-albert converted fp32, unrolled, at sequence length 64 (a real model, so the
labels are not all one class), exported once for the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from edge_albert.converters.convert import convert_checkpoint
from edge_albert.mediapipe_export import client
from edge_albert.mediapipe_export.export import CHECK_TEXTS, bundle_probabilities, export_mediapipe
from tests.mediapipe_web import WAIT_S, chromium, classify_all, open_page, page_server, resources
from tests.project_data import SST2_DEV
from tests.test_mediapipe_export import EXAMPLE_CHECKPOINT, mediapipe_python

SST2_SENTENCES = 60
TEXTS = [line.split("\t")[0] for line in SST2_DEV.read_text().splitlines()[1:SST2_SENTENCES + 1]] + list(CHECK_TEXTS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The example model's MediaPipe file, and MediaPipe Python's and the bundle's probabilities on TEXTS."""
    root = tmp_path_factory.mktemp("mediapipe-web")
    converted = convert_checkpoint(EXAMPLE_CHECKPOINT, root / "sst2.edgealbert", quantize="fp32", graph="unrolled",
                                   max_seq_len=64)
    assert converted.bundle is not None
    python = mediapipe_python()
    export = export_mediapipe(converted.bundle.path, root / "sst2.tflite", mediapipe_python=python)
    assert export.agrees and export.texts == len(CHECK_TEXTS)
    answer = client.run_worker(python, {"job": "classify", "model": str(export.out), "texts": TEXTS})
    return {"model": export.out, "labels": converted.bundle.labels,
            "python": np.asarray(answer["scores"], dtype=np.float64),
            "bundle": bundle_probabilities(converted.bundle.path, TEXTS)}


@pytest.mark.slow
def test_browser_classifies_like_mediapipe_python_and_the_bundle(exported, tmp_path):
    assert len(set(np.argmax(exported["bundle"], axis=1))) == 2, "a one-class model would not test the labels"
    with page_server(exported["model"]) as base_url, chromium(tmp_path / "profile") as driver:
        assert open_page(driver, base_url) == "model.tflite"
        results = classify_all(driver, TEXTS)
        browser = np.asarray([result["scores"] for result in results], dtype=np.float64)
        assert browser.shape == exported["python"].shape == (len(TEXTS), 2)
        assert results[0]["names"] == exported["labels"]
        for reference in ("python", "bundle"):
            differing = [text for text, a, b in zip(TEXTS, browser.argmax(1), exported[reference].argmax(1)) if a != b]
            assert differing == [], f"labels differ from {reference} on {len(differing)} texts: {differing[:3]}"
            assert np.max(np.abs(browser - exported[reference])) < 1e-3, reference
        assert all(result["ms"] > 0 for result in results)

        # the page as a person uses it: type, click, read the label and its bars
        text = TEXTS[0]
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        driver.find_element(By.ID, "run").click()
        label = WebDriverWait(driver, WAIT_S).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "#result .label")))
        assert label.text == exported["labels"][int(np.argmax(exported["python"][0]))]
        rows = driver.find_elements(By.CSS_SELECTOR, "#result .bar-row")
        assert [row.find_element(By.TAG_NAME, "span").text for row in rows][0] == label.text and len(rows) == 2
        assert "ms (in this browser)" in driver.find_element(By.ID, "result").text
        assert driver.save_screenshot(str(tmp_path / "mediapipe-page.png"))

        # nothing came from anywhere but the local server: bundle, wasm and model included
        fetched = resources(driver)
        assert any(url.endswith("/text_wasm_internal.wasm") or url.endswith("/text_wasm_nosimd_internal.wasm")
                   for url in fetched), fetched
        assert any(url.endswith("/model.tflite") for url in fetched), fetched
        assert {urlparse(url).netloc for url in fetched} == {urlparse(base_url).netloc}, fetched
        # and the page's policy refuses any other origin (the package's usage logging posts to one every minute)
        refused = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "document.addEventListener('securitypolicyviolation', (e) => done(e.effectiveDirective), {once: true});"
            "fetch('https://example.com/log', {method: 'POST'}).catch(() => {});")
        assert refused == "connect-src"

        # the file picker: the same model as a buffer (modelAssetBuffer) classifies the same
        driver.find_element(By.ID, "model-file").send_keys(str(exported["model"]))
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_element(By.ID, "status").text.startswith(f"{exported['model'].name} loaded"))
        picked = np.asarray([r["scores"] for r in classify_all(driver, TEXTS[:5])], dtype=np.float64)
        np.testing.assert_allclose(picked, browser[:5], atol=1e-6)


@pytest.mark.slow
def test_page_says_in_one_line_when_the_model_cannot_load(tmp_path):
    bad = tmp_path / "not-a-model.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with page_server(bad) as base_url, chromium(tmp_path / "profile") as driver:
        driver.get(base_url + "/?model=model.tflite")
        status = WebDriverWait(driver, WAIT_S).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "#status.error")))
        assert status.text.startswith("Cannot load model.tflite") and "\n" not in status.text
        assert not driver.find_element(By.ID, "run").is_enabled()


@pytest.mark.slow
def test_readme_python_lines_run_as_written(exported, tmp_path):
    """README's three MediaPipe Python lines, copied from it, in the MediaPipe venv, on the exported model."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = readme.split("Python (in the MediaPipe venv", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "create_from_model_path(\"out/sst2.tflite\")" in snippet and len(snippet.splitlines()) == 3
    (tmp_path / "out").mkdir()
    shutil.copyfile(exported["model"], tmp_path / "out" / "sst2.tflite")
    done = subprocess.run([mediapipe_python(), "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "category_name='positive'" in done.stdout.splitlines()[-1].split("),")[0]
