"""The ASGI application behind `edge-albert serve`: JSON API, page, health, metrics.

Every model sits behind its own MicroBatcher, so the event loop never blocks on inference and
one slow model does not hold up another. Errors are JSON `{"error": "<one line>"}` with the
status that says what to do: 400 fix the request, 401 give the token, 404 wrong path or model,
413 send less, 503 retry later (Retry-After), 504 the request took longer than --timeout.
Request texts are never logged: the only logs are uvicorn's access lines (path and status,
with --verbose) and server faults.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from dataclasses import dataclass
from importlib import resources
from typing import Dict, Mapping, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import DataError
from ..tasks import BundleModel
from .batching import DeadlineExceeded, MicroBatcher, QueueFull
from .metrics import ServerMetrics
from .openapi import openapi_schema
from .options import ServeConfig
from .protocol import RequestTooLarge, parse_predict_request, response_body, run_batch

OPEN_PATHS = frozenset({"/", "/healthz"})  # no token needed: the page holds no data, liveness holds none
ERROR_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 500: "internal", 503: "overloaded", 504: "timeout"}
READY_PROBE_TIMEOUT_S = 5.0


@dataclass
class ServedModel:
    name: str
    model: BundleModel
    batcher: MicroBatcher

    @property
    def task(self) -> str:
        return self.model.task

    def summary(self) -> dict:
        manifest = self.model.bundle.manifest
        return {"name": self.name, "task": self.task, "labels": self.model.labels,
                "max_seq_len": self.model.max_seq_len,
                "quantization": (manifest.get("quantization") or {}).get("mode"),
                "predict": f"/v1/models/{self.name}/predict"}


def _error(status: int, message: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _probe_record(task: str) -> dict:
    return {"question": "", "context": ""} if task == "question-answering" else {"text": ""}


class _Gate:
    """Outermost layer: bearer-token check (constant-time) and per-request metrics."""

    def __init__(self, app, metrics: ServerMetrics, token: Optional[str]):
        self.app = app
        self.metrics = metrics
        self.expected = f"Bearer {token}".encode() if token else None

    def _authorized(self, scope) -> bool:
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        return hmac.compare_digest(supplied, self.expected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            if self.expected is not None and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
                response = _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)",
                                  {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(label, scope["method"], str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(ERROR_KINDS.get(status, str(status))).inc()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body of {int(declared)} bytes; the limit is {limit} (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body over {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _served_models(models: Mapping[str, BundleModel], config: ServeConfig,
                   metrics: ServerMetrics) -> Dict[str, ServedModel]:
    """Each model behind its own MicroBatcher, so one slow model does not hold up another."""
    served: Dict[str, ServedModel] = {}
    for name, model in models.items():
        batcher = MicroBatcher(name, lambda records, model=model: run_batch(model, records), metrics,
                               max_batch_size=config.max_batch_size, max_wait_s=config.max_wait_ms / 1000.0,
                               max_queue=config.max_queue)
        served[name] = ServedModel(name, model, batcher)
    return served


class _Endpoints:
    """The routes, error handlers and lifespan of one app, sharing its models, limits and metrics."""

    def __init__(self, served: Dict[str, ServedModel], config: ServeConfig, metrics: ServerMetrics):
        self.served = served
        self.config = config
        self.metrics = metrics
        self.schema = openapi_schema(served, auth=config.token is not None)
        self.page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    def routes(self) -> list:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{name}", self.manifest, methods=["GET"]),
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
        ]

    def exception_handlers(self) -> dict:
        return {DataError: self.bad_request, RequestTooLarge: self.too_large, QueueFull: self.overloaded,
                DeadlineExceeded: self.timed_out, HTTPException: self.http_error, ClientDisconnect: self.client_gone}

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        for item in self.served.values():
            item.batcher.start()
        try:
            yield
        finally:
            for item in self.served.values():
                await item.batcher.stop()

    # -- routes --

    def model_named(self, request: Request) -> ServedModel:
        name = request.path_params["name"]
        if name not in self.served:
            raise HTTPException(404, f"no model named {name!r}; this server has {', '.join(sorted(self.served))}")
        return self.served[name]

    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when every model answers a probe through its own queue (so a full queue is not ready)."""
        for item in self.served.values():
            await item.batcher.submit([_probe_record(item.task)], min(self.config.timeout_s, READY_PROBE_TIMEOUT_S))
        return JSONResponse({"status": "ready", "models": sorted(self.served)})

    async def metrics_endpoint(self, request: Request) -> Response:
        for item in self.served.values():
            self.metrics.queue_depth.labels(item.name)  # every model appears, even before its first request
        return Response(self.metrics.exposition(), media_type=self.metrics.content_type)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.schema)

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"models": [item.summary() for item in self.served.values()]})

    async def manifest(self, request: Request) -> Response:
        return JSONResponse(self.model_named(request).model.bundle.manifest)

    async def predict(self, request: Request) -> Response:
        item = self.model_named(request)
        body = await _read_body(request, self.config.max_body_bytes)
        parsed = parse_predict_request(body, item.task, self.config.max_texts)
        started = time.perf_counter()
        results = await item.batcher.submit(parsed.records, self.config.timeout_s)
        return JSONResponse(response_body(item.name, parsed, results, (time.perf_counter() - started) * 1000.0))

    # -- errors: one line of JSON, with the status that says what to do --

    async def bad_request(self, request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def too_large(self, request: Request, exc: Exception) -> Response:
        return _error(413, str(exc))

    async def overloaded(self, request: Request, exc: Exception) -> Response:
        return _error(503, f"the server is busy ({exc}; --max-queue {self.config.max_queue}); retry later",
                      {"Retry-After": str(self.config.retry_after_s)})

    async def timed_out(self, request: Request, exc: Exception) -> Response:
        return _error(504, f"{exc} (--timeout)")

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and exc.detail == "Not Found":
            return _error(404, f"no route {request.method} {request.url.path}; see /openapi.json")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}", dict(exc.headers or {}))
        return _error(exc.status_code, str(exc.detail))

    async def client_gone(self, request: Request, exc: Exception) -> Response:
        return _error(400, "the client closed the connection before sending the whole body")


def create_app(models: Mapping[str, BundleModel], config: Optional[ServeConfig] = None):
    """An ASGI app serving `models` (name -> loaded model); batchers start with the app's lifespan."""
    config = config or ServeConfig()
    config.check()
    metrics = ServerMetrics()
    endpoints = _Endpoints(_served_models(models, config, metrics), config, metrics)
    app = Starlette(routes=endpoints.routes(), exception_handlers=endpoints.exception_handlers(),
                    lifespan=endpoints.lifespan)
    app.state.served = endpoints.served
    app.state.metrics = metrics
    return _Gate(app, metrics, config.token)
