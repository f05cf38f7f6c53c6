"""Bundle format v1: a directory with model.tflite, tokenizer files and manifest.json.

Writing is atomic (temporary sibling directory, then rename) so that a failed conversion
never leaves a half-written bundle; loading verifies the format version and the sha256
of every file so that a corrupted copy on a device is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

from .errors import BundleError

FORMAT_NAME = "edge-albert-bundle"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.tflite"
TOKENIZER_FILE = "tokenizer.json"
SPIECE_FILE = "spiece.model"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)

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
) -> Bundle:
    """Write `files` and the manifest (with sha256 and size of every file) atomically.

    `files` maps a file name inside the bundle to its bytes or to a path to copy.
    An existing `out_dir` is replaced only when `overwrite` is true.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise BundleError(f"{out_dir} already exists; pass --overwrite to replace it")
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"a bundle needs {name}; it was not produced")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        file_records = {}
        for name, source in sorted(files.items()):
            if "/" in name or name in ("", ".", "..", MANIFEST_FILE):
                raise BundleError(f"invalid bundle file name {name!r}")
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
        _replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(path=out_dir, manifest=full_manifest)


def _replace_directory(staging: Path, out_dir: Path) -> None:
    """Move `staging` to `out_dir`; an old `out_dir` is removed only after the move succeeds."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    backup = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.replace(out_dir, backup)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(backup, out_dir)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def read_manifest(path: Union[str, os.PathLike]) -> dict:
    """Parse manifest.json of the bundle at `path` and check its format and version."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path} has no {MANIFEST_FILE}; is it an edge-albert bundle?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{manifest_path} is not an {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format version {version!r}; this edge-albert reads version "
            f"{FORMAT_VERSION} (convert the checkpoint again or install a matching edge-albert)"
        )
    return manifest


def load_bundle(path: Union[str, os.PathLike], verify: bool = True) -> Bundle:
    """Load a bundle; with `verify`, refuse it when any file is missing or its sha256 differs."""
    path = Path(path)
    manifest = read_manifest(path)
    records = manifest.get("files")
    if not isinstance(records, dict):
        raise BundleError(f"{path / MANIFEST_FILE} lists no files")
    for name in REQUIRED_FILES:
        if name not in records:
            raise BundleError(f"{path} is incomplete: the manifest lists no {name}")
    for name, record in records.items():
        file_path = path / name
        if not file_path.is_file():
            raise BundleError(f"{path} is incomplete: {name} is missing")
        if verify:
            if file_path.stat().st_size != record.get("bytes"):
                raise BundleError(
                    f"{file_path} has {file_path.stat().st_size} bytes, the manifest says "
                    f"{record.get('bytes')}: the bundle is corrupt or was copied incompletely"
                )
            if sha256_of_file(file_path) != record.get("sha256"):
                raise BundleError(f"{file_path} does not match its sha256 in the manifest: the bundle is corrupt")
    return Bundle(path=path, manifest=manifest)
