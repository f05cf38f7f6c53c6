"""Tiny bundles made by the real converter, once per test process, shared by the runtime tests."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from tests.checkpoints import make_albert_checkpoint

MAX_SEQ_LEN = 32  # small, so that long texts and QA contexts overflow it
LABELS = {
    "text-classification": ["negative", "positive"],
    "question-answering": ["start", "end"],  # AlbertForQuestionAnswering sizes qa_outputs by num_labels
    "token-classification": ["O", "B-X", "I-X"],
    "feature-extraction": ["LABEL_0", "LABEL_1"],
}
_checkpoints: Dict[str, Path] = {}
_bundles: Dict[Tuple, Path] = {}


def checkpoint_for(root: Path, task: str) -> Path:
    if task not in _checkpoints:
        _checkpoints[task] = make_albert_checkpoint(root / f"ckpt-{task}", task=task, labels=LABELS[task], seed=1)
    return _checkpoints[task]


def bundle_for(root: Path, task: str, quantize: str = "fp32", graph: str = "loop",
               per_channel_dense: bool = True) -> Path:
    """Convert (once) the tiny `task` checkpoint; the converter verifies it against PyTorch first."""
    from edge_albert.converters.convert import convert_checkpoint

    key = (task, quantize, graph, per_channel_dense)
    if key not in _bundles:
        name = "-".join([task, quantize, graph] + ([] if per_channel_dense else ["per-tensor"]))
        result = convert_checkpoint(checkpoint_for(root, task), root / f"{name}.edgealbert", quantize=quantize,
                                    graph=graph, max_seq_len=MAX_SEQ_LEN, per_channel_dense=per_channel_dense)
        assert result.bundle is not None, f"the converter bundled nothing for {key}"
        _bundles[key] = result.bundle.path
    return _bundles[key]
