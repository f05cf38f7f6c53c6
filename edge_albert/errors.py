"""The few exception types edge-albert raises; the CLI prints them as one line."""

from __future__ import annotations

import math
import re
from typing import Callable, Optional, Sequence


class EdgeAlbertError(Exception):
    """Base class: a problem the user can act on (bad input, failed check).

    A message about a setting writes it as `{name}` and lists the names in `options`, so the
    library never assumes a command line: `str(error)` names the Python parameter
    (`max_seq_len must be ...`), the CLI spells the same error with its flag
    (`--max-seq-len must be ...`) through `spelled`. Only `{name}` for a name in `options` is
    replaced; every other brace stays as written, so values put into the message (paths, user
    text) need no escaping.
    """

    def __init__(self, message: str = "", *, options: Sequence[str] = ()) -> None:
        self.template = message
        self.options = tuple(options)
        super().__init__(self._filled(str) if self.options else message)

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with every named setting written as `spell(name)` (a flag, for the CLI)."""
        return self._filled(spell) if self.options else str(self)

    def _filled(self, spell: Callable[[str], str]) -> str:
        names = "|".join(map(re.escape, self.options))
        return re.sub(r"\{(%s)\}" % names, lambda match: spell(match.group(1)), self.template)


class CheckpointError(EdgeAlbertError):
    """The Hugging Face checkpoint directory cannot be read or is not supported."""


class ConversionError(EdgeAlbertError):
    """TensorFlow Lite conversion or the post-conversion inspection failed."""


class VerificationError(EdgeAlbertError):
    """A converted variant does not match the PyTorch reference within tolerance."""


class BundleError(EdgeAlbertError):
    """A bundle is missing, corrupt, of an unknown format version, or would be overwritten."""


class RuntimeBackendError(EdgeAlbertError):
    """No usable TFLite interpreter, or the installed one cannot run this model."""


class DataError(EdgeAlbertError):
    """An input data file (texts, labelled examples) has a bad row or column."""


class CompressionError(EdgeAlbertError):
    """A compression plan cannot be built from this teacher, or a compression run cannot resume."""


class MissingExtraError(EdgeAlbertError):
    """A workstation command runs on the light (device) install, without TensorFlow/torch/transformers."""


class OutputError(EdgeAlbertError):
    """An output path cannot be written: it exists, a parent is a file, the disk is full or read-only."""


class ServeError(EdgeAlbertError):
    """`edge-albert serve` cannot start as asked (address, token file, model names, limits)."""


class BenchError(EdgeAlbertError):
    """A measurement cannot be made or a budget cannot be checked on this machine."""


_OUTPUT_ERRORS = {}


def output_error_type(kind: type) -> type:
    """`kind` (BundleError, ConversionError, ...) as an OutputError too: one type per meaning.

    Every problem with an output path (it exists, a parent is a file, the disk is full) is an
    OutputError, whichever command met it; the command's own type stays a base class, so
    `except BundleError` around a bundle write still catches it.
    """
    if issubclass(kind, OutputError):
        return kind
    if kind not in _OUTPUT_ERRORS:
        _OUTPUT_ERRORS[kind] = type(kind.__name__, (kind, OutputError), {"__module__": kind.__module__,
                                                                         "__doc__": kind.__doc__})
    return _OUTPUT_ERRORS[kind]


_SETTING_ERRORS = {}


def setting_error_type(kind: type = EdgeAlbertError) -> type:
    """`kind` as a ValueError too: a parameter's value that cannot work (out of range, NaN, zero).

    Python callers catch it as the ValueError a bad argument is; the CLI prints it as one line
    naming the flag, like every EdgeAlbertError.
    """
    if issubclass(kind, ValueError):
        return kind
    if kind not in _SETTING_ERRORS:
        _SETTING_ERRORS[kind] = type(kind.__name__, (kind, ValueError), {"__module__": kind.__module__,
                                                                         "__doc__": kind.__doc__})
    return _SETTING_ERRORS[kind]


def check_number(value, name: str, *, low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False, error: type = EdgeAlbertError) -> None:
    """Refuse `value` for the setting `name` unless it is a finite number (an int with `integer`) in the bounds.

    NaN and infinity fail every bound, so `epochs=nan` is refused like `epochs=-1`; bools are not numbers.
    """
    kinds = (int,) if integer else (int, float)
    ok = not isinstance(value, bool) and isinstance(value, kinds) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    what = "an integer" if integer else "a number"
    if low is not None and high is not None:
        what += f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        what += f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        what += f" {'<' if high_open else '<='} {high:g}"
    raise setting_error_type(error)(f"{{{name}}} must be {what}, not {value!r}", options=(name,))
