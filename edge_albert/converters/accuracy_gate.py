"""The accuracy gate: a bundle's task metric against the PyTorch model it was converted from.

Workstation side (torch, transformers): the PyTorch reference behind the task API, so it shares
tokenization and decoding with a bundle; `convert --eval-data`'s gate and its table; and
`evaluate --reference`, which hands this reference to the device-only `evaluate.evaluate_bundle`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..bundle import Bundle
from ..contract import INPUT_NAMES
from ..device_options import DEFAULT_BATCH_SIZE
from ..early_exit import ExitRule
from ..errors import EdgeAlbertError
from ..evaluate import EVALUATED_TASKS, BundleModel, EvalData, EvaluationReport, Progress, evaluate_bundle, evaluate_model
from ..quantization import DEFAULT_MAX_ACCURACY_DROP, QuantizationMode
from ..report import format_table, megabytes
from ..runtime import ModelSession
from ..tasks import SEQUENCE_OUTPUTS, TASK_CLASSES, TextClassifier
from ..tokenizer import AlbertTokenizer
from ..hf.checkpoint import AlbertCheckpoint, load_checkpoint
from ..hf.quiet import require_workstation
from ..hf.reference import ReferenceRunner, load_reference_runner

REFERENCE_MODULES = ("torch", "transformers", "safetensors")


def evaluate_against_reference(bundle_path, data_path, reference_checkpoint, batch_size: int = DEFAULT_BATCH_SIZE,
                               progress: Optional[Progress] = None, **options) -> EvaluationReport:
    """`evaluate_bundle` with the PyTorch checkpoint `reference_checkpoint` run on the same data.

    The reference follows the bundle's early-exit rule (after `exit_value`), so agreement
    compares like with like. `options` are evaluate_bundle's.
    """
    if reference_checkpoint is None:
        return evaluate_bundle(bundle_path, data_path, batch_size=batch_size, progress=progress, **options)
    require_workstation("evaluate --reference", REFERENCE_MODULES)  # before any work
    say = progress or (lambda message: None)

    def reference(model: BundleModel, data: EvalData) -> EvaluationReport:
        rule = model.exit_rule if isinstance(model, TextClassifier) else None
        checkpoint = load_checkpoint(reference_checkpoint)
        if checkpoint.task != model.task:
            raise EdgeAlbertError(f"the reference {reference_checkpoint} is a {checkpoint.task} model, "
                                  f"the bundle {model.task}")
        if model.task == "text-classification" and checkpoint.labels != model.labels:
            raise EdgeAlbertError(f"the reference's labels ({', '.join(checkpoint.labels)}) differ from the "
                                  f"bundle's ({', '.join(model.labels)})")
        say(f"running the PyTorch reference {reference_checkpoint} on {len(data)} examples")
        reference_model = reference_task_model(checkpoint, model.max_seq_len, batch_size=batch_size, early_exit=rule)
        report = evaluate_model(reference_model, data, name=f"pytorch {reference_checkpoint}")
        report.settings["weights_sha256"] = checkpoint.weights_sha256
        return report

    return evaluate_bundle(bundle_path, data_path, reference=reference, batch_size=batch_size, progress=progress,
                           **options)


class ReferenceSession:
    """ModelSession's interface over the PyTorch reference runner, so the reference shares tokenization and decoding."""

    def __init__(self, runner: ReferenceRunner, max_seq_len: int):
        self.runner = runner
        self.output_names = runner.output_names
        self.max_seq_len = int(max_seq_len)
        self.sequence_outputs = frozenset(SEQUENCE_OUTPUTS[runner.task])
        self.backend = "pytorch"
        self.early_exit = runner.early_exit
        self.constant_inputs = runner.early_exit.feed() if runner.early_exit else {}

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> Dict[str, np.ndarray]:
        if input_ids.shape[0] == 0:
            return {}
        # TextClassifier.set_exit_value changes the constant inputs; the rule follows them
        rule = self.early_exit.from_feed(self.constant_inputs) if self.early_exit is not None else None
        return self.runner.run(dict(zip(INPUT_NAMES, (input_ids, attention_mask, token_type_ids))), early_exit=rule)

    def padded_length(self, length: int, rows: int = 1) -> int:
        """PyTorch runs any width: no length buckets, the batch's longest row."""
        return int(length)

    def run_padded(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                   token_type_ids: np.ndarray) -> Dict[str, np.ndarray]:
        return self.run(input_ids, attention_mask, token_type_ids)


def reference_task_model(checkpoint, max_seq_len: int, torch_model=None, batch_size: int = DEFAULT_BATCH_SIZE,
                         early_exit: Optional[ExitRule] = None) -> BundleModel:
    """The checkpoint's PyTorch model behind the task API (same max length, labels and decoding as a bundle).

    Tokenizes with the checkpoint's own tokenizer.json through the runtime tokenizer (which is
    held identical to transformers'), so only the model differs between reference and bundle.
    """
    if not isinstance(checkpoint, AlbertCheckpoint):
        checkpoint = load_checkpoint(checkpoint)
    if checkpoint.task not in EVALUATED_TASKS:
        raise EdgeAlbertError(f"evaluation supports {' and '.join(EVALUATED_TASKS)} models, not {checkpoint.task}")
    pad_id = checkpoint.tokenizer_settings["special_tokens"]["pad_id"]
    tokenizer = AlbertTokenizer.from_file(checkpoint.tokenizer_json, pad_id=pad_id)
    session = ReferenceSession(load_reference_runner(checkpoint, torch_model, early_exit), max_seq_len)
    bundle = Bundle(path=checkpoint.path, manifest={"task": checkpoint.task, "labels": checkpoint.labels,
                                                     "max_seq_len": max_seq_len, "problem_type": checkpoint.problem_type,
                                                     **_early_exit_manifest(early_exit, checkpoint.config.num_hidden_layers)})
    return TASK_CLASSES[checkpoint.task](bundle, session, tokenizer, batch_size=batch_size)


def task_model(model_path, task: str, labels: Sequence[str], tokenizer, max_seq_len: int,
               num_threads: Optional[int] = None, batch_size: int = DEFAULT_BATCH_SIZE,
               early_exit: Optional[ExitRule] = None, max_calls: int = 0) -> BundleModel:
    """A task object over a bare .tflite file (no bundle yet): how `convert` evaluates a variant."""
    model_path = Path(model_path)
    bundle = Bundle(path=model_path.parent, manifest={"task": task, "labels": list(labels), "max_seq_len": max_seq_len,
                                                       **_early_exit_manifest(early_exit, max_calls)})
    session = ModelSession(model_path, num_threads=num_threads, max_seq_len=max_seq_len, pad_id=tokenizer.pad_id,
                           sequence_outputs=SEQUENCE_OUTPUTS[task],
                           constant_inputs=early_exit.feed() if early_exit else None)
    return TASK_CLASSES[task](bundle, session, tokenizer, batch_size=batch_size)


def _early_exit_manifest(rule: Optional[ExitRule], max_calls: int) -> dict:
    return {"early_exit": {**rule.to_manifest(), "max_calls": max_calls}} if rule is not None else {}


# --------------------------------------------------------------------------- the accuracy gate


@dataclass
class AccuracyGate:
    """A variant's task metric against the PyTorch reference on the same file, in percentage points."""

    metric: str
    data: str
    data_sha256: str
    n: int
    reference: float
    variant: float
    drop_points: float
    max_drop_points: float
    agreement: Optional[float]
    passed: bool
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy_gate(mode: QuantizationMode, reference: EvaluationReport, variant: EvaluationReport,
                  max_drop_points: float = DEFAULT_MAX_ACCURACY_DROP) -> AccuracyGate:
    """Pass when the variant loses at most `max_drop_points` percentage points of the reference's metric."""
    metric = reference.metric_name
    drop = round(100.0 * (reference.headline - variant.headline), 6)  # rounding: 1.0000000001 is 1.0
    passed = drop <= max_drop_points
    data_name = Path(variant.data).name
    summary = (f"{metric} {variant.headline:.2%} vs PyTorch {reference.headline:.2%} on {variant.n} examples "
               f"of {data_name} ({0.0 - drop:+.2f} points, agreement {variant.agreement:.1%})")
    message = summary if passed else (
        f"{mode.name} loses {drop:.2f} points of {metric} on {data_name} ({variant.headline:.2%} vs PyTorch "
        f"{reference.headline:.2%}, n={variant.n}), more than the {max_drop_points:g} allowed; "
        + _gate_hint(mode))
    return AccuracyGate(metric, str(variant.data), variant.data_sha256, variant.n, reference.headline, variant.headline, drop,
                        float(max_drop_points), variant.agreement, bool(passed), message)


def _gate_hint(mode: QuantizationMode) -> str:
    """What to try when a variant loses too much: a calibrated mode's own hint, else more precision."""
    return mode.retry_hint if mode.needs_calibration else "try a higher precision"


def accuracy_table(reference: EvaluationReport, variants) -> str:
    """convert's summary: the reference and each variant's metric, drop, agreement and verdict."""
    name = reference.metric_name
    rows = [["pytorch (reference)", "-", f"{reference.headline:.2%}", "-", "-", "reference"]]
    for v in variants:
        gate = v.accuracy
        if gate is None:
            continue
        verdict = "pass" if gate.passed else ("FORCED" if v.bundled else "REFUSED")
        rows.append([v.quantize, megabytes(v.inspection.file_bytes), f"{gate.variant:.2%}", f"{0.0 - gate.drop_points:+.2f}",
                     f"{gate.agreement:.1%}", verdict])
    title = f"{name} on {Path(reference.data).name} ({reference.n} examples)"
    return title + "\n" + format_table(["model", "size", name, "points", "agreement", "gate"], rows)
