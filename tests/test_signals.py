"""Signals that end a command: the conversion worker dies with `convert` and its temporary folder goes.

Real processes and real signals: `edge-albert convert` in a subprocess with its own TMPDIR, signalled
once its TensorFlow worker runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 120.0


def _children(pid: int):
    """Pids whose parent is `pid` (scanning /proc: no psutil needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_worker_dies_with_convert_and_its_folder_goes(tiny_classifier_checkpoint, tmp_path, signum):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "out.edgealbert"
    convert = subprocess.Popen([sys.executable, "-c", "from edge_albert.cli import main; main()", "convert",
                                str(tiny_classifier_checkpoint), "-o", str(out), "--quantize", "fp32"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        workers = []
        assert _wait_until(lambda: bool(workers.extend(_children(convert.pid)) or workers)), "no worker started"
        worker = workers[0]
        assert "tflite_worker" in Path(f"/proc/{worker}/cmdline").read_text()
        assert list(scratch.glob("edge-albert-convert-*"))
        convert.send_signal(signum)
        assert convert.wait(timeout=WAIT_S) == -signum  # ends by the signal it got, after cleaning up
        assert _wait_until(lambda: not _alive(worker), timeout=30), "the worker outlived convert"
        if signum != signal.SIGKILL:  # SIGKILL leaves no chance to clean up; the worker still dies (pdeathsig)
            assert not list(scratch.glob("edge-albert-convert-*"))
            assert "Traceback" not in convert.stdout.read().decode()
        assert not out.exists()
    finally:
        if convert.poll() is None:
            convert.kill()
        convert.wait()
