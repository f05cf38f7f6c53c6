"""One output-path check for every writer: a parent that is a file, a name over NAME_MAX, a path over
PATH_MAX, a directory where a file goes: one `error:` line before any work, nothing written."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from edge_albert.atomic import check_writable_file
from edge_albert.bundle import write_bundle
from edge_albert.cli import main
from edge_albert.errors import OutputError


@pytest.fixture
def fake_bundle(tmp_path):
    """A bundle whose files are intact but whose model is junk: enough for the checks that come first."""
    return write_bundle(tmp_path / "in" / "b.edgealbert", {"model.tflite": b"junk", "tokenizer.json": b"{}"},
                        {"task": "text-classification", "max_seq_len": 8, "labels": ["a", "b"]}).path


WRITERS = {
    "evaluate --json": lambda b, out: ["evaluate", str(b), str(b / "manifest.json"), "--json", out],
    "bench --json": lambda b, out: ["bench", str(b), "--json", out],
    "keygen": lambda b, out: ["keygen", out],
    "export-android": lambda b, out: ["export-android", str(b), out],
    "convert": lambda b, out: ["convert", str(b.parent / "ckpt"), "-o", out],
    "compress": lambda b, out: ["compress", str(b.parent / "teacher"), "--train", str(b / "manifest.json"), "-o", out],
    "finetune": lambda b, out: ["finetune", str(b / "manifest.json"), "-o", out],
}


def _bad_paths(tmp_path):
    (tmp_path / "a-file").write_text("x")
    return {
        "under a file": (str(tmp_path / "a-file" / "out"), "a-file is a file, not a directory"),
        "name too long": (str(tmp_path / ("n" * 300)), "bytes long and the file system allows at most"),
        "path too long": (str(tmp_path / "/".join(["d" * 200] * 25) / "out"), "path is"),  # "the path is too long"
    }


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_writer_refuses_an_unwritable_output_in_one_line(writer, fake_bundle, tmp_path):
    for kind, (out, message) in _bad_paths(tmp_path).items():
        before = sorted(os.listdir(tmp_path))
        result = CliRunner().invoke(main, WRITERS[writer](fake_bundle, out))
        assert result.exit_code == 1 and "Traceback" not in result.output, (kind, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (kind, result.output)
        assert sorted(os.listdir(tmp_path)) == before, kind


def test_the_file_check_refuses_directories_existing_files_and_unwritable_parents(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="it is a directory"):
        check_writable_file(tmp_path)
    (tmp_path / "there").write_text("x")
    with pytest.raises(OutputError, match="already exists"):
        check_writable_file(tmp_path / "there", overwrite=False)
    check_writable_file(tmp_path / "there")  # replacing is the default for reports
    check_writable_file(tmp_path / "new" / "deeper" / "report.json")  # missing parents are made by the writer

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputError, match="cannot write .*: the file system is read-only"):
        check_writable_file(tmp_path / "report.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]
