"""`edge-albert serve` as a real process over a socket on 127.0.0.1, and its SIGTERM drain."""

from __future__ import annotations

import signal
import socket
import threading

import httpx
import pytest

from edge_albert import load_model
from tests.runtime_bundles import bundle_for
from tests.serve_helpers import serve_process

WAIT_S = 60.0
SECRET = "a-text-that-must-stay-private-4242"


@pytest.fixture(scope="module")
def classifier_bundle(tmp_path_factory):
    return bundle_for(tmp_path_factory.mktemp("serve-process"), "text-classification")


def in_flight(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("edge_albert_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no in-flight gauge in /metrics")


def test_real_server_answers_over_a_socket(classifier_bundle):
    expected = load_model(classifier_bundle, num_threads=1).predict(["great film", "awful"])
    with serve_process([classifier_bundle], verbose=True) as server:
        with httpx.Client(base_url=server.base_url, timeout=WAIT_S) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").status_code == 200
            name = client.get("/v1/models").json()["models"][0]["name"]
            response = client.post(f"/v1/models/{name}/predict", json={"texts": ["great film", "awful"]})
            assert response.status_code == 200
            assert response.json()["results"] == [p.to_dict() for p in expected]
            assert client.post(f"/v1/models/{name}/predict", json={"text": SECRET}).status_code == 200
            assert client.get("/nothing").status_code == 404
        assert _status_of_huge_header(server.port) in (400, 431, None)  # refused or cut off, never a 200
        with httpx.Client(base_url=server.base_url, timeout=WAIT_S) as client:
            assert client.get("/healthz").status_code == 200  # and the server still serves
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=WAIT_S)
    output = server.output()
    assert "POST /v1/models/" in output  # --verbose turns on uvicorn's access log: path and status only
    assert SECRET not in output


def _status_of_huge_header(port: int, size: int = 16 << 20):
    """The status line's code for a request with a `size`-byte header; None when the server closed first."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * (1 << 16)
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server refused and closed while we were still sending
        try:
            head = sock.recv(64)
        except OSError:
            return None
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None


def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(classifier_bundle):
    # A long micro-batch wait keeps one request in flight while the signal arrives.
    with serve_process([classifier_bundle], "--max-wait-ms", "3000") as server:
        client = httpx.Client(base_url=server.base_url, timeout=WAIT_S)
        name = client.get("/v1/models").json()["models"][0]["name"]
        answers = {}
        request = threading.Thread(target=lambda: answers.setdefault(
            "slow", client.post(f"/v1/models/{name}/predict", json={"text": "still running"})), daemon=True)
        request.start()
        for _ in range(2000):  # bounded: until the server counts the predict as well as this /metrics call
            if in_flight(client) >= 2:
                break
        assert in_flight(client) >= 2
        server.process.send_signal(signal.SIGTERM)
        refused = False
        for _ in range(200):  # bounded: the listening socket closes as soon as the signal is handled
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            except ConnectionRefusedError:
                refused = True
                break
            threading.Event().wait(0.05)
        request.join(WAIT_S)
        assert refused, "the server still accepted connections after SIGTERM"
        assert "slow" in answers, "the in-flight request got no answer"
        assert answers["slow"].status_code == 200 and answers["slow"].json()["result"]["label"] in ("negative", "positive")
        assert server.process.wait(timeout=WAIT_S) in (0, -signal.SIGTERM)
        client.close()
