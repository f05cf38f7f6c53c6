"""Ray Serve: two replicas of one bundle on a local Ray cluster, called over HTTP on 127.0.0.1."""

from __future__ import annotations

import socket

import httpx
import pytest
import ray  # the cluster extra; make test installs it

from edge_albert import load_model
from tests.runtime_bundles import bundle_for

MAX_REQUESTS = 60  # bounded: two replicas are expected to have answered well before this


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_the_serve_endpoints(client, base: str, name: str) -> None:
    """What `edge-albert serve` answers besides predict: page, health, readiness, metrics, models, errors."""
    assert "<html" in client.get(base + "/").text.lower()
    assert client.get(base + "/healthz").json() == {"status": "ok"}
    assert client.get(base + "/readyz").json() == {"status": "ready", "models": [name]}
    assert [model["name"] for model in client.get(base + "/v1/models").json()["models"]] == [name]
    assert name in client.get(base + "/openapi.json").json()["paths"]["/v1/models/{name}"]["get"]["parameters"][0]["schema"]["enum"]
    assert client.get(base + "/v1/models/nope").status_code == 404
    assert client.get(base + "/v1/models/" + name + "/predict").status_code == 405
    metrics = client.get(base + "/metrics").text
    assert 'edge_albert_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"}' in metrics


def test_each_replica_can_fill_a_batch():
    """Ray warns, and never batches fully, when a replica takes fewer requests at once than one batch."""
    from edge_albert.serve.cluster import BATCH_SIZE, BundleReplica, Gateway

    assert BundleReplica._deployment_config.max_ongoing_requests >= BATCH_SIZE
    assert Gateway._deployment_config.max_ongoing_requests >= 2 * BundleReplica._deployment_config.max_ongoing_requests


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`")  # inside ray 2.60 with pydantic 2.14
def test_two_replicas_answer_like_the_library(tmp_path_factory):
    from ray import serve

    from edge_albert.serve.cluster import REPLICA_HEADER, deploy

    bundle = bundle_for(tmp_path_factory.mktemp("serve-cluster"), "text-classification")
    texts = ["a gorgeous, witty, seductive movie", "dull", "", "naïve café"]
    expected = [p.to_dict() for p in load_model(bundle, num_threads=1).predict(texts)]
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024,
             logging_level="WARNING")
    try:
        names = deploy([bundle], host="127.0.0.1", port=port, replicas=2, num_threads=1)
        url = f"http://127.0.0.1:{port}/v1/models/{names[0]}"
        replicas = set()
        with httpx.Client(timeout=60) as client:
            assert client.get(url).json() == load_model(bundle).bundle.manifest
            for number in range(MAX_REQUESTS):
                response = client.post(url + "/predict", json={"texts": texts})
                assert response.status_code == 200
                assert response.json()["results"] == expected
                replicas.add(response.headers[REPLICA_HEADER])
                if len(replicas) == 2 and number >= 8:
                    break
            bad = client.post(url + "/predict", json={"records": [{"txt": "a"}]})
            assert bad.status_code == 400
            assert bad.json()["error"] == "record 1 has neither a 'text' field nor 'question' and 'context'"
            assert client.post(url + "/predict", json={"texts": ["a"] * 65}).status_code == 413
            _check_the_serve_endpoints(client, f"http://127.0.0.1:{port}", names[0])
        assert len(replicas) == 2, f"one replica answered all requests: {replicas}"
    finally:
        serve.shutdown()
        ray.shutdown()
