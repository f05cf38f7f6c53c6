"""What `compress` is asked to do, apart from the code that does it, so the CLI can show the defaults.

Nothing here imports numpy or torch: `edge-albert --help` reads these defaults cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..data import DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_COLUMN
from ..errors import CompressionError, check_number
from .augment import AugmentConfig
from .distill import DistillConfig

INITS = ("teacher", "random")


@dataclass(frozen=True)
class CompressOptions:
    """The plan (numbers or a compute target), the importance and data settings, distillation and augmentation."""

    layers: Optional[int] = None
    heads: Optional[int] = None
    remove_heads: Optional[int] = None
    ffn: Optional[int] = None
    target_speedup: Optional[float] = None  # instead of layers/heads/ffn: compute at most 1/X of the teacher's
    init: str = "teacher"  # "random": the same shape trained from scratch (ablation)
    importance_examples: int = 2048
    max_train_examples: Optional[int] = None  # a seeded random subset of the training rows
    text_column: str = DEFAULT_TEXT_COLUMN
    label_column: str = DEFAULT_LABEL_COLUMN
    pair_column: Optional[str] = None
    distill: DistillConfig = field(default_factory=DistillConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # unlabelled copies for distillation only

    def check(self) -> None:
        """Every setting on its own and the ones that cannot run together, refused in one line naming the
        setting before the teacher, the data or OUT.partial/ are touched (compress calls it first)."""
        if self.init not in INITS:
            raise CompressionError(f"{{init}} must be one of {', '.join(INITS)}, not {self.init!r}", options=("init",))
        for name in ("layers", "heads", "ffn", "max_train_examples", "importance_examples"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), name, low=1, integer=True, error=CompressionError)
        if self.remove_heads is not None:
            check_number(self.remove_heads, "remove_heads", low=0, integer=True, error=CompressionError)
        if self.target_speedup is not None:
            check_number(self.target_speedup, "target_speedup", low=1, low_open=True, error=CompressionError)
        self.distill.check()
        self.augment.check()
        if self.augment.copies and self.distill.alpha <= 0:
            raise CompressionError("{augment} needs the teacher's soft targets ({alpha} above 0): augmented rows have "
                                   "no label", options=("augment", "alpha"))
