"""Export a bundle into an Android app's assets for android_demo/ (`edge-albert export-android`).

The app tokenizes in plain Java, so besides model.tflite and manifest.json the export writes
vocab.json: the bundle's tokenizer.json reduced to what the Java core implements (unigram pieces
and scores, added tokens, normaliser and pre-tokenizer steps with the precompiled charsmap, the
[CLS]/[SEP] template), plus labels and max_seq_len. Everything the app cannot run is refused
here, on the workstation, with a message that says what to convert instead: a task other than
text classification, inputs or outputs the app does not feed or read (an early-exit bundle's
threshold input and layer-calls output among them), a graph whose input shape it cannot drive, a
quantization without fast CPU kernels, ops outside LiteRT's builtin set, and a tokenizer pipeline
step the Java core does not implement.

examples.json holds a few texts with the ids the `tokenizers` library gives and the logits this
machine's interpreter gives, for the app's instrumented test to compare against on a device.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .atomic import check_writable_output, replacing_directory
from .bundle import MANIFEST_FILE, MODEL_FILE, Bundle, load_bundle, sha256_of_file
from .contract import ATTENTION_MASK, INPUT_IDS, INPUT_NAMES, SIGNATURE_NAME, TOKEN_TYPE_IDS, task_contract
from .errors import BundleError, RuntimeBackendError
from .quantization import GRAPH_FORMS, LOOP, MODES, UNROLLED
from .runtime import create_interpreter, native_logs_silenced
from .tflite_check import check_model_file
from .version import __version__

ANDROID_FORMAT = "edge-albert-android"
VOCAB_FORMAT = "edge-albert-android-vocab"
EXAMPLES_FORMAT = "edge-albert-android-examples"
FORMAT_VERSION = 1
VOCAB_FILE = "vocab.json"
EXAMPLES_FILE = "examples.json"
ASSET_FILES = (MODEL_FILE, VOCAB_FILE, EXAMPLES_FILE, MANIFEST_FILE)
LEGACY_STAGING = re.compile(r"\.edge-albert-[a-z0-9_]{8}\.tmp")  # what exports before 0.2 could leave inside

APP_TASK = "text-classification"
APP_INPUTS = INPUT_NAMES
APP_OUTPUT = task_contract(APP_TASK).output_names[0]
SIGNATURE = SIGNATURE_NAME
# Quantizations the app's LiteRT CPU path (XNNPACK or the builtin kernels) runs at usable speed, and the
# max abs logit difference its instrumented test allows between the device and this machine (int8 kernels
# differ by CPU architecture, about 1e-2 between aarch64 and x86, docs/design.md "ARM emulation"): the
# modes table's app_logit_tolerance column.
APP_QUANTIZATIONS = tuple(name for name, mode in MODES.items() if mode.app_logit_tolerance is not None)
DEVICE_LOGIT_TOLERANCE = {name: MODES[name].app_logit_tolerance for name in APP_QUANTIZATIONS}

SUPPORTED_NORMALIZERS = ("Replace", "NFC", "NFD", "NFKC", "NFKD", "StripAccents", "Lowercase", "Precompiled", "Strip")
SUPPORTED_PRE_TOKENIZERS = ("WhitespaceSplit", "Metaspace")

EXAMPLE_TEXTS = (
    "hello, my dog is cute",
    "a gripping, beautifully acted film that stays with you long after the credits.",
    "the plot is thin and the jokes fall flat.",
    "Café crème brûlée, naïve résumé — ``quoted'' text!",
    "I love this movie 😍 👍🏽",
    "東京は日本の首都です。",
    "[CLS] literal special tokens [SEP] in the text",
    " ".join(["a very long review that keeps going"] * 60),
)

JsonDict = Dict[str, Any]


@dataclass
class AndroidExport:
    """What export_android wrote: the assets directory and the app-facing manifest section."""

    assets_dir: Path
    files: Dict[str, dict]
    android: JsonDict
    bundle: Bundle = field(repr=False)


@dataclass
class ModelIO:
    """The .tflite's inputs, outputs and ops, as the interpreter reports them."""

    inputs: List[JsonDict]
    outputs: List[JsonDict]
    signature_inputs: Dict[str, int]
    signature_outputs: Dict[str, int]
    op_names: List[str]
    tensor_dtypes: List[str]


def export_android(
    bundle_path: Union[str, os.PathLike],
    assets_dir: Union[str, os.PathLike],
    overwrite: bool = False,
    example_texts: Sequence[str] = EXAMPLE_TEXTS,
    trusted_key: Optional[Union[str, os.PathLike]] = None,
) -> AndroidExport:
    """Check that the app can run the bundle, then write its assets into `assets_dir`.

    An existing `assets_dir` is fine (an app keeps other assets there) but edge-albert's own files
    in it are replaced only with `overwrite`. The folder is replaced as a whole by a copy with the
    new files (the other assets hard-linked into it), so an export that fails or is killed at any
    point leaves the old four files or the new four, never a mix.
    """
    bundle = load_bundle(bundle_path, trusted_key=trusted_key)
    assets_dir = Path(assets_dir)
    _check_destination(assets_dir, overwrite)
    manifest = bundle.manifest
    quantization = check_manifest(manifest)
    interpreter = _load_interpreter(bundle.model_path)
    model_io = inspect_model(interpreter)
    android = check_model_io(model_io, manifest)
    tokenizer_json = _read_tokenizer_json(bundle)
    vocab = build_vocab(tokenizer_json, manifest)
    examples = build_examples(bundle, interpreter, android, list(example_texts), quantization)

    staged = {
        VOCAB_FILE: (json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"),
        EXAMPLES_FILE: (json.dumps(examples, ensure_ascii=False, indent=1) + "\n").encode("utf-8"),
    }
    return _write_assets(bundle, assets_dir, staged, android)


def check_manifest(manifest: JsonDict) -> str:
    """Refuse a bundle whose manifest says the app cannot use it; return its quantization mode."""
    task = manifest.get("task")
    if task != APP_TASK:
        raise BundleError(
            f"the bundle's task is {task!r}; the Android demo runs {APP_TASK} bundles only (it shows a label and "
            f"scores per text). Convert a sequence-classification checkpoint"
        )
    labels = manifest.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise BundleError("the bundle's manifest has no list of label names; the app needs one per logit")
    max_seq_len = manifest.get("max_seq_len")
    if not isinstance(max_seq_len, int) or max_seq_len < 3:
        raise BundleError(f"the bundle's max_seq_len is {max_seq_len!r}; the app needs an integer of at least 3")
    early_exit = manifest.get("early_exit")
    if early_exit:
        raise BundleError(
            f"the bundle stops early ({early_exit.get('rule')}={early_exit.get('default')}): the Android demo feeds "
            "three inputs and reads logits only, not the exit threshold input or the layer calls output; convert "
            "without {early_exit} for the app", options=("early_exit",))
    graph = manifest.get("graph")
    if graph not in GRAPH_FORMS:
        raise BundleError(f"the bundle's graph is {graph!r}; the app drives the loop form (any length up to "
                          f"max_seq_len) and the unrolled form (fixed length) only")
    quantization = manifest.get("quantization")
    mode = quantization.get("mode") if isinstance(quantization, dict) else quantization
    if mode == "int16x8":
        raise BundleError(
            "the bundle is int16x8 (16-bit activations): LiteRT's XNNPACK has no kernels for it and the reference "
            "kernels take seconds per sentence, so the app refuses it; convert with {quantize} dynamic-int8 or fp16",
            options=("quantize",))
    if mode not in APP_QUANTIZATIONS:
        raise BundleError(f"the bundle's quantization {mode!r} is not one the app's LiteRT runtime runs; "
                          f"use one of {', '.join(APP_QUANTIZATIONS)}")
    return mode


def inspect_model(interpreter) -> ModelIO:
    """Read inputs, outputs, the serving_default signature, op names and tensor dtypes."""
    inputs = [_tensor_info(position, detail) for position, detail in enumerate(interpreter.get_input_details())]
    outputs = [_tensor_info(position, detail) for position, detail in enumerate(interpreter.get_output_details())]
    signature_inputs: Dict[str, int] = {}
    signature_outputs: Dict[str, int] = {}
    if SIGNATURE in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(SIGNATURE)
        signature_inputs = {name: int(detail["index"]) for name, detail in runner.get_input_details().items()}
        signature_outputs = {name: int(detail["index"]) for name, detail in runner.get_output_details().items()}
    try:
        op_names = sorted({str(op["op_name"]) for op in interpreter._get_ops_details()})
    except AttributeError:  # an interpreter without op introspection: the dtype checks still run
        op_names = []
    tensor_dtypes = sorted({np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()})
    return ModelIO(inputs, outputs, signature_inputs, signature_outputs, op_names, tensor_dtypes)


def check_model_io(model_io: ModelIO, manifest: JsonDict) -> JsonDict:
    """Match the model to what the app feeds and reads; return the manifest's "android" section.

    The Java Interpreter addresses inputs and outputs by position, so the section records the
    position of each named tensor (found through the serving_default signature, or by tensor name).
    """
    labels = manifest["labels"]
    max_seq_len = manifest["max_seq_len"]
    graph = manifest["graph"]
    _check_ops(model_io)
    positions = _app_inputs(model_io)
    length = _input_length(positions, graph, max_seq_len)
    output = _app_output(model_io, len(labels))
    return {
        "format": ANDROID_FORMAT,
        "format_version": FORMAT_VERSION,
        "model_file": MODEL_FILE,
        "vocab_file": VOCAB_FILE,
        "examples_file": EXAMPLES_FILE,
        "graph": graph,
        # null: resize the inputs to [1, n] per text (loop form); an integer: pad every input to it.
        "sequence_length": None if length == -1 else int(length),
        "inputs": {name: positions[name]["position"] for name in APP_INPUTS},
        "output": {"name": APP_OUTPUT, "index": output["position"], "num_labels": len(labels)},
        "exported_by": {"package": "edge-albert", "version": __version__},
    }


def _check_ops(model_io: ModelIO) -> None:
    """The app links LiteRT's builtin ops only and runs them on CPU kernels that must be fast."""
    custom = [name for name in model_io.op_names if name.startswith("Flex") or name in ("CUSTOM", "DELEGATE")]
    if custom:
        raise BundleError(f"the model uses ops outside LiteRT's builtin set ({', '.join(custom)}); the app links only "
                          f"com.google.ai.edge.litert:litert, which cannot run them")
    if "int16" in model_io.tensor_dtypes:
        raise BundleError("the model has int16 tensors (int16x8 quantization): XNNPACK cannot run them and the "
                          "reference kernels take seconds per sentence; convert with {quantize} dynamic-int8 or fp16",
                          options=("quantize",))


def _app_inputs(model_io: ModelIO) -> Dict[str, JsonDict]:
    """The model's tensor for each input the app feeds (int32), and no other input."""
    positions = {}
    for name in APP_INPUTS:
        info = _find(model_io.inputs, name, model_io.signature_inputs, "input",
                     f"the app feeds exactly {', '.join(APP_INPUTS)}")
        if info["dtype"] != "int32":
            raise BundleError(f"the model's input {name!r} is {info['dtype']}; the app feeds int32")
        positions[name] = info
    if len(model_io.inputs) != len(APP_INPUTS):
        raise BundleError(f"the model has {len(model_io.inputs)} inputs; the app feeds exactly {len(APP_INPUTS)} "
                          f"({', '.join(APP_INPUTS)})")
    return positions


def _input_length(positions: Dict[str, JsonDict], graph: str, max_seq_len: int) -> int:
    """The inputs' common length: -1 for the loop form, max_seq_len for the unrolled form."""
    shapes = {tuple(info["shape_signature"]) for info in positions.values()}
    if len(shapes) != 1:
        raise BundleError(f"the model's inputs differ in shape ({sorted(shapes)}); the app feeds three equal arrays")
    shape = list(shapes.pop())
    if len(shape) != 2 or shape[0] not in (1, -1):
        raise BundleError(f"the model's inputs have shape {shape}; the app feeds one text at a time, [1, length]")
    length = shape[1]
    if graph == LOOP and length != -1:
        raise BundleError(f"the manifest says graph 'loop' but the model's inputs have the fixed shape {shape}; "
                          f"the bundle is inconsistent, convert it again")
    if graph == UNROLLED and length != max_seq_len:
        raise BundleError(f"the unrolled model's inputs have shape {shape} but max_seq_len is {max_seq_len}; the app "
                          f"pads every input to max_seq_len, convert the bundle again")
    return length


def _app_output(model_io: ModelIO, num_labels: int) -> JsonDict:
    """The float32 logits tensor the app reads, one logit per label."""
    output = _find(model_io.outputs, APP_OUTPUT, model_io.signature_outputs, "output",
                   "the app reads the classification logits")
    if output["dtype"] != "float32":
        raise BundleError(f"the model's logits are {output['dtype']}; the app reads float32 logits (convert without "
                          f"integer outputs)")
    out_shape = output["shape_signature"]
    if len(out_shape) != 2 or out_shape[-1] != num_labels:
        raise BundleError(f"the model's logits have shape {out_shape}; the app expects [1, {num_labels}], one logit "
                          f"per label of the manifest")
    return output


def build_vocab(tokenizer_json: JsonDict, manifest: JsonDict) -> JsonDict:
    """Reduce tokenizer.json to the steps the Java core implements, refusing any other step."""
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "Unigram":
        raise BundleError(f"the tokenizer model is {model.get('type')!r}; the Java tokenizer implements "
                          f"SentencePiece Unigram only")
    if model.get("unk_id") is None:
        raise BundleError("the Unigram tokenizer has no unk_id; the Java tokenizer needs one for unknown characters")
    vocab_pieces = model.get("vocab") or []
    pieces = [[str(piece), float(score)] for piece, score in vocab_pieces]
    added = []
    for token in tokenizer_json.get("added_tokens") or []:
        for flag in ("normalized", "lstrip", "rstrip", "single_word"):
            if token.get(flag):
                raise BundleError(f"added token {token.get('content')!r} has {flag}=true; the Java tokenizer matches "
                                  f"added tokens on the raw text only (as transformers 5 writes ALBERT's)")
        if not token.get("content"):
            raise BundleError(f"added token {token.get('id')} is empty")
        added.append({"id": int(token["id"]), "content": token["content"], "special": bool(token.get("special"))})
    unk_id = int(model["unk_id"])
    byte_fallback = bool(model.get("byte_fallback", False))
    return {
        "format": VOCAB_FORMAT,
        "format_version": FORMAT_VERSION,
        "tokenizer": {
            "model": {
                "type": "Unigram",
                "unk_id": unk_id,
                "byte_fallback": byte_fallback,
                "fuse_unk": True,  # tokenizers' Unigram always fuses consecutive unknowns
                "pieces": pieces,
                "types": _piece_types(pieces, added, unk_id, byte_fallback),
            },
            "added_tokens": added,
            "normalizer": _normalizer_steps(tokenizer_json.get("normalizer")),
            "pre_tokenizer": _pre_tokenizer_steps(tokenizer_json.get("pre_tokenizer")),
        },
        "template": _template(tokenizer_json.get("post_processor")),
        "special_tokens": _special_tokens(pieces, added, unk_id),
        "pad_id": _pad_id(pieces, added),
        "pad_type_id": 0,
        "max_seq_len": int(manifest["max_seq_len"]),
        "labels": list(manifest["labels"]),
        "settings": {key: value for key, value in (manifest.get("tokenizer") or {}).items()
                     if key in ("do_lower_case", "keep_accents", "remove_space")},
    }


def canonical_tokenizer_json(path: Union[str, os.PathLike]) -> JsonDict:
    """tokenizer.json as the installed `tokenizers` re-serializes it (old spellings made current)."""
    from tokenizers import Tokenizer

    try:
        return json.loads(Tokenizer.from_file(str(path)).to_str())
    except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
        raise BundleError(f"{path} cannot be loaded by the tokenizers library: {exc}") from None


def build_examples(bundle: Bundle, interpreter, android: JsonDict, texts: List[str], quantization: str) -> JsonDict:
    """Texts with their packed ids (tokenizers library) and logits (this machine's interpreter)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(bundle.max_seq_len)
    fixed = android["sequence_length"]
    names = {position: name for name, position in android["inputs"].items()}
    records = []
    for text in texts:
        encoding = tokenizer.encode(text)
        arrays = {
            INPUT_IDS: list(encoding.ids),
            ATTENTION_MASK: list(encoding.attention_mask),
            TOKEN_TYPE_IDS: list(encoding.type_ids),
        }
        feed = {name: np.asarray([values], dtype=np.int32) for name, values in arrays.items()}
        if fixed is not None:
            pad = fixed - len(encoding.ids)
            pad_values = {INPUT_IDS: _pad_id_of(tokenizer), ATTENTION_MASK: 0, TOKEN_TYPE_IDS: 0}
            feed = {name: np.pad(array, ((0, 0), (0, pad)), constant_values=pad_values[name])
                    for name, array in feed.items()}
        logits = _run(interpreter, feed, names, android["output"]["index"])
        records.append({"text": text, **arrays, "logits": [float(x) for x in logits]})
    return {
        "format": EXAMPLES_FORMAT,
        "format_version": FORMAT_VERSION,
        "quantization": quantization,
        "logit_tolerance": DEVICE_LOGIT_TOLERANCE[quantization],
        "examples": records,
    }


def _check_destination(assets_dir: Path, overwrite: bool) -> None:
    check_writable_output(assets_dir, overwrite=True, error=BundleError)  # the folder is replaced as a whole
    if not assets_dir.exists():
        return
    present = [name for name in ASSET_FILES if (assets_dir / name).exists()]
    if present and not overwrite:
        raise BundleError(f"{assets_dir} already holds {', '.join(present)}; pass {{overwrite}} to replace them",
                          options=("overwrite",))


def _write_assets(bundle: Bundle, assets_dir: Path, staged: Dict[str, bytes], android: JsonDict) -> AndroidExport:
    """Swap in a copy of `assets_dir` that holds the new four files: the old set or the new set, never a mix.

    The app reads its assets from one fixed folder, so the whole folder is replaced (atomic.py);
    the app's other assets are carried into the copy as hard links (copies where links fail).
    """
    with replacing_directory(assets_dir, overwrite=True, error=BundleError) as staging:
        if assets_dir.is_dir():
            _carry_over(assets_dir, staging)
        shutil.copyfile(bundle.model_path, staging / MODEL_FILE)
        for name, data in staged.items():
            (staging / name).write_bytes(data)
        files = {name: {"sha256": sha256_of_file(staging / name), "bytes": (staging / name).stat().st_size}
                 for name in (MODEL_FILE, VOCAB_FILE, EXAMPLES_FILE)}
        if files[MODEL_FILE]["sha256"] != bundle.manifest["files"][MODEL_FILE]["sha256"]:
            raise BundleError(f"copying {bundle.model_path} changed it; check the disk at {assets_dir}")
        android = {**android, "files": dict(files)}
        manifest = {**bundle.manifest, "android": android}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
        files[MANIFEST_FILE] = {"sha256": sha256_of_file(staging / MANIFEST_FILE),
                                "bytes": (staging / MANIFEST_FILE).stat().st_size}
    return AndroidExport(assets_dir=assets_dir, files=files, android=android, bundle=bundle)


def _carry_over(source: Path, destination: Path, top: bool = True) -> None:
    """Recreate `source` in `destination` without edge-albert's files: hard links, symlinks, directories."""
    destination.chmod(stat.S_IMODE(source.stat().st_mode))
    for entry in os.scandir(source):
        if top and (entry.name in ASSET_FILES or LEGACY_STAGING.fullmatch(entry.name)):
            continue
        target = destination / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            target.mkdir()
            _carry_over(Path(entry.path), target, top=False)
        else:
            try:
                os.link(entry.path, target)
            except OSError:
                shutil.copy2(entry.path, target)


def _load_interpreter(model_path: Path):
    check_model_file(model_path)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter  # type: ignore[no-redef]
        except ImportError:
            raise RuntimeBackendError("export-android inspects and runs the model before exporting it: install "
                                      "ai-edge-litert (pip install ai-edge-litert)") from None
    try:
        # Not allocated: allocating applies XNNPACK, after which the op list reads DELEGATE instead of
        # the model's own ops, which the checks need; _run allocates (quietly).
        return create_interpreter(model_path, 1, Interpreter, allocate=False)
    except (ValueError, RuntimeError) as exc:
        raise RuntimeBackendError(f"{model_path} cannot be loaded by the interpreter: {exc}") from None


def _tensor_info(position: int, detail: JsonDict) -> JsonDict:
    shape = detail.get("shape_signature")
    if shape is None or len(shape) == 0:
        shape = detail["shape"]
    return {
        "position": position,
        "index": int(detail["index"]),
        "name": str(detail["name"]),
        "dtype": np.dtype(detail["dtype"]).name,
        "shape_signature": [int(d) for d in shape],
    }


def _find(tensors: List[JsonDict], name: str, signature: Dict[str, int], kind: str, need: str) -> JsonDict:
    """The tensor for `name`: through the signature when there is one, else by its tensor name.

    A model without it is refused (BundleError) listing the {kind}s it has, and why the app needs it.
    """
    if signature:
        index = signature.get(name)
        found = next((t for t in tensors if t["index"] == index), None) if index is not None else None
    else:
        found = next((t for t in tensors if re.sub(r":\d+$", "", t["name"]) in (name, f"serving_default_{name}")),
                     None)
    if found is None:
        names = ", ".join(sorted(signature) or [t["name"] for t in tensors])
        raise BundleError(f"the model has no {kind} {name!r} (it has {names}); {need}")
    return found


def _run(interpreter, feed: Dict[str, np.ndarray], names: Dict[int, str], output_position: int) -> np.ndarray:
    inputs = interpreter.get_input_details()
    for position, detail in enumerate(inputs):
        array = feed[names[position]]
        if list(detail["shape"]) != list(array.shape):
            interpreter.resize_tensor_input(detail["index"], list(array.shape))

    with native_logs_silenced():  # the first allocation applies the XNNPACK delegate, which logs
        interpreter.allocate_tensors()
    for position, detail in enumerate(interpreter.get_input_details()):
        interpreter.set_tensor(detail["index"], feed[names[position]])
    interpreter.invoke()
    output = interpreter.get_output_details()[output_position]
    return np.asarray(interpreter.get_tensor(output["index"]))[0]


def _read_tokenizer_json(bundle: Bundle) -> JsonDict:
    path = bundle.tokenizer_path
    if not path.is_file():
        raise BundleError(f"{bundle.path} has no {path.name}; the Java tokenizer is exported from it")
    return canonical_tokenizer_json(path)


def _normalizer_steps(normalizer: Optional[JsonDict]) -> List[JsonDict]:
    steps: List[JsonDict] = []
    for step in _flatten(normalizer, "normalizers"):
        kind = _implemented_kind(step, "normalizer", SUPPORTED_NORMALIZERS)
        if kind == "Replace":
            pattern = step.get("pattern") or {}
            if "String" in pattern:
                steps.append({"type": "Replace", "pattern": pattern["String"], "regex": False,
                              "content": step["content"]})
            elif "Regex" in pattern:
                steps.append({"type": "Replace", "pattern": pattern["Regex"], "regex": True,
                              "content": step["content"]})
            else:
                raise BundleError(f"the tokenizer's Replace normalizer has an unknown pattern {pattern!r}")
        elif kind == "Precompiled":
            charsmap = step.get("precompiled_charsmap")
            if charsmap:  # an empty charsmap normalises nothing
                steps.append({"type": "Precompiled", "precompiled_charsmap": charsmap})
        elif kind == "Strip":
            steps.append({"type": "Strip", "strip_left": bool(step.get("strip_left")),
                          "strip_right": bool(step.get("strip_right"))})
        else:
            steps.append({"type": kind})
    return steps


def _pre_tokenizer_steps(pre_tokenizer: Optional[JsonDict]) -> List[JsonDict]:
    steps: List[JsonDict] = []
    for step in _flatten(pre_tokenizer, "pretokenizers"):
        kind = _implemented_kind(step, "pre-tokenizer", SUPPORTED_PRE_TOKENIZERS)
        if kind == "Metaspace":
            scheme = step.get("prepend_scheme", "always")
            if scheme not in ("always", "never"):
                raise BundleError(f"the tokenizer's Metaspace prepend_scheme {scheme!r} is not implemented by the "
                                  f"Java tokenizer (always and never are)")
            steps.append({"type": "Metaspace", "replacement": step["replacement"], "prepend_scheme": scheme,
                          "split": bool(step.get("split", True))})
        else:
            steps.append({"type": kind})
    return steps


def _implemented_kind(step: JsonDict, component: str, supported: Sequence[str]) -> str:
    """The step's type, refused (BundleError) when the Java tokenizer does not implement it."""
    kind = step.get("type")
    if kind not in supported:
        raise BundleError(f"the tokenizer's {component} {kind!r} is not implemented by the Java tokenizer "
                          f"(it has {', '.join(supported)})")
    return kind


def _flatten(component: Optional[JsonDict], member: str) -> List[JsonDict]:
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [step for inner in component.get(member) or [] for step in _flatten(inner, member)]
    return [component]


def _template(post_processor: Optional[JsonDict]) -> JsonDict:
    if not post_processor or post_processor.get("type") != "TemplateProcessing":
        kind = post_processor.get("type") if post_processor else None
        raise BundleError(f"the tokenizer's post-processor is {kind!r}; the Java packer reads a TemplateProcessing "
                          f"([CLS] A [SEP] ...), as ALBERT's tokenizer.json has")
    specials = post_processor.get("special_tokens") or {}

    def items(template: List[JsonDict]) -> List[JsonDict]:
        out = []
        for item in template:
            if "SpecialToken" in item:
                name = item["SpecialToken"]["id"]
                if name not in specials:
                    raise BundleError(f"the tokenizer's template uses {name!r}, which it does not define")
                out.append({"special": name, "special_ids": [int(i) for i in specials[name]["ids"]],
                            "type_id": int(item["SpecialToken"]["type_id"])})
            else:
                out.append({"sequence": item["Sequence"]["id"], "type_id": int(item["Sequence"]["type_id"])})
        return out

    return {"single": items(post_processor["single"]), "pair": items(post_processor["pair"])}


def _piece_types(pieces: List[list], added: List[JsonDict], unk_id: int, byte_fallback: bool) -> Dict[str, List[int]]:
    """Piece ids by SentencePiece type; "normal" is every id not listed (informational for the app)."""
    control = sorted(t["id"] for t in added if t["special"] and t["id"] != unk_id)
    user_defined = sorted(t["id"] for t in added if not t["special"])
    byte_ids = [i for i, (piece, _) in enumerate(pieces) if byte_fallback and re.fullmatch(r"<0x[0-9A-F]{2}>", piece)]
    return {"unknown": [unk_id], "control": control, "user_defined": user_defined, "byte": byte_ids}


def _special_tokens(pieces: List[list], added: List[JsonDict], unk_id: int) -> Dict[str, Optional[int]]:
    by_content = {t["content"]: t["id"] for t in added}
    by_content.update({piece: i for i, (piece, _) in enumerate(pieces) if piece not in by_content})
    names = {"pad": "<pad>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
    found = {key: by_content.get(content) for key, content in names.items()}
    found["unk"] = unk_id
    return found


def _pad_id(pieces: List[list], added: List[JsonDict]) -> int:
    for token in added:
        if token["content"] == "<pad>":
            return token["id"]
    for i, (piece, _) in enumerate(pieces):
        if piece == "<pad>":
            return i
    raise BundleError("the tokenizer has no <pad> token; the app pads fixed-length inputs with it")


def _pad_id_of(tokenizer) -> int:
    pad = tokenizer.token_to_id("<pad>")
    if pad is None:
        raise BundleError("the tokenizer has no <pad> token; the app pads fixed-length inputs with it")
    return int(pad)
