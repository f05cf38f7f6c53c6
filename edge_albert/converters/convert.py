"""The `convert` pipeline: checkpoint -> graph -> .tflite variants -> verification -> bundles.

Every variant is verified against the PyTorch reference before it is written; one that fails
its tolerance is reported and not bundled unless `force` is set. With `eval_data`, the reference
and every variant are also scored on that labelled file, and a variant that loses more than
`max_accuracy_drop` percentage points is refused the same way. Outputs are written atomically,
so a failure leaves nothing at the output path.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..bundle import MODEL_FILE, SPIECE_FILE, TOKENIZER_FILE, Bundle, check_bundle_output, sign_bundle, write_bundle
from ..contract import INPUT_IDS, INPUT_NAMES
from ..data import DEFAULT_LABEL_COLUMN
from ..early_exit import CALLS_OUTPUT, ExitRule, parse_rule
from ..errors import ConversionError, VerificationError
from ..evaluate import EvalData, EvaluationReport, evaluate_model, load_eval_data
from ..hf.checkpoint import AlbertCheckpoint, load_checkpoint
from ..hf.quiet import require_workstation
from ..hf.reference import load_reference_model, load_reference_runner
from ..hub import resolve_checkpoint
from ..quantization import (
    DEFAULT_CALIBRATION_SAMPLES,
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
from ..signing import SIGNATURE_FILE, load_private_key
from ..tokenizer import AlbertTokenizer
from . import samples as sample_sets
from .accuracy_gate import AccuracyGate, accuracy_gate, reference_task_model, task_model
from .manifest import build_manifest
from .options import ConvertOptions
from .tflite import ConversionJob, FlatbufferInspection, compact_and_check, ideal_bytes, start_conversion
from .verify import MIN_LABEL_AGREEMENT, VariantCheck, encode_samples, verify_variant

Progress = Callable[[str], None]
# The libraries convert needs; on the light (device) install it says which extra to add instead.
WORKSTATION_MODULES = ("tensorflow", "torch", "transformers", "safetensors")


@dataclass
class VariantResult:
    """One quantization variant: where it went (if anywhere) and how it measured."""

    mode: QuantizationMode  # the variant's recipe
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
    def quantize(self) -> str:
        """The mode's name, as reports and file names spell it."""
        return self.mode.name

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


def output_paths(output: Path, modes: Sequence[QuantizationMode]) -> List[Path]:
    """OUT for one variant; OUT's stem + '-<mode name>' + suffix beside it for several."""
    output = Path(output)
    if len(modes) == 1:
        return [output]
    suffix = output.suffix or ".edgealbert"
    return [output.with_name(f"{output.stem}-{mode.name}{suffix}") for mode in modes]


def parse_quantizations(value: str) -> List[QuantizationMode]:
    """One mode name, a comma list ('fp32,fp16') or 'all' -> the modes table's rows, validated."""
    try:
        return list(parse_modes(value))
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


def variant_modes(quantize, options: ConvertOptions) -> List[QuantizationMode]:
    """`--quantize` parsed once (a string, or a list of names or rows) into modes carrying this run's recipe.

    Every later step reads the recipe from these objects; only the conversion worker's request
    spells a mode by name again (converters/tflite.py, tflite_worker.py).
    """
    if isinstance(quantize, str):
        rows = parse_quantizations(quantize)
    else:
        rows = [value if isinstance(value, QuantizationMode) else _mode(value) for value in quantize]
    return [row.for_run(options.per_channel_dense, options.calibration_samples) for row in rows]


def check_modes_and_graph(modes: Sequence[QuantizationMode], graph: str) -> None:
    """Refuse a graph form a mode cannot be built in, from the table, before any work."""
    _check_graph_form(graph)
    for mode in modes:
        if graph not in mode.graph_forms:
            other = [m.name for m in MODES.values() if graph in m.graph_forms and m.int8_weights]
            raise ConversionError(
                f"{'full ' if mode.needs_calibration else ''}{mode.name} needs {{graph}} {' or '.join(mode.graph_forms)}"
                + (" (the converter cannot calibrate the while-loop form)" if mode.needs_calibration and graph == LOOP else "")
                + (f"; {', '.join(other)} works with the {graph} form" if other else ""),
                options=("graph",),
            )


def _check_graph_form(graph: str) -> None:
    if graph not in GRAPH_FORMS:
        raise ConversionError(f"{{graph}} must be {' or '.join(GRAPH_FORMS)}, not {graph!r}",
                              options=("graph",))


def convert_checkpoint(checkpoint_dir, output, quantize: str | Sequence[str | QuantizationMode] = DEFAULT_MODE,
                       options: Optional[ConvertOptions] = None, progress: Optional[Progress] = None,
                       **settings) -> ConversionResult:
    """Convert a Hugging Face ALBERT checkpoint into one verified bundle per mode of `quantize`.

    `options` (or its fields as keyword `settings`, which override it) say how: graph form,
    length, eval data and accuracy gate, early exit, force, signing (converters/options.py).
    """
    options = replace(options, **settings) if options is not None else ConvertOptions(**settings)
    say = progress or (lambda message: None)
    require_workstation("convert", WORKSTATION_MODULES)
    modes = variant_modes(quantize, options)
    targets = output_paths(Path(output), modes)
    rule = _check_before_any_work(targets, modes, options)
    signing_key = _signing_key(options)
    prepared = prepare_checkpoint(checkpoint_dir, modes, targets, options, rule, say)
    prepared.signing_key = signing_key
    say(f"building the TF graph ({options.graph} form) and converting {', '.join(mode.name for mode in modes)} in a worker process")
    with start_conversion(_conversion_jobs(prepared, modes, options)) as conversion:  # converts while PyTorch runs here
        run_reference(prepared, options, say)
        converted = conversion.results()
        seconds = conversion.seconds
    result = ConversionResult(checkpoint=prepared.checkpoint, reference_evaluation=prepared.reference_evaluation,
                              calibration=prepared.calibration)
    for mode, target, model_bytes, variant_seconds in zip(modes, targets, converted, seconds):
        result.variants.append(convert_variant(prepared, mode, target, model_bytes, variant_seconds, options, say))
    _raise_if_nothing_bundled(result)
    return result


@dataclass
class PreparedCheckpoint:
    """What every variant is built from and judged against, prepared once per conversion."""

    checkpoint: AlbertCheckpoint
    max_seq_len: int
    fixed_length: Optional[int]  # the unrolled form's one input length; None for the loop
    rule: Optional[ExitRule]
    texts: List[str]  # the sample inputs verification compares on, and their encoded batches
    batches: List[dict]
    data: Optional[EvalData] = None
    calibration: Optional[CalibrationSet] = None
    reference: Optional[list] = None  # PyTorch's outputs on `batches` (run_reference)
    reference_evaluation: Optional[EvaluationReport] = None  # PyTorch's score on `data` (run_reference)
    signing_key: Optional[object] = None  # options.sign_key, loaded and checked before any work


def prepare_checkpoint(checkpoint_dir, modes: Sequence[QuantizationMode], targets: Sequence[Path],
                       options: ConvertOptions, rule: Optional[ExitRule], say: Progress) -> PreparedCheckpoint:
    """Load and check the checkpoint, then the eval data, calibration set and sample inputs: all before converting."""
    say(f"loading checkpoint {checkpoint_dir}")
    checkpoint = load_checkpoint(resolve_checkpoint(checkpoint_dir, options.revision))
    if rule is not None:
        check_early_exit_checkpoint(checkpoint)
    needed = sum(ideal_bytes(checkpoint, mode) + _tokenizer_bytes(checkpoint) for mode in modes)
    # the variants go side by side: free space for all of them
    check_bundle_output(targets[0], overwrite=options.overwrite, needed_bytes=needed, error=ConversionError)
    max_seq_len = _max_seq_len(checkpoint, options.max_seq_len)
    config = checkpoint.config
    say(
        f"{checkpoint.architecture}: {checkpoint.parameter_count():,} parameters, V={config.vocab_size} "
        f"E={config.embedding_size} H={config.hidden_size}, {config.num_hidden_layers} calls of one shared layer"
    )
    data = _eval_data(checkpoint, options, say)
    calibration = None
    calibrated = [mode for mode in modes if mode.needs_calibration]
    if calibrated:
        calibration = choose_calibration(checkpoint, options.calibration_texts, data, calibrated[0].calibration_samples)
        say(f"full int8 calibrates on {calibration.describe()}")
    texts, pairs = sample_sets.sample_inputs(checkpoint.task, list(options.samples) if options.samples else None)
    fixed_length = max_seq_len if options.graph == UNROLLED else None
    batches = encode_samples(checkpoint, texts, pairs, max_seq_len, fixed_length=fixed_length)
    return PreparedCheckpoint(checkpoint, max_seq_len, fixed_length, rule, texts, batches, data, calibration)


def _max_seq_len(checkpoint: AlbertCheckpoint, requested: Optional[int]) -> int:
    """The requested length, or the default capped by the checkpoint's positions; refused out of range."""
    positions = checkpoint.config.max_position_embeddings
    max_seq_len = min(DEFAULT_MAX_SEQ_LEN, positions) if requested is None else requested
    if not 1 <= max_seq_len <= positions:
        raise ConversionError(f"{{max_seq_len}} must be between 1 and {positions} (max_position_embeddings)",
                              options=("max_seq_len",))
    return max_seq_len


def _eval_data(checkpoint: AlbertCheckpoint, options: ConvertOptions, say: Progress) -> Optional[EvalData]:
    """The labelled examples of `options.eval_data`, read and checked before any conversion; None without it."""
    if options.eval_data is None:
        return None
    if not options.max_accuracy_drop >= 0:
        raise ConversionError("{max_accuracy_drop} must be a number of percentage points >= 0, not "
                              f"{options.max_accuracy_drop}", options=("max_accuracy_drop",))
    data = load_eval_data(options.eval_data, checkpoint.task, checkpoint.labels, options.text_column,
                          options.text_pair_column, options.label_column)
    say(f"evaluation data: {len(data)} examples from {options.eval_data}")
    return data


def run_reference(prepared: PreparedCheckpoint, options: ConvertOptions, say: Progress) -> None:
    """PyTorch's outputs on the sample inputs and, with eval data, its score: what the variants must match."""
    checkpoint, rule = prepared.checkpoint, prepared.rule
    say(f"running the PyTorch reference on {len(prepared.texts)} sample texts")
    runner = load_reference_runner(checkpoint, load_reference_model(checkpoint), early_exit=rule)
    prepared.reference = runner.run_all(prepared.batches)
    if rule is not None:
        say(f"early exit {rule.as_text()}: the PyTorch reference stops the samples after "
            f"{', '.join(str(int(c)) for r in prepared.reference for c in r[CALLS_OUTPUT])} of "
            f"{checkpoint.config.num_hidden_layers} calls")
    if prepared.data is not None:
        say(f"evaluating the PyTorch reference on {len(prepared.data)} examples of {Path(options.eval_data).name}")
        evaluation = evaluate_model(
            reference_task_model(checkpoint, prepared.max_seq_len, torch_model=runner.model, early_exit=rule),
            prepared.data, name="pytorch")
        say(f"PyTorch reference: {evaluation.metric_name} {evaluation.headline:.2%}")
        prepared.reference_evaluation = evaluation


def convert_variant(prepared: PreparedCheckpoint, mode: QuantizationMode, target: Path, converted, seconds: float,
                    options: ConvertOptions, say: Progress) -> VariantResult:
    """One variant from the worker's output (bytes, or the ConversionError it met) to its bundle.

    Inspect and compact it, verify it against PyTorch, gate it on the eval data, then bundle
    (and sign) it if it passed, or if `force` is set.
    """
    if isinstance(converted, ConversionError):
        say(f"NOT converted {mode.name}: {converted}")
        return VariantResult(mode, options.graph, None, None, None, seconds, False, failure=str(converted))
    model_bytes, inspection = compact_and_check(converted, prepared.checkpoint, mode)
    check, gate = _judge_variant(prepared, mode, model_bytes, options, say)
    passed = check.passed and (gate is None or gate.passed)
    failure = "" if passed else (check.message if not check.passed else gate.message)
    bundle = None
    if passed or options.force:
        manifest = build_manifest(
            prepared.checkpoint, mode, options.graph, prepared.max_seq_len, inspection, check, forced=not passed, accuracy=gate.to_dict() if gate else None,
            calibration=prepared.calibration.to_dict() if mode.needs_calibration else None, early_exit=prepared.rule)
        bundle = _write_bundle(target, prepared, model_bytes, manifest, options, say)
        say(f"wrote {target}" + (" (forced)" if not passed else ""))
    else:
        say(f"NOT bundled {mode.name}: {failure}")
    return VariantResult(mode, options.graph, target if bundle else None, inspection, check, seconds,
                         bundle is not None, bundle, gate, failure)


def _judge_variant(prepared: PreparedCheckpoint, mode: QuantizationMode, model_bytes: bytes, options: ConvertOptions,
                   say: Progress) -> Tuple[VariantCheck, Optional[AccuracyGate]]:
    """Verify against PyTorch's sample outputs; with eval data, score it and judge int8 agreement there."""
    say(f"verifying {mode.name} against PyTorch")
    check = verify_variant(prepared.checkpoint, model_bytes, mode, prepared.batches, prepared.reference,
                           early_exit=prepared.rule)
    if prepared.data is None:
        return check, None
    say(f"evaluating {mode.name} on {len(prepared.data)} examples")
    gate = _evaluate_variant(prepared.checkpoint, model_bytes, mode, prepared.max_seq_len, prepared.data,
                             prepared.reference_evaluation, options.max_accuracy_drop, prepared.rule)
    say(f"{mode.name}: {gate.message}")
    return _judge_agreement_on_eval_data(check, gate), gate


def _write_bundle(target: Path, prepared: PreparedCheckpoint, model_bytes: bytes, manifest: dict,
                  options: ConvertOptions, say: Progress) -> Bundle:
    """Write the bundle atomically, signed in its staging directory when a key was given (an old
    signed bundle is replaced by a signed one or not at all)."""
    key = prepared.signing_key
    if key is None and options.sign_key is not None:  # a caller that prepared without convert_checkpoint
        key = _signing_key(options)
    finish = None
    if key is not None:
        def finish(staging: Path) -> None:
            sign_bundle(staging, key)

    bundle = write_bundle(target, _bundle_files(prepared.checkpoint, model_bytes), manifest,
                          overwrite=options.overwrite, finish=finish)
    if key is not None:
        say(f"signed {target / SIGNATURE_FILE}")
    return bundle


def _signing_key(options: ConvertOptions):
    """options.sign_key loaded and checked (SigningError in one line), or None without one."""
    if options.sign_key is None:
        return None
    return load_private_key(options.sign_key)


def _check_before_any_work(targets: Sequence[Path], modes: Sequence[QuantizationMode],
                           options: ConvertOptions) -> Optional[ExitRule]:
    """Refuse outputs (exists, parent a file, name too long, read-only, ...) and option combinations up front;
    return the parsed early-exit rule."""
    for target in targets:
        check_bundle_output(target, overwrite=options.overwrite, error=ConversionError)
    _check_graph_form(options.graph)
    early_exit = options.early_exit
    rule = parse_rule(early_exit) if isinstance(early_exit, str) else early_exit
    if rule is not None:
        check_early_exit_options(options.graph, modes)
    check_modes_and_graph(modes, options.graph)
    return rule


def _conversion_jobs(prepared: PreparedCheckpoint, modes: Sequence[QuantizationMode],
                     options: ConvertOptions) -> List[ConversionJob]:
    """One worker job per mode: its recipe, the graph to build, calibration samples where the mode needs them."""
    jobs = []
    rule = prepared.rule
    for mode in modes:
        samples_to_calibrate = None
        if mode.needs_calibration:
            samples_to_calibrate = _calibration_samples(prepared.checkpoint, prepared.calibration,
                                                        prepared.max_seq_len, prepared.fixed_length)
        jobs.append(ConversionJob(mode, str(prepared.checkpoint.path), options.graph, prepared.max_seq_len,
                                  samples_to_calibrate, rule.as_text() if rule else None))
    return jobs


def _raise_if_nothing_bundled(result: ConversionResult) -> None:
    """No bundle at all is an error: ConversionError when no variant converted, else VerificationError."""
    failed = [v for v in result.variants if not v.bundled]
    if failed and len(failed) == len(result.variants):
        message = "; ".join(f"{v.quantize}: {v.failure}" for v in failed)
        if all(v.check is None for v in failed):
            raise ConversionError(message)
        raise VerificationError(message + "; {force} bundles a variant that fails its checks", options=("force",))


def _mode(name: str) -> QuantizationMode:
    """The table's row for `name`, as a ConversionError when there is none."""
    try:
        return quantization_mode(name)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


def _tokenizer_bytes(checkpoint: AlbertCheckpoint) -> int:
    files = [checkpoint.tokenizer_json] + ([checkpoint.spiece_model] if checkpoint.spiece_model else [])
    return sum(path.stat().st_size for path in files)


def check_early_exit_options(graph: str, modes: Sequence[QuantizationMode]) -> None:
    """Refuse early exit on a graph form or precision that cannot carry it, before any work."""
    if graph != LOOP:
        raise ConversionError("{early_exit} needs {graph} loop: the exit decision lives in the WHILE loop, "
                              "which the unrolled form does not have", options=("early_exit", "graph"))
    calibrated = [mode.name for mode in modes if mode.needs_calibration or LOOP not in mode.graph_forms]
    if calibrated:
        raise ConversionError(f"{{early_exit}} cannot be combined with full {calibrated[0]}: full {calibrated[0]} "
                              "needs the unrolled form (the converter cannot calibrate the loop); use dynamic-int8",
                              options=("early_exit",))


def check_early_exit_checkpoint(checkpoint: AlbertCheckpoint) -> None:
    """Early exit reads the classifier after each call: single-label text classification only."""
    if checkpoint.task != "text-classification":
        raise ConversionError("{early_exit} supports text classification only, and this checkpoint is "
                              f"{checkpoint.architecture} ({checkpoint.task})", options=("early_exit",))
    if checkpoint.problem_type in ("multi_label_classification", "regression") or checkpoint.config.num_labels < 2:
        raise ConversionError("{early_exit} needs a single-label classifier; this one is "
                              f"{checkpoint.problem_type or 'a regression'}", options=("early_exit",))


def _evaluate_variant(checkpoint, model_bytes, mode: QuantizationMode, max_seq_len, data: EvalData,
                      reference: EvaluationReport, max_accuracy_drop: float,
                      early_exit: Optional[ExitRule] = None) -> AccuracyGate:
    """Score the converted model through the device runtime (same tokenizer and decoding as PyTorch's run)."""
    tokenizer = AlbertTokenizer.from_file(checkpoint.tokenizer_json,
                                          pad_id=checkpoint.tokenizer_settings["special_tokens"]["pad_id"])
    with tempfile.TemporaryDirectory(prefix="edge-albert-eval-") as scratch:
        model_path = Path(scratch) / MODEL_FILE
        model_path.write_bytes(model_bytes)
        model = task_model(model_path, checkpoint.task, checkpoint.labels, tokenizer, max_seq_len,
                           early_exit=early_exit, max_calls=checkpoint.config.num_hidden_layers)
        report = evaluate_model(model, data, reference, name=mode.name)
    return accuracy_gate(mode, reference, report, max_accuracy_drop)


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
        raise ConversionError(f"{{calibration_samples}} must be at least 1, not {samples}",
                              options=("calibration_samples",))
    if calibration_texts:
        texts = list(calibration_texts)[:samples]
        first, second = sample_sets.sample_inputs(checkpoint.task, texts)
        return CalibrationSet(first, second, "--calibration-texts", "given")
    if data is None:
        raise ConversionError("full int8 needs {calibration_texts} FILE (one representative text per line), "
                              "or {eval_data} FILE to calibrate on its training split",
                              options=("calibration_texts", "eval_data"))
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

    passed = gate.agreement >= MIN_LABEL_AGREEMENT and bool(np.isfinite(check.max_abs_diff))
    message = (
        f"label agreement {gate.agreement:.1%} on {gate.n} evaluation examples "
        f"(max abs diff {check.max_abs_diff:.3g} on {check.samples} samples)"
    )
    if not passed:
        message += f" is below {MIN_LABEL_AGREEMENT:.0%}"
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
