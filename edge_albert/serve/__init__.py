"""`edge-albert serve`: bundles behind an HTTP JSON API on a local server (the `serve` extra).

`app` is the ASGI application (API, page, health, metrics), `batching` the micro-batcher with its
bounded queue, `protocol` the request format shared with the Ray Serve replicas in `cluster`,
`server` the process around them (address and token checks, uvicorn, graceful shutdown).
Needs starlette, uvicorn and prometheus_client: `pip install "edge-albert[serve]"`.
"""

from .app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
