"""One switch for the libraries' own logs: quiet by default, back on with `edge-albert --verbose`.

Normal use prints only edge-albert's output; TensorFlow, absl, LiteRT and transformers logs are
silenced by the modules that load those libraries, and they ask `is_verbose()` first.
"""

from __future__ import annotations

import os

ENV_VAR = "EDGE_ALBERT_VERBOSE"


def set_verbose(verbose: bool) -> None:
    """Remember the choice in the environment, so child processes (conversion workers) inherit it."""
    if verbose:
        os.environ[ENV_VAR] = "1"
    else:
        os.environ.pop(ENV_VAR, None)


def is_verbose() -> bool:
    return os.environ.get(ENV_VAR, "") not in ("", "0")
