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
        assert len(replicas) == 2, f"one replica answered all requests: {replicas}"
    finally:
        serve.shutdown()
        ray.shutdown()
