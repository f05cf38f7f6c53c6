"""The server's Prometheus metrics, in a registry of its own (two apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Requests, errors by kind, latency, batch sizes, queue depth and requests in flight."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("edge_albert_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.errors = Counter("edge_albert_errors", "Refused or failed requests by kind",
                              ["kind"], registry=self.registry)
        self.latency = Histogram("edge_albert_request_seconds", "Time from request to response, by route template",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inference_seconds = Histogram("edge_albert_inference_seconds", "Time of one model call (a micro-batch)",
                                           ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("edge_albert_batch_size", "Records per model call", ["model"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("edge_albert_requests_in_flight", "HTTP requests received and not yet answered",
                               registry=self.registry)
        self.queue_depth = Gauge("edge_albert_queue_depth", "Requests waiting for the model", ["model"],
                                 registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
