"""Where a checkpoint argument points: a local directory, else a Hugging Face model id.

Users copy ids such as `textattack/albert-base-v2-SST-2` from the Hub. A directory of that name
keeps precedence; otherwise the id (and revision) is resolved through huggingface_hub's cache:
from the cache alone when HF_HUB_OFFLINE is set or the Hub cannot be reached, downloaded into it
otherwise. Only the files a checkpoint needs are fetched (configs, tokenizer, one weights file),
never the TF/Flax/ONNX copies a Hub repository often also holds. One CheckpointError line when
neither the disk nor the Hub has it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .errors import CheckpointError

# configs and tokenizer files, then safetensors weights; pytorch_model.bin only when there are none
_FIRST_FILES = ["*.json", "spiece.model", "model.safetensors"]
_LEGACY_WEIGHTS = ["pytorch_model.bin"]


def looks_like_path(name: str) -> bool:
    """Whether `name` is written as a path (absolute, ./, ~, several parts), never as a Hub id."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name) or name == "")


def resolve_checkpoint(name: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """The checkpoint directory `name` stands for: itself if it is a directory, else the Hub id's snapshot.

    `revision` (branch, tag or commit) applies to Hub ids only. Raises CheckpointError (naming
    `revision` where it is the problem) when the directory does not exist and the id cannot be
    found in the cache or, online, on the Hub.
    """
    path = Path(name)
    if path.is_dir():
        if revision is not None:
            raise CheckpointError(f"{{revision}} applies to Hugging Face model ids; {name} is a local directory",
                                  options=("revision",))
        return path
    text = os.fspath(name)
    if path.exists() or looks_like_path(text):
        return path  # load_checkpoint says what is wrong with it
    return _snapshot(text, revision)


def _snapshot(repo_id: str, revision: Optional[str]) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import HFValidationError
    except ImportError:
        raise CheckpointError(f"{repo_id} is not a directory, and huggingface_hub (installed with transformers: "
                              "pip install 'edge-albert[convert]') is needed to read it as a Hugging Face model id"
                              ) from None
    try:
        folder = _download(snapshot_download, repo_id, revision, _FIRST_FILES)
        if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
            folder = _download(snapshot_download, repo_id, revision, _LEGACY_WEIGHTS)
    except HFValidationError:
        raise CheckpointError(f"{repo_id}: not a directory, and not a Hugging Face model id (ORG/NAME)") from None
    except Exception as exc:  # huggingface_hub raises its own HTTP, cache and connection errors
        raise _hub_error(repo_id, revision, exc) from None
    return folder


def _download(snapshot_download, repo_id: str, revision: Optional[str], patterns) -> Path:
    """The snapshot folder; offline, a cached snapshot that lacks files we did not ask for still serves."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except LocalEntryNotFoundError as exc:  # IncompleteSnapshotError (2.x) names the partial snapshot
        snapshot = getattr(exc, "snapshot_path", None)
        if snapshot and (Path(snapshot) / "config.json").is_file():
            return Path(snapshot)  # load_checkpoint names a file that is really missing
        raise


def _hub_error(repo_id: str, revision: Optional[str], exc: Exception) -> CheckpointError:
    """One line for what huggingface_hub could not do, by its error class (imported lazily)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    at = f" at revision {revision}" if revision else ""
    if isinstance(exc, RevisionNotFoundError):
        return CheckpointError(f"{repo_id}: the Hugging Face Hub has no revision {revision!r} of this model",
                               options=("revision",))
    if isinstance(exc, GatedRepoError):
        return CheckpointError(f"{repo_id} is gated on the Hugging Face Hub: accept its terms on the model page, "
                               "then log in (hf auth login)")
    if isinstance(exc, RepositoryNotFoundError):
        return CheckpointError(f"{repo_id}: not a directory and not a model on the Hugging Face Hub "
                               "(if it is private: hf auth login)")
    if isinstance(exc, LocalEntryNotFoundError):
        if constants.HF_HUB_OFFLINE:
            return CheckpointError(f"{repo_id}: not a directory and not in the Hugging Face cache{at} (offline: "
                                   f"HF_HUB_OFFLINE is set); download it where there is a network "
                                   f"(hf download {repo_id}) or give a checkpoint directory")
        return CheckpointError(f"{repo_id}: not a directory, not in the Hugging Face cache{at}, and the Hub cannot "
                               "be reached; check the network, or give a checkpoint directory")
    return CheckpointError(f"{repo_id}: cannot be fetched from the Hugging Face Hub{at}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
