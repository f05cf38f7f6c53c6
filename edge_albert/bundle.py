"""Bundle format v1: a directory with model.tflite, tokenizer files and manifest.json.

Writing is atomic (a staging sibling directory swapped in by edge_albert.atomic) so that a
failed or killed conversion never leaves a half-written bundle, nor no bundle; loading verifies the format version and the sha256
of every file so that a corrupted copy on a device is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Type, Union

from .atomic import check_writable_output, readable_backup, replacing_directory
from .errors import BundleError, EdgeAlbertError

FORMAT_NAME = "edge-albert-bundle"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.tflite"
TOKENIZER_FILE = "tokenizer.json"
SPIECE_FILE = "spiece.model"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
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
) -> Bundle:
    """Write `files` and the manifest (with sha256 and size of every file) atomically.

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
    """Load a bundle; with `verify`, refuse it when any file is missing or its sha256 differs.

    A writer may replace the bundle while it is read (atomic.replacing_directory swaps whole
    directories): a read that saw the directory change is repeated, so the caller gets the old
    or the new bundle, never an error made of a mix of both. While a writer on a file system
    without an atomic exchange sits between its two renames, the backup it made is read.
    """
    path = Path(path)
    for attempt in range(1, READ_ATTEMPTS + 1):
        source = path if os.path.lexists(path) else (readable_backup(path) or path)
        pin = _pin_directory(source)
        try:
            try:
                bundle = _load_bundle_once(source, verify)
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


def _load_bundle_once(path: Path, verify: bool) -> Bundle:
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
