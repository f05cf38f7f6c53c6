"""`edge-albert serve`: bundles behind an HTTP JSON API on a local server (the `serve` extra).

`app` is the ASGI application (API, page, health, metrics), `batching` the micro-batcher with its
bounded queue, `protocol` the request format shared with the Ray Serve replicas in `cluster`,
`server` the process around them (address and token checks, uvicorn, graceful shutdown),
`options` their settings. Needs starlette, uvicorn and prometheus_client: `pip install "edge-albert[serve]"`;
the settings load without them (create_app is imported on first use), so the CLI can show the defaults.
"""

from .options import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    """create_app, imported on first use (PEP 562): it needs the serve extra."""
    if name != "create_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .app import create_app

    return create_app
