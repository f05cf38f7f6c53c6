"""The one way edge-albert talks to MediaPipe: its own interpreter, running worker.py in a subprocess.

mediapipe 0.10.21 (the release whose metadata writer imports; 1.2.x lacks `mediapipe.tasks.cc`)
needs numpy < 2 and protobuf 4, so it lives in its own venv (`make mediapipe-venv`), found through
`--mediapipe-python`, $EDGE_ALBERT_MEDIAPIPE_PYTHON, or this interpreter if it imports mediapipe.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..errors import BundleError, MissingExtraError

MEDIAPIPE_VERSION = "0.10.21"
PYTHON_ENV = "EDGE_ALBERT_MEDIAPIPE_PYTHON"
WORKER = Path(__file__).with_name("worker.py")
INSTALL_HINT = (f"python3 -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install -r requirements/mediapipe.txt "
                f"(mediapipe=={MEDIAPIPE_VERSION}), then pass {{mediapipe_python}} .venv-mediapipe/bin/python or set "
                f"${PYTHON_ENV}")


def mediapipe_python(explicit: Optional[str] = None) -> str:
    """The interpreter that runs MediaPipe: `explicit`, $EDGE_ALBERT_MEDIAPIPE_PYTHON, or this one."""
    chosen = explicit or os.environ.get(PYTHON_ENV)
    if chosen:
        if not os.access(chosen, os.X_OK) or os.path.isdir(chosen):
            raise MissingExtraError(f"the MediaPipe interpreter {chosen} is not an executable file; {INSTALL_HINT}",
                                    options=("mediapipe_python",))
        return chosen
    if importlib.util.find_spec("mediapipe") is not None:
        return sys.executable
    raise MissingExtraError(f"export-mediapipe needs MediaPipe in a Python of its own: {INSTALL_HINT}",
                            options=("mediapipe_python",))


def run_worker(python: str, request: dict, timeout_s: float = 600.0) -> dict:
    """Send one JSON request to worker.py under `python`; its JSON answer, or one line saying why not."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("GLOG_minloglevel", "2")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        done = subprocess.run([python, str(WORKER)], input=json.dumps(request), capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise BundleError(f"MediaPipe did not answer within {timeout_s:.0f} s ({request['job']})") from None
    except OSError as exc:
        raise MissingExtraError(f"cannot run the MediaPipe interpreter {python}: {exc.strerror}",
                                options=("mediapipe_python",)) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        if "No module named 'mediapipe" in reason:
            raise MissingExtraError(f"{python} cannot import mediapipe; {INSTALL_HINT}", options=("mediapipe_python",))
        raise BundleError(f"MediaPipe failed ({request['job']}): {reason}")
    return json.loads(done.stdout)
