"""The MediaPipe web page (web/mediapipe) in headless Debian Chromium: a local static server and a driver.

Shared by tests/test_mediapipe_web.py and benchmarks/mediapipe_compare.py --browser. The server serves
web/mediapipe (the page, and node_modules from `make web-deps`) plus one model file at /model.tflite, on
127.0.0.1 only; the page loads everything from it (its Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, List, Sequence

from selenium import webdriver

from tests.chromium import headless_chromium

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "web" / "mediapipe"
PACKAGE = PAGE / "node_modules" / "@mediapipe" / "tasks-text"
WAIT_S = 120


class _Handler(SimpleHTTPRequestHandler):
    model: Path

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/model.tflite":
            return str(self.model)
        return super().translate_path(path)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def page_server(model: Path) -> Iterator[str]:
    """Serve web/mediapipe and `model` (at /model.tflite) on 127.0.0.1; yields the base URL."""
    assert (PACKAGE / "wasm" / "text_wasm_internal.wasm").is_file(), \
        f"{PACKAGE} is missing: run `make web-deps` (npm ci in web/mediapipe)"
    handler = type("Handler", (_Handler,), {"model": Path(model)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(PAGE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def chromium(profile: Path):
    """Headless Chromium for the page (tests/chromium.py), with this page's longer wait."""
    return headless_chromium(profile, WAIT_S)


def open_page(driver: webdriver.Chrome, base_url: str) -> str:
    """Load the page with ?model=model.tflite and wait for MediaPipe to load it; the page's model name."""
    driver.get(base_url + "/?model=model.tflite")
    answer = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.mediapipePage.ready.then((name) => done({name}), (e) => done({error: String(e && e.message || e)}));")
    assert "error" not in answer, f"the page could not load the model: {answer['error']}"
    return answer["name"]


def classify_all(driver: webdriver.Chrome, texts: Sequence[str], chunk: int = 100) -> List[dict]:
    """Each text's {scores (label order), names, ms} from the page's TextClassifier, one call per text."""
    results: List[dict] = []
    for start in range(0, len(texts), chunk):
        results += driver.execute_script("return window.mediapipePage.classifyAll(arguments[0]);",
                                         list(texts[start:start + chunk]))
    return results


def resources(driver: webdriver.Chrome) -> List[str]:
    """Every URL the page fetched (the page itself, scripts, wasm, model)."""
    return [driver.current_url] + driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name);")
