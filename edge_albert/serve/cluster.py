"""Bundles served by several Ray Serve replicas each, on one machine or many (the `cluster` extra).

One Ray Serve application: a Gateway deployment at / answers HTTP with `serve`'s routes (`/`,
/healthz, /readyz, /metrics, /openapi.json, /v1/models[/NAME[/predict]]), token check, errors and
metrics, and hands each request's records to a model's replicas through Ray's handles, which
spread them; `@serve.batch` micro-batches inside each replica, `max_queued_requests` refuses with
503 when every replica is busy. Each replica is this package's runtime (load_model) behind the
same request format and checks as the local server (`protocol`), so a client cannot tell the two
apart. Multi-node: start Ray on every machine (`ray start --head` on one,
`ray start --address HEAD:6379` on the others), put the bundle at the same path on each, then
run `edge-albert serve-ray BUNDLE --address auto --replicas N` on the head.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import threading
import time
from importlib import resources
from typing import Dict, List, Optional, Tuple

import ray
from ray import serve
from ray.serve.exceptions import BackPressureError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..bundle import load_bundle
from ..errors import DataError, ServeError
from ..tasks import load_model
from ..verbosity import is_verbose
from .app import ERROR_KINDS, OPEN_PATHS
from .metrics import ServerMetrics
from .openapi import openapi_schema
from .options import DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TEXTS, DEFAULT_REPLICAS, RAY_DEFAULT_PORT
from .protocol import RequestTooLarge, parse_predict_request, response_body, run_batch
from .server import check_exposure, model_name, read_token

REPLICA_HEADER = "X-Edge-Albert-Replica"  # which replica answered: lets tests and operators see the spread
# Ray's @serve.batch: up to BATCH_SIZE requests per model call. A replica takes at most
# max_ongoing_requests at once, so that must be >= BATCH_SIZE or it could never fill a batch.
BATCH_SIZE = 32
BATCH_WAIT_S = 0.002
REPLICA_ONGOING = 2 * BATCH_SIZE  # one batch running, the next one gathering
GATEWAY_ONGOING = 1024  # the front only forwards: it must never be what limits the replicas
MAX_QUEUED = 64  # per replica, waiting beyond max_ongoing_requests, before 503
TIMEOUT_S = 10.0  # as ServeConfig.timeout_s: a request waits and runs this long before 504


@serve.deployment(max_ongoing_requests=REPLICA_ONGOING, max_queued_requests=MAX_QUEUED,
                  ray_actor_options={"num_cpus": 0})
class BundleReplica:
    """A loaded bundle answering batches of records, with Ray's micro-batching; the Gateway talks HTTP."""

    def __init__(self, bundle_path: str, name: str, num_threads: Optional[int] = None,
                 trusted_key: Optional[str] = None):
        # as ServeConfig.model_batch_size; a trusted key (same path on every node) is checked by each replica
        self.model = load_model(bundle_path, num_threads=num_threads, batch_size=4, trusted_key=trusted_key)
        self.name = name
        self.replica = serve.get_replica_context().replica_id.unique_id

    def describe(self) -> dict:
        """What the front shows for this model (as `serve`'s /v1/models) and its manifest."""
        manifest = self.model.bundle.manifest
        return {"summary": {"name": self.name, "task": self.model.task, "labels": self.model.labels,
                            "max_seq_len": self.model.max_seq_len,
                            "quantization": (manifest.get("quantization") or {}).get("mode"),
                            "predict": f"/v1/models/{self.name}/predict"},
                "manifest": manifest}

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _predict(self, requests: List[List[dict]]) -> List[List[dict]]:
        records = [record for request in requests for record in request]
        results = run_batch(self.model, records)
        out, offset = [], 0
        for request in requests:
            out.append(results[offset:offset + len(request)])
            offset += len(request)
        return out

    async def predict(self, records: List[dict]) -> Tuple[str, List[dict]]:
        return self.replica, await self._predict(records)


@serve.deployment(max_ongoing_requests=GATEWAY_ONGOING, ray_actor_options={"num_cpus": 0})
class Gateway:
    """The HTTP front, mounted at /: the same routes, errors and metrics as `edge-albert serve`.

    Requests are checked here (token, size, format) and only their records go to a model's
    replicas, through Ray's handles (which spread them); so /metrics counts every request.
    """

    def __init__(self, models: Dict[str, object], token: Optional[str] = None, max_texts: int = DEFAULT_MAX_TEXTS,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, timeout_s: float = TIMEOUT_S):

        self.handles = models
        self.expected = f"Bearer {token}".encode() if token else None
        self.max_texts = max_texts
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.metrics = ServerMetrics()
        self.page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        self.described: Dict[str, dict] = {}
        self.schema = openapi_schema(dict.fromkeys(models), auth=token is not None)

    async def _describe(self, name: str) -> dict:
        if name not in self.described:
            self.described[name] = await self.handles[name].describe.remote()
        return self.described[name]

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        route, response = "unmatched", None
        self.metrics.in_flight.inc()
        try:
            route, response = await self._route(request)
            return response
        finally:
            self.metrics.in_flight.dec()
            status = response.status_code if response is not None else 500
            self.metrics.requests.labels(route, request.method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(ERROR_KINDS.get(status, str(status))).inc()

    async def _route(self, request: Request) -> Tuple[str, Response]:
        path, method = request.url.path.rstrip("/") or "/", request.method
        if self.expected is not None and path not in OPEN_PATHS:
            if not hmac.compare_digest(request.headers.get("authorization", "").encode(), self.expected):
                return path, _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)",
                                    {"WWW-Authenticate": "Bearer"})
        fixed = {"/": self.index, "/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.metrics_text,
                 "/openapi.json": self.openapi, "/v1/models": self.list_models}
        if path in fixed:
            if method != "GET":
                return path, _error(405, f"{method} is not allowed on {path}", {"Allow": "GET"})
            return path, await fixed[path]()
        parts = path.split("/")
        if len(parts) in (4, 5) and parts[1:3] == ["v1", "models"] and (len(parts) == 4 or parts[4] == "predict"):
            template = "/v1/models/{name}" + ("/predict" if len(parts) == 5 else "")
            name = parts[3]
            if name not in self.handles:
                return template, _error(404, f"no model named {name!r}; this server has {', '.join(sorted(self.handles))}")
            wanted = "POST" if len(parts) == 5 else "GET"
            if method != wanted:
                return template, _error(405, f"{method} is not allowed on {path}", {"Allow": wanted})
            if len(parts) == 4:
                return template, JSONResponse((await self._describe(name))["manifest"])
            return template, await self.predict(name, request)
        return "unmatched", _error(404, f"no route {method} {request.url.path}; see /openapi.json")

    async def index(self) -> Response:
        return HTMLResponse(self.page)

    async def healthz(self) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self) -> Response:
        """Ready when every model's replicas answer a probe (an empty text) within the timeout."""
        for name in sorted(self.handles):
            task = (await self._describe(name))["summary"]["task"]
            probe = {"question": "", "context": ""} if task == "question-answering" else {"text": ""}
            try:
                await asyncio.wait_for(self.handles[name].predict.remote([probe]), min(self.timeout_s, 5.0))
            except Exception as exc:  # timeout, back-pressure, a dead replica: not ready, and why
                return _error(503, f"model {name} is not answering: {type(exc).__name__}", {"Retry-After": "1"})
        return JSONResponse({"status": "ready", "models": sorted(self.handles)})

    async def metrics_text(self) -> Response:
        return Response(self.metrics.exposition(), media_type=self.metrics.content_type)

    async def openapi(self) -> Response:
        return JSONResponse(self.schema)

    async def list_models(self) -> Response:
        return JSONResponse({"models": [(await self._describe(name))["summary"] for name in sorted(self.handles)]})

    async def predict(self, name: str, request: Request) -> Response:
        body = await request.body()
        try:
            if len(body) > self.max_body_bytes:
                raise RequestTooLarge(f"request body of {len(body)} bytes; the limit is {self.max_body_bytes}")
            task = (await self._describe(name))["summary"]["task"]
            parsed = parse_predict_request(body, task, self.max_texts)
        except DataError as exc:
            return _error(400, str(exc))
        except RequestTooLarge as exc:
            return _error(413, str(exc))
        started = time.perf_counter()
        replica, results = "", []
        if parsed.records:
            try:
                replica, results = await asyncio.wait_for(self.handles[name].predict.remote(parsed.records),
                                                          self.timeout_s)
            except BackPressureError:
                return _error(503, f"every replica of {name} is busy; retry later", {"Retry-After": "1"})
            except asyncio.TimeoutError:
                return _error(504, f"no answer from {name} within {self.timeout_s:g} s")
        body = response_body(name, parsed, results, (time.perf_counter() - started) * 1000.0)
        return JSONResponse(body, headers={REPLICA_HEADER: replica} if replica else None)


def _error(status: int, message: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def bundle_application(bundles: Dict[str, str], replicas: int = DEFAULT_REPLICAS, max_texts: int = DEFAULT_MAX_TEXTS,
                       token: Optional[str] = None, num_threads: Optional[int] = None,
                       trusted_key: Optional[str] = None):
    """One Ray Serve application: the Gateway at / over `replicas` copies of each bundle (name -> path)."""
    models = {name: BundleReplica.options(name=f"model-{name}", num_replicas=replicas)
              .bind(path, name, num_threads=num_threads, trusted_key=trusted_key)
              for name, path in bundles.items()}
    return Gateway.bind(models, token=token, max_texts=max_texts)


def deploy(bundles, host: str = DEFAULT_HOST, port: int = RAY_DEFAULT_PORT, replicas: int = DEFAULT_REPLICAS,
           token: Optional[str] = None, num_threads: Optional[int] = None, max_texts: int = DEFAULT_MAX_TEXTS,
           trusted_key: Optional[str] = None) -> List[str]:
    """Start Serve's HTTP proxy on host:port and deploy every bundle behind one Gateway; returns the model names.

    Ray must already be initialised (ray.init, with address="auto" to join a running cluster).
    """
    # Ray's own INFO lines (replica starts, access lines) only with `edge-albert -v`; neither carries texts.
    logging_config = {"log_level": "INFO" if is_verbose() else "WARNING", "enable_access_log": is_verbose()}
    serve.start(http_options={"host": host, "port": port}, logging_config=logging_config)
    named = {model_name(str(path)): str(path) for path in bundles}
    serve.run(bundle_application(named, replicas=replicas, max_texts=max_texts, token=token, num_threads=num_threads,
                                 trusted_key=trusted_key),
              name="edge-albert", route_prefix="/", logging_config=logging_config)
    return list(named)


def quiet_ray() -> None:
    """Ray's driver output: no colour codes ever, and its loggers at ERROR unless `edge-albert -v`.

    Set before ray.init; replicas' own logs reach this terminal only with -v (ray.init's log_to_driver).
    """


    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if not is_verbose():
        for name in ("ray", "ray.serve"):
            logging.getLogger(name).setLevel(logging.ERROR)  # e.g. Ray's token-auth notice at every start


def run_cluster(bundles, address: Optional[str] = None, host: str = DEFAULT_HOST, port: int = RAY_DEFAULT_PORT,
                replicas: int = DEFAULT_REPLICAS, token_file: Optional[str] = None, allow_unauthenticated: bool = False,
                num_threads: Optional[int] = None, max_texts: int = DEFAULT_MAX_TEXTS, say=print,
                trusted_key: Optional[str] = None) -> None:
    """Join (address="auto" or HOST:6379) or start a Ray cluster, deploy, serve until SIGTERM/SIGINT."""
    token = read_token(token_file) if token_file else None
    warning = check_exposure(host, token, allow_unauthenticated)
    names = [model_name(str(path)) for path in bundles]
    for name in {name for name in names if names.count(name) > 1}:
        raise ServeError(f"two bundles are named {name!r}; rename one directory")
    for path in bundles:  # refuse a bad or unsigned bundle here, in one line, before any replica starts
        load_bundle(path, trusted_key=trusted_key)
    quiet_ray()
    ray.init(address=address, include_dashboard=False, logging_level="INFO" if is_verbose() else "ERROR",
             log_to_driver=is_verbose())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        names = deploy(bundles, host=host, port=port, replicas=replicas, token=token, num_threads=num_threads,
                       max_texts=max_texts, trusted_key=trusted_key)
        if warning:
            say(f"warning: {warning}")
        nodes = len([node for node in ray.nodes() if node.get("Alive")])
        for name in names:
            say(f"model {name}: {replicas} Ray Serve replicas on {nodes} node(s): "
                f"POST http://{host}:{port}/v1/models/{name}/predict")
        say(f"page http://{host}:{port}/, /healthz, /readyz, /metrics, /openapi.json")
        say("serving (SIGTERM or Ctrl-C stops the application and its replicas)")
        while not stop.wait(1.0):
            pass
    finally:
        serve.shutdown()
        ray.shutdown()
