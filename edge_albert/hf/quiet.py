"""Keep the workstation libraries quiet, and say in one line which extra to install when they are missing.

TensorFlow, absl, oneDNN and LiteRT write their log lines straight to file descriptor 2 from
C++ (before Python's logging is involved), so silencing them means pointing that descriptor
elsewhere for the few calls that produce them. transformers prints progress bars and
deprecation warnings through Python. Everything comes back with `edge-albert -v`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from typing import Iterator, Sequence

from ..errors import MissingExtraError
from ..runtime import native_logs_silenced
from ..verbosity import is_verbose

WORKSTATION_EXTRA = "convert"
INSTALL_HINT = f"pip install 'edge-albert[{WORKSTATION_EXTRA}]'"


def missing_modules(modules: Sequence[str]) -> list:
    """The top-level modules of `modules` that cannot be imported here (found without importing them)."""
    missing = []
    for name in modules:
        if sys.modules.get(name) is not None:
            continue
        try:
            found = name not in sys.modules and importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_workstation(what: str, modules: Sequence[str]) -> None:
    """Refuse `what` in one line, before any work, when the workstation libraries it needs are absent."""
    missing = missing_modules(modules)
    if missing:
        raise MissingExtraError(
            f"{what} needs the workstation extras ({', '.join(missing)} not installed): {INSTALL_HINT}"
        )


def import_tensorflow():
    """`import tensorflow` without its absl/oneDNN start-up lines (unless verbose)."""
    if not is_verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_logs_silenced():
        tf = importlib.import_module("tensorflow")
        if not is_verbose():
            tf.get_logger().setLevel("ERROR")
            with contextlib.suppress(ImportError):
                from absl import logging as absl_logging  # lazy: absl comes with tensorflow (just imported)

                absl_logging.set_verbosity(absl_logging.ERROR)
    return tf


def quiet_transformers() -> None:
    """No progress bars, info lines or deprecation warnings from transformers/huggingface_hub (unless verbose)."""
    if is_verbose():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(transformers|huggingface_hub|torch)(\.|$)")
