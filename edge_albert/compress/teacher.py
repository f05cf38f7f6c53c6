"""A foreign teacher: any Hugging Face sequence classifier directory (BERT, MiniLM, RoBERTa...) with its own tokenizer.

`distil` trains an ALBERT student on this teacher's soft targets, computed per text with the
teacher's own tokenizer (edge_albert/compress/teacher_outputs.py), so the two tokenizers never
need to match. Everything here is checked from the directory's files before any weights load:
a sequence classifier, single-label, weights present, a tokenizer present, and labels (config
id2label, in order) equal to the data's. torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from ..bundle import sha256_of_file
from ..errors import CompressionError
from ..hf.quiet import quiet_transformers

# Files one of which a saved transformers tokenizer holds (fast, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class TeacherInfo:
    """What the teacher directory says about itself, read without loading the weights."""

    path: Path
    architecture: str
    model_type: str
    labels: List[str]
    weights_sha256: str  # sha256 of its weight file (of the shards' digests for a sharded checkpoint)
    weight_files: List[str]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "architecture": self.architecture, "model_type": self.model_type,
                "labels": self.labels, "weights_sha256": self.weights_sha256, "weight_files": self.weight_files}


def inspect_teacher(teacher_dir) -> TeacherInfo:
    """Check TEACHER's directory (one error line each) and digest its weights; loads nothing heavy."""
    path = Path(teacher_dir)
    if not path.is_dir():
        raise CompressionError(f"teacher {path}: no such directory")
    config = read_model_config(path, "teacher", "it must be a saved transformers model")
    architectures = config.get("architectures") or []
    architecture = next((a for a in architectures if str(a).endswith("ForSequenceClassification")), None)
    if architecture is None:
        raise CompressionError(f"teacher {path} is a {', '.join(architectures) or 'model without architectures'}; "
                               "distil takes a sequence classifier (AutoModelForSequenceClassification)")
    if config.get("problem_type") == "multi_label_classification":
        raise CompressionError(f"teacher {path} is a multi-label classifier; distil takes single-label classifiers")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CompressionError(f"teacher {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the "
                               "teacher's tokenizer there (tokenizer.save_pretrained(DIR)): its soft targets are "
                               "computed with its own tokenizer")
    files = _weight_files(path)
    return TeacherInfo(path=path, architecture=architecture, model_type=str(config.get("model_type", "")),
                       labels=_labels_of(config, path), weights_sha256=_weights_digest(path, files), weight_files=files)


def check_same_labels(found: Sequence[str], wanted: Sequence[str], whose: str) -> None:
    """`whose` labels must be the data's, the same names in the same order (the logits' columns are classes)."""
    if list(found) != list(wanted):
        raise CompressionError(f"{whose} has labels {list(found)}, the data {list(wanted)} ({{labels}}): they must be "
                               "the same names in the same order", options=("labels",))


def load_teacher(info: TeacherInfo) -> Tuple[object, object]:
    """(model in float32 and eval mode, tokenizer); one error line if transformers cannot read either."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(info.path))
    except (OSError, ValueError, TypeError) as exc:
        raise CompressionError(f"teacher {info.path}: transformers cannot load its tokenizer: {_first_line(exc)}") from None
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(info.path), dtype=torch.float32)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CompressionError(f"teacher {info.path}: transformers cannot load it: {_first_line(exc)}") from None
    return model.eval(), tokenizer


def _labels_of(config: dict, path: Path) -> List[str]:
    id2label = config.get("id2label")
    if not id2label:  # transformers leaves out its default names: LABEL_0.. for num_labels (2 unless set)
        id2label = {i: f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))}
    try:
        labels = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise CompressionError(f"teacher {path}/config.json has a bad id2label: {id2label!r}") from None
    if sorted(labels) != list(range(len(labels))) or len(labels) < 2:
        raise CompressionError(f"teacher {path}/config.json id2label must name classes 0..N-1 (N >= 2), not {id2label!r}")
    return [labels[i] for i in range(len(labels))]


def _weight_files(path: Path) -> List[str]:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return [name]
    for index in SHARD_INDEXES:
        if (path / index).is_file():
            try:
                shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise CompressionError(f"teacher {path}/{index} cannot be read: {exc}") from None
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise CompressionError(f"teacher {path} lacks the weight shards {', '.join(missing)}")
            return shards
    raise CompressionError(f"teacher {path} has no weights ({' or '.join(WEIGHT_FILES)})")


def _weights_digest(path: Path, files: List[str]) -> str:
    digests = [sha256_of_file(path / name) for name in files]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(f"{name} {d}\n" for name, d in zip(files, digests)).encode()).hexdigest()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_model_config(path: Path, role: str, remedy: str) -> dict:
    """`path`/config.json as a dict, or one CompressionError line naming the role (teacher, student) and the remedy."""
    try:
        return json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise CompressionError(f"{role} {path} has no config.json; {remedy}") from None
    except (OSError, ValueError) as exc:
        raise CompressionError(f"{role} {path}/config.json cannot be read: {exc}") from None
