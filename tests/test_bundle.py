"""Bundle format v1: atomic writes, no overwrite without asking, sha256 verification on load."""

import json
import os

import pytest

from edge_albert.bundle import FORMAT_VERSION, MANIFEST_FILE, load_bundle, write_bundle
from edge_albert.errors import BundleError

FILES = {"model.tflite": b"model-bytes", "tokenizer.json": b"{}"}


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_write_then_load_round_trip(tmp_path):
    bundle = write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "text-classification", "max_seq_len": 8})
    loaded = load_bundle(bundle.path)
    assert loaded.manifest["format_version"] == FORMAT_VERSION
    assert loaded.manifest["files"]["model.tflite"]["bytes"] == len(b"model-bytes")
    assert loaded.task == "text-classification"
    assert _leftovers(tmp_path) == []


def test_existing_output_is_not_overwritten_without_flag(tmp_path):
    write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(tmp_path / "b.edgealbert", {**FILES, "model.tflite": b"new"}, {"task": "x", "max_seq_len": 8})
    assert (tmp_path / "b.edgealbert" / "model.tflite").read_bytes() == b"model-bytes"


def test_overwrite_replaces_the_bundle(tmp_path):
    write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    write_bundle(tmp_path / "b.edgealbert", {**FILES, "model.tflite": b"new"}, {"task": "x", "max_seq_len": 8}, overwrite=True)
    assert (tmp_path / "b.edgealbert" / "model.tflite").read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch, overwrite):
    if overwrite:
        write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "old", "max_seq_len": 8})
    import edge_albert.bundle as bundle_module

    real_sha = bundle_module.sha256_of_file
    calls = []

    def interrupted(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C half way through
        return real_sha(path, *args, **kwargs)

    monkeypatch.setattr(bundle_module, "sha256_of_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(tmp_path / "b.edgealbert", {**FILES, "spiece.model": b"sp"}, {"task": "new", "max_seq_len": 8}, overwrite=overwrite)
    assert _leftovers(tmp_path) == []
    if overwrite:
        monkeypatch.setattr(bundle_module, "sha256_of_file", real_sha)
        assert load_bundle(tmp_path / "b.edgealbert").manifest["task"] == "old"
    else:
        assert not (tmp_path / "b.edgealbert").exists()


def test_corrupted_file_is_named(tmp_path):
    bundle = write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    (bundle.path / "model.tflite").write_bytes(b"model-bytez")
    with pytest.raises(BundleError, match="model.tflite does not match its sha256"):
        load_bundle(bundle.path)


def test_truncated_file_is_named(tmp_path):
    bundle = write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    (bundle.path / "model.tflite").write_bytes(b"model")
    with pytest.raises(BundleError, match="model.tflite has 5 bytes"):
        load_bundle(bundle.path)


def test_missing_file_is_named(tmp_path):
    bundle = write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    os.remove(bundle.path / "tokenizer.json")
    with pytest.raises(BundleError, match="tokenizer.json is missing"):
        load_bundle(bundle.path)


def test_unknown_format_version_is_refused(tmp_path):
    bundle = write_bundle(tmp_path / "b.edgealbert", FILES, {"task": "x", "max_seq_len": 8})
    manifest = json.loads((bundle.path / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (bundle.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99"):
        load_bundle(bundle.path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)


def test_a_bundle_needs_model_and_tokenizer(tmp_path):
    with pytest.raises(BundleError, match="tokenizer.json"):
        write_bundle(tmp_path / "b.edgealbert", {"model.tflite": b"m"}, {"task": "x"})
    assert not (tmp_path / "b.edgealbert").exists()
