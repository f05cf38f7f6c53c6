"""Settings of `serve` and `serve-ray`, apart from the server code so the CLI can show the defaults.

Only the standard library: `edge-albert --help` reads these without starlette, ray or numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

DEFAULT_HOST = "127.0.0.1"  # loopback: any other address needs a token file
DEFAULT_PORT = 8080
RAY_DEFAULT_PORT = 8000  # Ray Serve's HTTP proxy's own default
DEFAULT_REPLICAS = 2
DEFAULT_MAX_TEXTS = 64
DEFAULT_MAX_BODY_BYTES = 1 << 20


@dataclass
class ServeConfig:
    """Batching, limits and auth; the CLI options of `edge-albert serve` map one to one."""

    max_batch_size: int = 32
    max_wait_ms: float = 0.0  # greedy: batch what arrived during the last call (waiting measured no gain)
    model_batch_size: int = 4  # rows per interpreter call: a micro-batch runs length-sorted in chunks this big
    max_queue: int = 64
    max_texts: int = DEFAULT_MAX_TEXTS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_s: float = 10.0
    token: Optional[str] = None
    retry_after_s: int = 1
