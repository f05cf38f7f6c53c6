"""Locust clients for benchmarks/serve_load.py: each sends one SST-2 sentence, then the next at once.

Settings come from the environment (serve_load.py sets them): EDGE_ALBERT_MODEL (URL name),
EDGE_ALBERT_TEXTS (a file, one text a line), EDGE_ALBERT_MAX_REQUESTS (stop the run after this
many requests in all, so a run is bounded in count as well as in time).
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, task
from locust.exception import StopUser

MODEL = os.environ.get("EDGE_ALBERT_MODEL", "sst2")
MAX_REQUESTS = int(os.environ.get("EDGE_ALBERT_MAX_REQUESTS", "100000"))
with open(os.environ["EDGE_ALBERT_TEXTS"], encoding="utf-8") as handle:
    TEXTS = [line.rstrip("\n") for line in handle if line.strip()]
_next_text = itertools.cycle(TEXTS)
_sent = itertools.count(1)


class Client(FastHttpUser):
    wait_time = constant(0)  # closed loop: a client sends its next request when the last one is answered

    @task
    def predict(self) -> None:
        if next(_sent) > MAX_REQUESTS:
            # Stop this client, not the runner: runner.quit() mid-run loses the stats (the CSV's
            # Aggregated row reads 0 requests, N/A percentiles); -t still bounds the run in time.
            raise StopUser()
        with self.client.post(f"/v1/models/{MODEL}/predict", json={"text": next(_next_text)},
                              name="predict", catch_response=True) as response:
            if response.status_code == 503:
                response.failure("503 busy")
            elif response.status_code != 200:
                response.failure(f"status {response.status_code}")

