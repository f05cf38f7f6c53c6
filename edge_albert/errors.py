"""The few exception types edge-albert raises; the CLI prints them as one line."""

from __future__ import annotations

import re
from typing import Callable, Sequence


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
