"""`edge-albert serve` in process: every endpoint and error status through Starlette's TestClient."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from edge_albert import ServeError, load_model
from edge_albert.cli import main
from edge_albert.predict import predict_batch
from edge_albert.serve import ServeConfig, create_app
from edge_albert.serve.batching import MicroBatcher
from edge_albert.serve.metrics import ServerMetrics
from edge_albert.serve.protocol import run_batch
from edge_albert.serve.server import check_exposure, is_loopback, load_models, model_name, read_token
from tests.runtime_bundles import bundle_for

WAIT_S = 60.0  # bound on every wait for a background request: never reached unless the server hangs
TEXTS = ["a gorgeous, witty, seductive movie", "", "dull", "naïve café 😀 " * 3, "a very long line " * 30,
         "the plot is thin but the acting is superb", "no", "it is what it is"]


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-bundles")


@pytest.fixture(scope="module")
def classifier_bundle(bundle_root) -> Path:
    return bundle_for(bundle_root, "text-classification")


@pytest.fixture()
def classifier(classifier_bundle):
    return load_model(classifier_bundle, num_threads=1)


def client_for(models: dict, **config) -> TestClient:
    return TestClient(create_app(models, ServeConfig(**config)))


def predict_url(name: str) -> str:
    return f"/v1/models/{name}/predict"


def test_health_models_manifest_and_openapi(classifier):
    with client_for({"cls": classifier}) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "models": ["cls"]}
        models = client.get("/v1/models").json()["models"]
        assert models == [{"name": "cls", "task": "text-classification", "labels": ["negative", "positive"],
                           "max_seq_len": classifier.max_seq_len, "quantization": "fp32",
                           "predict": "/v1/models/cls/predict"}]
        assert client.get("/v1/models/cls").json() == classifier.bundle.manifest
        schema = client.get("/openapi.json").json()
        assert schema["openapi"].startswith("3.")
        routes = {route.path for route in client.app.app.routes}
        assert set(schema["paths"]) == routes
        assert schema["paths"]["/v1/models/{name}"]["get"]["parameters"][0]["schema"]["enum"] == ["cls"]


def test_predict_one_text_and_batches_match_the_library(classifier):
    expected = [p.to_dict() for p in classifier.predict(TEXTS)]
    with client_for({"cls": classifier}) as client:
        one = client.post(predict_url("cls"), json={"text": TEXTS[0]})
        assert one.status_code == 200
        body = one.json()
        assert body["model"] == "cls" and body["result"] == expected[0] and body["latency_ms"] >= 0
        batch = client.post(predict_url("cls"), json={"texts": TEXTS}).json()
        assert batch["results"] == expected
        records = client.post(predict_url("cls"), json={"records": [{"text": t, "id": i} for i, t in enumerate(TEXTS)]})
        assert records.json()["results"] == [{"id": i, **e} for i, e in enumerate(expected)]
        top1 = client.post(predict_url("cls"), json={"text": TEXTS[0], "top_k": 1}).json()["result"]
        assert list(top1["scores"]) == [expected[0]["label"]]
        pair = client.post(predict_url("cls"), json={"records": [{"text": "a", "text_pair": "b"}, {"text": "a"}]})
        assert pair.json()["results"] == [classifier.predict(["a"], ["b"])[0].to_dict(), classifier.predict("a")[0].to_dict()]
        assert client.post(predict_url("cls"), json={"texts": []}).json()["results"] == []


@pytest.mark.parametrize("task", ["question-answering", "token-classification", "feature-extraction"])
def test_predict_every_task(bundle_root, task):
    model = load_model(bundle_for(bundle_root, task), num_threads=1)
    with client_for({"m": model}) as client:
        if task == "question-answering":
            question, context = "who went home?", "Bob went home after the long meeting."
            response = client.post(predict_url("m"), json={"question": question, "context": context})
            assert response.json()["result"] == model.predict(question, context)[0].to_dict()
            batch = client.post(predict_url("m"), json={"records": [{"question": question, "context": context}] * 2})
            assert len(batch.json()["results"]) == 2
            assert client.get("/readyz").status_code == 200
        else:
            response = client.post(predict_url("m"), json={"texts": TEXTS[:3]})
            expected = [json.loads(json.dumps(r.to_dict())) for r in model.predict(TEXTS[:3])]
            assert response.json()["results"] == expected


def cli_error(bundle: Path, line: str) -> str:
    result = CliRunner().invoke(main, ["predict", str(bundle), "--jsonl"], input=line + "\n")
    assert result.exit_code == 1
    return result.stderr.strip().removeprefix("error: ")


@pytest.mark.parametrize("record", [{"txt": "a"}, {"text": 5}, {"text": "a", "text_pair": None},
                                    {"question": "q"}, ["a list"]])
def test_bad_records_get_400_with_the_cli_message(classifier, classifier_bundle, record):
    expected = cli_error(classifier_bundle, json.dumps(record))
    with client_for({"cls": classifier}) as client:
        batch = client.post(predict_url("cls"), json={"records": [{"text": "fine"}, record]})
        assert batch.status_code == 400
        assert batch.json()["error"] == expected.replace("input line 1", "record 2")
        if isinstance(record, dict):
            single = client.post(predict_url("cls"), json=record)
            assert single.status_code == 400
            assert single.json()["error"] == expected.replace("input line 1", "request body")


def test_task_mismatch_and_malformed_bodies_get_400(bundle_root, classifier):
    qa = load_model(bundle_for(bundle_root, "question-answering"), num_threads=1)
    expected = cli_error(bundle_for(bundle_root, "question-answering"), '{"text": "a"}')
    with client_for({"cls": classifier, "qa": qa}) as client:
        assert client.post(predict_url("qa"), json={"text": "a"}).json()["error"] == expected
        cases = {b"{oops": "request body is not valid JSON", b"[1]": "request body is a JSON list",
                 b'{"texts": "a"}': "field 'texts' must be a list", b'{"texts": [1]}': "record 1: field 'text'",
                 b'{"records": {}}': "field 'records' must be a list", b'{"text": "a", "top_k": 0}': "top_k",
                 b'{"texts": [], "records": []}': "not both", b'{"text": "\xc3\x28"}': "not valid JSON (not UTF-8)",
                 b"[" * 100000: "request body nests JSON too deeply",  # was a RecursionError: 500
                 b'{"text": "a", "id": ' + b"1" * 5000 + b"}": "request body has a number too long to read"}
        for body, message in cases.items():
            response = client.post(predict_url("cls"), content=body)
            assert response.status_code == 400 and message in response.json()["error"], body


def test_limits_get_413(classifier):
    with client_for({"cls": classifier}, max_texts=3, max_body_bytes=200) as client:
        too_many = client.post(predict_url("cls"), json={"texts": ["a"] * 4})
        assert too_many.status_code == 413 and "4 records" in too_many.json()["error"]
        too_big = client.post(predict_url("cls"), json={"text": "x" * 300})
        assert too_big.status_code == 413 and "--max-body-bytes" in too_big.json()["error"]

        def chunks():  # no Content-Length: the limit applies to the bytes as they stream in
            for _ in range(10):
                yield b" " * 50

        streamed = client.post(predict_url("cls"), content=chunks())
        assert streamed.status_code == 413
        assert client.post(predict_url("cls"), json={"texts": ["a"] * 3}).status_code == 200


def test_unknown_routes_models_and_methods(classifier):
    with client_for({"cls": classifier}) as client:
        route = client.get("/v2/nothing")
        assert route.status_code == 404 and route.json() == {"error": "no route GET /v2/nothing; see /openapi.json"}
        model = client.post(predict_url("nope"), json={"text": "a"})
        assert model.status_code == 404 and "no model named 'nope'; this server has cls" == model.json()["error"]
        assert client.get("/v1/models/nope").status_code == 404
        method = client.get(predict_url("cls"))
        assert method.status_code == 405 and "GET is not allowed" in method.json()["error"]


def test_bearer_token(classifier):
    with client_for({"cls": classifier}, token="s3cret-token") as client:
        assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            refused = client.post(predict_url("cls"), json={"text": "a"}, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert client.get("/metrics", headers=headers).status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert client.post(predict_url("cls"), json={"text": "a"}, headers=good).status_code == 200
        assert client.get("/readyz", headers=good).status_code == 200
        assert client.get("/openapi.json", headers=good).json()["paths"]["/readyz"]["get"]["security"] == [{"bearer": []}]


class Blocker:
    """Wraps a model's predict so that a test decides when the model call may return."""

    def __init__(self, monkeypatch, model):
        self.entered = threading.Event()
        self.release = threading.Event()
        original = model.predict

        def blocked(*args, **kwargs):
            self.entered.set()
            assert self.release.wait(WAIT_S)
            return original(*args, **kwargs)

        monkeypatch.setattr(model, "predict", blocked)


def post_in_thread(client, url, body, results, key):
    thread = threading.Thread(target=lambda: results.__setitem__(key, client.post(url, json=body)), daemon=True)
    thread.start()
    return thread


def test_full_queue_gets_503_with_retry_after_and_recovers(monkeypatch, classifier):
    blocker = Blocker(monkeypatch, classifier)
    results = {}
    with client_for({"cls": classifier}, max_queue=1, max_wait_ms=0) as client:
        running = post_in_thread(client, predict_url("cls"), {"text": "first"}, results, "running")
        assert blocker.entered.wait(WAIT_S)
        queued = post_in_thread(client, predict_url("cls"), {"text": "second"}, results, "queued")
        metrics_text = ""
        for _ in range(2000):  # wait (bounded) until the second request sits in the queue
            metrics_text = client.get("/metrics").text
            if "edge_albert_queue_depth{model=\"cls\"} 1.0" in metrics_text:
                break
        assert "edge_albert_queue_depth{model=\"cls\"} 1.0" in metrics_text
        refused = client.post(predict_url("cls"), json={"text": "third"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"]
        assert client.get("/readyz").status_code == 503  # a full queue is not ready
        blocker.release.set()
        running.join(WAIT_S)
        queued.join(WAIT_S)
        assert results["running"].status_code == 200 and results["queued"].status_code == 200
        assert client.post(predict_url("cls"), json={"text": "after"}).status_code == 200
        assert 'edge_albert_errors_total{kind="overloaded"} 2.0' in client.get("/metrics").text


def test_slow_request_gets_504(monkeypatch, classifier):
    blocker = Blocker(monkeypatch, classifier)
    with client_for({"cls": classifier}, timeout_s=0.2) as client:
        try:
            response = client.post(predict_url("cls"), json={"text": "slow"})
        finally:
            blocker.release.set()
        assert response.status_code == 504 and "no result within 0.2 s (--timeout)" == response.json()["error"]


@pytest.mark.parametrize("quantize", ["fp32", "dynamic-int8"])
def test_micro_batches_give_the_results_of_one_at_a_time(bundle_root, quantize):
    """Twenty requests submitted together run in few model calls; each result equals a lone run.

    dynamic-int8 too: its activations are quantized per row, so batch-mates cannot change a result.
    """
    classifier = load_model(bundle_for(bundle_root, "text-classification", quantize=quantize), num_threads=1)
    records = [{"text": text} for text in TEXTS] + [{"text": f"review number {i} " * (i % 5)} for i in range(12)]
    alone = [predict_batch(classifier, [record], echo_inputs=False)[0] for record in records]
    metrics = ServerMetrics()

    async def together():
        batcher = MicroBatcher("cls", lambda batch: run_batch(classifier, batch), metrics,
                               max_batch_size=64, max_wait_s=0.5, max_queue=64)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit([record], WAIT_S) for record in records))
        finally:
            await batcher.stop()

    batched = [results[0] for results in asyncio.run(together())]
    assert batched == alone
    calls = metrics.registry.get_sample_value("edge_albert_batch_size_count", {"model": "cls"})
    records_run = metrics.registry.get_sample_value("edge_albert_batch_size_sum", {"model": "cls"})
    assert records_run == len(records) and calls < len(records) / 2


def test_batcher_splits_at_max_batch_size_and_keeps_order(classifier):
    records = [{"text": f"text {i}"} for i in range(10)]
    metrics = ServerMetrics()

    async def run():
        batcher = MicroBatcher("cls", lambda batch: run_batch(classifier, batch), metrics,
                               max_batch_size=4, max_wait_s=0.2, max_queue=64)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(records[i:i + 2], WAIT_S) for i in range(0, 10, 2)))
        finally:
            await batcher.stop()

    results = [r for pair in asyncio.run(run()) for r in pair]
    assert results == [predict_batch(classifier, [record], echo_inputs=False)[0] for record in records]
    sizes = metrics.registry.get_sample_value("edge_albert_batch_size_bucket", {"model": "cls", "le": "4.0"})
    assert sizes == metrics.registry.get_sample_value("edge_albert_batch_size_count", {"model": "cls"})


def test_metrics_count_requests_errors_latency_and_batches(classifier):
    with client_for({"cls": classifier}) as client:
        client.post(predict_url("cls"), json={"texts": ["a", "b", "c"]})
        client.post(predict_url("cls"), content=b"{bad")
        client.get("/nowhere")
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in ['edge_albert_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"} 1.0',
                 'edge_albert_requests_total{method="POST",route="/v1/models/{name}/predict",status="400"} 1.0',
                 'edge_albert_requests_total{method="GET",route="unmatched",status="404"} 1.0',
                 'edge_albert_errors_total{kind="bad_request"} 1.0', 'edge_albert_errors_total{kind="not_found"} 1.0',
                 'edge_albert_batch_size_sum{model="cls"} 3.0', 'edge_albert_queue_depth{model="cls"} 0.0',
                 'edge_albert_request_seconds_count{route="/v1/models/{name}/predict"} 2.0',
                 "edge_albert_requests_in_flight 1.0"]:
        assert line in text, line


def test_request_texts_are_never_logged(classifier, caplog, capfd):
    secret = "my-private-diary-entry-31337"
    with caplog.at_level(logging.DEBUG):
        with client_for({"cls": classifier}) as client:
            client.post(predict_url("cls"), json={"text": secret})
            client.post(predict_url("cls"), json={"records": [{"text": secret, "bad": 1}, {"text": 7}]})
            client.post(predict_url("nope"), json={"text": secret})
            response = client.post(predict_url("cls"), json={"text": secret})
    assert secret not in response.text  # results carry no copy of the input text
    captured = capfd.readouterr()
    assert secret not in caplog.text and secret not in captured.out and secret not in captured.err


def test_page_is_self_contained(classifier):
    with client_for({"cls": classifier}) as client:
        page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" in page.text and "/v1/models" in page.text
    for external in ("http://", "https://", "src=", "<link"):
        assert external not in page.text


def test_exposure_rules(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.lan")
    assert check_exposure("127.0.0.1", None, False) is None
    assert check_exposure("0.0.0.0", "token", False) is None
    with pytest.raises(ServeError, match="give token_file FILE, or allow_unauthenticated"):
        check_exposure("0.0.0.0", None, False)
    assert "WITHOUT authentication" in check_exposure("0.0.0.0", None, True)
    token_file = tmp_path / "token"
    token_file.write_text("  abc123\n")
    assert read_token(str(token_file)) == "abc123"
    token_file.write_text("two words")
    with pytest.raises(ServeError, match="one token"):
        read_token(str(token_file))
    with pytest.raises(ServeError, match="cannot read"):
        read_token(str(tmp_path / "missing"))


def test_model_names_and_cli_errors(classifier_bundle, tmp_path):
    assert model_name("out/sst2.edgealbert/") == "sst2" and model_name("models/plain") == "plain"
    with pytest.raises(ServeError, match="two bundles are named"):
        load_models([str(classifier_bundle), str(classifier_bundle)])
    runner = CliRunner()
    missing = runner.invoke(main, ["serve", str(tmp_path / "missing.edgealbert")])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and "Traceback" not in missing.output
    exposed = runner.invoke(main, ["serve", str(classifier_bundle), "--host", "0.0.0.0"])
    assert exposed.exit_code == 1 and "--token-file" in exposed.stderr
    assert exposed.stderr.strip() == ("error: --host 0.0.0.0 lets other machines call the models; give --token-file "
                                      "FILE, or --insecure-no-token to serve without authentication")


@pytest.mark.parametrize("flag, value, message", [
    ("--timeout", "nan", "--timeout must be a number > 0, not nan"),
    ("--timeout", "inf", "--timeout must be a number > 0, not inf"),
    ("--max-wait-ms", "inf", "--max-wait-ms must be a number >= 0, not inf"),
    ("--max-wait-ms", "nan", "--max-wait-ms must be a number >= 0, not nan"),
    ("--max-wait-ms", "10000", "--max-wait-ms 10000 must be below --timeout (10 s)"),
])
def test_serve_settings_are_refused_before_serving(classifier_bundle, flag, value, message):
    result = CliRunner().invoke(main, ["serve", str(classifier_bundle), "--port", "0", flag, value])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith(f"error: {message}") and "serving on" not in result.output, result.output
    with pytest.raises(ValueError, match="timeout must be a number > 0"):  # Python callers: the same check
        create_app({}, ServeConfig(timeout_s=float("nan")))


def test_server_imports_no_heavy_library(classifier_bundle):
    """The server runs on the device install: loading it and a model pulls in no TensorFlow, PyTorch or transformers."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        from starlette.testclient import TestClient
        from edge_albert.serve import ServeConfig, create_app
        from edge_albert.serve.server import load_models
        with TestClient(create_app(load_models([{str(classifier_bundle)!r}]), ServeConfig())) as client:
            assert client.post("/v1/models/text-classification-fp32-loop/predict", json={{"text": "hi"}}).status_code == 200
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "torch", "transformers", "keras")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=str(Path(__file__).resolve().parents[1]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY []" in result.stdout, result.stdout


def test_trusted_key_applies_to_served_bundles(classifier_bundle, tmp_path):
    """serve --trusted-key (and serve-ray's) refuses unsigned or foreign bundles before listening."""
    import shutil

    from edge_albert.errors import BundleError
    from edge_albert.bundle import sign_bundle
    from edge_albert.signing import generate_key_pair

    good, good_public = generate_key_pair(tmp_path / "good")
    _, other_public = generate_key_pair(tmp_path / "other")
    signed = tmp_path / "signed.edgealbert"
    shutil.copytree(classifier_bundle, signed)
    sign_bundle(signed, good)
    assert set(load_models([str(signed)], trusted_key=str(good_public))) == {"signed"}
    with pytest.raises(BundleError, match="not signed"):
        load_models([str(classifier_bundle)], trusted_key=str(good_public))
    runner = CliRunner()
    for command in ("serve", "serve-ray"):
        refused = runner.invoke(main, [command, str(signed), "--trusted-key", str(other_public), "--port", "1"])
        assert refused.exit_code == 1, (command, refused.output)
        assert refused.stderr.startswith("error: ") and "signed by key" in refused.stderr, (command, refused.stderr)
        assert "Traceback" not in refused.output
