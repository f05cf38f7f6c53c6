"""The `convert` pipeline: checkpoint -> graph -> .tflite variants -> verification -> bundles.

Every variant is verified against the PyTorch reference before it is written; one that fails
its tolerance is reported and not bundled unless `force` is set. With `eval_data`, the reference
and every variant are also scored on that labelled file, and a variant that loses more than
`max_accuracy_drop` percentage points is refused the same way. Outputs are written atomically,
so a failure leaves nothing at the output path.
"""

from __future__ import annotations

import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from .. import __version__
from ..bundle import MODEL_FILE, SPIECE_FILE, TOKENIZER_FILE, Bundle, check_bundle_output, write_bundle
from ..early_exit import CALLS_OUTPUT, ExitRule, parse_rule
from ..errors import ConversionError, VerificationError
from ..data import DEFAULT_LABEL_COLUMN
from ..evaluate import EvalData, EvaluationReport, evaluate_model, load_eval_data
from . import samples as sample_sets
from .accuracy_gate import DEFAULT_MAX_ACCURACY_DROP, AccuracyGate, accuracy_gate, reference_task_model, task_model
from .checkpoint import AlbertCheckpoint, load_checkpoint
from ..contract import INPUT_DTYPE, INPUT_IDS, INPUT_NAMES, OUTPUT_DTYPE, SIGNATURE_NAME, task_contract
from ..quantization import (
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_GRAPH_FORM,
    DEFAULT_MAX_SEQ_LEN,
    DEFAULT_MODE,
    GRAPH_FORMS,
    LOOP,
    MODES,
    UNROLLED,
    QuantizationMode,
    parse_modes,
    quantization_mode,
)
from .quiet import require_workstation
from .tflite import ConversionJob, FlatbufferInspection, compact_and_check, ideal_bytes, start_conversion
from .reference import load_reference_model, load_reference_runner
from .verify import MIN_LABEL_AGREEMENT, VariantCheck, encode_samples, verify_variant

Progress = Callable[[str], None]
# The libraries convert needs; on the light (device) install it says which extra to add instead.
WORKSTATION_MODULES = ("tensorflow", "torch", "transformers", "safetensors")


@dataclass
class VariantResult:
    """One quantization variant: where it went (if anywhere) and how it measured."""

    quantize: str
    graph: str
    bundle_path: Optional[Path]
    inspection: Optional[FlatbufferInspection]  # None when the converter itself failed
    check: Optional[VariantCheck]
    convert_seconds: float
    bundled: bool
    bundle: Optional[Bundle] = None
    accuracy: Optional[AccuracyGate] = None  # measured when eval data was given
    failure: str = ""  # why it failed verification or the accuracy gate

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed and (self.accuracy is None or self.accuracy.passed)


@dataclass
class CalibrationSet:
    """Representative inputs for full-int8 calibration and where they came from (said and recorded)."""

    texts: List[str]
    pairs: List[Optional[str]]
    source: str
    origin: str

    def describe(self) -> str:
        return f"the first {len(self.texts)} texts of {self.source} ({self.origin})"

    def to_dict(self) -> dict:
        return {"source": self.source, "origin": self.origin, "texts": len(self.texts)}


@dataclass
class ConversionResult:
    checkpoint: AlbertCheckpoint
    variants: List[VariantResult] = field(default_factory=list)
    reference_evaluation: Optional[EvaluationReport] = None
    calibration: Optional[CalibrationSet] = None

    @property
    def bundle(self) -> Optional[Bundle]:
        """The bundle of a single-variant conversion (the common case)."""
        bundled = [v.bundle for v in self.variants if v.bundle is not None]
        return bundled[0] if len(bundled) == 1 else None

    @property
    def bundles(self) -> List[Bundle]:
        return [v.bundle for v in self.variants if v.bundle is not None]


def output_paths(output: Path, quantizations: Sequence[str]) -> List[Path]:
    """OUT for one variant; OUT's stem + '-<variant>' + suffix beside it for several."""
    output = Path(output)
    if len(quantizations) == 1:
        return [output]
    suffix = output.suffix or ".edgealbert"
    return [output.with_name(f"{output.stem}-{q}{suffix}") for q in quantizations]


def parse_quantizations(value: str) -> List[str]:
    """One mode name, a comma list ('fp32,fp16') or 'all' -> validated list of mode names (the modes table's rows)."""
    try:
        return [mode.name for mode in parse_modes(value)]
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


def check_modes_and_graph(modes: Sequence[QuantizationMode], graph: str) -> None:
    """Refuse a graph form a mode cannot be built in, from the table, before any work."""
    if graph not in GRAPH_FORMS:
        raise ConversionError(f"--graph must be {' or '.join(GRAPH_FORMS)}, not {graph!r}")
    for mode in modes:
        if graph not in mode.graph_forms:
            other = [m.name for m in MODES.values() if graph in m.graph_forms and m.int8_weights]
            raise ConversionError(
                f"{'full ' if mode.needs_calibration else ''}{mode.name} needs --graph {' or '.join(mode.graph_forms)}"
                + (" (the converter cannot calibrate the while-loop form)" if mode.needs_calibration and graph == LOOP else "")
                + (f"; {', '.join(other)} works with the {graph} form" if other else "")
            )


def convert_checkpoint(
    checkpoint_dir,
    output,
    quantize: str | Sequence[str] = DEFAULT_MODE,
    graph: str = DEFAULT_GRAPH_FORM,
    max_seq_len: Optional[int] = None,
    calibration_texts: Optional[Sequence[str]] = None,
    samples: Optional[Sequence[str]] = None,
    per_channel_dense: bool = True,
    force: bool = False,
    overwrite: bool = False,
    progress: Optional[Progress] = None,
    eval_data=None,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    text_column: Optional[str] = None,
    text_pair_column: Optional[str] = None,
    label_column: str = DEFAULT_LABEL_COLUMN,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    early_exit: Optional[str | ExitRule] = None,
) -> ConversionResult:
    """Convert a Hugging Face ALBERT checkpoint into one verified bundle per quantization.

    `eval_data` (TSV/CSV/JSONL for classifiers, SQuAD JSON for QA) adds the accuracy gate:
    each variant's metric may fall at most `max_accuracy_drop` percentage points below PyTorch's.
    `early_exit` ("patience=N", "entropy=T") builds the loop form that stops each input early
    (edge_albert.early_exit), verified against the PyTorch reference of the same rule.
    """
    say = progress or (lambda message: None)
    require_workstation("convert", WORKSTATION_MODULES)
    quantizations = parse_quantizations(quantize) if isinstance(quantize, str) else list(quantize)
    modes = [_mode(name) for name in quantizations]
    targets = output_paths(Path(output), quantizations)
    rule = _check_before_any_work(targets, overwrite, graph, modes, early_exit)

    say(f"loading checkpoint {checkpoint_dir}")
    checkpoint = load_checkpoint(checkpoint_dir)
    if rule is not None:
        check_early_exit_checkpoint(checkpoint)
    config = checkpoint.config
    needed = sum(ideal_bytes(checkpoint, q) for q in quantizations) + len(quantizations) * _tokenizer_bytes(checkpoint)
    # the variants go side by side: free space for all of them
    check_bundle_output(targets[0], overwrite=overwrite, needed_bytes=needed, error=ConversionError)
    if max_seq_len is None:
        max_seq_len = min(DEFAULT_MAX_SEQ_LEN, config.max_position_embeddings)
    if not 1 <= max_seq_len <= config.max_position_embeddings:
        raise ConversionError(f"--max-seq-len must be between 1 and {config.max_position_embeddings} (max_position_embeddings)")
    say(
        f"{checkpoint.architecture}: {checkpoint.parameter_count():,} parameters, V={config.vocab_size} "
        f"E={config.embedding_size} H={config.hidden_size}, {config.num_hidden_layers} calls of one shared layer"
    )
    data = None
    if eval_data is not None:
        if not max_accuracy_drop >= 0:
            raise ConversionError(f"--max-accuracy-drop must be a number of percentage points >= 0, not {max_accuracy_drop}")
        data = load_eval_data(eval_data, checkpoint.task, checkpoint.labels, text_column, text_pair_column, label_column)
        say(f"evaluation data: {len(data)} examples from {eval_data}")
    calibration = None
    if any(mode.needs_calibration for mode in modes):
        calibration = choose_calibration(checkpoint, calibration_texts, data, calibration_samples)
        say(f"full int8 calibrates on {calibration.describe()}")

    texts, pairs = sample_sets.sample_inputs(checkpoint.task, list(samples) if samples else None)
    fixed_length = max_seq_len if graph == UNROLLED else None
    batches = encode_samples(checkpoint, texts, pairs, max_seq_len, fixed_length=fixed_length)
    jobs = _conversion_jobs(checkpoint, modes, graph, max_seq_len, per_channel_dense, calibration, fixed_length, rule)
    say(f"building the TF graph ({graph} form) and converting {', '.join(quantizations)} in a worker process")
    result = ConversionResult(checkpoint=checkpoint, calibration=calibration)
    with start_conversion(jobs) as conversion:  # converts while PyTorch runs here
        say(f"running the PyTorch reference on {len(texts)} sample texts")
        runner = load_reference_runner(checkpoint, load_reference_model(checkpoint), early_exit=rule)
        reference = runner.run_all(batches)
        if rule is not None:
            say(f"early exit {rule.as_text()}: the PyTorch reference stops the samples after "
                f"{', '.join(str(int(c)) for r in reference for c in r[CALLS_OUTPUT])} of {config.num_hidden_layers} calls")
        if data is not None:
            say(f"evaluating the PyTorch reference on {len(data)} examples of {Path(eval_data).name}")
            result.reference_evaluation = evaluate_model(
                reference_task_model(checkpoint, max_seq_len, torch_model=runner.model, early_exit=rule),
                data, name="pytorch")
            say(f"PyTorch reference: {result.reference_evaluation.metric_name} "
                f"{result.reference_evaluation.headline:.2%}")
        converted = conversion.results()
        seconds = conversion.seconds
    for index, (quantization, target, model_bytes) in enumerate(zip(quantizations, targets, converted)):
        if isinstance(model_bytes, ConversionError):
            say(f"NOT converted {quantization}: {model_bytes}")
            result.variants.append(VariantResult(quantization, graph, None, None, None, seconds[index], False,
                                                 failure=str(model_bytes)))
            continue
        model_bytes, inspection = compact_and_check(model_bytes, checkpoint, quantization)
        result.variants.append(_verify_and_bundle(
            checkpoint, quantization, graph, target, model_bytes, inspection, seconds[index], batches, reference, data,
            result, calibration, max_seq_len, _mode(quantization).mask_bias, per_channel_dense, max_accuracy_drop, force,
            overwrite, say, rule))
    _raise_if_nothing_bundled(result)
    return result


def _check_before_any_work(targets: Sequence[Path], overwrite: bool, graph: str, modes: Sequence[QuantizationMode],
                           early_exit: Optional[str | ExitRule]) -> Optional[ExitRule]:
    """Refuse outputs (exists, parent a file, name too long, read-only, ...) and option combinations up front;
    return the parsed early-exit rule."""
    for target in targets:
        check_bundle_output(target, overwrite=overwrite, error=ConversionError)
    if graph not in GRAPH_FORMS:
        raise ConversionError(f"--graph must be {' or '.join(GRAPH_FORMS)}, not {graph!r}")
    rule = parse_rule(early_exit) if isinstance(early_exit, str) else early_exit
    if rule is not None:
        check_early_exit_options(graph, [mode.name for mode in modes])
    check_modes_and_graph(modes, graph)
    return rule


def _conversion_jobs(checkpoint: AlbertCheckpoint, modes: Sequence[QuantizationMode], graph: str, max_seq_len: int,
                     per_channel_dense: bool, calibration: Optional[CalibrationSet], fixed_length: Optional[int],
                     rule: Optional[ExitRule]) -> List[ConversionJob]:
    """One worker job per mode: the graph to build, its mask bias, calibration samples where the mode needs them."""
    jobs = []
    for mode in modes:
        samples_to_calibrate = None
        if mode.needs_calibration:
            samples_to_calibrate = _calibration_samples(checkpoint, calibration, max_seq_len, fixed_length)
        jobs.append(ConversionJob(mode.name, str(checkpoint.path), graph, max_seq_len, mode.mask_bias,
                                  per_channel_dense, samples_to_calibrate, rule.as_text() if rule else None))
    return jobs


def _raise_if_nothing_bundled(result: ConversionResult) -> None:
    """No bundle at all is an error: ConversionError when no variant converted, else VerificationError."""
    failed = [v for v in result.variants if not v.bundled]
    if failed and len(failed) == len(result.variants):
        message = "; ".join(f"{v.quantize}: {v.failure}" for v in failed)
        if all(v.check is None for v in failed):
            raise ConversionError(message)
        raise VerificationError(message)


def _verify_and_bundle(checkpoint, quantization, graph, target, model_bytes, inspection, seconds, batches, reference,
                       data, result, calibration, max_seq_len, mask_bias, per_channel_dense, max_accuracy_drop, force,
                       overwrite, say, rule: Optional[ExitRule] = None) -> VariantResult:
    """Check one converted variant against PyTorch (and the accuracy gate) and bundle it if it passes."""
    say(f"verifying {quantization} against PyTorch")
    check = verify_variant(checkpoint, model_bytes, quantization, batches, reference, early_exit=rule)
    gate = None
    if data is not None:
        say(f"evaluating {quantization} on {len(data)} examples")
        gate = _evaluate_variant(checkpoint, model_bytes, quantization, max_seq_len, data,
                                 result.reference_evaluation, max_accuracy_drop, rule)
        say(f"{quantization}: {gate.message}")
        check = _judge_agreement_on_eval_data(check, gate)
    passed = check.passed and (gate is None or gate.passed)
    failure = "" if passed else (check.message if not check.passed else gate.message)
    bundled = passed or force
    bundle = None
    if bundled:
        manifest = build_manifest(
            checkpoint, quantization, graph, max_seq_len, mask_bias, per_channel_dense, inspection, check,
            forced=not passed, accuracy=gate.to_dict() if gate else None,
            calibration=calibration.to_dict() if _mode(quantization).needs_calibration else None, early_exit=rule)
        bundle = write_bundle(target, _bundle_files(checkpoint, model_bytes), manifest, overwrite=overwrite)
        say(f"wrote {target}" + (" (forced)" if not passed else ""))
    else:
        say(f"NOT bundled {quantization}: {failure}")
    return VariantResult(quantization, graph, target if bundled else None, inspection, check, seconds,
                         bundled, bundle, gate, failure)


def _mode(name: str) -> QuantizationMode:
    """The table's row for `name`, as a ConversionError when there is none."""
    try:
        return quantization_mode(name)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


def _tokenizer_bytes(checkpoint: AlbertCheckpoint) -> int:
    files = [checkpoint.tokenizer_json] + ([checkpoint.spiece_model] if checkpoint.spiece_model else [])
    return sum(path.stat().st_size for path in files)


def check_early_exit_options(graph: str, quantizations: Sequence[str]) -> None:
    """Refuse early exit on a graph form or precision that cannot carry it, before any work."""
    if graph != LOOP:
        raise ConversionError("--early-exit needs --graph loop: the exit decision lives in the WHILE loop, "
                              "which the unrolled form does not have")
    calibrated = [name for name in quantizations if _mode(name).needs_calibration or LOOP not in _mode(name).graph_forms]
    if calibrated:
        raise ConversionError(f"--early-exit cannot be combined with full {calibrated[0]}: full {calibrated[0]} needs "
                              "the unrolled form (the converter cannot calibrate the loop); use dynamic-int8")


def check_early_exit_checkpoint(checkpoint: AlbertCheckpoint) -> None:
    """Early exit reads the classifier after each call: single-label text classification only."""
    if checkpoint.task != "text-classification":
        raise ConversionError(f"--early-exit supports text classification only, and this checkpoint is "
                              f"{checkpoint.architecture} ({checkpoint.task})")
    if checkpoint.problem_type in ("multi_label_classification", "regression") or checkpoint.config.num_labels < 2:
        raise ConversionError(f"--early-exit needs a single-label classifier; this one is "
                              f"{checkpoint.problem_type or 'a regression'}")


def _evaluate_variant(checkpoint, model_bytes, quantization, max_seq_len, data: EvalData,
                      reference: EvaluationReport, max_accuracy_drop: float,
                      early_exit: Optional[ExitRule] = None) -> AccuracyGate:
    """Score the converted model through the device runtime (same tokenizer and decoding as PyTorch's run)."""
    from ..tokenizer import AlbertTokenizer

    tokenizer = AlbertTokenizer.from_file(checkpoint.tokenizer_json,
                                          pad_id=checkpoint.tokenizer_settings["special_tokens"]["pad_id"])
    with tempfile.TemporaryDirectory(prefix="edge-albert-eval-") as scratch:
        model_path = Path(scratch) / MODEL_FILE
        model_path.write_bytes(model_bytes)
        model = task_model(model_path, checkpoint.task, checkpoint.labels, tokenizer, max_seq_len,
                           early_exit=early_exit, max_calls=checkpoint.config.num_hidden_layers)
        report = evaluate_model(model, data, reference, name=quantization)
    return accuracy_gate(quantization, reference, report, max_accuracy_drop)


# Evaluation-split names, replaced by "train" to find the training split of the same data set.
_EVAL_SPLIT = re.compile(r"(?<![a-z])(dev|validation|valid|val|eval|test)(?![a-z])", re.IGNORECASE)


def training_counterpart(eval_path) -> Optional[Path]:
    """dev.tsv -> train.tsv, sst2-validation.jsonl -> sst2-train.jsonl, beside the eval file, if it exists."""
    eval_path = Path(eval_path)
    name = _EVAL_SPLIT.sub("train", eval_path.name)
    candidate = eval_path.with_name(name)
    return candidate if name != eval_path.name and candidate.is_file() else None


def choose_calibration(checkpoint: AlbertCheckpoint, calibration_texts: Optional[Sequence[str]],
                       data: Optional[EvalData], samples: int = DEFAULT_CALIBRATION_SAMPLES) -> CalibrationSet:
    """The user's texts; else the first `samples` inputs of the eval file's training split; else the eval file's.

    Calibrating on the training split keeps the gate honest (ranges are not fitted to the very
    texts it scores); the eval file is the fallback when no training file sits beside it.
    """
    if samples < 1:
        raise ConversionError(f"--calibration-samples must be at least 1, not {samples}")
    if calibration_texts:
        texts = list(calibration_texts)[:samples]
        first, second = sample_sets.sample_inputs(checkpoint.task, texts)
        return CalibrationSet(first, second, "--calibration-texts", "given")
    if data is None:
        raise ConversionError("full int8 needs --calibration-texts FILE (one representative text per line), "
                              "or --eval-data FILE to calibrate on its training split")
    train_path = training_counterpart(data.path)
    if train_path is not None:
        train = load_eval_data(train_path, data.task, checkpoint.labels, data.text_column, data.text_pair_column,
                               data.label_column or DEFAULT_LABEL_COLUMN)
        texts, pairs = train.texts(samples)
        return CalibrationSet(texts, pairs, str(train_path), f"the training counterpart of {data.path.name}")
    texts, pairs = data.texts(samples)
    return CalibrationSet(texts, pairs, str(data.path), "the eval data itself: no training split found beside it")


def _judge_agreement_on_eval_data(check: VariantCheck, gate: AccuracyGate) -> VariantCheck:
    """int8 variants: with labelled data, judge label agreement on it rather than on the few samples.

    One flipped label among 10 built-in samples is 90%; hundreds of evaluation examples measure
    the same thing far better. Float variants keep their logit tolerance.
    """
    if check.tolerance is not None or gate.agreement is None:
        return check
    from dataclasses import replace

    passed = gate.agreement >= MIN_LABEL_AGREEMENT and bool(np.isfinite(check.max_abs_diff))
    message = (
        f"label agreement {gate.agreement:.1%} on {gate.n} evaluation examples "
        f"(max abs diff {check.max_abs_diff:.3g} on {check.samples} samples)"
    )
    if not passed:
        message += f" is below {MIN_LABEL_AGREEMENT:.0%}; --force bundles it anyway"
    return replace(check, label_agreement=gate.agreement, passed=passed, message=message)


def _calibration_samples(checkpoint, calibration: CalibrationSet, max_seq_len, fixed_length) -> List[dict]:
    """One input dict per calibration text (batch of one), as the conversion worker feeds them."""
    batches = encode_samples(checkpoint, calibration.texts, calibration.pairs, max_seq_len, fixed_length=fixed_length)
    return [{name: batch[name][row : row + 1] for name in INPUT_NAMES}
            for batch in batches for row in range(batch[INPUT_IDS].shape[0])]


def _bundle_files(checkpoint: AlbertCheckpoint, model_bytes: bytes) -> dict:
    files = {MODEL_FILE: model_bytes, TOKENIZER_FILE: checkpoint.tokenizer_json}
    if checkpoint.spiece_model is not None:
        files[SPIECE_FILE] = checkpoint.spiece_model
    return files


def build_manifest(
    checkpoint: AlbertCheckpoint,
    quantization: str,
    graph: str,
    max_seq_len: int,
    mask_bias: float,
    per_channel_dense: bool,
    inspection: FlatbufferInspection,
    check: VariantCheck,
    forced: bool,
    accuracy: Optional[dict] = None,
    calibration: Optional[dict] = None,
    early_exit: Optional[ExitRule] = None,
) -> dict:
    """The self-describing manifest (bundle format v1, see docs/design.md "Bundle format v1")."""
    config = checkpoint.config
    mode = _mode(quantization)
    shape = [-1, -1] if graph == LOOP else [1, max_seq_len]
    inputs = [{"name": name, "dtype": INPUT_DTYPE, "shape": shape} for name in INPUT_NAMES]
    outputs = [{"name": name, "dtype": OUTPUT_DTYPE, "shape": _output_shape(checkpoint, name, shape)}
               for name in task_contract(checkpoint.task).output_names]
    extra = {}
    if early_exit is not None:
        inputs.append({"name": early_exit.input_name, "dtype": np.dtype(early_exit.input_dtype).name, "shape": []})
        outputs.append({"name": CALLS_OUTPUT, "dtype": "int32", "shape": [shape[0]]})
        extra["early_exit"] = {**early_exit.to_manifest(), "max_calls": config.num_hidden_layers}
    return {
        "task": checkpoint.task,
        "labels": checkpoint.labels,
        "max_seq_len": max_seq_len,
        "graph": graph,
        "inputs": inputs,
        "outputs": outputs,
        **extra,
        "signature": SIGNATURE_NAME,
        "tokenizer": {
            "type": "sentencepiece-unigram",
            "file": TOKENIZER_FILE,
            "spiece_file": SPIECE_FILE if checkpoint.spiece_model is not None else None,
            **checkpoint.tokenizer_settings,
        },
        "quantization": {
            "mode": quantization,
            "per_channel_dense": per_channel_dense if mode.int8_weights else None,
            "attention_mask_bias": mask_bias,
            "note": None,
            "min_runtime": mode.runtimes(per_tensor=not per_channel_dense),
            **({"calibration": calibration} if calibration else {}),
        },
        "source": {
            "architecture": checkpoint.architecture,
            "weights_file": checkpoint.weights_file.name,
            "weights_sha256": checkpoint.weights_sha256,
            "parameters": checkpoint.parameter_count(),
            "problem_type": checkpoint.problem_type,
            "config": {
                **{
                    key: getattr(config, key)
                    for key in (
                        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                        "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
                    )
                },
                **({"pruned_heads": list(config.pruned_heads)} if config.pruned_heads else {}),
            },
        },
        "inspection": inspection.to_dict(),
        "validation": {**check.to_dict(), "forced": forced, **({"accuracy": accuracy} if accuracy else {})},
        "created_by": {"package": "edge-albert", "version": __version__, "python": platform.python_version(), **_library_versions()},
    }


def _output_shape(checkpoint: AlbertCheckpoint, name: str, input_shape: list) -> list:
    """[batch] or [batch, seq] by the contract's per-token/per-sequence split, then the width."""
    batch, seq = input_shape
    leading = [batch, seq] if name in task_contract(checkpoint.task).per_token_outputs else [batch]
    width = {"logits": [checkpoint.config.num_labels], "last_hidden_state": [checkpoint.config.hidden_size],
             "pooler_output": [checkpoint.config.hidden_size]}
    return leading + width.get(name, [])


def _library_versions() -> dict:
    """Installed versions, read from package metadata: importing TensorFlow just for its version costs seconds."""
    from importlib import metadata

    versions = {}
    for module_name, distributions in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("torch", ("torch",)),
                                       ("transformers", ("transformers",))):
        for distribution in distributions:
            try:
                versions[module_name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions
