"""The settings of one `convert` run, with their defaults, in one place.

`convert_checkpoint` and the CLI's `convert` both build a ConvertOptions. This module imports
nothing heavy (no numpy, TensorFlow or torch), so reading it costs the CLI nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Union

from ..data import DEFAULT_LABEL_COLUMN
from ..quantization import DEFAULT_CALIBRATION_SAMPLES, DEFAULT_GRAPH_FORM, DEFAULT_MAX_ACCURACY_DROP

if TYPE_CHECKING:
    from ..early_exit import ExitRule

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class ConvertOptions:
    """How every requested variant is built, checked and bundled (the variants themselves: `quantize`).

    `eval_data` (TSV/CSV/JSONL for classifiers, SQuAD JSON for QA) adds the accuracy gate: each
    variant's metric may fall at most `max_accuracy_drop` percentage points below PyTorch's.
    `early_exit` ("patience=N", "entropy=T") builds the loop form that stops each input early.
    `sign_key` signs each written bundle's manifest (edge_albert.signing).
    """

    graph: str = DEFAULT_GRAPH_FORM
    max_seq_len: Optional[int] = None  # None: DEFAULT_MAX_SEQ_LEN, at most max_position_embeddings
    per_channel_dense: bool = True
    calibration_texts: Optional[Sequence[str]] = None  # None: from eval_data's training split
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES
    samples: Optional[Sequence[str]] = None  # texts verified against PyTorch; None: the built-in set
    eval_data: Optional[PathLike] = None
    text_column: Optional[str] = None
    text_pair_column: Optional[str] = None
    label_column: str = DEFAULT_LABEL_COLUMN
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    early_exit: Optional[Union[str, "ExitRule"]] = None
    force: bool = False  # bundle a variant that fails verification or the gate (marked forced)
    overwrite: bool = False
    sign_key: Optional[PathLike] = None
    revision: Optional[str] = None  # branch, tag or commit when the checkpoint is a Hugging Face model id

    def __post_init__(self) -> None:
        # Text lists are stored as tuples: the options of a run cannot change under it.
        for name in ("calibration_texts", "samples"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

