"""Compress a fine-tuned ALBERT classifier: fewer calls of the shared layer, fewer attention heads,
a narrower FFN (importance measured on task data), then knowledge distillation from the teacher
on transformers' Trainer. The student is an ordinary checkpoint that `edge-albert convert` takes.

torch and transformers are imported inside the functions that need them. The settings load here
at once; the code that runs them (numpy through the plan's compute model) only when first named,
so the CLI reads the defaults without it.
"""

from importlib import import_module

from .augment import AugmentConfig
from .distill import DistillConfig
from .options import CompressOptions

_LAZY = {"CompressionPlan": "plan", "make_plan": "plan", "PROVENANCE_FILE": "run", "CompressResult": "run",
         "compress": "run"}

__all__ = ["AugmentConfig", "CompressOptions", "CompressResult", "CompressionPlan", "DistillConfig", "PROVENANCE_FILE", "compress", "make_plan"]


def __getattr__(name: str):
    """The heavy names, imported on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
