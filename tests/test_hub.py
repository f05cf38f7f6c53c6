"""Hugging Face model ids as checkpoints: resolved through a local Hub cache built here, never the network.

The cache has huggingface_hub's layout (models--ORG--NAME/blobs, snapshots/COMMIT/ as links into
blobs, refs/main), with two commits whose checkpoints differ in their label names, so a test sees
which commit was read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_albert.bundle import load_bundle
from edge_albert.cli import main
from edge_albert.errors import CheckpointError
from edge_albert.hub import resolve_checkpoint
from tests.checkpoints import edit_config

REPO_ID = "tiny-org/tiny-albert"
MAIN = "a" * 40
OLDER = "b" * 40
ROOT = Path(__file__).resolve().parents[1]


def _add_snapshot(repo: Path, commit: str, checkpoint: Path) -> Path:
    """Store `checkpoint`'s files as blobs and link them from snapshots/COMMIT/, as huggingface_hub does."""
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for file in sorted(checkpoint.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


@pytest.fixture
def hub_cache(tiny_classifier_checkpoint, tmp_path, monkeypatch) -> Path:
    """An offline Hub cache holding REPO_ID at MAIN (labels negative/positive, refs/main) and OLDER (labels bad/good)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-home" / "hub"
    repo = cache / ("models--" + REPO_ID.replace("/", "--"))
    _add_snapshot(repo, MAIN, tiny_classifier_checkpoint)
    older = tmp_path / "older"
    shutil.copytree(tiny_classifier_checkpoint, older)
    edit_config(older, id2label={"0": "bad", "1": "good"}, label2id={"bad": 0, "good": 1})
    _add_snapshot(repo, OLDER, older)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    # huggingface_hub reads its environment once, at import: patch what it read, and the environment for children
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return cache


def test_an_id_resolves_to_its_cached_snapshot_and_a_revision_to_that_commit(hub_cache):
    assert resolve_checkpoint(REPO_ID).name == MAIN
    assert resolve_checkpoint(REPO_ID, revision="main").name == MAIN
    assert resolve_checkpoint(REPO_ID, revision=OLDER).name == OLDER
    assert (resolve_checkpoint(REPO_ID) / "config.json").is_file()


def test_a_local_directory_of_the_same_name_keeps_precedence(hub_cache, tmp_path):
    local = tmp_path / REPO_ID
    local.mkdir(parents=True)
    assert resolve_checkpoint(REPO_ID) == Path(REPO_ID)
    with pytest.raises(CheckpointError, match="revision applies to Hugging Face model ids"):
        resolve_checkpoint(REPO_ID, revision=OLDER)


@pytest.mark.parametrize("name, message", [
    ("tiny-org/missing", "tiny-org/missing: not a directory and not in the Hugging Face cache (offline"),
    ("no such model", "no such model: not a directory, and not a Hugging Face model id"),
])
def test_an_unknown_id_is_one_line_naming_the_cache(hub_cache, name, message):
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint(name)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_an_unknown_revision_of_a_cached_id_is_refused(hub_cache):
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache at revision v9"):
        resolve_checkpoint(REPO_ID, revision="v9")


def test_paths_are_never_taken_for_ids(hub_cache):
    for name in ("./tiny-org/tiny-albert", "/nonexistent/tiny-albert", "a/b/c"):
        assert resolve_checkpoint(name) == Path(name)  # load_checkpoint then says "not a directory"


def test_cli_convert_reads_an_id_and_a_revision_from_the_cache(hub_cache, tmp_path):
    for args, labels in (([], ["negative", "positive"]), (["--revision", OLDER], ["bad", "good"])):
        out = tmp_path / f"by-id{len(args)}.edgealbert"
        result = CliRunner().invoke(main, ["convert", REPO_ID, *args, "-o", str(out), "--quantize", "fp32"])
        assert result.exit_code == 0, result.output
        assert load_bundle(out).manifest["labels"] == labels


def test_cli_convert_of_a_missing_id_offline_is_one_line_before_any_work(hub_cache, tmp_path):
    """In a child process: HF_HUB_OFFLINE and HF_HUB_CACHE from the environment, as a user sets them."""
    out = tmp_path / "missing.edgealbert"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "edge_albert.cli", "convert", "tiny-org/missing", "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: tiny-org/missing: not a directory and not in the Hugging Face cache (offline: "
                      "HF_HUB_OFFLINE is set); download it where there is a network (hf download tiny-org/missing) "
                      "or give a checkpoint directory"], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not any(tmp_path.glob(".missing*"))
