"""Settings of `serve` and `serve-ray`, apart from the server code so the CLI can show the defaults.

Only the standard library (and errors.py): `edge-albert --help` reads these without starlette, ray or numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import ServeError, check_number

DEFAULT_HOST = "127.0.0.1"  # loopback: any other address needs a token file
DEFAULT_PORT = 8080
RAY_DEFAULT_PORT = 8000  # Ray Serve's HTTP proxy's own default
DEFAULT_REPLICAS = 2
DEFAULT_MAX_TEXTS = 64
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_HEADER_BYTES = 32 << 10  # request line and headers together; nginx's default buffers hold 32 KiB


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
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES  # a request whose head is larger is refused before the app

    def check(self) -> None:
        """Refuse, in one line naming the setting, values a server cannot run with (before it binds):
        counts below 1, a NaN or infinite timeout or wait, a batch wait as long as the timeout."""
        for name in ("max_batch_size", "model_batch_size", "max_queue", "max_texts", "max_body_bytes",
                     "max_header_bytes"):
            check_number(getattr(self, name), name, low=1, integer=True, error=ServeError)
        check_number(self.retry_after_s, "retry_after_s", low=0, integer=True, error=ServeError)
        check_number(self.timeout_s, "timeout", low=0, low_open=True, error=ServeError)
        check_number(self.max_wait_ms, "max_wait_ms", low=0, error=ServeError)
        if self.max_wait_ms >= self.timeout_s * 1000:
            raise ServeError(f"{{max_wait_ms}} {self.max_wait_ms:g} must be below {{timeout}} ({self.timeout_s:g} s): "
                             "every request would time out waiting for its batch", options=("max_wait_ms", "timeout"))
