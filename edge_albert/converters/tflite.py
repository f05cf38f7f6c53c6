"""TFLite conversion, post-training quantization and flatbuffer inspection.

After conversion the flatbuffer is inspected: identical weight buffers are merged (tensors
repointed to one copy) and the file must stay within SIZE_TOLERANCE of the ideal bytes for
its precision, which is what proves the shared layer is stored once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..contract import INPUT_NAMES
from ..errors import ConversionError
from ..hf.checkpoint import AlbertCheckpoint
from ..hf.quiet import import_tensorflow
from ..hf.weights import EMBEDDING_MODULES, SHARED_LAYER_PREFIX, TABLE
from ..quantization import EMBEDDING_LOOKUP, FULLY_CONNECTED, QuantizationMode
from ..verbosity import is_verbose

SIZE_TOLERANCE = 1.03
# Flatbuffer structure (op list, tensor table, signature, metadata) that does not scale with
# the weights; negligible for albert-base (47 MB), noticeable only for toy models.
STRUCTURE_SLACK_BYTES = 96 * 1024
# TFLite's quantizer leaves constants below this many elements in float32.
MIN_QUANTIZED_ELEMENTS = 1024
# Constant buffers below this size are graph structure (shapes, scalars), not weights.
MIN_WEIGHT_BYTES = 256


@dataclass
class FlatbufferInspection:
    """What the .tflite holds: subgraphs, operators, weight buffers and their sharing."""

    file_bytes: int
    subgraphs: int
    operators: Dict[str, int]
    weight_buffers: int
    weight_bytes: int
    duplicate_buffers_merged: int
    duplicate_bytes_removed: int
    ideal_bytes: int
    size_ratio: float
    bytes_by_part: Dict[str, int] = field(default_factory=dict)
    # How each part's matrices are stored: "float32", "int8 per channel", "int4 block 32", ...
    precision_by_part: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# Gathered, not multiplied: quantized with one scale per table by the TFLite converter, not per
# channel; the int4 path reads them with EMBEDDING_LOOKUP (weight_quantizer.py).
EMBEDDING_TABLES = frozenset(module.weight for module in EMBEDDING_MODULES if module.kind == TABLE)


def ideal_bytes(checkpoint: AlbertCheckpoint, mode: QuantizationMode) -> int:
    """Bytes the weights need at this precision: the floor a compact .tflite should approach.

    int8 dense kernels carry a float32 scale and an int64 zero point per output channel (as
    TFLite stores per-channel quantization); embedding tables one scale each. Vectors (biases,
    LayerNorm) stay 32-bit; full int8 stores biases as int32 with per-channel parameters too, and
    re-quantizes the shared layer's biases for each call (each call's input has its own scale).
    """
    per_channel_bytes = 4 + 8
    if mode.quantizer:
        return _quantizer_ideal_bytes(checkpoint, mode, per_channel_bytes)
    layer_calls = checkpoint.config.num_hidden_layers
    total = 0
    for name, value in checkpoint.weights.items():
        if not mode.int8_weights:
            total += mode.weight_bytes * value.size
        elif value.ndim == 2 and value.size >= MIN_QUANTIZED_ELEMENTS:
            total += value.size + (0 if name in EMBEDDING_TABLES else per_channel_bytes * value.shape[0])
        elif mode.needs_calibration and name.endswith(".bias"):
            calls = layer_calls if name.startswith(SHARED_LAYER_PREFIX) else 1
            total += (4 + per_channel_bytes) * value.size * calls
        else:
            total += 4 * value.size
    return int(total)


def _quantizer_ideal_bytes(checkpoint: AlbertCheckpoint, mode: QuantizationMode, per_channel_bytes: int) -> int:
    """AI Edge Quantizer modes: each matrix at its recipe's bits, plus a float32 scale and int64 zero point
    per output channel, or a float16 scale per block; what the recipe leaves out stays float32."""
    total = 0.0
    for name, value in checkpoint.weights.items():
        precision = None
        if value.ndim == 2 and value.size >= MIN_QUANTIZED_ELEMENTS:
            operation = EMBEDDING_LOOKUP if name in EMBEDDING_TABLES else FULLY_CONNECTED
            precision = mode.weight_precision(name, operation, value.shape)
        if precision is None:
            total += 4 * value.size
        elif precision.block_size:
            total += value.size * precision.bits / 8 + 2 * value.size // precision.block_size
        else:
            total += value.size * precision.bits / 8 + per_channel_bytes * value.shape[0]
    return int(total)


def convert_module(
    module,
    mode: QuantizationMode,
    calibration_inputs: Optional[Sequence[Dict[str, np.ndarray]]] = None,
) -> bytes:
    """Convert the module's serving_default function to .tflite bytes by the mode's recipe.

    AI Edge Quantizer modes come out as fp32 here; the worker quantizes that file
    (weight_quantizer.quantize_weights), so this module and the quantizer do not import each other.

    Runs in a conversion worker process (see BackgroundConversion): the converter can abort natively.
    """
    tf = import_tensorflow()
    setting = mode.converter
    function = module.serving_default.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if setting == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif setting == "dynamic-range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if not mode.per_channel_dense:
            # Per-tensor weight scales keep FULLY_CONNECTED at an op version tflite-runtime 2.14 runs.
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif setting == "full-integer":
        if not calibration_inputs:
            # convert.choose_calibration refuses this first; the worker only sees plain text anyway.
            raise ConversionError("full int8 needs calibration inputs, and none reached the converter")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Inputs stay int32 ids and outputs float32 logits (the converter's defaults).

        def representative_dataset():
            # Fed as a dict keyed by input name: the converter orders inputs alphabetically,
            # so a positional list would silently feed input_ids as the attention mask.
            for sample in calibration_inputs:
                yield {name: np.asarray(sample[name], dtype=np.int32) for name in INPUT_NAMES}

        converter.representative_dataset = representative_dataset
    try:
        model_bytes = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError and others
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"TFLite conversion ({mode.name}) failed: {first_line}") from None
    return model_bytes


# The module a conversion worker runs (`python -m ...`); a test points it at one that crashes.
WORKER_MODULE = "edge_albert.converters.tflite_worker"
REQUEST_FILE = "request.json"


@dataclass
class ConversionJob:
    """One variant for a conversion worker: its mode (the recipe), the checkpoint and graph to build, calibration."""

    mode: QuantizationMode
    checkpoint: str
    graph: str
    max_seq_len: int
    calibration: Optional[List[Dict[str, np.ndarray]]] = None
    early_exit: Optional[str] = None  # the rule as text ("entropy=0.4"), parsed again in the worker


class BackgroundConversion:
    """Build the graph and run convert_module for every job in worker processes, started at once.

    The TFLite converter can die of a signal inside convert() (it once took a whole test run
    with it). In a worker that costs one variant, reported in one line naming it; a new worker
    takes the remaining jobs. One worker serves all jobs normally, so TensorFlow loads once, and
    it works while this process runs the PyTorch reference. Use as a context manager: leaving
    it early (an error, Ctrl-C) stops the worker and removes its scratch directory.
    """

    def __init__(self, jobs: Sequence[ConversionJob]):
        self.work = Path(tempfile.mkdtemp(prefix="edge-albert-convert-"))
        self.requests = []
        self.results_by_index: List[object] = [None] * len(jobs)
        self.seconds: List[float] = [0.0] * len(jobs)  # each job's conversion time in the worker
        for index, job in enumerate(jobs):
            calibration = None
            if job.calibration:
                calibration = str(self.work / f"{index}.calibration.npz")
                np.savez(calibration, **{f"{i}/{name}": np.asarray(sample[name], dtype=np.int32)
                                         for i, sample in enumerate(job.calibration) for name in INPUT_NAMES})
            # The process boundary: the mode travels as its name and the run's choices (tflite_worker reads them back).
            self.requests.append({"index": index, "checkpoint": job.checkpoint, "graph": job.graph,
                                  "max_seq_len": job.max_seq_len, "mask_bias": job.mode.mask_bias,
                                  "quantize": job.mode.name, "per_channel_dense": job.mode.per_channel_dense,
                                  "calibration": calibration, "early_exit": job.early_exit})
        self.env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # the edge_albert this process runs
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, self.env.get("PYTHONPATH", "")) if p)
        self.process = None
        self.pending = self.requests
        self._start()

    def _start(self) -> None:
        (self.work / REQUEST_FILE).write_text(json.dumps(self.pending))
        self.log_path = self.work / "worker.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(self.work), str(os.getpid())],
                                            env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=None if is_verbose() else log)

    def results(self) -> List[object]:
        """Wait for the workers: the .tflite bytes, or a ConversionError, per job in order."""
        while self.pending:
            returncode = self.process.wait()
            remaining = []
            for request in self.pending:
                index = request["index"]
                model, error = self.work / f"{index}.tflite", self.work / f"{index}.error"
                if (self.work / f"{index}.seconds").is_file():
                    self.seconds[index] = float((self.work / f"{index}.seconds").read_text())
                if model.is_file():
                    self.results_by_index[index] = model.read_bytes()
                elif error.is_file():
                    self.results_by_index[index] = ConversionError(error.read_text().strip())
                elif (self.work / f"{index}.started").is_file():
                    self.results_by_index[index] = ConversionError(
                        _worker_death(request["quantize"], returncode, self.log_path))
                else:
                    remaining.append(request)
            if len(remaining) == len(self.pending):  # the worker died before it started any job
                for request in remaining:
                    self.results_by_index[request["index"]] = ConversionError(
                        _worker_death(request["quantize"], returncode, self.log_path))
                remaining = []
            self.pending = remaining
            if remaining:
                self._start()
        return self.results_by_index

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "BackgroundConversion":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_conversion(jobs: Sequence[ConversionJob]) -> BackgroundConversion:
    """Start converting `jobs` in a worker process now; collect with .results() (a context manager)."""
    return BackgroundConversion(jobs)


def _worker_death(quantize: str, returncode: int, log_path) -> str:
    """One line for a worker that ended without a result: the signal, else its status and last log line."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the TFLite converter crashed converting {quantize} ({name}); run with -v to see its log"
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return f"the TFLite conversion worker for {quantize} exited with status {returncode}" + \
        (f": {lines[-1][:200]}" if lines else "")


def _schema():
    """The TFLite flatbuffer schema; LiteRT's copy first, so inspecting a model does not load TensorFlow."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def _operator_names(schema) -> Dict[int, str]:
    return {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def _stored_after(buffer) -> bool:
    """A buffer whose bytes follow the flatbuffer (offset and size) rather than sit inside it."""
    return (getattr(buffer, "offset", 0) or 0) > 1


def _buffer_bytes(buffer) -> int:
    if buffer.data is not None and len(buffer.data):
        return len(buffer.data)
    return int(buffer.size or 0) if _stored_after(buffer) else 0


def merge_duplicate_buffers(model_bytes: bytes):
    """Repoint tensors that hold byte-identical constants to one buffer; return (bytes, merged, saved)."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    if any(_stored_after(buffer) for buffer in model.buffers):
        # AI Edge Quantizer's files keep weights after the flatbuffer (buffer offsets), each once;
        # repacking here would drop them.
        return model_bytes, 0, 0
    first_by_digest: Dict[str, int] = {}
    replacement: Dict[int, int] = {}
    saved = 0
    for index, buffer in enumerate(model.buffers):
        data = buffer.data
        if data is None or len(data) == 0:
            continue
        digest = hashlib.sha256(np.asarray(data, dtype=np.uint8).tobytes()).hexdigest()
        if digest in first_by_digest:
            replacement[index] = first_by_digest[digest]
            saved += len(data)
        else:
            first_by_digest[digest] = index
    if not replacement:
        return model_bytes, 0, 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.buffer in replacement:
                tensor.buffer = replacement[tensor.buffer]
    for index in replacement:
        model.buffers[index].data = None
    builder = flatbuffers.Builder(len(model_bytes))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), len(replacement), saved


def _parts_by_buffer(model, buffer_sizes: Dict[int, int]) -> Dict[int, str]:
    """Attribute each weight buffer to embeddings, shared_layer or head by where it is consumed.

    Tensor names do not survive conversion, so the graph's structure decides: buffers read inside
    a WHILE body, or by more than one operator of the main graph (the unrolled layer calls), are
    the shared layer; main-graph buffers read before the first shared-layer operator are the
    embedding, the rest the head.
    """
    main = model.subgraphs[0]
    dequantize = _schema().BuiltinOperator.DEQUANTIZE
    tensor_readers: Dict[int, List[int]] = {}
    for position, op in enumerate(main.operators):
        for tensor_index in op.inputs:
            if tensor_index >= 0:
                tensor_readers.setdefault(tensor_index, []).append(position)
    readers: Dict[int, List[int]] = {}
    for position, op in enumerate(main.operators):
        for tensor_index in op.inputs:
            buffer = main.tensors[tensor_index].buffer if tensor_index >= 0 else None
            if buffer not in buffer_sizes:
                continue
            if model.operatorCodes[op.opcodeIndex].builtinCode == dequantize:
                # fp16 weights are dequantized up front; where the result is read is what counts
                readers.setdefault(buffer, []).extend(tensor_readers.get(op.outputs[0], [position]))
            else:
                readers.setdefault(buffer, []).append(position)
    loop_positions = [
        position for position, op in enumerate(main.operators)
        if model.operatorCodes[op.opcodeIndex].builtinCode == _schema().BuiltinOperator.WHILE
    ]
    shared = set()
    for subgraph in model.subgraphs[1:]:
        shared.update(t.buffer for t in subgraph.tensors if t.buffer in buffer_sizes)
    if loop_positions:
        first_shared = min(loop_positions)
        shared.update(_buffers_passed_into_loops(model, main, loop_positions, buffer_sizes))
    else:
        # Small constants (reshape shapes, scalars) are read everywhere; only weights count here.
        shared = {b for b, positions in readers.items() if len(positions) > 1 and buffer_sizes[b] >= MIN_WEIGHT_BYTES}
        shared_positions = [p for b in shared for p in readers[b]]
        first_shared = min(shared_positions) if shared_positions else len(main.operators)
    parts = {}
    for buffer in buffer_sizes:
        if buffer_sizes[buffer] < MIN_WEIGHT_BYTES:
            parts[buffer] = "structure"
        elif buffer in shared:
            parts[buffer] = "shared_layer"
        elif buffer in readers:
            parts[buffer] = "embeddings" if min(readers[buffer]) < first_shared else "head"
        else:
            parts[buffer] = "unreferenced"
    return parts


def _buffers_passed_into_loops(model, main, loop_positions: List[int], buffer_sizes: Dict[int, int]) -> set:
    """Weights handed to WHILE as operands: fp16 models dequantize them in the main graph first."""
    dequantize = _schema().BuiltinOperator.DEQUANTIZE
    producer = {}
    for op in main.operators:
        for output in op.outputs:
            producer[output] = op
    found = set()
    for position in loop_positions:
        for tensor_index in main.operators[position].inputs:
            source = main.tensors[tensor_index].buffer
            if source in buffer_sizes:
                found.add(source)
                continue
            op = producer.get(tensor_index)
            if op is not None and model.operatorCodes[op.opcodeIndex].builtinCode == dequantize:
                constant = main.tensors[op.inputs[0]].buffer
                if constant in buffer_sizes:
                    found.add(constant)
    return found


def inspect_flatbuffer(model_bytes: bytes, ideal: int, merged: int = 0, saved: int = 0) -> FlatbufferInspection:
    """Count operators and weight buffers, and attribute weight bytes to embeddings / shared layer / head."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    op_names = _operator_names(schema)
    operators: Dict[str, int] = {}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = op_names.get(builtin, str(builtin))
            operators[name] = operators.get(name, 0) + 1
    buffer_sizes = {i: _buffer_bytes(b) for i, b in enumerate(model.buffers) if _buffer_bytes(b)}
    parts = _parts_by_buffer(model, buffer_sizes)
    precisions = _matrix_precisions(schema, model, buffer_sizes, parts)
    bytes_by_part: Dict[str, int] = {}
    for index, part in parts.items():
        bytes_by_part[part] = bytes_by_part.get(part, 0) + buffer_sizes[index]
    return FlatbufferInspection(
        file_bytes=len(model_bytes),
        subgraphs=len(model.subgraphs),
        operators=dict(sorted(operators.items())),
        weight_buffers=len(buffer_sizes),
        weight_bytes=int(sum(buffer_sizes.values())),
        duplicate_buffers_merged=merged,
        duplicate_bytes_removed=saved,
        ideal_bytes=ideal,
        size_ratio=len(model_bytes) / ideal if ideal else float("inf"),
        bytes_by_part=dict(sorted(bytes_by_part.items())),
        precision_by_part={part: ", ".join(sorted(labels)) for part, labels in sorted(precisions.items())},
    )


def _matrix_precisions(schema, model, buffer_sizes: Dict[int, int], parts: Dict[int, str]) -> Dict[str, set]:
    """{part: storage labels of its constant matrices}; a blockwise matrix's scale buffer joins its part."""
    types = {value: name.lower() for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    found: Dict[str, set] = {}
    for subgraph in model.subgraphs:
        scale_tensors = {t.quantization.details.scales for t in subgraph.tensors
                         if t.quantization is not None and hasattr(t.quantization.details, "blockSize")}
        for index, tensor in enumerate(subgraph.tensors):
            part = parts.get(tensor.buffer)
            if part is None or index in scale_tensors or tensor.shape is None or len(tensor.shape) != 2:
                continue
            label = types.get(tensor.type, str(tensor.type))
            quantization = tensor.quantization
            details = quantization.details if quantization is not None else None
            if details is not None and hasattr(details, "blockSize"):
                label += f" block {details.blockSize}"
                scales = subgraph.tensors[details.scales].buffer
                if scales in parts:
                    parts[scales] = part  # stored for this matrix, read by no operator
            elif quantization is not None and quantization.scale is not None and len(quantization.scale):
                label += " per channel" if len(quantization.scale) > 1 else " per tensor"
            found.setdefault(part, set()).add(label)
    return found


def compact_and_check(model_bytes: bytes, checkpoint: AlbertCheckpoint, mode: QuantizationMode):
    """Merge duplicate buffers, inspect, and refuse a file that stores weights more than once."""
    compact, merged, saved = merge_duplicate_buffers(model_bytes)
    ideal = ideal_bytes(checkpoint, mode)
    inspection = inspect_flatbuffer(compact, ideal, merged, saved)
    limit = SIZE_TOLERANCE * ideal + STRUCTURE_SLACK_BYTES
    if inspection.file_bytes > limit:
        raise ConversionError(
            f"{mode.name} .tflite is {inspection.file_bytes:,} bytes, over {SIZE_TOLERANCE}x the ideal "
            f"{ideal:,} bytes (+{STRUCTURE_SLACK_BYTES // 1024} KiB structure): some weights are stored more "
            f"than once ({inspection.weight_buffers} weight buffers)"
        )
    return compact, inspection
