"""Start `edge-albert serve` as a real process on 127.0.0.1 and find its port, for the socket tests."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Sequence

REPO = Path(__file__).resolve().parents[1]
ADDRESS_LINE = re.compile(r"serving on (http://127\.0\.0\.1:\d+)/")
START_TIMEOUT_S = 120.0  # loading and verifying the bundle on a shared 2-core machine


class ServerProcess:
    """A running server: its base URL, the process, and every output line read so far."""

    def __init__(self, process: subprocess.Popen, base_url: str, lines: List[str]):
        self.process = process
        self.base_url = base_url
        self.lines = lines

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def serve_process(bundles: Sequence[Path], *options: str, verbose: bool = False) -> Iterator[ServerProcess]:
    """`edge-albert [-v] serve BUNDLES --port 0 OPTIONS` with this checkout first on the path; stopped at exit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-c", "from edge_albert.cli import main; main()", *(["--verbose"] if verbose else []),
               "serve", *map(str, bundles), "--host", "127.0.0.1", "--port", "0", "--threads", "1", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: List[str] = []
    arrived: "queue.Queue[str]" = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            arrived.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        base_url = None
        while base_url is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and process.poll() is None, f"server did not start:\n{''.join(lines)}"
            try:
                match = ADDRESS_LINE.search(arrived.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                continue
            base_url = match.group(1) if match else None
        yield ServerProcess(process, base_url, lines)
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
