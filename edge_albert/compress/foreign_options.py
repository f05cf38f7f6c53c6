"""What `distill` and `teacher-outputs` are asked to do, apart from the code, so the CLI shows the defaults cheaply.

Standard library only (the configs it holds are plain dataclasses too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

from ..data import DEFAULT_LABEL_COLUMN, DEFAULT_LABELS, DEFAULT_TEXT_COLUMN
from ..finetune_config import FinetuneConfig
from .augment import AugmentConfig
from .distill import DistillConfig

SAVE_DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class TransferOptions:
    """The transfer set (training rows + augmented copies) and how the teacher's outputs on it are computed."""

    labels: Tuple[str, ...] = DEFAULT_LABELS
    text_column: str = DEFAULT_TEXT_COLUMN
    label_column: str = DEFAULT_LABEL_COLUMN
    pair_column: Optional[str] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augment_seed: int = 0  # its own seed: a student's training seed must not change the transfer texts
    teacher_max_length: int = 128
    teacher_batch_size: int = 64
    chunk_rows: int = 4096  # rows per saved chunk of a resumable computation
    threads: int = 1

    def to_dict(self) -> dict:
        return {**asdict(self), "labels": list(self.labels)}


@dataclass(frozen=True)
class DistilOptions:
    """The transfer set, the student's training (hidden_weight must stay 0: the widths differ), and
    the shape of a student trained from scratch (FinetuneConfig's shape and tokenizer fields)."""

    transfer: TransferOptions = field(default_factory=TransferOptions)
    distill: DistillConfig = field(default_factory=DistillConfig)
    multi_depth: bool = False  # KD + CE after every call of the shared layer, for convert --early-exit
    scratch: FinetuneConfig = field(default_factory=FinetuneConfig)  # only without a student checkpoint
    save_dtype: str = "float16"

    def to_dict(self, from_scratch: bool) -> dict:
        out = {"transfer": self.transfer.to_dict(), "distill": self.distill.to_dict(), "multi_depth": self.multi_depth,
               "save_dtype": self.save_dtype}
        if from_scratch:
            out["scratch"] = {k: v for k, v in asdict(self.scratch).items() if k in SCRATCH_FIELDS}
        return out


# The FinetuneConfig fields a from-scratch student takes (the rest is finetune's own training recipe).
SCRATCH_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_act", "max_position_embeddings", "dropout", "classifier_dropout", "seed")
