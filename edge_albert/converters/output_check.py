"""Check that an output directory can be written before minutes of conversion or training go into it.

A parent that is a file, a read-only file system, a name longer than the file system allows or
too little free space would otherwise surface as an OSError traceback after all the work. The
probe creates (and removes) one hidden directory in the nearest existing ancestor, named like
the staging directory the atomic writer will create there; nothing is left behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import BundleError

# Margin on top of the estimated bytes: manifests, file-system blocks, the temp copy on replace.
SPACE_MARGIN = 1.1
SPACE_SLACK_BYTES = 1 << 20


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-30:]}"


def check_writable_output(target, needed_bytes: int = 0) -> None:
    """Raise BundleError (one line) unless `target` (a directory to be created or replaced) can be written."""
    target = Path(os.path.abspath(target))
    parent = _nearest_existing(target.parent)
    if not parent.is_dir():
        raise BundleError(f"cannot write {_shown(target)}: {parent} is a file, not a directory")
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    missing = [p.name for p in [target, *target.parents] if p != parent and parent in p.parents]
    for name in missing:
        if len(os.fsencode(name)) > name_max:
            raise BundleError(f"cannot write {_shown(target)}: the name is too long ({len(os.fsencode(name))} bytes; "
                              f"this file system allows {name_max})")
    try:
        probe = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent) if target.parent == parent \
            else tempfile.mkdtemp(prefix=".edge-albert-probe.", dir=parent)
    except OSError as exc:
        reason = "the name is too long for the staging directory beside it" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or str(exc))
        raise BundleError(f"cannot write {_shown(target)}: {reason} (in {parent})") from None
    os.rmdir(probe)
    if needed_bytes:
        free = shutil.disk_usage(parent).free
        needed = int(needed_bytes * SPACE_MARGIN) + SPACE_SLACK_BYTES
        if free < needed:
            raise BundleError(f"cannot write {_shown(target)}: {free / 1e6:.1f} MB free in {parent}, "
                              f"about {needed / 1e6:.1f} MB needed")
