"""Compress a fine-tuned ALBERT classifier: fewer calls of the shared layer, fewer attention heads,
a narrower FFN (importance measured on task data), then knowledge distillation from the teacher
on transformers' Trainer. The student is an ordinary checkpoint that `edge-albert convert` takes.

torch and transformers are imported inside the functions that need them.
"""

from .augment import AugmentConfig
from .distill import DistillConfig
from .plan import CompressionPlan, make_plan
from .run import PROVENANCE_FILE, CompressOptions, CompressResult, compress

__all__ = ["AugmentConfig", "CompressOptions", "CompressResult", "CompressionPlan", "DistillConfig", "PROVENANCE_FILE", "compress", "make_plan"]
