"""A child process that holds an output with atomic.exclusive_run, for the tests of a second run on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def hold_in_child(target: Path, seconds: float) -> subprocess.Popen:
    """Start a child that holds exclusive_run(target) for `seconds`; return once it holds it."""
    code = ("import time\nfrom edge_albert.atomic import exclusive_run\n"
            f"with exclusive_run({str(target)!r}):\n    print('held', flush=True)\n    time.sleep({seconds})\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child
