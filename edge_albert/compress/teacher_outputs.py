"""A teacher's soft targets on a transfer set, computed once, in a file a student can train from without the teacher.

The file (`*.safetensors`, safetensors first) holds one tensor, `logits` float16 [rows, labels],
in the transfer set's row order (the training file's rows, then `augment` unlabelled copies of
each), and in its metadata `format` and `record`, a JSON object:

- `labels`: the teacher's id2label in order (the logits' columns);
- `teacher`: its architecture, model type and `weights_sha256` (sha256 of its weight file);
- `texts`: `sha256` of the ordered texts (per row, the UTF-8 JSON of [text, text_pair] and a
  newline), `rows`, the training file and its sha256, the columns, the augmentation settings,
  its seed and the mask token it used (the teacher's), so the same texts can be rebuilt;
- `max_length` (the teacher's truncation), `logits_sha256` (of the float16 tensor's bytes,
  checked on every load), how long it took, on how many threads, and the library versions.

Computing: teacher in float32 and eval mode, no_grad, `torch.set_num_threads(threads)`, rows
sorted by the teacher's token length and cut into chunks of `chunk_rows` (each chunk in batches
of `batch_size`). Each finished chunk is saved in FILE.partial/ at once, so a killed run resumes
where it stopped; progress (rows/s, ETA) goes to `log` after each chunk. The finished file is
written beside its final name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..bundle import sha256_of_file
from ..data import Example
from ..errors import CompressionError
from .augment import AugmentConfig, augment_examples
from .run import _versions
from .teacher import check_same_labels

FORMAT = "edge-albert teacher outputs v1"
LOGITS = "logits"
PARTIAL_FORMAT = "edge-albert teacher outputs partial v1"


@dataclass(frozen=True)
class TeacherOutputs:
    """A loaded teacher-outputs file: float16 logits in transfer-set order and their record."""

    logits: object  # numpy float16 [rows, labels]
    record: dict
    path: Path
    file_sha256: str

    @property
    def labels(self) -> List[str]:
        return list(self.record["labels"])


def transfer_rows(train: Sequence[Example], augment: AugmentConfig, mask_token: str, seed: int) -> List[Example]:
    """The rows soft targets are computed on: the training rows, then `augment.copies` unlabelled copies of each."""
    return list(train) + (augment_examples(train, augment, mask_token, seed=seed) if augment.copies else [])


def texts_sha256(rows: Sequence[Example]) -> str:
    """The digest of the ordered texts (labels excluded: soft targets depend on the text alone)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.text_pair], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def read_record(path) -> dict:
    """The record of a teacher-outputs file, read from its header only (cheap: no tensors, no torch)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            if size > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(handle.read(size))
        metadata = header.get("__metadata__") or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        record = json.loads(metadata["record"])
        shape = header[LOGITS]["shape"]
        if header[LOGITS]["dtype"] != "F16" or shape != [record["texts"]["rows"], len(record["labels"])]:
            raise ValueError(f"logits {header[LOGITS]['dtype']} {shape}")
    except FileNotFoundError:
        raise CompressionError(f"{path}: no such teacher-outputs file") from None
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CompressionError(f"{path} is not an edge-albert teacher-outputs file ({FORMAT}): {exc}") from None
    return record


def check_record(record: dict, path, *, labels: Sequence[str], texts: Optional[dict] = None,
                 teacher_sha256: Optional[str] = None) -> None:
    """One error line when the file is not the teacher's outputs on these texts with these labels."""
    check_same_labels(record["labels"], labels, f"teacher-outputs file {path}")
    if teacher_sha256 is not None and record["teacher"]["weights_sha256"] != teacher_sha256:
        raise CompressionError(f"teacher-outputs file {path} was computed by the teacher with weights sha256 "
                               f"{record['teacher']['weights_sha256'][:16]}..., not this teacher's "
                               f"({teacher_sha256[:16]}...)")
    if texts is not None and record["texts"]["sha256"] != texts["sha256"]:
        theirs = record["texts"]
        raise CompressionError(
            f"teacher-outputs file {path} was computed on other texts ({theirs['rows']} rows from training file sha256 "
            f"{str(theirs['train']['sha256'])[:16]}..., {{augment}} {theirs['augment']['copies']}, "
            f"{{augment_seed}} {theirs['augment_seed']}; this run: {texts['rows']} rows from "
            f"{str(texts['train']['sha256'])[:16]}..., {texts['augment']['copies']}, {texts['augment_seed']}); "
            "use the same training file and augmentation", options=("augment", "augment_seed"))


def load_outputs(path) -> TeacherOutputs:
    """The file's logits and record; refused if the logits' bytes do not match their recorded digest."""
    from safetensors.numpy import load_file

    path = Path(path)
    record = read_record(path)
    logits = load_file(str(path))[LOGITS]
    if hashlib.sha256(logits.tobytes()).hexdigest() != record["logits_sha256"]:
        raise CompressionError(f"teacher-outputs file {path} is corrupt: its logits do not match their recorded sha256")
    return TeacherOutputs(logits=logits, record=record, path=path, file_sha256=sha256_of_file(path))


def compute_outputs(model, tokenizer, rows: Sequence[Example], out_file, record: dict, *, max_length: int,
                    threads: int, batch_size: int = 64, chunk_rows: int = 4096,
                    log: Callable[[str], None] = print) -> TeacherOutputs:
    """Run the teacher on `rows` (resuming from OUT_FILE.partial/) and write OUT_FILE; `record` has labels,
    teacher and texts (see the module docstring), the rest is added here."""
    import torch

    out_file = Path(out_file)
    partial = out_file.with_name(out_file.name + ".partial")
    torch.set_num_threads(threads)
    started = time.perf_counter()
    encoded = _encode(tokenizer, rows, max_length)
    order = sorted(range(len(rows)), key=lambda i: len(next(iter(encoded[i].values()))))  # by token count
    chunks = [order[start:start + chunk_rows] for start in range(0, len(order), chunk_rows)]
    _open_partial(partial, {"format": PARTIAL_FORMAT, "teacher_sha256": record["teacher"]["weights_sha256"],
                            "texts_sha256": record["texts"]["sha256"], "max_length": max_length,
                            "chunk_rows": chunk_rows, "batch_size": batch_size}, log)
    done = sum((partial / f"chunk-{k:06d}.npy").is_file() for k in range(len(chunks)))
    if done:
        log(f"teacher outputs: resuming, {done} of {len(chunks)} chunks already in {partial}")
    progress = _Progress(len(rows), sum(len(c) for k, c in enumerate(chunks) if (partial / f"chunk-{k:06d}.npy").is_file()), log)
    model.eval()
    for k, chunk in enumerate(chunks):
        path = partial / f"chunk-{k:06d}.npy"
        if path.is_file():
            continue
        logits = _run_chunk(model, tokenizer, [encoded[i] for i in chunk], batch_size)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, logits)
        os.replace(tmp, path)
        progress.advance(len(chunk))
    logits = np.zeros((len(rows), len(record["labels"])), dtype=np.float32)
    for k, chunk in enumerate(chunks):
        logits[chunk] = np.load(partial / f"chunk-{k:06d}.npy")
    logits16 = logits.astype(np.float16)
    if not np.isfinite(logits16).all():
        raise CompressionError("the teacher's logits overflow float16 (or are not finite); they cannot be stored")
    full = {**record, "max_length": max_length, "dtype": "float16",
            "logits_sha256": hashlib.sha256(logits16.tobytes()).hexdigest(),
            "computed": {"seconds": round(time.perf_counter() - started, 1), "threads": threads,
                         "batch_size": batch_size, "rows_sorted_by_length": True, "versions": _versions()}}
    _write_file(out_file, logits16, full)
    shutil.rmtree(partial, ignore_errors=True)
    return load_outputs(out_file)


class _Progress:
    """rows/s and ETA after each chunk, measured on the rows computed by this process."""

    def __init__(self, total: int, done: int, log):
        self.total, self.done, self.log = total, done, log
        self.fresh = 0
        self.started = time.perf_counter()

    def advance(self, rows: int) -> None:
        self.done += rows
        self.fresh += rows
        seconds = time.perf_counter() - self.started
        rate = self.fresh / seconds if seconds > 0 else float("inf")
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        self.log(f"teacher outputs: {self.done}/{self.total} rows, {rate:.0f} rows/s, ETA {_duration(left)}")


def _encode(tokenizer, rows: Sequence[Example], max_length: int) -> List[dict]:
    texts = [row.text for row in rows]
    pairs = [row.text_pair for row in rows]
    if any(p is not None for p in pairs):
        encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    else:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
    keys = list(encoded.keys())  # what this tokenizer gives its model (RoBERTa's has no token types)
    return [{k: encoded[k][i] for k in keys} for i in range(len(rows))]


def _run_chunk(model, tokenizer, features: List[dict], batch_size: int):
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = tokenizer.pad(features[start:start + batch_size], return_tensors="pt")
            out.append(model(**dict(batch)).logits.float().numpy())
    return np.concatenate(out).astype(np.float32)


def _open_partial(partial: Path, run: dict, log) -> None:
    """Reuse FILE.partial/ when it holds chunks of the same computation; otherwise start it afresh."""
    run_file = partial / "run.json"
    if partial.exists():
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, ValueError):
            previous = None
        if previous == run:
            return
        if not isinstance(previous, dict) or previous.get("format") != PARTIAL_FORMAT:
            raise CompressionError(f"{partial} exists but holds no partial teacher outputs; move it away")
        log(f"teacher outputs: {partial} holds another computation; starting afresh")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    run_file.write_text(json.dumps(run, indent=1) + "\n")


def _write_file(out_file: Path, logits16, record: dict) -> None:
    from safetensors.numpy import save

    tmp = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    data = save({LOGITS: logits16}, metadata={"format": FORMAT, "record": json.dumps(record)})
    try:
        with open(tmp, "wb") as handle:  # open(): the umask's mode (save_file makes 0600 files)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out_file)
    finally:
        if tmp.exists():
            tmp.unlink()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
