"""Start the server: check the address and token, load the bundles, bind, run uvicorn until SIGTERM.

uvicorn owns the shutdown: on SIGTERM or SIGINT it closes the listening socket (new connections
are refused), lets in-flight requests finish (up to the request timeout plus a margin), then runs
the app's shutdown, which stops the batchers.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from ..errors import ServeError
from ..runtime import check_batch
from ..tasks import BundleModel, load_model
from ..verbosity import is_verbose
from .app import create_app
from .options import DEFAULT_HOST, DEFAULT_PORT, ServeConfig

SHUTDOWN_MARGIN_S = 5.0
LISTEN_BACKLOG = 2048  # uvicorn's default


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def read_token(path: str) -> str:
    """The bearer token: the file's content without surrounding whitespace."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ServeError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token or any(ch.isspace() for ch in token):
        raise ServeError(f"the token file {path} must hold one token without spaces")
    return token


def check_exposure(host: str, token: Optional[str], allow_unauthenticated: bool) -> Optional[str]:
    """Refuse a network-facing server without a token unless asked; return a warning to print, if any."""
    if token is not None or is_loopback(host):
        return None
    if not allow_unauthenticated:
        raise ServeError(f"{{host}} {host} lets other machines call the models; give {{token_file}} FILE, "
                         "or {allow_unauthenticated} to serve without authentication",
                         options=("host", "token_file", "allow_unauthenticated"))
    return (f"serving on {host} WITHOUT authentication (no token file): anyone who can reach "
            "this port can use the models")


def model_name(path: str) -> str:
    """The URL name of a bundle: its directory name without the .edgealbert suffix."""
    name = Path(os.path.normpath(path)).name
    return name[: -len(".edgealbert")] if name.endswith(".edgealbert") else name


def load_models(paths: Sequence[str], num_threads: Optional[int] = None,
                backend: Optional[str] = None, batch_size: int = 4,
                trusted_key: Optional[str] = None) -> Dict[str, BundleModel]:
    """Load (and verify) every bundle once, keyed by its URL name; two bundles may not share a name.

    With `trusted_key` (else $EDGE_ALBERT_TRUSTED_KEY) every bundle must carry a valid signature.
    """
    models: Dict[str, BundleModel] = {}
    for path in paths:
        name = model_name(path)
        if name in models:
            raise ServeError(f"two bundles are named {name!r}; rename one directory")
        models[name] = load_model(path, num_threads=num_threads, backend=backend, batch_size=batch_size,
                                  trusted_key=trusted_key)
    return models


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so a taken port fails as one line and --port 0 can be reported."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)  # connections made once the address is printed wait here, not refused
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_server(bundles: Sequence[str], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               config: Optional[ServeConfig] = None, token_file: Optional[str] = None,
               allow_unauthenticated: bool = False, num_threads: Optional[int] = None,
               backend: Optional[str] = None, say: Callable[[str], None] = print,
               trusted_key: Optional[str] = None) -> None:
    """Serve `bundles` until SIGTERM/SIGINT; `say` prints the address line and warnings."""
    import uvicorn

    config = config or ServeConfig()
    config.check()
    check_batch(config.model_batch_size, "model_batch_size")  # here, so the error names serve's setting
    if token_file:
        config.token = read_token(token_file)
    warning = check_exposure(host, config.token, allow_unauthenticated)
    models = load_models(bundles, num_threads=num_threads, backend=backend, batch_size=config.model_batch_size,
                         trusted_key=trusted_key)
    app = create_app(models, config)
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if warning:
        say(f"warning: {warning}")
    for name, model in models.items():
        say(f"model {name} ({model.task}): POST http://{shown}:{bound_port}/v1/models/{name}/predict")
    say(f"serving on http://{shown}:{bound_port}/ (SIGTERM or Ctrl-C: finish in-flight requests, then stop)")
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="info" if is_verbose() else "warning", access_log=is_verbose(),
        timeout_graceful_shutdown=int(config.timeout_s + SHUTDOWN_MARGIN_S), server_header=False,
        # h11 enforces a limit on the request head (httptools, if installed, has none: a 16 MB header got a 200)
        http="h11", h11_max_incomplete_event_size=config.max_header_bytes,
    ))
    server.run(sockets=[sock])
