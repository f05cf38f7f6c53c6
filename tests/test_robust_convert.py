"""Workstation side under bad input: one `error:` line, exit 1, nothing written, no traceback, no noise.

Covers config.json / tokenizer_config.json content, unwritable outputs, impossible finetune
settings, line endings of text files, the light install without the workstation extras, the
libraries' log lines, a native crash of the TFLite converter, and benchmarks/compare.py's files.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from edge_albert import atomic
from edge_albert.cli import main as cli
from edge_albert.converters import convert as convert_module
from edge_albert.converters import tflite as tflite_module
from edge_albert.hf.checkpoint import load_checkpoint
from edge_albert.converters.convert import convert_checkpoint
from edge_albert.converters.samples import read_text_lines
from edge_albert.errors import CheckpointError, ConversionError, EdgeAlbertError
from edge_albert.finetune import FinetuneConfig, finetune, read_examples

REPO = Path(__file__).resolve().parents[1]
DEEP_JSON = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
PROGRESS_LINE = re.compile(r"^\[\s*\d+\.\ds\] ")


@pytest.fixture
def checkpoint_copy(tiny_classifier_checkpoint, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_classifier_checkpoint, tmp_path / "ckpt"))


def _edit_config(checkpoint: Path, **changes) -> None:
    path = checkpoint / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _no_conversion(monkeypatch):
    """Fail the test if conversion work starts: the checks must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("conversion started although the input was refused")

    monkeypatch.setattr(convert_module, "load_reference_model", refuse)
    monkeypatch.setattr(convert_module, "start_conversion", refuse)


# --------------------------------------------------------------------------- config.json

BAD_CONFIGS = {
    "zero heads": ({"num_attention_heads": 0}, "num_attention_heads must be an integer >= 1, not 0"),
    "hidden not divisible by heads": ({"hidden_size": 30}, "not a multiple of num_attention_heads"),
    "negative hidden size": ({"hidden_size": -32}, "hidden_size must be an integer >= 1, not -32"),
    "vocab_size as a string": ({"vocab_size": "30000"}, "vocab_size must be an integer"),
    "vocab_size not an integer": ({"vocab_size": 30000.5}, "vocab_size must be an integer"),
    "vocab_size a boolean": ({"vocab_size": True}, "vocab_size must be an integer"),
    "zero layers": ({"num_hidden_layers": 0}, "num_hidden_layers must be an integer >= 1"),
    "negative layer_norm_eps": ({"layer_norm_eps": -1}, "layer_norm_eps must be a small positive number"),
    "id2label as a list": ({"id2label": ["negative", "positive"]}, "id2label must be an object"),
    "id2label names not strings": ({"id2label": {"0": {"a": 1}, "1": "b"}}, "label names (strings)"),
    "id2label with a gap": ({"id2label": {"0": "a", "2": "b"}}, "without gaps"),
    "num_labels disagrees with id2label": ({"num_labels": 3}, "num_labels is 3 but id2label names 2"),
    "architectures a string": ({"architectures": "AlbertForSequenceClassification"}, "architectures must be a list"),
    "architectures nested list": ({"architectures": [["AlbertForSequenceClassification"]]}, "architectures must be a list"),
    "architectures not strings": ({"architectures": [1]}, "architectures must be a list"),
    "hidden_act not a string": ({"hidden_act": ["gelu"]}, "hidden_act"),
    "problem_type not a string": ({"problem_type": 5}, "problem_type must be a string"),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_impossible_config_values_are_one_checkpoint_error(checkpoint_copy, name):
    changes, message = BAD_CONFIGS[name]
    _edit_config(checkpoint_copy, **changes)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(checkpoint_copy)


@pytest.mark.parametrize("file_name", ["config.json", "tokenizer_config.json"])
def test_deeply_nested_json_is_reported_not_a_recursion_error(checkpoint_copy, file_name):
    (checkpoint_copy / file_name).write_text(DEEP_JSON)
    with pytest.raises(CheckpointError, match=f"{file_name} is nested too deeply"):
        load_checkpoint(checkpoint_copy)


@pytest.mark.parametrize("file_name", ["config.json", "tokenizer_config.json"])
def test_invalid_utf8_in_json_names_the_file(checkpoint_copy, file_name):
    path = checkpoint_copy / file_name
    path.write_bytes(path.read_bytes().replace(b'"albert"', b'"alb\xffert"').replace(b"{", b'{"x": "\xff", ', 1))
    with pytest.raises(CheckpointError, match=f"{file_name} is not UTF-8 text"):
        load_checkpoint(checkpoint_copy)


def test_tokenizer_flags_must_be_booleans(checkpoint_copy):
    (checkpoint_copy / "tokenizer_config.json").write_text('{"do_lower_case": "false"}')
    with pytest.raises(CheckpointError, match="do_lower_case must be true or false"):
        load_checkpoint(checkpoint_copy)


def test_cli_reports_a_bad_config_in_one_line_and_writes_nothing(checkpoint_copy, tmp_path):
    _edit_config(checkpoint_copy, id2label=["negative", "positive"])
    out = tmp_path / "out" / "m.edgealbert"
    result = CliRunner().invoke(cli, ["convert", str(checkpoint_copy), "-o", str(out), "--quantize", "fp32"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "id2label must be an object" in lines[-1]
    assert all(PROGRESS_LINE.match(line) for line in lines[:-1])
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- output paths


def _refused_output(checkpoint, output, monkeypatch, match):
    _no_conversion(monkeypatch)
    with pytest.raises(ConversionError, match=match):
        convert_checkpoint(checkpoint, output, quantize="fp32")


def test_output_under_a_file_is_refused_before_any_work(tiny_classifier_checkpoint, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    _refused_output(tiny_classifier_checkpoint, tmp_path / "a-file" / "sub" / "m.edgealbert", monkeypatch,
                    "a-file")


def test_output_name_too_long_is_refused_before_any_work(tiny_classifier_checkpoint, tmp_path, monkeypatch):
    _refused_output(tiny_classifier_checkpoint, tmp_path / ("m" * 300 + ".edgealbert"), monkeypatch, "at most 255")
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_is_refused_before_any_work(tiny_classifier_checkpoint, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):  # test_atomic.py mounts a real read-only tmpfs where it may
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.os, "mkdir", read_only)
    _refused_output(tiny_classifier_checkpoint, tmp_path / "m.edgealbert", monkeypatch, "the file system is read-only")


def test_full_disk_is_refused_before_any_work(tiny_classifier_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.os, "statvfs", lambda path: SimpleNamespace(f_bavail=1000, f_frsize=1))
    _refused_output(tiny_classifier_checkpoint, tmp_path / "m.edgealbert", monkeypatch, "free")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- finetune settings


@pytest.fixture
def train_file(tmp_path) -> Path:
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"text number {i}\t{i % 2}\n" for i in range(20)))
    return path


BAD_FINETUNE = {
    "vocabulary size 0": dict(vocab_size=0),
    "negative epochs": dict(epochs=-1.0),
    "zero epochs": dict(epochs=0.0),
    "infinite epochs": dict(epochs=float("inf")),
    "batch size 0": dict(batch_size=0),
    "learning rate 0": dict(learning_rate=0.0),
    "negative learning rate": dict(learning_rate=-1e-3),
    "NaN learning rate": dict(learning_rate=float("nan")),
    "zero layers": dict(num_hidden_layers=0),
    "hidden not divisible by heads": dict(hidden_size=30),
    "dropout 1": dict(dropout=1.0),
    "warmup ratio above 1": dict(warmup_ratio=1.5),
    "threads 0": dict(threads=0),
    "max_length above positions": dict(max_length=200),
    "unknown save dtype": dict(save_dtype="int4"),
}


@pytest.mark.parametrize("name", BAD_FINETUNE)
def test_finetune_settings_that_cannot_work_are_refused_before_any_work(train_file, tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(EdgeAlbertError, match="^finetune: "):
        finetune(train_file, out, config=FinetuneConfig(**BAD_FINETUNE[name]), log=lambda m: None)
    assert not out.exists()


@pytest.mark.parametrize("labels", ["a", "a,,b", "a,a"])
def test_finetune_label_names_must_be_distinct(train_file, tmp_path, labels):
    result = CliRunner().invoke(cli, ["finetune", str(train_file), "-o", str(tmp_path / "o"), "--labels", labels])
    assert result.exit_code == 1 and result.output.startswith("error: finetune: labels must be")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("option", [["--vocab-size", "0"], ["--epochs", "-1"], ["--layers", "0"], ["--hidden-size", "-8"]])
def test_cli_finetune_refuses_impossible_settings_in_one_line(train_file, tmp_path, option):
    result = CliRunner().invoke(cli, ["finetune", str(train_file), "-o", str(tmp_path / "o"), *option])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: finetune: ")
    assert not (tmp_path / "o").exists()


def test_a_vocabulary_smaller_than_the_text_alphabet_is_one_error_line(train_file, tmp_path):
    result = CliRunner().invoke(cli, ["finetune", str(train_file), "-o", str(tmp_path / "o"), "--vocab-size", "6"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: finetune: vocab_size 6 is smaller than the ")
    assert not (tmp_path / "o").exists() and [p.name for p in tmp_path.iterdir()] == ["train.tsv"]


# --------------------------------------------------------------------------- line endings


def test_text_files_with_cr_only_line_endings_are_split_at_cr(tmp_path):
    path = tmp_path / "cr.txt"
    path.write_bytes(b"first text\rsecond text\r\rthird\r")
    assert read_text_lines(path) == ["first text", "second text", "third"]


def test_a_unicode_line_separator_inside_a_text_does_not_split_it(tmp_path):
    path = tmp_path / "ls.txt"
    path.write_text("one\u2028text\nsecond\r\nthird\x0cpage\n", encoding="utf-8")
    assert read_text_lines(path) == ["one\u2028text", "second", "third\x0cpage"]


def test_jsonl_training_data_with_cr_endings_and_a_line_separator_in_a_string(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes('{"sentence": "a\u2028b", "label": 0}\r{"sentence": "c", "label": 1}\r'.encode())
    examples = read_examples(path)
    assert [(e.text, e.label, e.line) for e in examples] == [("a\u2028b", 0, 1), ("c", 1, 2)]


# --------------------------------------------------------------------------- light install

BLOCK_WORKSTATION = textwrap.dedent("""
    import sys
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "torch", "transformers"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
    from edge_albert.cli import main
    main(sys.argv[1:], prog_name="edge-albert")
""")


def _run_light(args, cwd: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", BLOCK_WORKSTATION, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", [
    ["convert", "CKPT", "-o", "out.edgealbert"],
    ["finetune", "TRAIN", "-o", "out"],
    ["evaluate", "bundle.edgealbert", "TRAIN", "--reference", "CKPT"],
])
def test_light_install_names_the_extra_in_one_line(tiny_classifier_checkpoint, train_file, tmp_path, command):
    (tmp_path / "bundle.edgealbert").mkdir()
    args = [{"CKPT": str(tiny_classifier_checkpoint), "TRAIN": str(train_file)}.get(a, a) for a in command]
    result = _run_light(args, tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "pip install 'edge-albert[convert]'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.edgealbert").exists() and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- quiet, and the converter in a worker


def _cli(args, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env_extra or {})}
    env.pop("EDGE_ALBERT_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "edge_albert.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_convert_prints_only_its_own_lines(tiny_classifier_checkpoint, tmp_path):
    result = _cli(["convert", str(tiny_classifier_checkpoint), "-o", str(tmp_path / "m.edgealbert"), "--quantize", "fp16"])
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if not PROGRESS_LINE.match(line)]
    assert noise == []  # no absl/oneDNN/XNNPACK lines, no transformers progress bars or warnings
    assert result.stdout.splitlines()[0].startswith("variant ")


@pytest.mark.slow
def test_verbose_brings_the_library_logs_back(tiny_classifier_checkpoint, tmp_path):
    result = _cli(["-v", "convert", str(tiny_classifier_checkpoint), "-o", str(tmp_path / "m.edgealbert"),
                   "--quantize", "fp32"])
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if not PROGRESS_LINE.match(line)] != []


CRASHING_WORKER = textwrap.dedent("""
    import os, sys
    from edge_albert.converters import tflite_worker

    real = tflite_worker.Converter()

    def convert(job):
        if job["quantize"] in os.environ["CRASH_ON"].split(","):
            os.abort()  # as the TFLite converter's native code does
        return real(job)

    sys.exit(tflite_worker.main(sys.argv[1], convert))
""")


@pytest.fixture
def crashing_worker(tmp_path, monkeypatch):
    (tmp_path / "crashing_worker.py").write_text(CRASHING_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(tflite_module, "WORKER_MODULE", "crashing_worker")

    def crash_on(*variants):
        monkeypatch.setenv("CRASH_ON", ",".join(variants))

    return crash_on


def test_a_native_crash_costs_one_variant_and_the_process_survives(tiny_classifier_checkpoint, tmp_path,
                                                                    crashing_worker):
    crashing_worker("fp16")
    result = convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "m.edgealbert", quantize="fp16,fp32")
    variants = {v.quantize: v for v in result.variants}
    assert not variants["fp16"].bundled and variants["fp16"].bundle_path is None
    assert variants["fp16"].failure.startswith("the TFLite converter crashed converting fp16 (SIGABRT)")
    assert variants["fp32"].bundled and variants["fp32"].check.passed  # converted by a fresh worker
    assert sorted(p.name for p in tmp_path.glob("*.edgealbert")) == ["m-fp32.edgealbert"]


def test_cli_reports_a_converter_crash_in_one_error_line(tiny_classifier_checkpoint, tmp_path, crashing_worker):
    crashing_worker("fp32")
    result = CliRunner().invoke(cli, ["convert", str(tiny_classifier_checkpoint), "-o", str(tmp_path / "m.edgealbert"),
                                      "--quantize", "fp32"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if not PROGRESS_LINE.match(line)]
    assert errors == ["error: fp32: the TFLite converter crashed converting fp32 (SIGABRT); run with -v to see its log"]
    assert not any(tmp_path.glob("*.edgealbert"))
    with pytest.raises(ConversionError):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "m.edgealbert", quantize="fp32")


# --------------------------------------------------------------------------- benchmarks/compare.py


@pytest.fixture
def compare():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import compare as module
        yield module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_compare_never_reuses_a_result_name(compare, tmp_path):
    assert compare.unique_result_stem(tmp_path, "2026-11-29-vm") == tmp_path / "2026-11-29-vm"
    (tmp_path / "2026-11-29-vm.png").write_text("committed")
    assert compare.unique_result_stem(tmp_path, "2026-11-29-vm") == tmp_path / "2026-11-29-vm-2"
    (tmp_path / "2026-11-29-vm-2.md").write_text("committed")
    assert compare.unique_result_stem(tmp_path, "2026-11-29-vm") == tmp_path / "2026-11-29-vm-3"
    with pytest.raises(FileExistsError):
        compare._write_new(tmp_path / "2026-11-29-vm-2.md", "new")
    assert (tmp_path / "2026-11-29-vm-2.md").read_text() == "committed"


@pytest.mark.parametrize("keep", [False, True])
def test_compare_default_work_dir_is_private_to_the_run(compare, tmp_path, monkeypatch, keep):
    seen = {}

    def run(args, arguments, checkpoint, seq_lens, say):
        seen["work"] = args.work_dir
        seen["mode"] = args.work_dir.stat().st_mode & 0o777
        return 0

    monkeypatch.setattr(compare, "_run", run)
    assert compare.main([str(tmp_path)] + (["--keep-work-dir"] if keep else [])) == 0
    assert seen["work"].name.startswith("edge-albert-compare-") and seen["mode"] == 0o700
    assert seen["work"].exists() == keep
    shutil.rmtree(seen["work"], ignore_errors=True)
