"""One bundle served by several Ray Serve replicas, on one machine or many (the `cluster` extra).

Ray does the distribution: its HTTP proxy spreads requests over the replicas, its `@serve.batch`
micro-batches inside each replica, `max_queued_requests` refuses with 503 when every replica is
busy. Each replica is this package's runtime (load_model) behind the same request format and
checks as the local server (`protocol`), so a client cannot tell the two apart on
/v1/models/NAME/predict. Multi-node: start Ray on every machine (`ray start --head` on one,
`ray start --address HEAD:6379` on the others), put the bundle at the same path on each, then
run `edge-albert serve-ray BUNDLE --address auto --replicas N` on the head.
"""

from __future__ import annotations

import hmac
import time
from typing import List, Optional

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import DataError
from .options import DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TEXTS, DEFAULT_REPLICAS, RAY_DEFAULT_PORT
from .protocol import RequestTooLarge, parse_predict_request, response_body, run_batch

REPLICA_HEADER = "X-Edge-Albert-Replica"  # which replica answered: lets tests and operators see the spread


@serve.deployment
class BundleReplica:
    """A loaded bundle answering predict requests and its manifest, with Ray's micro-batching."""

    def __init__(self, bundle_path: str, name: str, max_texts: int = DEFAULT_MAX_TEXTS,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 token: Optional[str] = None, num_threads: Optional[int] = None, trusted_key: Optional[str] = None):
        from ..tasks import load_model

        # as ServeConfig.model_batch_size; a trusted key (same path on every node) is checked by each replica
        self.model = load_model(bundle_path, num_threads=num_threads, batch_size=4, trusted_key=trusted_key)
        self.name = name
        self.max_texts = max_texts
        self.max_body_bytes = max_body_bytes
        self.expected = f"Bearer {token}".encode() if token else None
        self.replica = serve.get_replica_context().replica_id.unique_id

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _predict(self, requests: List[List[dict]]) -> List[List[dict]]:
        records = [record for request in requests for record in request]
        results = run_batch(self.model, records)
        out, offset = [], 0
        for request in requests:
            out.append(results[offset:offset + len(request)])
            offset += len(request)
        return out

    def _reply(self, body: dict, status: int = 200, headers: Optional[dict] = None) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers={REPLICA_HEADER: self.replica, **(headers or {})})

    async def __call__(self, request: Request) -> JSONResponse:
        if self.expected is not None:
            supplied = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(supplied, self.expected):
                return self._reply({"error": "missing or wrong bearer token (Authorization: Bearer <token>)"}, 401,
                                   {"WWW-Authenticate": "Bearer"})
        tail = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "GET" and tail == self.name:
            return self._reply(self.model.bundle.manifest)
        if request.method != "POST" or tail != "predict":
            return self._reply({"error": f"no route {request.method} {request.url.path}"}, 404)
        body = await request.body()
        try:
            if len(body) > self.max_body_bytes:
                raise RequestTooLarge(f"request body of {len(body)} bytes; the limit is {self.max_body_bytes}")
            parsed = parse_predict_request(body, self.model.task, self.max_texts)
        except DataError as exc:
            return self._reply({"error": str(exc)}, 400)
        except RequestTooLarge as exc:
            return self._reply({"error": str(exc)}, 413)
        started = time.perf_counter()
        results = await self._predict(parsed.records) if parsed.records else []
        return self._reply(response_body(self.name, parsed, results, (time.perf_counter() - started) * 1000.0))


def bundle_application(bundle_path: str, name: str, replicas: int = DEFAULT_REPLICAS,
                       max_texts: int = DEFAULT_MAX_TEXTS,
                       token: Optional[str] = None, num_threads: Optional[int] = None,
                       max_queued_requests: int = 64, trusted_key: Optional[str] = None):
    """A Ray Serve application of `replicas` copies of one bundle, to mount at /v1/models/NAME."""
    deployment = BundleReplica.options(name=name, num_replicas=replicas, max_queued_requests=max_queued_requests,
                                       ray_actor_options={"num_cpus": 0})
    return deployment.bind(bundle_path, name, max_texts=max_texts, token=token, num_threads=num_threads,
                           trusted_key=trusted_key)


def deploy(bundles, host: str = DEFAULT_HOST, port: int = RAY_DEFAULT_PORT, replicas: int = DEFAULT_REPLICAS,
           token: Optional[str] = None, num_threads: Optional[int] = None, max_texts: int = DEFAULT_MAX_TEXTS, trusted_key: Optional[str] = None) -> List[str]:
    """Start Serve's HTTP proxy on host:port and deploy every bundle; returns the model names.

    Ray must already be initialised (ray.init, with address="auto" to join a running cluster).
    """
    from .server import model_name

    from ..verbosity import is_verbose

    # Ray's own INFO lines (replica starts, access lines) only with `edge-albert -v`; neither carries texts.
    logging_config = {"log_level": "INFO" if is_verbose() else "WARNING", "enable_access_log": is_verbose()}
    serve.start(http_options={"host": host, "port": port}, logging_config=logging_config)
    names = []
    for path in bundles:
        name = model_name(str(path))
        serve.run(bundle_application(str(path), name, replicas=replicas, max_texts=max_texts, token=token,
                                     num_threads=num_threads, trusted_key=trusted_key),
                  name=name, route_prefix=f"/v1/models/{name}",
                  logging_config=logging_config)
        names.append(name)
    return names


def run_cluster(bundles, address: Optional[str] = None, host: str = DEFAULT_HOST, port: int = RAY_DEFAULT_PORT,
                replicas: int = DEFAULT_REPLICAS, token_file: Optional[str] = None, allow_unauthenticated: bool = False,
                num_threads: Optional[int] = None, max_texts: int = DEFAULT_MAX_TEXTS, say=print,
                trusted_key: Optional[str] = None) -> None:
    """Join (address="auto" or HOST:6379) or start a Ray cluster, deploy, serve until SIGTERM/SIGINT."""
    import signal
    import threading

    import ray

    from .server import check_exposure, read_token

    from ..bundle import load_bundle

    token = read_token(token_file) if token_file else None
    warning = check_exposure(host, token, allow_unauthenticated)
    for path in bundles:  # refuse a bad or unsigned bundle here, in one line, before any replica starts
        load_bundle(path, trusted_key=trusted_key)
    ray.init(address=address, include_dashboard=False, logging_level="WARNING")
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
        say("serving (SIGTERM or Ctrl-C stops the application and its replicas)")
        while not stop.wait(1.0):
            pass
    finally:
        serve.shutdown()
        ray.shutdown()
