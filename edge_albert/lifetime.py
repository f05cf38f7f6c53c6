"""How edge-albert's processes end: every ending signal takes the Ctrl-C path, and helpers die with their parent.

Python's default for SIGTERM and SIGHUP is to die at once: no `finally`, no context manager, so a
conversion worker was orphaned (converting for another 40 s) and its temporary folder stayed. Inside
`ending_signals_interrupt()` these signals raise `Terminated`, a KeyboardInterrupt, so the clean-up
that Ctrl-C already runs (worker stopped, staging directories removed) runs for them too; the command
then ends by the same signal, as the caller that sent it expects. A helper process calls
`die_with_parent()` so that even a SIGKILL of its parent ends it (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Iterator, Optional

ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C, then end by the same signal (`signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def ending_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise Terminated in the main thread; previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def interrupt(signum, frame):
        raise Terminated(signum)

    for signum in ENDING_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, interrupt)
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def end_by_signal(signum: int) -> None:
    """After the clean-up: die of `signum` with its default action, so the exit status says which signal."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # only if the signal is blocked or ignored here


def die_with_parent(parent_pid: Optional[int]) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; exit now if `parent_pid` is gone already.

    Linux only (prctl); elsewhere the parent's own clean-up (Terminated, context managers) is what stops it.
    """
    if not sys.platform.startswith("linux"):
        return

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before the prctl
        os._exit(1)
