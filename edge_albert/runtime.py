"""Run a bundle's model.tflite with whichever TFLite interpreter the device has.

Backends, in order of preference: ai_edge_litert (LiteRT >= 2), tflite_runtime (2.14, frozen,
needs numpy<2), tensorflow.lite (a workstation with TensorFlow). The model is called through
its "serving_default" signature, so inputs and outputs are matched by name, never by position.

Dynamic-length (loop form) models run one row at its exact token count: a new input shape costs
the interpreter a re-allocation (about 0.05 ms for one row of the SST-2 example on 2 threads),
far less than the model's work on padding to a bucket (about 1 ms per text), and the result is
what the PyTorch reference computes at that length. Batches of several rows are padded to their
longest row rounded up to a few length buckets, which keeps the number of (rows, length) shapes a
long-running server re-plans small. Fixed-shape (unrolled) models get every row padded to their
length and run one row at a time when their batch dimension is 1.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .contract import ATTENTION_MASK, INPUT_IDS, INPUT_NAMES, SIGNATURE_NAME, TOKEN_TYPE_IDS
from .errors import RuntimeBackendError, setting_error_type
from .extras import WHEEL
from .tflite_check import check_model_file
from .verbosity import is_verbose

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
SIGNATURE = SIGNATURE_NAME
LENGTH_BUCKETS = (8, 16, 32, 64, 96, 128, 192, 256, 384, 512)
DEFAULT_MAX_THREADS = 4  # a Raspberry Pi 4/5 has four cores
MAX_THREADS = 64  # XNNPACK crashes on absurd counts (--threads 100000 segfaulted); no edge CPU has more cores
MAX_BATCH = 256  # rows per interpreter call: more only multiplies activation memory (bench --batch 100000 took 23 GB)


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    version: str
    interpreter_class: type

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _import_backend(name: str) -> Backend:
    """Import one backend; raises ImportError (or what a broken install raises) when unusable."""
    if name == "ai_edge_litert":
        from ai_edge_litert import interpreter as module

        return Backend(name, _package_version("ai-edge-litert"), module.Interpreter)
    if name == "tflite_runtime":
        from tflite_runtime import interpreter as module

        return Backend(name, _package_version("tflite-runtime"), module.Interpreter)
    if name == "tensorflow":
        import tensorflow as tf

        return Backend(name, tf.__version__, tf.lite.Interpreter)
    raise RuntimeBackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def find_backend(backend: Optional[str] = None) -> Backend:
    """The forced `backend`, or the first of BACKENDS that imports; say why none could be used."""
    names = [backend] if backend else list(BACKENDS)
    if backend and backend not in BACKENDS:
        raise RuntimeBackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    reasons = []
    for name in names:
        try:
            return _import_backend(name)
        except RuntimeBackendError:
            raise
        except Exception as exc:  # a broken install raises anything (numpy ABI errors, missing .so)
            reasons.append(f"{name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    hint = (f"install one: pip install '{WHEEL}[litert]' (ai-edge-litert, runs every bundle) or "
            f"pip install '{WHEEL}[tflite-runtime]' (tflite-runtime 2.14 with numpy<2, Python <= 3.11); the wheel "
            "comes from `make wheel` (in a source checkout: pip install -e '.[litert]')")
    raise RuntimeBackendError(f"no usable TFLite interpreter ({'; '.join(reasons)}); {hint}")


def create_interpreter(model: Union[str, os.PathLike, bytes], num_threads: int, interpreter_class: Optional[type] = None,
                       allocate: bool = True):
    """A TFLite interpreter over a model file or flatbuffer bytes, tensors allocated, start-up logs silenced.

    The one place an interpreter is built (runtime sessions, convert's verification, export-android),
    so each gets the same XNNPACK set-up and the same quiet start. `interpreter_class` defaults to
    find_backend()'s; an unloadable model raises the interpreter's ValueError/RuntimeError.
    """
    interpreter_class = interpreter_class or find_backend().interpreter_class
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    with native_logs_silenced():
        interpreter = interpreter_class(**source, num_threads=num_threads)
        if allocate:  # (not for op introspection: allocating applies XNNPACK, whose ops then read DELEGATE)
            interpreter.allocate_tensors()  # applies the XNNPACK delegate, which logs, here and not later
    return interpreter


@contextlib.contextmanager
def native_logs_silenced():
    """Send file descriptor 2 to /dev/null while a native library starts, unless --verbose.

    LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ when an
    interpreter is created and has no setting to turn it off; Python's sys.stderr cannot catch it.
    """
    if is_verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()  # what Python buffered meanwhile goes to /dev/null too, not out later
        os.dup2(saved, 2)
        os.close(saved)


# The distribution whose version the manifest's min_runtime names, per backend (tensorflow: not checked).
_BACKEND_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def _version_tuple(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def runtime_refusal(backend: "Backend", min_runtime) -> Optional[str]:
    """Why `backend` cannot run a bundle that needs `min_runtime` (None when it can, or cannot tell).

    Said up front: an interpreter without a mode's kernels (tflite-runtime 2.14 and int4 weights)
    may otherwise fail deep in loading, or worse, load and compute something else.
    """
    distribution = _BACKEND_DISTRIBUTIONS.get(backend.name)
    if distribution is None or not isinstance(min_runtime, dict) or not min_runtime:
        return None
    needed = min_runtime.get(distribution)
    if needed is None or (backend.version != "unknown" and _version_tuple(backend.version) < _version_tuple(needed)):
        return f"this bundle needs {describe_min_runtime(min_runtime)}, and this is {backend}"
    return None


def describe_min_runtime(min_runtime) -> str:
    """The manifest's quantization.min_runtime ({"ai-edge-litert": "2.0", ...}) as words."""
    if isinstance(min_runtime, dict):
        return " or ".join(f"{package} >= {version}" for package, version in min_runtime.items())
    return str(min_runtime) if min_runtime else ""


def check_threads(num_threads: int) -> int:
    """A thread count within 1..MAX_THREADS, or a RuntimeBackendError saying the range."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise setting_error_type(RuntimeBackendError)(
            f"{{threads}} must be an integer from 1 to {MAX_THREADS}, not {num_threads!r}", options=("threads",))
    return num_threads


def check_batch(batch: int, option: str = "batch_size") -> int:
    """A batch size within 1..MAX_BATCH, or a RuntimeBackendError naming the setting `option` and the range."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise setting_error_type(RuntimeBackendError)(
            f"{{{option}}} must be an integer from 1 to {MAX_BATCH}, not {batch!r}", options=(option,))
    return batch


def default_num_threads() -> int:
    return max(1, min(DEFAULT_MAX_THREADS, os.cpu_count() or 1))


def bucket_length(length: int, max_length: int, buckets: Sequence[int] = LENGTH_BUCKETS) -> int:
    """Round a token count up to the next bucket, never above `max_length`."""
    for bucket in buckets:
        if bucket >= length:
            return min(bucket, max_length)
    return max_length


class ModelSession:
    """One loaded model: feed padded int32 batches by input name, get float outputs by name.

    `sequence_outputs` names the outputs with a sequence axis (axis 1), which are cut back from
    the padded length to the batch's own length before they are returned.
    """

    def __init__(
        self,
        model_path: Union[str, os.PathLike],
        backend: Optional[str] = None,
        num_threads: Optional[int] = None,
        max_seq_len: Optional[int] = None,
        pad_id: int = 0,
        sequence_outputs: Iterable[str] = (),
        min_runtime: Union[Dict[str, str], str, None] = None,
        weight_cache: Optional[Union[str, os.PathLike]] = None,
        buckets: Sequence[int] = LENGTH_BUCKETS,
        constant_inputs: Optional[Dict[str, np.ndarray]] = None,
    ):
        self.model_path = Path(model_path)
        # Inputs fed unchanged with every batch (an early-exit bundle's patience or threshold).
        self.constant_inputs: Dict[str, np.ndarray] = dict(constant_inputs or {})
        self.backend = find_backend(backend)
        self.num_threads = check_threads(num_threads) if num_threads is not None else default_num_threads()
        self.pad_id = int(pad_id)
        self.sequence_outputs = frozenset(sequence_outputs)
        self.min_runtime = min_runtime
        self.buckets = tuple(sorted(buckets))
        self.reallocations = 0  # distinct input shapes set so far: each one re-plans memory
        self._current_shape: Optional[Tuple[int, int]] = None
        self._runner = self._create(weight_cache)
        self.input_shape_signature = self._input_signature()
        batch_dim, length_dim = self.input_shape_signature
        self.dynamic_batch = batch_dim == -1
        self.dynamic_length = length_dim == -1
        self.fixed_length = None if self.dynamic_length else int(length_dim)
        if max_seq_len is None:
            max_seq_len = self.fixed_length or self.buckets[-1]
        self.max_seq_len = int(max_seq_len)
        if self.fixed_length is not None and self.fixed_length < self.max_seq_len:
            self.max_seq_len = self.fixed_length

    # -- loading ----------------------------------------------------------------------------
    def _cannot_run(self, exc: BaseException) -> RuntimeBackendError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        need = f"this bundle needs {describe_min_runtime(self.min_runtime)}" if self.min_runtime else (
            "a newer runtime may be needed (ai-edge-litert >= 2.0 runs every model TF 2.16+ writes)")
        return RuntimeBackendError(f"{self.backend} cannot run {self.model_path}: {detail}; {need}")

    def _create(self, weight_cache):
        check_model_file(self.model_path)  # the interpreter trusts the flatbuffer; a crafted one can crash it
        refusal = runtime_refusal(self.backend, self.min_runtime)
        if refusal:
            raise RuntimeBackendError(f"{self.backend.name} cannot run {self.model_path}: {refusal}")
        if weight_cache is not None:
            return _CompiledModelRunner(self, Path(weight_cache))
        try:
            interpreter = create_interpreter(self.model_path, self.num_threads, self.backend.interpreter_class)
            with native_logs_silenced():
                runner = interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as exc:  # unsupported op versions surface here
            raise self._cannot_run(exc) from None
        inputs = runner.get_input_details()
        missing = [name for name in INPUT_NAMES if name not in inputs]
        if missing:
            raise RuntimeBackendError(f"{self.model_path} signature {SIGNATURE!r} lacks inputs {missing}; "
                                      f"it has {sorted(inputs)}")
        return _InterpreterRunner(interpreter, runner)

    def output_shapes(self) -> Dict[str, List[int]]:
        """Each output's shape signature (-1 for dynamic dimensions), by signature name."""
        return self._runner.output_shape_signatures()

    def _input_signature(self) -> Tuple[int, int]:
        signature = [int(d) for d in self._runner.input_shape_signature(INPUT_IDS)]
        if len(signature) != 2:
            raise RuntimeBackendError(f"{self.model_path}: {INPUT_IDS} has shape {signature}, expected [batch, length]")
        return signature[0], signature[1]

    # -- running ----------------------------------------------------------------------------
    def padded_length(self, length: int, rows: int = 1) -> int:
        """The width a call of `rows` rows whose longest has `length` tokens runs at (see the module docstring)."""
        if self.fixed_length is not None:
            return self.fixed_length
        if rows == 1:
            return min(length, self.max_seq_len)
        return bucket_length(length, self.max_seq_len, self.buckets)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> Dict[str, np.ndarray]:
        """Run a [rows, length] batch (length <= max_seq_len); outputs keep `rows` and `length`."""
        rows, length = input_ids.shape
        if length > self.max_seq_len:
            raise ValueError(f"batch length {length} exceeds the model's maximum {self.max_seq_len}")
        target = self.padded_length(max(length, 1), rows)
        if rows == 0:
            return {}
        outputs = self.run_padded(_pad_to(input_ids, target, self.pad_id), _pad_to(attention_mask, target, 0),
                                  _pad_to(token_type_ids, target, 0))
        return {name: value[:, :length] if name in self.sequence_outputs else value for name, value in outputs.items()}

    def run_padded(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                   token_type_ids: np.ndarray) -> Dict[str, np.ndarray]:
        """Run int32 [rows >= 1, padded_length(length)] arrays as they are; sequence outputs keep the padded width.

        For callers that pad once, straight to the width the model runs at (tasks.BundleModel.run_encoded).
        """
        feed = {INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask, TOKEN_TYPE_IDS: token_type_ids}
        if self.constant_inputs:
            feed.update(self.constant_inputs)
        if self.dynamic_batch:
            return self._invoke(feed)
        per_row = [self._invoke({k: v[i:i + 1] if k in INPUT_NAMES else v for k, v in feed.items()})
                   for i in range(input_ids.shape[0])]
        return {name: np.concatenate([o[name] for o in per_row], axis=0) for name in per_row[0]}

    def _invoke(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        shape = tuple(feed[INPUT_IDS].shape)
        if shape != self._current_shape:
            self.reallocations += 1
            self._current_shape = shape
        try:
            return self._runner(feed)
        except (ValueError, RuntimeError) as exc:  # e.g. an op that fails to prepare on this runtime
            raise self._cannot_run(exc) from None


def _pad_to(array: np.ndarray, length: int, value: int) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.int32)
    if array.shape[1] == length:
        return array
    out = np.full((array.shape[0], length), value, dtype=np.int32)
    out[:, :array.shape[1]] = array
    return out


class _InterpreterRunner:
    """The classic Interpreter API through its signature runner (all three backends)."""

    def __init__(self, interpreter, runner):
        self.interpreter = interpreter
        self._runner = runner
        self._inputs = runner.get_input_details()

    def input_shape_signature(self, name: str) -> List[int]:
        details = self._inputs[name]
        return list(details.get("shape_signature", details["shape"]))

    def output_shape_signatures(self) -> Dict[str, List[int]]:
        return {name: [int(d) for d in details.get("shape_signature", details["shape"])]
                for name, details in self._runner.get_output_details().items()}

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        # The runner resizes and re-allocates only when a shape actually changed.
        return self._runner(**feed)


class _CompiledModelRunner:
    """LiteRT's CompiledModel API, the only way ai-edge-litert 2.3 exposes the XNNPACK weight cache.

    The cache (a file) keeps XNNPACK's packed weights between processes, so later loads skip
    repacking. Fixed-shape models only: in ai-edge-litert 2.3.0 CompiledModel does not resize
    outputs after an input resize (a dynamic model fails with "Custom allocation is too small").
    """

    def __init__(self, session: ModelSession, cache_file: Path):
        if session.backend.name != "ai_edge_litert":
            raise RuntimeBackendError(f"the XNNPACK weight cache needs ai-edge-litert's CompiledModel API, "
                                      f"not {session.backend}")
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.cpu_options import CpuOptions
            from ai_edge_litert.options import Options
        except ImportError as exc:
            raise RuntimeBackendError(f"{session.backend} has no CompiledModel API for the weight cache: {exc}") from None
        if cache_file.is_dir():
            raise RuntimeBackendError(f"the weight cache must be a file path, {cache_file} is a directory")
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        options = Options(cpu_options=CpuOptions(num_threads=session.num_threads,
                                                 xnnpack_weight_cache_path=str(cache_file)))
        try:
            with native_logs_silenced():
                self._model = CompiledModel.from_file(str(session.model_path), options=options)
        except (ValueError, RuntimeError) as exc:
            raise session._cannot_run(exc) from None
        self._signature_index = self._model.get_signature_index(SIGNATURE)
        if self._signature_index < 0:
            raise RuntimeBackendError(f"{session.model_path} has no {SIGNATURE!r} signature")
        names = self._model.get_signature_list()[SIGNATURE]
        self._input_names, self._output_names = list(names["inputs"]), list(names["outputs"])
        self._input_details = self._model.get_input_tensor_details(SIGNATURE)
        self._output_details = self._model.get_output_tensor_details(SIGNATURE)
        for name in INPUT_NAMES:
            if -1 in self._input_details[name]["shape"] or self._input_details[name]["shape"] == [1, 1]:
                # [1, 1] is how CompiledModel reports a [-1, -1] signature.
                raise RuntimeBackendError(
                    "the XNNPACK weight cache works only with fixed-shape (unrolled) bundles in ai-edge-litert "
                    "2.3.0; convert with {graph} unrolled or run without the weight cache", options=("graph",))
        self._inputs = self._model.create_input_buffers(self._signature_index)
        self._outputs = self._model.create_output_buffers(self._signature_index)

    def input_shape_signature(self, name: str) -> List[int]:
        return list(self._input_details[name]["shape"])

    def output_shape_signatures(self) -> Dict[str, List[int]]:
        return {name: [int(d) for d in self._output_details[name]["shape"]] for name in self._output_names}

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        for name, buffer in zip(self._input_names, self._inputs):
            buffer.write(feed[name])
        self._model.run_by_index(self._signature_index, self._inputs, self._outputs)
        results = {}
        for name, buffer in zip(self._output_names, self._outputs):
            shape = self._output_details[name]["shape"]
            results[name] = np.asarray(buffer.read(int(np.prod(shape)), np.float32)).reshape(shape)
        return results
