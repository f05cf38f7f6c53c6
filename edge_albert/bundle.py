"""Bundle format v1: a directory with model.tflite, tokenizer files and manifest.json.

Writing is atomic (a staging sibling directory swapped in by edge_albert.atomic) so that a
failed or killed conversion never leaves a half-written bundle, nor no bundle; loading verifies the format version and the sha256
of every file so that a corrupted copy on a device is refused with a clear message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Type, Union

from .atomic import check_writable_output, readable_backup, replacing_directory
from .contract import TASKS
from .errors import BundleError, EdgeAlbertError
from .signing import sign_file, trusted_key_from_environment, verify_signature

FORMAT_NAME = "edge-albert-bundle"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.tflite"
TOKENIZER_FILE = "tokenizer.json"
SPIECE_FILE = "spiece.model"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
GRAPHS = ("loop", "unrolled")
MIN_SEQ_LEN = 3  # [CLS] one token [SEP]
MAX_SEQ_LEN = 8192  # far above ALBERT's 512 positions; a larger value is a damaged manifest
# Reads of a bundle that a writer replaced meanwhile are repeated up to this many times in all.
READ_ATTEMPTS = 5

FileSource = Union[bytes, str, os.PathLike]


def sha256_of_file(path: Union[str, os.PathLike], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its directory and parsed manifest."""

    path: Path
    manifest: dict

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.manifest.get("tokenizer", {}).get("file", TOKENIZER_FILE)

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list:
        return list(self.manifest.get("labels") or [])

    @property
    def max_seq_len(self) -> int:
        return int(self.manifest["max_seq_len"])


def write_bundle(
    out_dir: Union[str, os.PathLike],
    files: Mapping[str, FileSource],
    manifest: Mapping[str, Any],
    overwrite: bool = False,
    finish: Optional[Callable[[Path], Any]] = None,
) -> Bundle:
    """Write `files` and the manifest (with sha256 and size of every file) atomically.

    `finish` is called on the complete staging directory before it is swapped in (convert signs
    there), so the output is the old bundle or the finished new one, never an unsigned one.

    `files` maps a file name inside the bundle to its bytes or to a path to copy.
    An existing `out_dir` is replaced only when `overwrite` is true, and only if it is a bundle
    (or empty): a mistyped `--overwrite -o ~` must not delete a home directory.
    """
    out_dir = Path(out_dir)
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"a bundle needs {name}; it was not produced")
    for name in files:
        if "/" in name or name in ("", ".", "..", MANIFEST_FILE):
            raise BundleError(f"invalid bundle file name {name!r}")
    with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_bundle, error=BundleError) as staging:
        file_records = {}
        for name, source in sorted(files.items()):
            target = staging / name
            if isinstance(source, (bytes, bytearray)):
                target.write_bytes(source)
            else:
                shutil.copyfile(source, target)
            file_records[name] = {"sha256": sha256_of_file(target), "bytes": target.stat().st_size}
        full_manifest = dict(manifest)
        full_manifest["format"] = FORMAT_NAME
        full_manifest["format_version"] = FORMAT_VERSION
        full_manifest["files"] = file_records
        (staging / MANIFEST_FILE).write_text(json.dumps(full_manifest, indent=2, sort_keys=False) + "\n")
        if finish is not None:
            finish(staging)
    return Bundle(path=out_dir, manifest=full_manifest)


def check_bundle_output(
    path: Union[str, os.PathLike],
    overwrite: bool = False,
    needed_bytes: int = 0,
    error: Type[EdgeAlbertError] = BundleError,
) -> None:
    """Refuse, before any conversion work, a bundle path that write_bundle could not write (atomic.py)."""
    check_writable_output(path, overwrite=overwrite, needed_bytes=needed_bytes, replaceable=_not_a_bundle, error=error)


def _not_a_bundle(path: Path) -> Optional[str]:
    """Why the existing directory `path` must not be replaced by a bundle, or None."""
    if (path / MANIFEST_FILE).is_file() or not any(path.iterdir()):
        return None
    return f"it is not an edge-albert bundle (no {MANIFEST_FILE}); remove it yourself or choose another path"


def _is_hugging_face_checkpoint(path: Path) -> bool:
    """config.json beside weights: what users give predict before converting it."""
    weights = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
    return (path / "config.json").is_file() and any((path / name).is_file() for name in weights)


def read_manifest(path: Union[str, os.PathLike]) -> dict:
    """Parse manifest.json of the bundle at `path` and check its format and version."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        if _is_hugging_face_checkpoint(path):
            raise BundleError(f"{path} has no {MANIFEST_FILE}: this is a Hugging Face checkpoint; convert it first: "
                              f"edge-albert convert {path} -o BUNDLE")
        raise BundleError(f"{path} has no {MANIFEST_FILE}; is it an edge-albert bundle?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BundleError(f"{manifest_path} nests JSON too deeply to be a manifest") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise BundleError(f"{manifest_path} is not a readable manifest: {exc}") from None
    validate_manifest(manifest, manifest_path)
    return manifest


def validate_manifest(manifest: Any, where: Union[str, os.PathLike] = MANIFEST_FILE) -> None:
    """Check every manifest field a reader relies on, so that each reader gets the same one-line error.

    Runtime, inspect and export-android all read the manifest through here; a field of the wrong
    type is refused with its name and what would be valid, instead of failing later in a reader.
    Sections are checked in a fixed order, so a manifest with several faults always gets the same error.
    """
    _check_format(manifest, where)
    bad = functools.partial(_field_error, where)
    _check_model_fields(manifest, bad)
    records = _check_files(manifest, bad)
    _check_tokenizer(manifest, records, bad)
    _check_quantization(manifest, bad)
    _check_source(manifest, bad)
    _check_inspection(manifest, bad)
    _check_early_exit(manifest, bad)


FieldError = Callable[..., BundleError]  # (field, expected, value=None, missing=False) -> BundleError


def _field_error(where: Union[str, os.PathLike], field: str, expected: str, value: Any = None,
                 missing: bool = False) -> BundleError:
    got = "it is missing" if missing else f"not {_short(value)} ({type(value).__name__})"
    return BundleError(f"{where}: field {field!r} must be {expected}, {got}")


def _check_format(manifest: Any, where: Union[str, os.PathLike]) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{where} is not an {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(
            f"{Path(where).parent} has bundle format version {_short(version)}; this edge-albert reads version "
            f"{FORMAT_VERSION} (convert the checkpoint again or install a matching edge-albert)"
        )


def _check_model_fields(manifest: dict, bad: FieldError) -> None:
    """Task, sequence length, graph form and labels: what a reader needs to feed the model."""
    # Any task name passes here (the task classes name the ones this version runs); its type must be right.
    if not isinstance(manifest.get("task"), str) or not manifest["task"]:
        raise bad("task", f"a task name such as {', '.join(TASKS)}", manifest.get("task"), "task" not in manifest)
    seq = manifest.get("max_seq_len")
    if not _is_int(seq) or not MIN_SEQ_LEN <= seq <= MAX_SEQ_LEN:
        raise bad("max_seq_len", f"an integer from {MIN_SEQ_LEN} to {MAX_SEQ_LEN}", seq, "max_seq_len" not in manifest)
    if "graph" in manifest and manifest["graph"] not in GRAPHS:
        raise bad("graph", f"one of {', '.join(GRAPHS)}", manifest["graph"])
    labels = manifest.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        raise bad("labels", "a list of label names (strings)", labels)


def _check_files(manifest: dict, bad: FieldError) -> dict:
    """The file records (plain names, sha256 and size each); returns them for the checks that name files."""
    records = manifest.get("files")
    if not isinstance(records, dict) or not records:
        raise bad("files", "an object mapping file names to {\"sha256\", \"bytes\"}", records, "files" not in manifest)
    for name, record in records.items():
        if "/" in name or "\\" in name or name in ("", ".", "..", MANIFEST_FILE):
            raise bad("files", "plain file names inside the bundle", name)
        if not isinstance(record, dict):
            raise bad(f"files.{name}", "an object with \"sha256\" and \"bytes\"", record)
        digest, size = record.get("sha256"), record.get("bytes")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise bad(f"files.{name}.sha256", "64 lower-case hex digits", digest, "sha256" not in record)
        if not _is_int(size) or size < 0:
            raise bad(f"files.{name}.bytes", "a non-negative integer", size, "bytes" not in record)
    return records


def _check_tokenizer(manifest: dict, records: dict, bad: FieldError) -> None:
    tokenizer = manifest.get("tokenizer", {})
    if not isinstance(tokenizer, dict):
        raise bad("tokenizer", "an object", tokenizer)
    tokenizer_file = tokenizer.get("file", TOKENIZER_FILE)
    if not isinstance(tokenizer_file, str) or tokenizer_file not in records:
        raise bad("tokenizer.file", "the name of a file the manifest lists", tokenizer_file)
    special = tokenizer.get("special_tokens", {})
    if special is not None and not isinstance(special, dict):
        raise bad("tokenizer.special_tokens", "an object", special)
    for key, value in (special or {}).items():
        if key.endswith("_id") and value is not None and (not _is_int(value) or value < 0):
            raise bad(f"tokenizer.special_tokens.{key}", "a non-negative integer token id", value)


def _check_quantization(manifest: dict, bad: FieldError) -> None:
    quantization = manifest.get("quantization", {})
    if not isinstance(quantization, dict):
        raise bad("quantization", "an object with \"mode\"", quantization)
    if "mode" in quantization and not isinstance(quantization["mode"], str):
        raise bad("quantization.mode", "a string such as \"fp32\" or \"dynamic-int8\"", quantization["mode"])
    min_runtime = quantization.get("min_runtime")
    if min_runtime is not None and not isinstance(min_runtime, str) and not (
            isinstance(min_runtime, dict) and all(isinstance(v, str) for v in min_runtime.values())):
        raise bad("quantization.min_runtime", "an object of package: version strings", min_runtime)


def _check_source(manifest: dict, bad: FieldError) -> None:
    """The descriptive sections are objects; of `source`, the fields readers use have the right type."""
    for section in ("source", "inspection", "validation"):
        if section in manifest and not isinstance(manifest[section], dict):
            raise bad(section, "an object", manifest[section])
    problem = (manifest.get("source") or {}).get("problem_type")
    if problem is not None and not isinstance(problem, str):
        raise bad("source.problem_type", "a string", problem)
    parameters = (manifest.get("source") or {}).get("parameters")
    if parameters is not None and (not _is_int(parameters) or parameters < 0):
        raise bad("source.parameters", "a non-negative integer", parameters)


def _check_inspection(manifest: dict, bad: FieldError) -> None:
    inspection = manifest.get("inspection") or {}
    for key in ("file_bytes", "weight_buffers", "subgraphs"):
        if key in inspection and (not _is_int(inspection[key]) or inspection[key] < 0):
            raise bad(f"inspection.{key}", "a non-negative integer", inspection[key])
    if "size_ratio" in inspection and (isinstance(inspection["size_ratio"], bool)
                                       or not isinstance(inspection["size_ratio"], (int, float))):
        raise bad("inspection.size_ratio", "a number", inspection["size_ratio"])
    parts = inspection.get("bytes_by_part", {})
    if not isinstance(parts, dict) or not all(_is_int(v) for v in parts.values()):
        raise bad("inspection.bytes_by_part", "an object of part: byte count", parts)


def _check_early_exit(manifest: dict, bad: FieldError) -> None:
    """The early-exit entry every reader (runtime, inspect, bench) takes apart: rule, default, names, depth."""
    entry = manifest.get("early_exit")
    if entry is None or entry == {}:
        return
    if not isinstance(entry, dict):
        raise bad("early_exit", "an object with rule, default, input and calls_output", entry)
    from .early_exit import CALLS_OUTPUT, INPUT_NAMES, check_value  # numpy: only for early-exit bundles

    rule = entry.get("rule")
    if not isinstance(rule, str) or rule not in INPUT_NAMES:
        raise bad("early_exit.rule", f"one of {', '.join(INPUT_NAMES)}", rule, "rule" not in entry)
    try:
        check_value(rule, entry.get("default"))
    except EdgeAlbertError:
        raise bad("early_exit.default", f"a valid {rule} value", entry.get("default"), "default" not in entry) from None
    if entry.get("input") != INPUT_NAMES[rule]:
        raise bad("early_exit.input", repr(INPUT_NAMES[rule]), entry.get("input"), "input" not in entry)
    if entry.get("calls_output") != CALLS_OUTPUT:
        raise bad("early_exit.calls_output", repr(CALLS_OUTPUT), entry.get("calls_output"), "calls_output" not in entry)
    calls = entry.get("max_calls")
    if calls is not None and (not _is_int(calls) or calls < 1):
        raise bad("early_exit.max_calls", "a positive integer", calls)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def load_bundle(path: Union[str, os.PathLike], verify: bool = True,
                trusted_key: Union[str, os.PathLike, None] = None) -> Bundle:
    """Load a bundle; with `verify`, refuse it when any file is missing or its sha256 differs.

    With `trusted_key` (a public key file; else $EDGE_ALBERT_TRUSTED_KEY when set), the manifest
    must carry a valid signature by that key, so every file is authentic, not only intact.

    A writer may replace the bundle while it is read (atomic.replacing_directory swaps whole
    directories): a read that saw the directory change is repeated, so the caller gets the old
    or the new bundle, never an error made of a mix of both. While a writer on a file system
    without an atomic exchange sits between its two renames, the backup it made is read.
    """
    path = Path(path)
    trusted_key = trusted_key_from_environment(trusted_key)
    for attempt in range(1, READ_ATTEMPTS + 1):
        source = path if os.path.lexists(path) else (readable_backup(path) or path)
        pin = _pin_directory(source)
        try:
            try:
                bundle = _load_bundle_once(source, verify, trusted_key)
            except BundleError:
                if attempt < READ_ATTEMPTS and _replaced(pin, source):
                    continue
                raise
            if attempt < READ_ATTEMPTS and _replaced(pin, source):
                continue  # what was verified is no longer at the path; read what is there now
            return bundle
        finally:
            if pin is not None:
                os.close(pin)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _pin_directory(path: Path) -> Optional[int]:
    """An open descriptor on the directory: its inode number cannot be reused while we hold it."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None


def _replaced(pin: Optional[int], path: Path) -> bool:
    """Whether the directory read through `path` was moved away or deleted since it was pinned."""
    if pin is None:
        return os.path.isdir(path)  # it appeared meanwhile
    pinned = os.fstat(pin)
    if pinned.st_nlink == 0:
        return True
    try:
        current = os.stat(path)
    except OSError:
        return True
    return (current.st_dev, current.st_ino) != (pinned.st_dev, pinned.st_ino)


def sign_bundle(bundle_dir: Union[str, os.PathLike], private_key) -> Path:
    """Sign the bundle's manifest.json with `private_key` (edge_albert.signing); write manifest.sig atomically."""
    read_manifest(bundle_dir)  # sign only something that is a bundle
    return sign_file(bundle_dir, MANIFEST_FILE, private_key)


def verify_bundle_signature(bundle_dir: Union[str, os.PathLike], public_key: Union[str, os.PathLike]) -> str:
    """Refuse (BundleError) a bundle whose manifest.json is unsigned, altered, or signed by another key.

    Returns the key id. Check the files against the manifest's sha256 afterwards (load_bundle does).
    """
    return verify_signature(bundle_dir, MANIFEST_FILE, public_key)


def _load_bundle_once(path: Path, verify: bool, trusted_key: Union[str, os.PathLike, None] = None) -> Bundle:
    manifest = read_manifest(path)
    if trusted_key is not None:
        verify_bundle_signature(path, trusted_key)
        verify = True  # a signed manifest vouches for the files only through their sha256
    records = manifest["files"]
    for name in REQUIRED_FILES:
        if name not in records:
            raise BundleError(f"{path} is incomplete: the manifest lists no {name}")
    for name, record in records.items():
        file_path = path / name
        if not file_path.is_file():
            raise BundleError(f"{path} is incomplete: {name} is missing")
        if verify:
            if file_path.stat().st_size != record["bytes"]:
                raise BundleError(
                    f"{file_path} has {file_path.stat().st_size} bytes, the manifest says "
                    f"{record.get('bytes')}: the bundle is corrupt or was copied incompletely"
                )
            if sha256_of_file(file_path) != record.get("sha256"):
                raise BundleError(f"{file_path} does not match its sha256 in the manifest: the bundle is corrupt")
    return Bundle(path=path, manifest=manifest)
