"""Bad input on the device side: each class gets one `error: ...` line, exit status 1, no traceback.

Manifests with missing or mistyped fields, labels that do not match the model, deeply nested or
huge-number JSON, undecodable text, closed or full stdout, absurd thread and batch counts, a
10 MB text (memory bounded), the XNNPACK log line, and bundle signatures.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.runtime_bundles import MAX_SEQ_LEN, bundle_for

from edge_albert import BundleError, load_model
from edge_albert.bundle import load_bundle, validate_manifest
from edge_albert.cli import main
from edge_albert.extras import WHEEL
from edge_albert.predict import records_from_lines
from edge_albert.errors import DataError
from edge_albert.runtime import MAX_BATCH, MAX_THREADS
from edge_albert.tokenizer import PRECUT_MIN_CHARS, AlbertTokenizer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-input-bundles")


@pytest.fixture(scope="module")
def classifier(root) -> Path:
    return bundle_for(root, "text-classification")


def cli(*args, input=None, env=None):
    """The real command in a subprocess: stderr, stdout and exit status as a user sees them."""
    return subprocess.run([sys.executable, "-c", "from edge_albert.cli import main; main()", *args], input=input,
                          capture_output=True, env=env or ENV, timeout=300)


def one_error_line(result) -> str:
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def copy_with_manifest(source: Path, target: Path, change) -> Path:
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    change(manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


# ----------------------------------------------------------------- manifest fields


GOOD = {"format": "edge-albert-bundle", "format_version": 1, "task": "text-classification", "max_seq_len": 32,
        "labels": ["a", "b"], "tokenizer": {"file": "tokenizer.json"}, "quantization": {"mode": "fp32"},
        "files": {"model.tflite": {"sha256": "0" * 64, "bytes": 1}, "tokenizer.json": {"sha256": "1" * 64, "bytes": 2}}}


def _set(path, value):
    def change(manifest):
        *parents, last = path
        for key in parents:
            manifest = manifest[key]
        if value is KeyError:
            del manifest[last]
        else:
            manifest[last] = value
    return change


@pytest.mark.parametrize("path, value, named", [
    (["task"], KeyError, "'task'"), (["task"], 5, "'task'"), (["task"], "", "'task'"),
    (["max_seq_len"], KeyError, "'max_seq_len'"), (["max_seq_len"], "32", "'max_seq_len'"),
    (["max_seq_len"], True, "'max_seq_len'"), (["max_seq_len"], 10 ** 9, "'max_seq_len'"),
    (["files"], KeyError, "'files'"), (["files"], [], "'files'"),
    (["files", "model.tflite"], "abc", "'files.model.tflite'"),
    (["files", "model.tflite", "sha256"], 7, "'files.model.tflite.sha256'"),
    (["files", "model.tflite", "bytes"], "1", "'files.model.tflite.bytes'"),
    (["files", "../x"], {"sha256": "0" * 64, "bytes": 0}, "'files'"),
    (["tokenizer"], "tokenizer.json", "'tokenizer'"), (["tokenizer", "file"], 3, "'tokenizer.file'"),
    (["tokenizer", "special_tokens"], {"pad_id": "0"}, "'tokenizer.special_tokens.pad_id'"),
    (["quantization"], "fp32", "'quantization'"), (["quantization", "mode"], ["fp32"], "'quantization.mode'"),
    (["labels"], "negative,positive", "'labels'"), (["labels"], [1, 2], "'labels'"),
])
def test_manifest_fields_are_checked_in_one_place(path, value, named):
    manifest = copy.deepcopy(GOOD)
    validate_manifest(manifest, "m.json")  # the unchanged manifest passes
    _set(path, value)(manifest)
    with pytest.raises(BundleError, match=f"m.json: field {named} must be"):
        validate_manifest(manifest, "m.json")


def test_bad_manifest_is_one_line_for_every_command(classifier, tmp_path):
    bad = copy_with_manifest(classifier, tmp_path / "b.edgealbert", _set(["max_seq_len"], "many"))
    for args in (["predict", str(bad), "x"], ["inspect", str(bad)], ["bench", str(bad), "--runs", "1"],
                 ["export-android", str(bad), str(tmp_path / "assets")]):
        line = one_error_line(cli(*args))
        assert "field 'max_seq_len' must be an integer from 3 to 8192" in line
    assert not (tmp_path / "assets").exists()


def test_inspect_runs_the_structure_check_that_loading_runs(classifier, tmp_path):
    """Random bytes as model.tflite with its sha256 and size updated: inspect refuses it as predict does."""
    junk = os.urandom(4096)

    def replace_model(manifest):
        manifest["files"]["model.tflite"] = {"sha256": hashlib.sha256(junk).hexdigest(), "bytes": len(junk)}

    bad = copy_with_manifest(classifier, tmp_path / "junk.edgealbert", replace_model)
    (bad / "model.tflite").write_bytes(junk)
    for args in (["inspect", str(bad)], ["inspect", "--json", str(bad)], ["predict", str(bad), "x"]):
        assert "model.tflite is not a well-formed TFLite model" in one_error_line(cli(*args))


def test_unknown_task_is_named(classifier, tmp_path):
    bad = copy_with_manifest(classifier, tmp_path / "t.edgealbert", _set(["task"], "translation"))
    assert "field 'task' is 'translation'; this edge-albert runs text-classification" in one_error_line(
        cli("predict", str(bad), "x"))


def test_deeply_nested_manifest(classifier, tmp_path):
    target = tmp_path / "deep.edgealbert"
    shutil.copytree(classifier, target)
    (target / "manifest.json").write_text("[" * 100000 + "]" * 100000)
    assert "nests JSON too deeply" in one_error_line(cli("inspect", str(target)))


@pytest.mark.parametrize("labels", [["only"], ["a", "b", "c"]])
def test_label_count_must_match_the_logits(classifier, tmp_path, labels):
    bad = copy_with_manifest(classifier, tmp_path / "l.edgealbert", _set(["labels"], labels))
    line = one_error_line(cli("predict", str(bad), "x"))
    assert f"names {len(labels)} labels but the model gives 2 logits" in line


def test_model_without_the_outputs_its_task_needs(root, classifier, tmp_path):
    # A classifier's model.tflite (output "logits") in a bundle that says question answering.
    bad = copy_with_manifest(classifier, tmp_path / "qa.edgealbert", _set(["task"], "question-answering"))
    line = one_error_line(cli("predict", str(bad), "--jsonl", input=b'{"question": "q", "context": "c"}\n'))
    assert "has no output 'start_logits'" in line and "needs start_logits, end_logits" in line


# ----------------------------------------------------------------- texts and JSON lines


def test_jsonl_bad_lines_after_good_ones(classifier):
    nested = '{"text": ' + "[" * 50000 + "]" * 50000 + "}"
    for bad, message in ((nested, "line 2 nests JSON too deeply"),
                         ('{"text": "a", "id": 1' + "0" * 5000 + "}", "line 2 has a number too long")):
        result = cli("predict", str(classifier), "--jsonl", input=f'{{"text": "good"}}\n{bad}\n'.encode())
        assert message in one_error_line(result)
        assert [json.loads(line)["text"] for line in result.stdout.decode().splitlines()] == ["good"]


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters(classifier):
    stdin = cli("predict", str(classifier), input=b"good\nbad \xff\xfe byte\nlast")
    assert stdin.returncode == 0, stdin.stderr
    assert [json.loads(line)["text"] for line in stdin.stdout.decode().splitlines()] == \
        ["good", "bad \ufffd\ufffd byte", "last"]
    jsonl = cli("predict", str(classifier), "--jsonl", input=b'{"text": "x \\ud800 y", "id": "\\udfff"}\n')
    assert jsonl.returncode == 0, jsonl.stderr
    assert json.loads(jsonl.stdout)["text"] == "x \ufffd y" and json.loads(jsonl.stdout)["id"] == "\ufffd"
    argv = subprocess.run([sys.executable, "-c", "from edge_albert.cli import main; main()", "predict",
                           str(classifier).encode(), b"caf\xe9"], capture_output=True, env=ENV)
    assert argv.returncode == 0 and json.loads(argv.stdout)["text"] == "caf\ufffd"
    assert records_from_lines(["\ud800"], jsonl=False).__next__() == {"text": "\ufffd"}


def test_cr_only_line_endings_on_stdin(classifier):
    result = cli("predict", str(classifier), input=b"one\rtwo\rthree")
    assert [json.loads(line)["text"] for line in result.stdout.decode().splitlines()] == ["one", "two", "three"]


def test_closed_and_full_stdout(classifier):
    script = (f"{sys.executable} -c 'from edge_albert.cli import main; main()' predict {classifier} "
              f"< /dev/stdin | head -1")
    closed = subprocess.run(["bash", "-c", script], input=b"line\n" * 2000, capture_output=True, env=ENV)
    assert closed.stdout.count(b"\n") == 1 and b"Traceback" not in closed.stderr
    assert closed.stderr.decode().strip() in ("", "error: standard output was closed before all results were written")
    with open("/dev/full", "wb") as full:
        result = subprocess.run([sys.executable, "-c", "from edge_albert.cli import main; main()", "predict",
                                 str(classifier), "a", "b"], stdout=full, stderr=subprocess.PIPE, env=ENV)
    assert one_error_line(result) == "error: cannot write the output: No space left on device"


@pytest.mark.parametrize("args", [["predict", "b.edgealbert", "x"], ["inspect", "b.edgealbert"],
                                  ["convert", "ckpt", "-o", "out.edgealbert"], ["keygen", "key"]])
def test_a_closed_stdout_is_one_line_before_any_work(tmp_path, args):
    """`edge-albert ... >&-`: no traceback, nothing written (fd 1 would otherwise be reused by the next open)."""
    command = " ".join([sys.executable, "-c", "'from edge_albert.cli import main; main()'", *args])
    result = subprocess.run(["bash", "-c", f"{command} >&-"], capture_output=True, env=ENV, cwd=tmp_path, timeout=300)
    assert one_error_line(result) == "error: standard output is closed; redirect it to a file or to /dev/null instead"
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------- resource limits


def test_threads_and_batch_are_bounded(classifier):
    assert f"from 1 to {MAX_THREADS}" in one_error_line(cli("predict", str(classifier), "x", "--threads", "100000"))
    assert f"from 1 to {MAX_BATCH}" in one_error_line(cli("predict", str(classifier), "x", "--batch-size", "100000"))
    line = one_error_line(cli("bench", str(classifier), "--batch", "100000", "--runs", "1"))
    assert line == f"error: --batch must be an integer from 1 to {MAX_BATCH}, not 100000"
    assert "--threads" in one_error_line(cli("evaluate", str(classifier), str(REPO / "README.md"),
                                             "--threads", "1000"))
    # serve's rows per interpreter call are its --model-batch-size: the error names that flag, not predict's
    line = one_error_line(cli("serve", str(classifier), "--model-batch-size", "100000"))
    assert line == f"error: --model-batch-size must be an integer from 1 to {MAX_BATCH}, not 100000"


def test_python_api_arguments_are_type_and_range_checked(classifier, root):
    """A wrong argument is a TypeError or ValueError naming the parameter, never a silent other answer."""
    model = load_model(classifier, num_threads=1)
    for texts, named in (([None], "texts[0] must be a string, not NoneType"),
                         ({"text": "x"}, "texts must be a string or a list of strings, not dict"),
                         (b"bytes", "texts must be a string or a list of strings, not bytes"),
                         (["ok", 3], "texts[1] must be a string, not int"), (None, "not NoneType")):
        with pytest.raises(TypeError, match=named.replace("[", r"\[").replace("]", r"\]")):
            model.predict(texts)
    with pytest.raises(TypeError, match=r"text_pairs\[0\] must be a string"):
        model.predict(["a"], [None])
    for threads in (0, -3, 1.5):
        with pytest.raises(ValueError, match="threads must be an integer from 1"):
            load_model(classifier, num_threads=threads)
    qa = load_model(bundle_for(root, "question-answering"), num_threads=1)
    with pytest.raises(ValueError, match="stride must be an integer >= 0, not -10"):
        qa.predict("q?", "a context", stride=-10)
    for tokens in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_answer_tokens must be an integer >= 1"):
            qa.predict("q?", "a context", max_answer_tokens=tokens)
    with pytest.raises(TypeError, match="contexts must be a string or a list of strings, not dict"):
        qa.predict("q?", {"context": "x"})
    assert len(qa.predict("q?", "a context", stride=0, max_answer_tokens=1)) == 1


PEAK_SCRIPT = textwrap.dedent("""
    import re, sys
    from edge_albert import load_model
    model = load_model(sys.argv[1], num_threads=1)
    def peak_mb():
        return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
    before = peak_mb()
    text = sys.argv[2] * (10_000_000 // len(sys.argv[2]))
    prediction = model.predict([text])[0]
    print(before, peak_mb() - before, prediction.truncated)
""")


@pytest.mark.parametrize("unit", ["word ", "x"])
def test_a_10_mb_text_takes_bounded_memory(classifier, unit):
    """Peak RSS (VmHWM) growth for one 10 MB text: 1.25 GB before the cut, under 150 MB after.

    The text itself (10 MB of str) and its prefix are most of what remains.
    """
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(classifier), unit], capture_output=True,
                         text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    _, growth, truncated = out.stdout.split()
    assert truncated == "True"
    assert float(growth) < 150, f"a 10 MB text raised the peak RSS by {growth} MB"


def test_cutting_long_texts_keeps_the_tokens(classifier):
    tokenizer = AlbertTokenizer.from_file(classifier / "tokenizer.json")
    adversarial = json.loads((REPO / "tests" / "data" / "tokenizer_adversarial.json").read_text())["texts"]
    pieces = [entry["text"] for entry in adversarial if entry["text"].strip()]
    texts = [" ".join(pieces) * (1 + PRECUT_MIN_CHARS // max(1, len(" ".join(pieces)))),
             ("naïve café ``quoted'' Ⅻ ﷺ\u00a0x\r\n\t" * 5000), "a" * (PRECUT_MIN_CHARS + 5) + " b"]
    for max_length in (8, MAX_SEQ_LEN, 512):
        for text in texts:
            assert len(text) > PRECUT_MIN_CHARS
            cut = tokenizer.encode([text], max_length=max_length)
            tokenizer._tokenizer.enable_truncation(max_length)
            whole = tokenizer._tokenizer.encode(text)
            tokenizer._tokenizer.no_truncation()
            assert cut.input_ids[0].tolist() == whole.ids and cut.offsets[0] == whole.offsets
            assert cut.truncated == [True]
            pair = tokenizer.encode(["short question"], [text], max_length=max_length)
            tokenizer._tokenizer.enable_truncation(max_length)
            whole_pair = tokenizer._tokenizer.encode("short question", text)
            tokenizer._tokenizer.no_truncation()
            assert pair.input_ids[0].tolist() == whole_pair.ids


def test_question_answering_context_is_bounded(root):
    from edge_albert.tasks import MAX_QA_CONTEXT_CHARS

    bundle = bundle_for(root, "question-answering")
    huge = json.dumps({"question": "q?", "context": "word " * (MAX_QA_CONTEXT_CHARS // 5 + 1)})
    result = cli("predict", str(bundle), "--jsonl", input=f'{{"question": "q?", "context": "a b"}}\n{huge}\n'.encode())
    assert "input line 2: 'context' has 1,048,580 characters; question answering reads at most 1,048,576" in \
        one_error_line(result)
    assert len(result.stdout.decode().splitlines()) == 1  # the line before it was answered


# ----------------------------------------------------------------- quiet


def test_no_xnnpack_line_unless_verbose(classifier):
    quiet = cli("predict", str(classifier), "hello")
    assert quiet.returncode == 0 and quiet.stderr == b""
    loud = cli("-v", "predict", str(classifier), "hello")
    assert b"XNNPACK" in loud.stderr


def test_inspect_prints_runtimes_as_text(classifier):
    out = cli("inspect", str(classifier)).stdout.decode()
    assert "min runtime: ai-edge-litert >= 2.0 or tflite-runtime >= 2.14" in out and "{" not in out


# ----------------------------------------------------------------- signatures


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    assert CliRunner().invoke(main, ["keygen", str(folder / "good")]).exit_code == 0
    assert CliRunner().invoke(main, ["keygen", str(folder / "other")]).exit_code == 0
    assert oct((folder / "good").stat().st_mode)[-3:] == "600"
    return folder


def test_signed_bundle_loads_and_tampering_is_refused(classifier, keys, tmp_path):
    from edge_albert.bundle import sign_bundle

    signed = tmp_path / "signed.edgealbert"
    shutil.copytree(classifier, signed)
    sign_bundle(signed, keys / "good")
    trusted = keys / "good.pub"
    assert load_model(signed, trusted_key=trusted).predict(["hi"])[0].label in ("negative", "positive")
    result = cli("predict", str(signed), "hi", "--trusted-key", str(trusted))
    assert result.returncode == 0, result.stderr

    assert "not signed" in one_error_line(cli("predict", str(classifier), "x", "--trusted-key", str(trusted)))
    assert "signed by key" in one_error_line(cli("predict", str(signed), "x", "--trusted-key",
                                                 str(keys / "other.pub")))
    env = {**ENV, "EDGE_ALBERT_TRUSTED_KEY": str(keys / "other.pub")}
    for args in (["predict", str(signed), "x"], ["bench", str(signed), "--runs", "1"],
                 ["evaluate", str(signed), str(REPO / "README.md")],
                 ["export-android", str(signed), str(tmp_path / "assets")]):
        assert "signed by key" in one_error_line(cli(*args, env=env)), args

    # A model byte changed and its sha256 updated in the manifest: the manifest no longer verifies.
    model = bytearray((signed / "model.tflite").read_bytes())
    model[-100] ^= 0xFF
    (signed / "model.tflite").write_bytes(model)
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(signed, trusted_key=trusted)
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["files"]["model.tflite"]["sha256"] = hashlib.sha256(model).hexdigest()
    (signed / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    assert "manifest was altered after signing" in one_error_line(
        cli("predict", str(signed), "x", "--trusted-key", str(trusted)))
    # A manifest field changed (the labels swapped): refused the same way.
    sign_bundle(signed, keys / "good")
    load_bundle(signed, trusted_key=trusted)
    manifest["labels"] = ["positive", "negative"]
    (signed / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(BundleError, match="altered after signing"):
        load_bundle(signed, trusted_key=trusted)


def test_trusted_key_without_cryptography_says_which_extra(classifier, keys, monkeypatch):
    for name in [n for n in sys.modules if n == "cryptography" or n.startswith("cryptography.")] + ["cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)  # as on a device without the [signing] extra
    result = CliRunner().invoke(main, ["predict", str(classifier), "x", "--trusted-key", str(keys / "good.pub")])
    assert result.exit_code == 1
    assert result.stderr == ("error: bundle signatures need the cryptography package: pip install "
                             f"'{WHEEL}[signing]' (the wheel from `make wheel`; in a source checkout: "
                             "pip install -e '.[signing]')\n")


def test_no_interpreter_names_the_wheels_extras_as_the_readme_installs_them(classifier, monkeypatch):
    import edge_albert.runtime as runtime

    def unusable(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(runtime, "_import_backend", unusable)
    result = CliRunner().invoke(main, ["predict", str(classifier), "x"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: no usable TFLite interpreter (ai_edge_litert: ImportError")
    assert f"install one: pip install '{WHEEL}[litert]' (ai-edge-litert, runs every bundle)" in result.stderr
    assert WHEEL == "edge_albert-0.1.0-py3-none-any.whl"  # the file README's install lines name
    assert WHEEL in Path(__file__).resolve().parents[1].joinpath("README.md").read_text()


def test_keys_of_the_wrong_kind_are_one_line(keys, classifier):
    line = one_error_line(cli("predict", str(classifier), "x", "--trusted-key", str(keys / "good")))
    assert "did you pass the private key?" in line


def test_keygen_warns_when_the_private_key_could_be_committed(tmp_path):
    """A private key inside a git working tree that does not ignore it gets one warning line; the
    repository's own .gitignore ignores *.key, the README's key name (signing.key)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("*.key\n")
    committable = CliRunner().invoke(main, ["keygen", str(repo / "signing.pem")])
    assert committable.exit_code == 0, committable.output
    assert committable.stderr == (f"warning: {repo / 'signing.pem'} is inside the git working tree {repo.resolve()} "
                                  "and not ignored by it: keep it out of commits (add it to .gitignore, or keep keys "
                                  "outside the repository)\n")
    for quiet in (repo / "signing.key", tmp_path / "elsewhere.pem"):
        result = CliRunner().invoke(main, ["keygen", str(quiet)])
        assert result.exit_code == 0 and result.stderr == "", result.output
    ignored = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "check-ignore", "-q", "signing.key"])
    assert ignored.returncode == 0, "the project's .gitignore must ignore the README's signing.key"
