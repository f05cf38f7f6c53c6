"""The quantization modes and graph forms as data: one row per mode, used by every stage.

Adding a mode is one row here (plus the converter setting it names). The converter reads how to
quantize, which graph forms allow it and its attention-mask bias; verification reads its parity
rule; the manifest records its minimum runtime; devices read the tolerance rule. Device side:
the runtime and export-android import this, so it imports nothing heavy.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

# Graph forms: `loop` runs the shared layer in one TFLite WHILE (any batch and length, weights
# packed once); `unrolled` calls it num_hidden_layers times at a fixed [1, max_seq_len] shape.
LOOP = "loop"
UNROLLED = "unrolled"
GRAPH_FORMS: Tuple[str, ...] = (LOOP, UNROLLED)
DEFAULT_GRAPH_FORM = LOOP
DEFAULT_MAX_SEQ_LEN = 128
# Calibration texts a mode with needs_calibration uses by default (the first N).
DEFAULT_CALIBRATION_SAMPLES = 100
# Percentage points of the eval metric a variant may lose against PyTorch before the accuracy
# gate refuses it. Here, not in converters/accuracy_gate.py, so the CLI reads it without numpy.
DEFAULT_MAX_ACCURACY_DROP = 1.0

# Added to the attention scores of padding. -1e4 gives exp() == 0 exactly in float32; full int8
# needs a small constant or calibration wrecks the activation ranges.
FLOAT_MASK_BIAS = -10000.0
INT8_MASK_BIAS = -20.0

MIN_LABEL_AGREEMENT = 0.99
# Quantized bundles record a device tolerance: this multiple of the difference measured against
# PyTorch, never below the floor (aarch64 int8 kernels round differently from x86).
QUANTIZED_TOLERANCE_FACTOR = 4.0
QUANTIZED_TOLERANCE_FLOOR = 1e-2

LITERT = "ai-edge-litert"
TFLITE_RUNTIME = "tflite-runtime"


class Parity(enum.Enum):
    """How a converted variant is judged against the PyTorch reference."""

    MAX_ABS_DIFF = "max-abs-diff"  # every logit within an absolute tolerance
    LABEL_AGREEMENT = "label-agreement"  # the same decisions on (almost) every sample


# The ops AI Edge Quantizer stores weights of (converters/weight_quantizer.py), and its granularities.
FULLY_CONNECTED = "FULLY_CONNECTED"
EMBEDDING_LOOKUP = "EMBEDDING_LOOKUP"
CHANNELWISE = "CHANNELWISE"
BLOCKWISE_32 = "BLOCKWISE_32"
# The quantizer selects weights by the name of the op's output; the converter renames those outputs
# to this prefix + the checkpoint weight's name.
WEIGHT_NAME_PREFIX = "edge_albert/"


@dataclass(frozen=True)
class WeightPrecision:
    """One entry of an AI Edge Quantizer recipe: the weights of `operation` whose checkpoint name
    matches `pattern` (re.search; ".*" for all) get `bits`-bit integers at `granularity`.
    Later entries of a mode win over earlier ones (mixed precision)."""

    operation: str
    bits: int
    granularity: str = CHANNELWISE
    pattern: str = ".*"

    @property
    def block_size(self) -> Optional[int]:
        return int(self.granularity.rsplit("_", 1)[1]) if self.granularity.startswith("BLOCKWISE_") else None

    def describe(self) -> str:
        return f"int{self.bits} " + (f"block {self.block_size}" if self.block_size else "per channel")


@dataclass(frozen=True)
class QuantizationMode:
    """One `--quantize` choice and its whole recipe; `converter` names the TFLite converter setting
    (converters/tflite.py).

    The table's rows hold the defaults; `for_run` fills in a run's own choices (per-channel or
    per-tensor dense scales, calibration size), so the converter passes this one object to every
    step instead of a name that each step looks up again.
    """

    name: str
    needs_calibration: bool
    graph_forms: Tuple[str, ...]
    mask_bias: float
    parity: Parity
    abs_tolerance: Optional[float]  # for Parity.MAX_ABS_DIFF
    min_runtime: Dict[str, str] = field(default_factory=dict)
    # Per-tensor dense scales widen the runtimes (tflite-runtime 2.14 lacks per-channel kernels).
    min_runtime_per_tensor: Optional[Dict[str, str]] = None
    in_all: bool = True  # part of `--quantize all`
    converter: str = "none"  # a key of CONVERTER_SETTINGS
    weight_bytes: float = 4  # bytes per stored weight element of the large matrices
    # Max abs logit difference the Android app's instrumented test allows between the device and
    # the converting machine; None: the app's LiteRT CPU path does not run this mode at usable speed.
    app_logit_tolerance: Optional[float] = None
    # A run's choices (for_run): per-channel dense scales (int8 weights only) and, for a mode that
    # needs calibration, how many texts calibrate it.
    per_channel_dense: bool = True
    calibration_samples: Optional[int] = None
    # converter "ai-edge-quantizer": the weight precisions it applies to the fp32 file.
    quantizer: Tuple[WeightPrecision, ...] = ()

    def for_run(self, per_channel_dense: bool = True,
                calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES) -> "QuantizationMode":
        """This row with one run's choices: the recipe every conversion step reads."""
        return replace(self, per_channel_dense=per_channel_dense,
                       calibration_samples=calibration_samples if self.needs_calibration else None)

    def weight_precision(self, name: str, operation: str, shape: Tuple[int, ...]) -> Optional[WeightPrecision]:
        """The precision this mode's quantizer recipe gives checkpoint weight `name` (read by `operation`), as
        the quantizer picks it: re.search in WEIGHT_NAME_PREFIX + name, the last matching entry wins. A block
        size that does not divide the weight's input dimension falls back to per channel."""
        chosen = None
        for precision in self.quantizer:
            if precision.operation == operation and re.search(precision.pattern, WEIGHT_NAME_PREFIX + name):
                chosen = precision
        if chosen is not None and chosen.block_size and shape[-1] % chosen.block_size:
            chosen = replace(chosen, granularity=CHANNELWISE)
        return chosen

    @property
    def int8_weights(self) -> bool:
        """Dense weights stored as int8 with scales: per-channel or per-tensor applies."""
        return self.weight_bytes == 1

    @property
    def kernel_weight_bytes(self) -> float:
        """Bytes per large-matrix weight element the CPU kernels read at run time: float16-stored
        weights are dequantized to float32 when the interpreter prepares the model."""
        return 4 if self.converter == "float16" else self.weight_bytes

    @property
    def retry_hint(self) -> str:
        """What to try when this mode fails its parity check."""
        if self.parity is Parity.MAX_ABS_DIFF:
            return "check the checkpoint's hidden_act and layer_norm_eps, or report a bug"
        if self.needs_calibration:
            return "try dynamic-int8 or fp16, or calibration texts closer to the task"
        return "try fp16"

    def device_tolerance(self, measured_max_abs_diff: float) -> float:
        """The bound a device checks its outputs against, recorded in the manifest."""
        if self.parity is Parity.MAX_ABS_DIFF:
            return float(self.abs_tolerance)
        return max(QUANTIZED_TOLERANCE_FACTOR * measured_max_abs_diff, QUANTIZED_TOLERANCE_FLOOR)

    def runtimes(self, per_tensor: Optional[bool] = None) -> Dict[str, str]:
        """The oldest interpreter versions that run this variant (per_tensor: None reads the recipe)."""
        if per_tensor is None:
            per_tensor = not self.per_channel_dense
        return dict(self.min_runtime_per_tensor if per_tensor and self.min_runtime_per_tensor else self.min_runtime)


# How the TFLite converter is set for a mode: no optimization, float16 weights, int8 weights with
# float activations, or full integer (int8 activations, needs calibration and the unrolled form).
# "ai-edge-quantizer": the fp32 file re-quantized by Google's AI Edge Quantizer (int4 weights).
CONVERTER_SETTINGS: Tuple[str, ...] = ("none", "float16", "dynamic-range", "full-integer", "ai-edge-quantizer")

_ANY_RUNTIME = {LITERT: "2.0", TFLITE_RUNTIME: "2.14"}
# int4 weights: checked on ai-edge-litert 2.3.0; tflite-runtime 2.14 has no int4 kernels.
_INT4_RUNTIME = {LITERT: "2.3"}


def _int4(granularity: str) -> Tuple[WeightPrecision, ...]:
    return (WeightPrecision(FULLY_CONNECTED, 4, granularity), WeightPrecision(EMBEDDING_LOOKUP, 4, granularity))

MODES: Dict[str, QuantizationMode] = {
    mode.name: mode
    for mode in (
        QuantizationMode("fp32", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.MAX_ABS_DIFF, 1e-4, _ANY_RUNTIME,
                         converter="none", weight_bytes=4, app_logit_tolerance=1e-3),
        QuantizationMode("fp16", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.MAX_ABS_DIFF, 5e-3, _ANY_RUNTIME,
                         converter="float16", weight_bytes=2, app_logit_tolerance=1e-2),
        # tflite-runtime 2.14 rejects FULLY_CONNECTED v12, which TF 2.21 emits for per-channel dense layers.
        QuantizationMode("dynamic-int8", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.LABEL_AGREEMENT, None,
                         {LITERT: "2.0"}, min_runtime_per_tensor=_ANY_RUNTIME, converter="dynamic-range",
                         weight_bytes=1, app_logit_tolerance=5e-2),
        QuantizationMode("int8", True, (UNROLLED,), INT8_MASK_BIAS, Parity.LABEL_AGREEMENT, None,
                         {LITERT: "2.0"}, in_all=False, converter="full-integer", weight_bytes=1,
                         app_logit_tolerance=5e-2),
        # int4 weights from the fp32 file through AI Edge Quantizer (the workstation extra); not in `all`.
        # The gate is dynamic-int8's, unchanged: on the trained SST-2 example int4 agrees 99.3%; on a
        # random-weight albert-base (logits within 0.3) its logit error is ~0.46 of the logits' spread
        # (int8: 0.04), so it fails there (benchmarks/results/int4/README.md).
        QuantizationMode("dynamic-int4", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.LABEL_AGREEMENT, None,
                         _INT4_RUNTIME, in_all=False, converter="ai-edge-quantizer", weight_bytes=0.5,
                         quantizer=_int4(CHANNELWISE)),
        QuantizationMode("dynamic-int4-block32", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.LABEL_AGREEMENT, None,
                         _INT4_RUNTIME, in_all=False, converter="ai-edge-quantizer", weight_bytes=0.5,
                         quantizer=_int4(BLOCKWISE_32)),
        # Mixed: the feed-forward matrices (over half the shared layer) and the embedding in int4, attention,
        # projection and pooler in int8.
        QuantizationMode("dynamic-int4-mixed", False, GRAPH_FORMS, FLOAT_MASK_BIAS, Parity.LABEL_AGREEMENT, None,
                         _INT4_RUNTIME, in_all=False, converter="ai-edge-quantizer", weight_bytes=0.5,
                         quantizer=(WeightPrecision(FULLY_CONNECTED, 8), WeightPrecision(FULLY_CONNECTED, 4, pattern="ffn"),
                                    WeightPrecision(EMBEDDING_LOOKUP, 4))),
    )
}
MODE_NAMES: Tuple[str, ...] = tuple(MODES)
DEFAULT_MODE = "dynamic-int8"
ALL = "all"


def mode_names() -> Tuple[str, ...]:
    """The names of the rows now (MODE_NAMES is fixed at import; this follows the table)."""
    return tuple(MODES)


def all_help() -> str:
    """What `all` expands to, for help texts."""
    return ",".join(mode.name for mode in MODES.values() if mode.in_all)


def quantization_mode(name: str) -> QuantizationMode:
    """The row for `name`; a ValueError lists the valid names."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown quantization {name!r}; choose from {', '.join(MODES)} or {ALL}") from None


def parse_modes(value: str) -> Tuple[QuantizationMode, ...]:
    """`fp32,fp16`, one name, or `all` (every mode with in_all) as rows, duplicates dropped."""
    if value.strip() == ALL:
        return tuple(mode for mode in MODES.values() if mode.in_all)
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no quantization given; choose from {', '.join(MODES)} or {ALL}")
    return tuple(quantization_mode(name) for name in dict.fromkeys(names))
