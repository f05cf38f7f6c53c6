"""Check every converted variant against the PyTorch reference before it is bundled.

Each check names the output, the measured max and mean absolute difference, the tolerance
and the label agreement, and says what to try when it fails (as Optimum's validator did).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..contract import ATTENTION_MASK, INPUT_IDS, INPUT_NAMES, SIGNATURE_NAME, task_contract
from ..early_exit import CALLS_OUTPUT, ExitRule
from ..hf.checkpoint import AlbertCheckpoint
from ..hf.quiet import import_tensorflow
from ..hf.reference import load_reference_model, load_reference_runner  # noqa: F401 (load_reference_model re-exported)
from ..quantization import MIN_LABEL_AGREEMENT, Parity, QuantizationMode
from ..runtime import create_interpreter, native_logs_silenced
from ..tokenizer import AlbertTokenizer
from .graph import OUTPUT_NAMES

# Each mode's parity rule (absolute tolerance or label agreement) and the tolerance recorded for
# devices come from the modes table (edge_albert/quantization.py).
BATCH_SIZE = 4

Batch = Dict[str, np.ndarray]


@dataclass
class VariantCheck:
    variant: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    tolerance: Optional[float]
    label_agreement: Optional[float]
    min_label_agreement: Optional[float]
    runtime_tolerance: float
    passed: bool
    worst_output: str
    message: str
    reference: str = "pytorch"
    # Early-exit bundles: share of samples that stopped at the same layer call as the reference.
    exit_call_agreement: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


def encode_samples(
    checkpoint: AlbertCheckpoint,
    texts: Sequence[str],
    pairs: Sequence[Optional[str]],
    max_seq_len: int,
    fixed_length: Optional[int] = None,
    batch_size: int = BATCH_SIZE,
) -> List[Batch]:
    """Tokenize with the runtime's tokenizer (proven identical to transformers) and pad per batch
    (or every row to `fixed_length`, for unrolled models)."""
    pad_id = checkpoint.tokenizer_settings["special_tokens"]["pad_id"] or 0
    tokenizer = AlbertTokenizer.from_file(checkpoint.tokenizer_json, pad_id=pad_id)
    text_pairs = None if all(pair is None for pair in pairs) else [pair or "" for pair in pairs]
    encoded = tokenizer.encode(list(texts), text_pairs, max_length=max_seq_len, truncation="longest_first")
    size = 1 if fixed_length else batch_size
    batches = []
    for start in range(0, encoded.num_rows, size):
        chunk = encoded.rows(slice(start, start + size))
        batch = {name: getattr(chunk, name) for name in INPUT_NAMES}
        if fixed_length:
            padding = ((0, 0), (0, fixed_length - chunk.length))
            batch = {name: np.pad(batch[name], padding, constant_values=pad_id if name == INPUT_IDS else 0)
                     for name in INPUT_NAMES}
        batches.append(batch)
    return batches


def reference_outputs(checkpoint: AlbertCheckpoint, batches: List[Batch], model=None,
                      early_exit: Optional[ExitRule] = None) -> List[Dict[str, np.ndarray]]:
    """The PyTorch model's outputs per batch; with `early_exit`, its exit logits and layer calls."""
    return load_reference_runner(checkpoint, model, early_exit).run_all(batches)


def make_interpreter(model_bytes: bytes, num_threads: int = 2):
    """An interpreter for verification on the workstation (LiteRT if present, else tf.lite)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = import_tensorflow().lite.Interpreter
    return create_interpreter(model_bytes, num_threads, Interpreter)


def tflite_outputs(model_bytes: bytes, batches: List[Batch], output_names: Sequence[str]) -> List[Dict[str, np.ndarray]]:
    interpreter = make_interpreter(model_bytes)
    runner = interpreter.get_signature_runner(SIGNATURE_NAME)
    results = []
    for batch in batches:
        with native_logs_silenced():  # the XNNPACK delegate announces itself on the first run
            output = runner(**batch)
        results.append({name: np.asarray(output[name]) for name in output_names})
    return results


def _valid_positions(task: str, name: str, mask: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Token-level outputs are compared at real tokens only; sequence-level outputs whole."""
    if name in task_contract(task).per_sequence_outputs:
        return output.reshape(output.shape[0], -1)
    return output[mask.astype(bool)]


def _agreement(task: str, ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray], mask: np.ndarray) -> tuple:
    """(agreeing, total) predictions: labels, token labels, or QA start/end positions."""
    if task == "text-classification":
        return int((ref["logits"].argmax(-1) == got["logits"].argmax(-1)).sum()), ref["logits"].shape[0]
    if task == "token-classification":
        valid = mask.astype(bool)
        same = ref["logits"].argmax(-1)[valid] == got["logits"].argmax(-1)[valid]
        return int(same.sum()), int(valid.sum())
    if task == "question-answering":
        agree, total = 0, 0
        for name in ("start_logits", "end_logits"):
            masked_ref = np.where(mask.astype(bool), ref[name], -np.inf)
            masked_got = np.where(mask.astype(bool), got[name], -np.inf)
            agree += int((masked_ref.argmax(-1) == masked_got.argmax(-1)).sum())
            total += mask.shape[0]
        return agree, total
    ref_pooled, got_pooled = ref["pooler_output"], got["pooler_output"]
    cosine = (ref_pooled * got_pooled).sum(-1) / (
        np.linalg.norm(ref_pooled, axis=-1) * np.linalg.norm(got_pooled, axis=-1) + 1e-12
    )
    return int((cosine >= 0.99).sum()), ref_pooled.shape[0]


@dataclass
class _Differences:
    """Absolute differences and prediction agreement between reference and candidate, over all batches."""

    max_diff: float = 0.0
    total_diff: float = 0.0
    count: int = 0
    worst: str = ""
    agree: int = 0
    total: int = 0
    mismatch: str = ""  # set when an output's shape differs from the reference's; measuring stops there

    def add(self, name: str, diff: np.ndarray) -> None:
        if diff.size and float(diff.max()) > self.max_diff:
            self.max_diff, self.worst = float(diff.max()), name
        self.total_diff += float(diff.sum())
        self.count += diff.size

    @property
    def agreement(self) -> Optional[float]:
        return self.agree / self.total if self.total else None

    @property
    def mean_diff(self) -> float:
        return self.total_diff / self.count if self.count else 0.0


def _measure(
    task: str,
    batches: List[Batch],
    reference: List[Dict[str, np.ndarray]],
    candidate: List[Dict[str, np.ndarray]],
) -> _Differences:
    """Compare every output of every batch at its valid positions, and count agreeing predictions."""
    found = _Differences()
    for batch, ref, got in zip(batches, reference, candidate):
        mask = batch[ATTENTION_MASK]
        for name in ref:
            if ref[name].shape != got[name].shape:
                found.mismatch = f"output {name} has shape {got[name].shape}, reference {ref[name].shape}"
                return found
            found.add(name, np.abs(_valid_positions(task, name, mask, ref[name])
                                   - _valid_positions(task, name, mask, got[name])))
        a, t = _agreement(task, ref, got, mask)
        found.agree, found.total = found.agree + a, found.total + t
    return found


def compare_outputs(
    task: str,
    mode: QuantizationMode,
    batches: List[Batch],
    reference: List[Dict[str, np.ndarray]],
    candidate: List[Dict[str, np.ndarray]],
) -> VariantCheck:
    """Max/mean absolute difference per output, label agreement, and the pass/fail verdict."""
    found = _measure(task, batches, reference, candidate)
    if found.mismatch:
        return _failed(mode.name, found.mismatch)
    samples = sum(b[INPUT_IDS].shape[0] for b in batches)
    tolerance = mode.abs_tolerance if mode.parity is Parity.MAX_ABS_DIFF else None
    runtime_tolerance = mode.device_tolerance(found.max_diff)
    if tolerance is not None:
        passed, message, minimum = _tolerance_verdict(found, mode, tolerance)
    else:
        passed, message, minimum = _agreement_verdict(found, mode)
    return VariantCheck(
        variant=mode.name,
        samples=samples,
        max_abs_diff=found.max_diff,
        mean_abs_diff=found.mean_diff,
        tolerance=tolerance,
        label_agreement=found.agreement,
        min_label_agreement=minimum,
        runtime_tolerance=runtime_tolerance,
        passed=bool(passed),
        worst_output=found.worst,
        message=message,
    )


def _tolerance_verdict(found: _Differences, mode: QuantizationMode, tolerance: float) -> Tuple[bool, str, None]:
    """Float variants: every output within the mode's absolute tolerance."""
    max_diff, worst = found.max_diff, found.worst
    passed = max_diff <= tolerance and np.isfinite(max_diff)
    message = (
        f"max abs diff {max_diff:.3g} in {worst} within {tolerance:g}"
        if passed
        else f"max abs diff {max_diff:.3g} in {worst} exceeds the {mode.name} tolerance {tolerance:g}; "
        + mode.retry_hint
    )
    return passed, message, None


def _agreement_verdict(found: _Differences, mode: QuantizationMode) -> Tuple[bool, str, float]:
    """Quantized variants: predictions agree with the reference's often enough."""
    max_diff, agreement = found.max_diff, found.agreement
    minimum = MIN_LABEL_AGREEMENT
    passed = agreement is not None and agreement >= minimum and np.isfinite(max_diff)
    message = (
        f"label agreement {agreement:.1%} (max abs diff {max_diff:.3g}, mean {found.mean_diff:.3g})"
        if passed
        else f"label agreement {agreement:.1%} is below {minimum:.0%} (max abs diff {max_diff:.3g}); "
        + mode.retry_hint
    )
    return passed, message, minimum


def _failed(variant: str, message: str) -> VariantCheck:
    return VariantCheck(variant, 0, float("inf"), float("inf"), None, None, None, float("inf"), False, "", message)


def verify_variant(
    checkpoint: AlbertCheckpoint,
    model_bytes: bytes,
    mode: QuantizationMode,
    batches: List[Batch],
    reference: List[Dict[str, np.ndarray]],
    early_exit: Optional[ExitRule] = None,
) -> VariantCheck:
    """Run the .tflite on the sample batches and compare with the reference outputs."""
    if early_exit is not None:
        return verify_early_exit(checkpoint, model_bytes, mode, batches, reference, early_exit)
    candidate = tflite_outputs(model_bytes, batches, OUTPUT_NAMES[checkpoint.task])
    return compare_outputs(checkpoint.task, mode, batches, reference, candidate)


def verify_early_exit(
    checkpoint: AlbertCheckpoint,
    model_bytes: bytes,
    mode: QuantizationMode,
    batches: List[Batch],
    reference: List[Dict[str, np.ndarray]],
    rule: ExitRule,
) -> VariantCheck:
    """Exit logits as any variant's logits, plus the exit call of every sample.

    Float variants must stop every sample at the reference's call (batches of several rows, so
    this also proves a row keeps its own exit while the loop runs on for the others). Quantized
    ones may legitimately flip a borderline exit; their agreement is recorded, the labels gate.
    """
    fed = [{**batch, **rule.feed()} for batch in batches]
    candidate = tflite_outputs(model_bytes, fed, ("logits", CALLS_OUTPUT))
    check = compare_outputs(checkpoint.task, mode, batches, [{"logits": r["logits"]} for r in reference],
                            [{"logits": c["logits"]} for c in candidate])
    expected = np.concatenate([r[CALLS_OUTPUT] for r in reference])
    got = np.concatenate([c[CALLS_OUTPUT] for c in candidate])
    agreement = float(np.mean(expected == got)) if expected.size else 1.0
    message = f"{check.message}; exit call matches the reference on {int((expected == got).sum())}/{expected.size} samples"
    passed = check.passed
    if mode.parity is Parity.MAX_ABS_DIFF and agreement < 1.0:
        passed = False
        message += f" ({rule.as_text()}: a float variant must stop every sample where PyTorch does)"
    return replace(check, passed=bool(passed), message=message, exit_call_agreement=agreement)
